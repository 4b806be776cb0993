"""A short live fuzz (``vla-ros fuzz``): malformed messages on every input while the arm runs."""

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration


def test_a_short_fuzz_leaves_every_node_up_and_every_command_within_the_limits(tmp_path):
    out = tmp_path / "fuzz"
    proc = subprocess.run([sys.executable, "-m", "vla_ros", "fuzz", "--messages", "2000", "--warmup", "1000", "--seed",
                           "3", "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert (out / "fuzz.json").exists(), proc.stdout + proc.stderr
    s = json.loads((out / "fuzz.json").read_text())
    assert s["messages"] == 2000 and s["warmup_messages"] == 1000
    assert set(s["per_topic"]) == {"/camera/image_raw", "/wx250s/joint_states", "/vla/action_chunk",
                                   "/vla/instruction"}
    assert not s["crashed"] and s["responsive"] == ["controller_node", "policy_node", "sim_node"], proc.stdout
    assert s["graph_exit_code"] == 0
    # (the emulated xs_sdk takes the arm's JointGroupCommand at 100 Hz)
    assert s["commands"]["wx250s/arm"] > 200 and sum(s["violations"].values()) == 0, s["violation_examples"]
    # the nodes saw the flood: rejections counted per kind, and logged a bounded number of lines
    counts = s["problem_counts"]

    def rejected(prefix: str) -> int:
        return sum(v for k, v in counts.items() if k.startswith(prefix))

    # (each reader keeps a bounded queue, so a node under a 2000 msg/s flood reads only part of it)
    assert rejected("controller_node.chunk") > 20 and rejected("controller_node.joint_states") > 20, counts
    assert rejected("policy_node.image") > 20 and rejected("sim_node.instruction") > 5, counts
    assert all(n < 150 for n in s["log_lines_flood"].values()), s["log_lines_flood"]
    # the command stream kept going (the >= 95% goal is measured by `make fuzz` at 100,000 messages)
    # (a rate seen over 1 s of flood is too noisy to test; the longest gap between publications was 152 ms once
    # on an idle 2-core machine and 335 ms in a clean-clone CI run, where the flood, its publisher, the monitor
    # and three nodes share two cores: this bounds a stall, not the rate; issue 11 tracks the stalls)
    assert s["max_publish_gap_ms_flood"] < 500, proc.stdout
    assert (out / "fuzz.png").stat().st_size > 10_000
    assert "fuzz: " in proc.stdout
