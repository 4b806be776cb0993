"""``vla-ros fuzz``: the graph runs the arm while a separate process floods every input topic with
malformed messages; a monitor checks each command and the rate it sees, and each node's RSS is sampled.

Phases: the arm moving for 2 s; a warm-up flood (default a fifth of the main one: with 100,000, each of
the 5,000 distinct messages four times; 10,000 left the controller short of its plateau); 6 s to settle
(every node has run malloc_trim since); the RSS baseline; the main flood (the same messages in random
order, stamps renewed: memory that still grows then is a leak, not a first encounter); 6 s to settle;
the RSS after. Goals: no node exits, no command outside the limits, RSS growth under 10% per node after
the warm-up, commands at >= 95% of the control rate during the main flood.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

from rclpy.node import Node
from std_srvs.srv import SetBool, Trigger

from ..drivers.streams import command_streams
from ..episodes import session, spinning
from ..graph import GraphArgs
from ..params import CONTROLLER_PARAMS
from ..ros.node_main import TRIM_PERIOD
from .monitor import CommandMonitor

GOALS = {"rss_growth": 0.10, "command_rate": 0.95}
SETTLE = TRIM_PERIOD + 1.0  # s after a flood before RSS is read: every node has returned freed heap since


def rss_mb(pid: int) -> float:
    """Resident set size of a process (MB), 0 once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0.0


def memory_parts_mb(pid: int) -> dict[str, float]:
    """RSS split as the kernel counts it (MB): ``anon`` (the heap: what a leak grows), ``file`` (mapped
    libraries) and ``shmem`` (shared memory, e.g. DDS shared-memory transport segments of other processes)."""
    parts = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            for key in ("RssAnon", "RssFile", "RssShmem"):
                if line.startswith(key + ":"):
                    parts[key[3:].lower()] = int(line.split()[1]) / 1024.0
    except (FileNotFoundError, ProcessLookupError):
        pass
    return parts


