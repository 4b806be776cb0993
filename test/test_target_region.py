"""`vla-ros record --target-region`: the seeds kept are those whose reset places the named object in the box."""

import pytest

from vla_ros.core.instructions import instruction_colours, target_object
from vla_ros.recording.collect import COLOURS, episode_indices, instruction_for, parse_region
from vla_ros.robots import load_robot


def test_parse_region_reads_the_box_and_refuses_other_forms():
    assert parse_region("0.22,0.28,0.06,0.14") == (0.22, 0.28, 0.06, 0.14)
    assert parse_region(" ") is None
    for bad in ("0.2,0.3,0.1", "a,b,c,d", "0.3,0.2,0.0,0.1"):
        with pytest.raises(ValueError, match="X0"):
            parse_region(bad)


def test_the_kept_seeds_place_the_named_cube_in_the_region_as_the_simulator_does():
    from vla_ros.sim.physics import ArmSim

    robot = load_robot("widowx")
    colours = instruction_colours(robot.task, COLOURS)
    region = (0.22, 0.28, 0.06, 0.14)
    kept = episode_indices(robot.task, 30000, 6, colours, region)
    assert len(kept) == 6 and kept != list(range(6)) and kept == sorted(set(kept))
    sim = ArmSim(robot)
    try:
        for k in range(max(kept) + 1):
            target = target_object(instruction_for(k, 30000, colours), robot.task.objects)
            x, y, _ = sim.reset(30000 + k)[target]
            inside = region[0] <= x <= region[1] and region[2] <= y <= region[3]
            assert inside == (k in kept), (k, target, x, y)
    finally:
        sim.close()


def test_without_a_region_every_index_is_kept_and_an_unreachable_region_is_refused():
    robot = load_robot("widowx")
    assert episode_indices(robot.task, 0, 4, COLOURS) == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="place the target there"):
        episode_indices(robot.task, 0, 2, COLOURS, (0.5, 0.6, 0.0, 0.1))  # beyond the task's region
