"""MuJoCo simulation: scene built from the robot URDF, pick task, ROS sim node."""
