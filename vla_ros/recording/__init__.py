"""Recording episodes from ROS topics into rosbag2/MCAP folders, and reading them back."""
