"""The emulated MoveIt Servo (Jazzy) the MuJoCo sim runs for ee_pose / ee_twist: ``~/switch_command_type``,
twists and poses dropped until the type matches (as Servo warns "Command type has not been set, cannot
accept input"), twists scaled by 0.4 / 0.8 unless ``moveit_servo.command_in_type`` is ``speed_units``
(answered on ``<servo>/get_parameters`` from the sim's ``servo_command_in_type``)."""

from __future__ import annotations

import numpy as np
from rcl_interfaces.msg import ParameterType, ParameterValue
from rcl_interfaces.srv import GetParameters
from rclpy.node import Node

from .servo import COMMAND_IN_TYPE, POSE, SPEED_UNITS, TWIST

UNITLESS_SCALE = (0.4, 0.8)  # Servo's default scale.linear, scale.rotational


class ServoEmulation:
    def __init__(self, node: Node, servo_node: str, command_in_type: str):
        from moveit_msgs.srv import ServoCommandType

        self.command_type: int | None = None
        self.command_in_type = command_in_type
        node.create_service(ServoCommandType, f"{servo_node}/switch_command_type", self._on_switch)
        node.create_service(GetParameters, f"{servo_node}/get_parameters", self._on_get_parameters)

    def _on_switch(self, req, resp):
        resp.success = int(req.command_type) in (0, TWIST, POSE)
        if resp.success:
            self.command_type = int(req.command_type)
        return resp

    def _on_get_parameters(self, req, resp):
        for name in req.names:
            value = ParameterValue()
            if name == COMMAND_IN_TYPE:
                value.type, value.string_value = ParameterType.PARAMETER_STRING, self.command_in_type
            resp.values.append(value)
        return resp

    def accepts(self, kind: int) -> str:
        """'' when a command of ``kind`` is processed, else why Servo drops it."""
        if self.command_type == kind:
            return ""
        return "Command type has not been set, cannot accept input" if self.command_type is None else \
            f"command type is {self.command_type}, not {kind}: input dropped"

    def twist(self, twist: np.ndarray) -> np.ndarray:
        """The twist Servo moves by (unitless commands are scaled)."""
        if self.command_in_type == SPEED_UNITS:
            return twist
        return np.concatenate([twist[:3] * UNITLESS_SCALE[0], twist[3:] * UNITLESS_SCALE[1]])
