"""The text summary of a fuzz run (``vla-ros fuzz`` prints it; fuzz.json holds the rest)."""

from __future__ import annotations


def render(s: dict) -> str:
    lines = [f"fuzzed {s['messages']} messages after {s['warmup_messages']} of warm-up (main flood "
             f"{s['flood_messages_per_s']:.0f} msg/s for {s['flood_seconds']:.1f} s): "
             + ", ".join(f"{t} {n}" for t, n in s["per_topic"].items())]
    lines.append(f"rejections the nodes counted: {sum(s['problem_counts'].values())} (each reader keeps a bounded "
                 "queue: under the flood a node reads only part of it; fuzz.json has them per node and kind)")
    crashed = s["crashed"] or "none"
    lines.append(f"nodes exited: {crashed}; answering after the flood: {', '.join(s['responsive'])}")
    v = s["violations"]
    lines.append(f"commands checked: {sum(s['commands'].values())}; outside the limits: {sum(v.values())} "
                 f"({', '.join(f'{k} {n}' for k, n in v.items())})")
    for example in s["violation_examples"][:5]:
        lines.append(f"  e.g. {example}")
    lines.append(f"command rate seen: {s['command_rate_flood']:.0f}/s during the flood "
                 f"({100 * s['command_rate_fraction']:.1f}% of {s['control_rate']:.0f} Hz; before it "
                 f"{s['command_rate_before']:.0f}/s); longest gap {s['max_gap_ms_flood']:.1f} ms between arrivals, "
                 f"{s['max_publish_gap_ms_flood']:.1f} ms between publications; "
                 f"{s['commands_lost_in_transport']} lost in transport")
    for name, growth in s["rss_growth"].items():
        r = s["rss_mb"]
        lines.append(f"RSS {name}: {r['start'][name]:.0f} MB at start, {r['after_warmup'][name]:.0f} MB after the "
                     f"warm-up, {r['after'][name]:.0f} MB after ({100 * growth:+.1f}%)")
    if s["log_lines_flood"]:
        lines.append("log lines during the flood: " + ", ".join(f"{k} {n}" for k, n in s["log_lines_flood"].items()))
    lines.append("goals: " + ", ".join(f"{k} {'yes' if ok else 'NO'}" for k, ok in s["goals"].items()))
    lines.append(f"fuzz: {'PASS' if all(s['goals'].values()) else 'FAIL'}")
    return "\n".join(lines)
