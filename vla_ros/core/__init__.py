"""ROS-free core: chunks, interpolation, limits, kinematics, statistics.

Nothing under this package imports rclpy or message types, so it is unit tested without ROS.
"""
