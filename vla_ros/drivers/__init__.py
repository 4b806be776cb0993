"""Real driver stacks, one module each: the adapter the controller node sends through (what it publishes,
in which units, the start-up set-up, whether anyone listens) and the emulation the MuJoCo sim runs (the
driver's topics, services, actions, rates, and what its modes do to motion).

* ``ros2_control``: forward position / joint_trajectory controllers (Gazebo, custom bring-ups).
* ``interbotix``: the Interbotix xs_sdk (WidowX, each ALOHA follower).
* ``franka``: franka_ros2: the arm's joint_trajectory_controller, the hand's franka_gripper actions.
* ``servo``: MoveIt Servo for ee_pose / ee_twist outputs (the gripper stays on the driver).
"""

from __future__ import annotations

DRIVER_BRINGUP_HINT = "start the robot's driver (README: 'On the real robot')"