class RssSampler:
    """Each node's RSS every ``period`` seconds, on a thread."""

    def __init__(self, pids: dict[str, int], clock, period: float = 0.5):
        self.pids, self.clock, self.period = pids, clock, period
        self.samples: list[tuple[float, dict[str, float]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def now(self) -> dict[str, float]:
        return {name: rss_mb(pid) for name, pid in self.pids.items()}

    def parts(self) -> dict[str, dict[str, float]]:
        return {name: memory_parts_mb(pid) for name, pid in self.pids.items()}

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            self.samples.append((self.clock(), self.now()))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def _control_rate(graph) -> float:
    default = next(s.default for s in CONTROLLER_PARAMS if s.name == "control_rate")
    spec = next((s for s in graph.specs if s.role == "controller"), None)
    return float(spec.parameters.get("control_rate", default)) if spec else default


def _log_lines(path: Path | None) -> dict[str, int]:
    counts: dict[str, int] = {}
    if path is None or not path.exists():
        return counts
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("[") and "]" in line:
            node = line[1:line.index("]")]
            counts[node] = counts.get(node, 0) + 1
    return counts


def _flood(env: dict, robot: str, messages: int, seed: int, rate: float, report: Path, quiet: bool,
           shuffle: bool = False) -> dict:
    cmd = [sys.executable, "-m", "vla_ros.fuzzing.publisher", "--robot", robot, "--messages", str(messages),
           "--seed", str(seed), "--rate", str(rate), "--report", str(report)] + (["--quiet"] if quiet else [])
    cmd += ["--shuffle"] if shuffle else []
    subprocess.run(cmd, env=env, check=True)
    return json.loads(report.read_text())


def run_fuzz(args: GraphArgs, messages: int, seed: int, rate: float, out: Path, quiet_nodes: bool = True,
             progress: bool = True, warmup: int | None = None) -> dict:
    """Fuzz the running graph with ``warmup`` (default a fifth of ``messages``) then ``messages`` messages;
    writes fuzz.json and fuzz.png to ``out`` and returns the summary."""
    out.mkdir(parents=True, exist_ok=True)
    log_path = out / "nodes.log" if quiet_nodes else None
    log = open(log_path, "w") if log_path else None  # noqa: SIM115 - closed below
    warmup = messages // 5 if warmup is None else warmup
    try:
        with session(args, out, log, listen=False) as s:  # (this process must not take the flood itself)
            graph, client = s.graph, s.client
            client.keep_frames = False
            control_rate = _control_rate(graph)
            streams = command_streams(s.robot, args.driver, args.output_interface, control_rate)
            limits = {st.name: s.robot.limits_for(st.joints, velocity_scale=1.0) for st in streams if st.joints}
            with spinning(Node("vla_fuzz_monitor")) as node:
                monitor = CommandMonitor(node, streams, limits)
                rss = RssSampler({name: p.pid for name, p in graph.procs.items()}, monitor.now)
                client.set_seed(seed)
                client.call("sim_reset", Trigger.Request())
                client.call("enable", SetBool.Request(data=True))
                client.call("reset", Trigger.Request())
                client.call("resume", Trigger.Request())
                time.sleep(2.0)
                before_rate = monitor.rate(monitor.now() - 1.5, monitor.now())
                rss_start = rss.now()
                parts = {"start": rss.parts()}
                warm = _flood(graph.env, args.robot, warmup, seed, rate, out / "warmup.json", not progress)
                time.sleep(SETTLE)
                rss_base = rss.now()
                parts["after_warmup"] = rss.parts()
                logs_before = _log_lines(log_path)
                monitor.reset_gap()  # (from here: the main publisher's start-up, then its flood)
                main = _flood(graph.env, args.robot, messages, seed, rate, out / "flood.json", not progress,
                              shuffle=True)
                max_gap, publish_gap, lost = monitor.max_gap, monitor.max_publish_gap, monitor.lost
                # the flood itself, on the monitor's clock (CLOCK_MONOTONIC is shared by the processes)
                flood_start = main["start_monotonic"] - monitor.t0
                flood_end = flood_start + main["seconds"]
                time.sleep(SETTLE)
                rss_after = rss.now()
                parts["after"] = rss.parts()
                logs_after = _log_lines(log_path)
                client.diagnostics.clear()
                deadline = time.monotonic() + 5.0
                nodes = set(graph.procs)
                while time.monotonic() < deadline and not nodes <= {k.split(":")[0] for k in client.diagnostics}:
                    time.sleep(0.1)
                responsive = sorted({k.split(":")[0] for k in client.diagnostics} & nodes)
                rss.stop()
                timeline = monitor.timeline()
                flood_rate = monitor.rate(flood_start, flood_end)
                summary = {
                    "messages": main["messages"], "warmup_messages": warm["messages"],
                    "flood_seconds": main["seconds"], "flood_messages_per_s": main["rate"],
                    "per_topic": _merge(warm["per_topic"], main["per_topic"]),
                    "kinds": _merge(warm["kinds"], main["kinds"]),
                    "crashed": graph.failed(), "responsive": responsive,
                    "commands": dict(monitor.counts), "violations": dict(monitor.violations),
                    "violation_examples": list(monitor.examples),
                    "control_rate": 1.0 / monitor.period, "command_rate_before": before_rate,
                    "command_rate_flood": flood_rate, "command_rate_fraction": flood_rate * monitor.period,
                    "max_gap_ms_flood": 1e3 * max_gap, "max_publish_gap_ms_flood": 1e3 * publish_gap,
                    "commands_lost_in_transport": lost,
                    "rss_mb": {"start": rss_start, "after_warmup": rss_base, "after": rss_after},
                    "rss_parts_mb": parts,
                    "rss_growth": {n: rss_after[n] / rss_base[n] - 1.0 for n in rss_base if rss_base[n] > 0},
                    "log_lines_flood": {n: logs_after.get(n, 0) - logs_before.get(n, 0) for n in logs_after},
                    "problem_counts": _problem_counts(client.diagnostics),
                }
                _plot(rss.samples, timeline, flood_start, flood_end, warm, 1.0 / monitor.period, out / "fuzz.png")
    finally:
        if log:
            log.close()
    summary["graph_exit_code"] = s.exit_code
    summary["goals"] = goals_met(summary)
    (out / "fuzz.json").write_text(json.dumps(summary, indent=1, default=float))
    return summary


def goals_met(summary: dict) -> dict[str, bool]:
    return {
        "no_crash": not summary["crashed"] and len(summary["responsive"]) == len(summary["rss_growth"]),
        "no_out_of_limit_command": sum(summary["violations"].values()) == 0,
        "rss_growth_under_10pct": all(g < GOALS["rss_growth"] for g in summary["rss_growth"].values()),
        "command_rate_95pct": summary["command_rate_fraction"] >= GOALS["command_rate"],
    }


def _merge(a: dict, b: dict) -> dict:
    return {k: a.get(k, 0) + b.get(k, 0) for k in sorted(set(a) | set(b))}


def _problem_counts(diagnostics: dict[str, dict[str, str]]) -> dict[str, int]:
    out = {}
    for name, values in diagnostics.items():
        for key, value in values.items():
            if key.startswith("problem_count.") and value.isdigit():
                out[f"{name.split(':')[0]}.{key[len('problem_count.'):]}"] = int(value)
    return out


def _plot(samples, timeline, flood_start: float, flood_end: float, warm: dict, control_rate: float,
          path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    if samples:
        t = [s[0] for s in samples]
        for name in samples[0][1]:
            ax1.plot(t, [s[1].get(name, 0.0) for s in samples], label=name)
    ax1.set_ylabel("RSS (MB)")
    ax1.legend(fontsize=8)
    t, r = timeline
    ax2.step(t, r, where="post", label="commands seen (per s)")
    ax2.axhline(control_rate, color="k", lw=0.8, ls="--", label="control rate")
    ax2.axhline(0.95 * control_rate, color="r", lw=0.8, ls=":", label="95%")
    ax2.set_ylabel("commands / s")
    ax2.set_xlabel("time (s)")
    ax2.legend(fontsize=8, loc="lower left")
    for ax in (ax1, ax2):
        ax.axvspan(flood_start, flood_end, color="tab:red", alpha=0.08)
        ax.grid(alpha=0.3)
    ax1.set_title(f"Fuzz: RSS per node and command rate (shaded: main flood; warm-up {warm['messages']} msgs before)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
