"""Thin ROS 2 nodes: wiring, parameters, QoS and diagnostics around the core."""
