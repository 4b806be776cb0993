"""franka_ros2: the adapter. The arm streams look-ahead windows to the bring-up's joint_trajectory_controller
(``/fr3_arm_controller/joint_trajectory`` under franka_fr3_moveit_config); the hand is the ``franka_gripper``
node's actions: one goal per open/close change of the commanded finger, ``move`` to open and ``grasp`` to
close (as its ``gripper_action`` server does), sent without blocking the control loop; a rejected, aborted or
failed goal is reported on /diagnostics."""

from __future__ import annotations

from collections.abc import Callable

from rclpy.action import ActionClient
from rclpy.node import Node

from ..core.control import ControlCore, TickResult
from ..robots import FrankaDriverSpec, GripperSpec
from .base import Output
from .units import franka_gripper_closed


def action_name(gripper_node: str, action: str) -> str:
    return f"{gripper_node}/{action}"


class FrankaGripperOutput(Output):
    """Open/close goals to franka_gripper from the commanded finger (m per finger; goals take the gap)."""

    def __init__(self, node: Node, spec: FrankaDriverSpec, gripper: GripperSpec, all_joints: list[str],
                 report: Callable[[str, str], None], log: Callable[[str], None]):
        from franka_msgs.action import Grasp, Move

        self.Move, self.Grasp = Move, Grasp
        self.spec, self.gripper = spec, gripper
        self.joints = [gripper.joint]
        self.index = all_joints.index(gripper.joint)
        self.report, self.log = report, log
        self.names = {"move": action_name(spec.gripper_node, "move"), "grasp": action_name(spec.gripper_node, "grasp")}
        self.move = ActionClient(node, Move, self.names["move"])
        self.grasp = ActionClient(node, Grasp, self.names["grasp"])
        self.publishers = []
        self.closed: bool | None = None  # the last state a goal was sent for (None: nothing sent yet)
        self.goals = {"sent": 0, "succeeded": 0, "failed": 0}

    def missing(self) -> list[str]:
        return [f"{self.names[k]} (no action server)" for k, c in (("move", self.move), ("grasp", self.grasp))
                if not c.server_is_ready()]

    def send(self, result: TickResult, core: ControlCore, now: float) -> None:
        closed = franka_gripper_closed(result.command[self.index], self.gripper.open, self.gripper.closed)
        if self.closed is None:  # the first command: the hand stays as it is (no goal at start-up)
            self.closed = closed
            return
        if closed == self.closed:
            return
        self.closed = closed
        if closed:
            goal = self.Grasp.Goal(width=2.0 * self.gripper.closed, speed=self.spec.speed, force=self.spec.force)
            goal.epsilon.inner = 0.0 if self.gripper.closed <= 0.0 else self.spec.epsilon
            goal.epsilon.outer = self.spec.epsilon
            client, kind, what = self.grasp, "grasp", f"grasp (force {self.spec.force:g} N)"
        else:
            goal = self.Move.Goal(width=2.0 * self.gripper.open, speed=self.spec.speed)
            client, kind, what = self.move, "move", f"move to {2.0 * self.gripper.open:.3f} m"
        if not client.server_is_ready():
            self.report("gripper", f"{self.names[kind]} has no action server: the hand cannot {what}")
            return
        self.goals["sent"] += 1
        client.send_goal_async(goal).add_done_callback(lambda f, w=what: self._accepted(f, w))

    def _accepted(self, future, what: str) -> None:
        handle = future.result()
        if handle is None or not handle.accepted:
            self.goals["failed"] += 1
            self.report("gripper", f"franka_gripper rejected the goal to {what}")
            return
        handle.get_result_async().add_done_callback(lambda f: self._finished(f, what))

    def _finished(self, future, what: str) -> None:
        from action_msgs.msg import GoalStatus

        response = future.result()
        ok = response is not None and response.status == GoalStatus.STATUS_SUCCEEDED and response.result.success
        if ok:
            self.goals["succeeded"] += 1
            return
        self.goals["failed"] += 1
        status = response.status if response is not None else "none"
        error = response.result.error if response is not None else ""
        self.report("gripper", f"franka_gripper goal to {what} ended with status {status}"
                    + (f": {error}" if error else ""))
