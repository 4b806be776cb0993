"""The ROS-free inference loop that the policy node, the closed-loop rollout and the benchmarks share."""

import numpy as np
import pytest

from vla_ros.core.chunk import ActionChunk
from vla_ros.core.inference import InferenceLoop
from vla_ros.core.observation import Observation
from vla_ros.core.scheduling import InferenceScheduler

JOINTS = ["a", "b"]


class Recorder:
    """A backend that returns a ramp chunk from the observation and remembers what it was given."""

    supports_prefix = True

    def __init__(self):
        self.seen: list[Observation] = []
        self.fail: Exception | None = None
        self.names = JOINTS
        self.stamp_offset = 0.0
        self.resets = 0

    def infer(self, obs: Observation) -> ActionChunk:
        self.seen.append(obs)
        if self.fail is not None:
            raise self.fail
        values = obs.state[None, :] + 0.01 * np.arange(1, 5)[:, None]
        return ActionChunk.uniform(obs.stamp + self.stamp_offset, self.names, values, 0.1)

    def reset(self) -> None:
        self.resets += 1


def make(backend=None, mode="latency_aware", **kw) -> tuple[InferenceLoop, Recorder]:
    backend = backend or Recorder()
    scheduler = InferenceScheduler(mode, 0.25, 0.1, 4, 2, initial_latency=0.05)
    return InferenceLoop(backend, scheduler, JOINTS, 0.1, 4, **kw), backend


def obs(stamp: float, state=(0.0, 1.0)) -> Observation:
    return Observation(stamp, np.array(state, float))


def test_each_observation_is_inferred_from_once():
    loop, _ = make()
    first = loop.begin(obs(1.0), 1.0)
    assert first is not None and loop.begin(obs(1.0), 1.01) is None  # same inputs: nothing new to infer from
    assert loop.begin(obs(0.9), 1.02) is None  # older inputs neither
    assert loop.counts["waited_for_new_input"] == 2
    assert loop.begin(obs(1.1), 1.1) is not None


def test_latency_aware_start_and_published_chunk():
    loop, _ = make()
    assert loop.delay(0.0) == -np.inf  # nothing ran yet: start now
    request = loop.begin(obs(1.0), 1.0)
    outcome = loop.finish(request, *loop.call(request)[:1], 0.05)
    assert outcome.chunk is not None and loop.counts["published"] == 1
    # the next chunk should take over after execution_horizon (2) steps of this one: start at
    # stamp + 2 * 0.1 - latency estimate (0.05) - margin (0.01)
    assert loop.delay(1.0) == pytest.approx(1.0 + 0.2 - 0.05 - 0.01 - 1.0)


def test_the_previous_chunk_is_the_rtc_prefix_of_the_next():
    loop, backend = make()
    request = loop.begin(obs(1.0), 1.0)
    loop.finish(request, *loop.call(request)[:1], 0.05)
    assert "prefix" not in backend.seen[0].extras  # no previous chunk yet
    request = loop.begin(obs(1.15, (0.5, 0.5)), 1.15)
    prefix = request.observation.extras["prefix"]
    # the previous chunk's targets (due at 1.1, 1.2, 1.3, 1.4) where the new chunk's are (1.25 ... 1.55)
    np.testing.assert_allclose(prefix["values"][:, 0], [0.025, 0.035, 0.04, 0.04], atol=1e-9)
    np.testing.assert_array_equal(prefix["valid"], [True, True, False, False])
    assert prefix["delay"] == 1 and prefix["execution_horizon"] == 2  # ceil(0.05 / 0.1), s


def test_backends_without_prefix_support_get_none():
    backend = Recorder()
    backend.supports_prefix = False
    loop, _ = make(backend)
    for stamp in (1.0, 1.2):
        request = loop.begin(obs(stamp), stamp)
        loop.finish(request, *loop.call(request)[:1], 0.05)
    assert all("prefix" not in o.extras for o in backend.seen)


def test_results_of_a_paused_or_reset_episode_are_discarded():
    loop, backend = make()
    request = loop.begin(obs(1.0), 1.0)
    chunk, _ = loop.call(request)
    loop.reset()  # the reset service ran while the backend was busy
    outcome = loop.finish(request, chunk, 0.05)
    assert outcome.chunk is None and outcome.discarded and loop.counts["discarded"] == 1
    assert backend.resets == 1 and loop.last_chunk is None
    request = loop.begin(obs(0.5), 2.0)  # after a reset, older stamps are new inputs again (a new episode)
    assert request is not None
    loop.pause()
    assert loop.delay(2.0) == np.inf
    assert loop.finish(request, loop.call(request)[0], 0.05).discarded
    loop.resume()
    assert loop.delay(2.0) == -np.inf


@pytest.mark.parametrize("fault, message", [
    ("raise", "model exploded"), ("stamp", "instead of the observation's"), ("names", "!= action_joints"),
    ("nan", "NaN or infinite"), ("bug", "backend raised KeyError"),
])
def test_bad_backend_results_are_errors_not_chunks(fault, message):
    loop, backend = make()
    if fault == "raise":
        backend.fail = RuntimeError("model exploded")
    elif fault == "stamp":
        backend.stamp_offset = 0.5
    elif fault == "names":
        backend.names = ["b", "a"]
    elif fault == "bug":
        backend.fail = KeyError("x")
    state = (np.nan, 1.0) if fault == "nan" else (0.0, 1.0)
    outcome = loop.run(loop.begin(obs(1.0, state), 1.0))
    assert outcome.chunk is None and message in outcome.error
    assert loop.counts["backend_errors"] == 1 and loop.counts["published"] == 0
    assert loop.last_chunk is None  # nothing bad becomes the next prefix


def test_fixed_trigger_counts_periods_missed_while_busy():
    loop, _ = make(mode="fixed")
    request = loop.begin(obs(1.0), 1.0)
    loop.finish(request, loop.call(request)[0], 0.8)  # the backend took 0.8 s: three 0.25 s periods passed
    assert loop.begin(obs(1.8), 1.8) is not None
    assert loop.counts["skipped_busy"] == 2  # due at 1.25; 1.8 is two whole periods later
