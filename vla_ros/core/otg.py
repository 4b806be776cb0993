"""Online trajectory generation: follow a moving reference under velocity, acceleration and jerk limits.

A jerk-limited velocity servo built on ruckig: every control tick the reference's velocity plus a
correction of the position error becomes ruckig's target velocity, and ruckig returns the next state
within the limits. The correction is proportional for small errors and follows the braking curve
sqrt(a |e|) for large ones, so the servo stops at a held target instead of overshooting it. A feasible
reference is followed within a few milliradians; an infeasible one (a jump between chunks, a sudden
stop) is smoothed instead of sent. (Targeting the
reference *state* directly makes a time-optimal generator run backwards to build up speed, so the
velocity interface is used.)
"""

from __future__ import annotations

import numpy as np


class MotionLimiter:
    def __init__(self, velocity: np.ndarray, acceleration: np.ndarray, jerk: np.ndarray, dt: float,
                 gain: float = 15.0, lower: np.ndarray | None = None, upper: np.ndarray | None = None):
        from ruckig import ControlInterface, InputParameter, OutputParameter, Ruckig, Synchronization

        self.dof = len(velocity)
        self.velocity = np.asarray(velocity, float)
        self.gain = gain
        self._brake = 0.5 * np.asarray(acceleration, float)  # sqrt(2 (a/4) |e|): margin for the jerk ramps
        self.lower = np.full(self.dof, -np.inf) if lower is None else np.asarray(lower, float)
        self.upper = np.full(self.dof, np.inf) if upper is None else np.asarray(upper, float)
        self._otg = Ruckig(self.dof, dt)
        self._inp = InputParameter(self.dof)
        self._out = OutputParameter(self.dof)
        self._inp.control_interface = ControlInterface.Velocity
        self._inp.synchronization = Synchronization.No  # each joint on its own
        self._inp.max_velocity = self.velocity.tolist()
        self._inp.max_acceleration = np.asarray(acceleration, float).tolist()
        self._inp.max_jerk = np.asarray(jerk, float).tolist()
        self._inp.target_acceleration = [0.0] * self.dof
        self.position = np.zeros(self.dof)
        self.vel = np.zeros(self.dof)
        self.acc = np.zeros(self.dof)

    def reset(self, position: np.ndarray) -> None:
        """At rest at ``position``."""
        self.position = np.asarray(position, float).copy()
        self.vel = np.zeros(self.dof)
        self.acc = np.zeros(self.dof)

    def override(self, position: np.ndarray, tolerance: float = 1e-9) -> None:
        """Another guard changed the output: continue from ``position``; joints moved by it stop."""
        moved = np.abs(np.asarray(position, float) - self.position) > tolerance
        self.position = np.asarray(position, float).copy()
        self.vel[moved] = 0.0
        self.acc[moved] = 0.0

    def step(self, target: np.ndarray, target_velocity: np.ndarray) -> np.ndarray:
        """The next position following (target, target_velocity) after one control period."""
        error = np.asarray(target, float) - self.position
        correction = np.sign(error) * np.minimum(self.gain * np.abs(error), np.sqrt(self._brake * np.abs(error)))
        return self._update(np.asarray(target_velocity, float) + correction)

    def brake(self) -> np.ndarray:
        """The next position while decelerating to rest as fast as the limits allow (no position target)."""
        return self._update(np.zeros(self.dof))

    def _update(self, wanted: np.ndarray) -> np.ndarray:
        inp = self._inp
        inp.current_position = self.position.tolist()
        inp.current_velocity = self.vel.tolist()
        inp.current_acceleration = self.acc.tolist()
        # never head into a position limit faster than the braking curve allows
        room_up = np.sqrt(self._brake * np.maximum(self.upper - self.position, 0.0))
        room_down = np.sqrt(self._brake * np.maximum(self.position - self.lower, 0.0))
        wanted = np.clip(wanted, -np.minimum(self.velocity, room_down), np.minimum(self.velocity, room_up))
        inp.target_velocity = wanted.tolist()
        result = self._otg.update(inp, self._out)
        if int(result) < 0:  # ruckig error (should not happen with finite inputs): stop where we are
            self.vel[:] = 0.0
            self.acc[:] = 0.0
            return self.position.copy()
        self.position = np.array(self._out.new_position)
        self.vel = np.array(self._out.new_velocity)
        self.acc = np.array(self._out.new_acceleration)
        return self.position.copy()
