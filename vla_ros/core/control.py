"""The controller's ROS-free core: merge chunks into a plan, sample it, limit it, hold when stale."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .chunk import ActionChunk, ChunkError, HaltedError, NotStartedError
from .clock import ClockJumps
from .interpolation import Interpolant
from .limits import JointLimits, SafetyFilter
from .merge import MERGE_MODES, RTC_SCHEDULES, TimedTargets, blend_prefix, rtc_weights, temporal_ensemble
from .otg import MotionLimiter
from .workspace import WorkspaceBox


@dataclass
class ControlConfig:
    rate: float = 500.0
    interpolation: str = "quintic"
    merge: str = "rtc"
    ensemble_k: float = 0.01
    rtc_schedule: str = "exp"
    execution_horizon: int = 0  # rtc: steps of a chunk that run before the next one; 0 = half the chunk or more
    use_motion_limits: bool = True  # acceleration/jerk-limited OTG when the limits give acceleration
    unblended: tuple[str, ...] = ()  # joints that always take the newest chunk (grippers: open/close events)
    chunk_timeout: float = 1.0
    state_timeout: float = 0.1
    max_chunk_age: float = 1.0
    max_future_stamp: float = 0.5
    min_lead: float = 0.0
    skip_close_targets: bool = True  # skip a target due within a quarter spacing when a later one follows
    max_deviation: float = 0.0  # rad: commanded vs measured beyond this stops the arm until a reset (0: off)
    deviation_exempt: tuple[str, ...] = ()  # joints not checked (grippers stop on what they grasp)
    workspace_lookahead: float = 0.2  # s: how far ahead on the plan the workspace box is checked
    workspace_every: int = 5  # ticks between workspace checks (forward kinematics costs ~0.1 ms)

    def __post_init__(self) -> None:
        if self.merge not in MERGE_MODES:
            raise ValueError(f"merge must be one of {MERGE_MODES}, not {self.merge!r}")
        if self.rtc_schedule not in RTC_SCHEDULES:
            raise ValueError(f"rtc_schedule must be one of {RTC_SCHEDULES}, not {self.rtc_schedule!r}")


@dataclass
class TickResult:
    command: np.ndarray
    velocity: np.ndarray
    holding: bool
    reason: str = ""
    fresh: bool = True  # a plan target was due now (False: holding or past the end of the last chunk)
    new_chunk_stamp: float | None = None  # set on the first tick that executes a new chunk
    clipped_position: list[str] = field(default_factory=list)
    clipped_velocity: list[str] = field(default_factory=list)


@dataclass
class ChunkAccepted:
    kept: int
    dropped_due: int
    outside_limits: list[str]


class ControlCore:
    """Chunk execution with stamp alignment, merging, interpolation, limits and a watchdog."""

    def __init__(self, limits: JointLimits, config: ControlConfig | None = None,
                 workspace: WorkspaceBox | None = None):
        self.limits = limits
        self.workspace = workspace  # the end effector's box (None: unchecked)
        self._ticks = 0
        self.names = list(limits.names)
        self.config = config or ControlConfig()
        self.filter = SafetyFilter(limits)
        n = len(self.names)
        self.limiter = (MotionLimiter(limits.velocity, limits.acceleration, limits.jerk, self.period,
                                      lower=limits.lower, upper=limits.upper)
                        if self.config.use_motion_limits and limits.has_acceleration else None)
        self.command: np.ndarray | None = None
        self.velocity = np.zeros(n)
        self.acceleration = np.zeros(n)
        self.plan: Interpolant | None = None
        self.history: list[TimedTargets] = []  # received chunks, oldest first (temporal ensembling)
        self.last_chunk_time = -np.inf
        self.last_state_time = -np.inf
        self.measured: np.ndarray | None = None
        self._hold_target: np.ndarray | None = None
        self._pending_stamp: float | None = None
        self.halted = ""  # why the arm is being brought to rest and held (empty: running)
        self.deviation = ""  # set when commanded and measured positions parted: held until reset()
        self.clock = ClockJumps()  # counts the jumps of the clock ``tick`` is given
        self.plan_dropped = ""  # why the plan was dropped (workspace), until the next accepted chunk
        # a teleoperator's takeover: while on, the arm follows the teleop target (within the same limits) and
        # chunks are refused; after the hand-back only chunks stamped after it are taken
        self.takeover = False
        self.teleop_target: np.ndarray | None = None
        self.teleop_velocity = np.zeros(len(self.names))
        self.teleop_time = -np.inf  # when the target arrived (freshness)
        self.teleop_sample = -np.inf  # its sample time (velocity)
        self.teleop_timeout = 0.2
        self.handed_back_at = -np.inf

    @property
    def period(self) -> float:
        return 1.0 / self.config.rate

    def update_state(self, positions: np.ndarray, now: float) -> None:
        """A finite measured position vector in ``names`` order, received at ``now``."""
        self.measured = np.asarray(positions, dtype=float).copy()
        self.last_state_time = now
        if self.command is None:
            self._resync()

    def _resync(self) -> None:
        self.command = self.limits.clip(self.measured)
        self.velocity[:] = 0.0
        self.acceleration[:] = 0.0
        if self.limiter is not None:
            self.limiter.reset(self.command)

    def reset(self) -> None:
        """Drop the plan and hold the measured position (this also clears a deviation stop)."""
        self.deviation = self.plan_dropped = ""
        self._drop_plan()
        self._pending_stamp = None
        if self.measured is not None:
            self._resync()

    def _drop_plan(self) -> None:
        """No plan, no chunk history, and the next hold brakes from the current motion."""
        self.plan = None
        self.history.clear()
        self._hold_target = None

    def halt(self, reason: str) -> None:
        """Bring the arm to rest within its acceleration limits and hold it there, ignoring chunks, until
        :meth:`resume`."""
        if not self.halted:
            self._drop_plan()
        self.halted = reason or "halted"

    def resume(self) -> None:
        """Leave a halt: the plan starts again from the measured state."""
        self.halted = ""
        self.reset()

    def set_takeover(self, on: bool, now: float) -> bool:
        """A teleoperator takes the arm (``on``) or hands it back; True when that changed anything. Either way
        the running plan goes: the teleop target replaces it, or the next chunk stamped after ``now``."""
        if on == self.takeover:
            return False
        self.takeover = on
        self._drop_plan()
        self._pending_stamp = None
        if on:
            self.teleop_target, self.teleop_time = None, -np.inf
        else:
            self.handed_back_at = now
        return True

    def teleop(self, names: list[str], positions: np.ndarray, now: float, stamp: float = 0.0) -> None:
        """A teleop target (e.g. a leader arm's joint positions) for the joints it names; others keep theirs.
        ``stamp`` (the leader's sample time; 0: unknown) times its velocity, which messages bunched up in
        transit would otherwise exaggerate."""
        target = self.teleop_target.copy() if self.teleop_target is not None else (
            self.command.copy() if self.command is not None else None)
        if target is None:
            raise NotStartedError("no joint state received yet")
        index = [self.names.index(n) for n in names if n in self.names]
        values = np.asarray(positions, float)[[i for i, n in enumerate(names) if n in self.names]]
        new = target.copy()
        new[index] = values
        sample = stamp if stamp > 0 else now
        dt = sample - self.teleop_sample
        if self.teleop_target is not None and 1e-3 < dt < self.teleop_timeout:  # the leader's own velocity
            self.teleop_velocity = (new - self.teleop_target) / dt
        else:
            self.teleop_velocity = np.zeros(len(self.names))
        self.teleop_target, self.teleop_time, self.teleop_sample = new, now, sample

    @property
    def at_rest(self) -> bool:
        return not np.any(np.abs(self.velocity) > 1e-3)

    # -- merging -----------------------------------------------------------------------------
    def add_chunk(self, chunk: ActionChunk, now: float) -> ChunkAccepted:
        """Merge the chunk's targets that are still in the future into the plan."""
        if self.halted or self.deviation:
            raise HaltedError(f"halted ({self.halted or self.deviation})")
        if self.takeover:
            raise HaltedError("a teleoperator has the arm")
        chunk.validate()
        if chunk.stamp <= self.handed_back_at:  # planned from what the robot saw before the hand-back
            raise HaltedError(f"chunk stamped {self.handed_back_at - chunk.stamp:.3f} s before the hand-back")
        unknown = [n for n in chunk.names if n not in self.names]
        if unknown:
            raise ChunkError(f"chunk names unknown joints {unknown}; controller joints are {self.names}")
        if self.command is None:
            raise NotStartedError("no joint state received yet; cannot start a chunk")
        age = now - chunk.stamp
        if age > self.config.max_chunk_age:
            raise ChunkError(f"chunk is stale: stamp is {age:.3f} s old (max_chunk_age {self.config.max_chunk_age} s)")
        if age < -self.config.max_future_stamp:
            raise ChunkError(f"chunk stamp is {-age:.3f} s in the future; check clocks / use_sim_time")
        due = chunk.absolute_times
        keep = due > now + self.config.min_lead
        if not np.any(keep):
            raise ChunkError(f"all {chunk.horizon} targets were already due when the chunk arrived ({age:.3f} s late)")
        # A target due within a sliver of a segment (a quarter of the chunk's spacing) cannot be reached
        # smoothly: a C2 spline through it swings wide and the motion limits then lag behind the plan
        # (measured: +58% task time for latest-only merging at 100 ms latency). It is skipped when a
        # later target follows; the plan runs from the current command to that one.
        spacing = float(np.median(np.diff(chunk.times))) if chunk.horizon > 1 else float(chunk.times[0])
        soon = keep & (due <= now + max(0.25 * spacing, self.period))
        if self.config.skip_close_targets and soon.any() and keep.sum() > soon.sum():
            keep &= ~soon
        full = self._full_targets(chunk, due)
        outside = sorted({n for row in full[keep] for n in self.limits.outside(row)})
        times, targets = due[keep], full[keep]
        newest = targets.copy()
        mode = self.config.merge
        if mode == "ensemble":
            self.history = [h for h in self.history if h.times[-1] >= now]
            targets = temporal_ensemble(self.history, times, targets, self.config.ensemble_k)
            self.history.append(TimedTargets(due, full))
        elif mode == "rtc" and self.plan is not None:
            horizon, delay = chunk.horizon, int((~keep).sum())
            overlap = int(np.sum(due <= self.plan.end_time))  # new steps the running plan still covers
            # default: the new chunk fully takes over by half its length (RTC's s = H / 2), sooner when the
            # running plan covers less of it; blending longer only adds lag (the limits keep it smooth)
            s = self.config.execution_horizon or max(horizon - overlap, int(np.ceil(horizon / 2)))
            weights = rtc_weights(horizon, delay, min(max(s, 0), horizon), self.config.rtc_schedule)
            targets = blend_prefix(self.plan, times, targets, weights[keep])
        fixed = [self.names.index(n) for n in self.config.unblended if n in self.names]
        targets[:, fixed] = newest[:, fixed]
        self.plan = Interpolant(np.concatenate([[now], times]), np.vstack([self.command[None, :], targets]),
                                self.config.interpolation, start_velocity=self.velocity,
                                start_acceleration=self.acceleration)
        self.last_chunk_time = now
        self._hold_target = None
        self.plan_dropped = ""
        self._pending_stamp = chunk.stamp
        return ChunkAccepted(int(keep.sum()), int((~keep).sum()), outside)

    def _full_targets(self, chunk: ActionChunk, due: np.ndarray) -> np.ndarray:
        """The chunk's values in controller order; joints it omits follow the running plan (or hold)."""
        full = np.empty((chunk.horizon, len(self.names)))
        for k, t in enumerate(due):
            full[k] = self.plan.sample(t)[0] if self.plan is not None else self.command
        full[:, [self.names.index(n) for n in chunk.names]] = chunk.values
        return full

    # -- control tick ------------------------------------------------------------------------
    def _hold(self, reason: str) -> TickResult:
        """Come to rest: freeze, or brake within the acceleration and jerk limits where they are known (to
        zero velocity, wherever that is, never back), then hold that position."""
        still = np.zeros_like(self.command)
        if self._hold_target is None and self.limiter is not None and not self.at_rest:
            result = self._advance(self.command, still, brake=True)
        else:
            if self._hold_target is None:
                self._hold_target = self.command.copy()
            result = self._advance(self._hold_target, still)
        return TickResult(result.command.copy(), self.velocity.copy(), True, reason, False, None,
                          result.clipped_position, result.clipped_velocity)

    def _advance(self, desired: np.ndarray, desired_velocity: np.ndarray, brake: bool = False):
        """One tick towards ``desired``, or (``brake``, with motion limits) towards zero velocity."""
        target = desired
        if self.limiter is not None and brake:
            target = self.limiter.brake()
        elif self.limiter is not None and np.all(np.isfinite(desired)):
            clipped = self.limits.clip(desired)  # a reference beyond a limit stands still at the limit
            target = self.limiter.step(clipped, np.where(clipped == desired, desired_velocity, 0.0))
        result = self.filter.apply(target, self.command, self.period)
        if self.limiter is not None:
            self.limiter.override(result.command)  # continue from what was sent (guards may have clipped)
            self.velocity, self.acceleration = self.limiter.vel.copy(), self.limiter.acc.copy()
        else:  # the plan's own velocity where the guard left the command alone (smoother than differences)
            stepped = (result.command - self.command) / self.period
            velocity = np.where(result.command == target, desired_velocity, stepped)
            self.acceleration = (velocity - self.velocity) / self.period
            self.velocity = velocity
        self.command = result.command
        return result

    def tick(self, now: float) -> TickResult | None:
        """The command for time ``now``; None until a joint state has arrived."""
        jump = self.clock.check(now)
        if jump:  # plans and input times from before it mean nothing now: brake and wait for fresh ones
            self._drop_plan()
            self._pending_stamp = None
            self.last_state_time = self.last_chunk_time = -np.inf
        if self.command is None:
            return None
        if jump:
            return self._hold(f"clock jumped {jump:+.3f} s: plan dropped, waiting for fresh joint states and "
                              "chunks")
        if self.halted:
            return self._hold(self.halted)
        if now - self.last_state_time > self.config.state_timeout:
            return self._hold(f"joint states stale ({now - self.last_state_time:.3f} s)" if np.isfinite(
                self.last_state_time) else "joint states stale (none since the clock jumped)")
        if not self.deviation and self.config.max_deviation > 0:
            self.deviation = self._deviation()
        if self.deviation:
            return self._hold(self.deviation)
        if self.takeover:
            return self._follow_teleop(now)
        if self.plan is None:
            return self._hold(self.plan_dropped or "no chunk")
        if now - self.last_chunk_time > self.config.chunk_timeout and now < self.plan.end_time:
            self.plan = None
            return self._hold(f"chunks stale ({now - self.last_chunk_time:.3f} s since the last one)")
        self._ticks += 1
        if self.workspace is not None and self._ticks % self.config.workspace_every == 0:
            ahead = self.plan.sample(min(now + self.config.workspace_lookahead, self.plan.end_time))[0]
            reason = self.workspace.leaving(ahead, self.command)
            if reason:  # brake now: the plan would take the tool out of its box within the look-ahead
                self._drop_plan()
                self.plan_dropped = reason  # (the reason held until a chunk is accepted)
                return self._hold(reason)
        desired, desired_velocity = self.plan.sample(now)
        result = self._advance(desired, desired_velocity)
        fresh = now <= self.plan.end_time
        tick = TickResult(self.command.copy(), self.velocity.copy(), False,
                          "" if fresh else "plan finished, holding last target", fresh, self._pending_stamp,
                          result.clipped_position, result.clipped_velocity)
        self._pending_stamp = None
        return tick

    def _follow_teleop(self, now: float) -> TickResult:
        """Track the teleop target within the limits; hold when it is missing or older than teleop_timeout."""
        if self.teleop_target is None or now - self.teleop_time > self.teleop_timeout:
            return self._hold("teleop: no fresh target" if self.teleop_target is None else
                              f"teleop: target stale ({now - self.teleop_time:.3f} s)")
        self._hold_target = None  # (a hold after this brakes from the current motion)
        result = self._advance(self.teleop_target, self.teleop_velocity)
        return TickResult(self.command.copy(), self.velocity.copy(), False, "teleop", True, None,
                          result.clipped_position, result.clipped_velocity)

    def _deviation(self) -> str:
        """A reason when a checked joint's command is further than ``max_deviation`` from its measured
        position (a collision, a blocked or unpowered arm, a controller not following); else ''."""
        gap = np.abs(self.command - self.measured)
        over = [(n, g) for n, g in zip(self.names, gap)
                if g > self.config.max_deviation and n not in self.config.deviation_exempt]
        if not over:
            return ""
        self._drop_plan()
        name, worst = max(over, key=lambda item: item[1])
        return (f"deviation: {name} commanded {worst:.3f} rad from its measured position (max "
                f"{self.config.max_deviation:.3f}); held until reset")

    def lookahead(self, now: float, count: int, spacing: float) -> tuple[np.ndarray, np.ndarray]:
        """``count`` future (positions, velocities) every ``spacing`` s after ``now``, limit-filtered."""
        positions = np.zeros((count, len(self.names)))
        velocities = np.zeros_like(positions)
        previous = self.command.copy()
        for k in range(count):
            if self.plan is None:
                positions[k] = previous
                continue
            desired, _ = self.plan.sample(now + (k + 1) * spacing)
            positions[k] = self.filter.apply(desired, previous, spacing).command
            velocities[k] = (positions[k] - previous) / spacing
            previous = positions[k]
        if count:
            velocities[-1] = 0.0
        return positions, velocities
