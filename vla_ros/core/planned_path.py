"""Where a chunk takes the tool: each arm's tool poses along the chunk's joint targets (forward kinematics)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .chunk import ActionChunk
from .kinematics import Chain
from .transforms import matrix_to_quat_wxyz


@dataclass
class ToolPath:
    frame: str  # the chain's base link
    times: np.ndarray  # (N,) absolute times (s)
    positions: np.ndarray  # (N, 3) m
    quats_wxyz: np.ndarray  # (N, 4)


def tool_paths(chains: dict[str, Chain], chunk: ActionChunk, state_names: list[str],
               state: np.ndarray | None) -> dict[str, ToolPath]:
    """Per arm: the tool pose at the chunk's start (the measured state, where known) and at each target; a chain
    joint the chunk does not set keeps its measured value (an arm whose joints are all unknown is left out)."""
    measured = dict(zip(state_names, state)) if state is not None else {}
    index = {n: i for i, n in enumerate(chunk.names)}
    out = {}
    for arm, chain in chains.items():
        if not all(j in index or j in measured for j in chain.joint_names):
            continue
        rows = [[measured[j] for j in chain.joint_names]] if all(j in measured for j in chain.joint_names) else []
        times = [chunk.stamp] if rows else []
        for k in range(chunk.horizon):
            rows.append([chunk.values[k, index[j]] if j in index else measured[j] for j in chain.joint_names])
            times.append(chunk.stamp + float(chunk.times[k]))
        poses = [chain.fk(np.array(q, float)) for q in rows]
        out[arm] = ToolPath(chain.base, np.array(times), np.array([p[:3, 3] for p in poses]),
                            np.array([matrix_to_quat_wxyz(p[:3, :3]) for p in poses]))
    return out
