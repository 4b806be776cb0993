"""Render the README's reference tables from the code (launch arguments, nodes, topics, parameters).

``python -m vla_ros.docs --write README.md`` rewrites the generated block; ``--check`` fails if stale.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .graph import LAUNCH_ARGUMENTS
from .interfaces import ENDPOINTS
from .params import NODE_PARAMS, ParamSpec
from .policies import available_backends, backend_class

BEGIN = "<!-- BEGIN GENERATED REFERENCE (python -m vla_ros.docs --write README.md) -->"
END = "<!-- END GENERATED REFERENCE -->"

NODE_ROLES = {
    "sim_node": "MuJoCo arm, table, cubes and cameras; ros2_control-style command topics; reset and task success",
    "policy_node": "Newest inputs -> backend on a worker thread -> `/vla/action_chunk`",
    "controller_node": "Fixed-rate loop: merge chunks, interpolate, limit, watchdog, stream commands",
    "recorder_node": "Episodes as rosbag2/MCAP folders (record:=true): cameras, joint states, chunks, commands",
    "joint_state_relay": "Per-arm driver joint states -> one prefixed joint_states topic (presets with "
                         "joint_state_sources)",
}


def _default(spec: ParamSpec) -> str:
    d = spec.default
    if isinstance(d, (list, tuple)):
        return "`[]`" if not d else f"`{list(d)}`"
    return f"`{d}`"


def _range(spec: ParamSpec) -> str:
    if spec.choices:
        return " \\| ".join(spec.choices)
    if spec.min is not None or spec.max is not None:
        return f"{spec.min} .. {spec.max}"
    return ""


def _param_table(specs: list[ParamSpec], prefix: str = "") -> list[str]:
    rows = ["| parameter | type | default | range | runtime | description |", "|---|---|---|---|---|---|"]
    for s in specs:
        rows.append(f"| `{prefix}{s.name}` | {s.kind} | {_default(s)} | {_range(s)} | "
                    f"{'yes' if s.dynamic else ''} | {s.description} |")
    return rows


def render_tables() -> str:
    out = ["### Launch arguments", "", "| argument | default | description |", "|---|---|---|"]
    for a in LAUNCH_ARGUMENTS:
        choices = " (" + " \\| ".join(a.choices) + ")" if a.choices else ""
        out.append(f"| `{a.name}` | `{a.default}` | {a.description}{choices} |")
    out += ["", "### Nodes", "", "| node | role |", "|---|---|"]
    out += [f"| `{n}` | {role} |" for n, role in NODE_ROLES.items()]
    out += ["", "### Topics", "", "| topic | type | publisher | subscribers | meaning |", "|---|---|---|---|---|"]
    out += [f"| `{e.name}` | `{e.type}` | {e.publisher} | {e.subscriber} | {e.description} |"
            for e in ENDPOINTS if e.kind == "topic"]
    out += ["", "### Services", "", "| service | type | server | meaning |", "|---|---|---|---|"]
    out += [f"| `{e.name}` | `{e.type}` | {e.publisher} | {e.description} |" for e in ENDPOINTS if e.kind == "service"]
    out += ["", "### Actions", "", "| action | type | server | client | meaning |", "|---|---|---|---|---|"]
    out += [f"| `{e.name}` | `{e.type}` | {e.publisher} | {e.subscriber} | {e.description} |"
            for e in ENDPOINTS if e.kind == "action"]
    for node, specs in NODE_PARAMS.items():
        out += ["", f"### `{node}` parameters", ""] + _param_table(specs)
    out += ["", "### Backends", ""]
    for name in available_backends():
        cls = backend_class(name)
        out += [f"**`{name}`**: {cls.description}. Parameters (on `policy_node`):", ""]
        out += _param_table(cls.PARAMS, prefix=f"{name}.") + [""]
    return "\n".join(out).rstrip() + "\n"


def update(text: str) -> str:
    if BEGIN not in text or END not in text:
        raise ValueError("README lacks the generated-reference markers")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{render_tables()}{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", type=Path, help="rewrite the generated block of this file")
    parser.add_argument("--check", type=Path, help="exit 1 if this file's generated block is stale")
    ns = parser.parse_args(argv)
    if ns.write:
        ns.write.write_text(update(ns.write.read_text()))
        return 0
    if ns.check:
        text = ns.check.read_text()
        if update(text) != text:
            print(f"{ns.check} reference tables are stale: run python -m vla_ros.docs --write {ns.check}")
            return 1
        return 0
    sys.stdout.write(render_tables())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
