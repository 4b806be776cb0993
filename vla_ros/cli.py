"""``vla-ros``: start the graph without launch_ros, run the demo, print the reference tables."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .graph import LAUNCH_ARGUMENTS, GraphArgs


def _launch_args(items: list[str]) -> GraphArgs:
    values = {}
    for item in items:
        if ":=" not in item:
            raise SystemExit(f"expected name:=value, got {item!r}")
        name, value = item.split(":=", 1)
        values[name] = value
    try:
        return GraphArgs.from_strings(values)
    except ValueError as exc:
        raise SystemExit(str(exc)) from exc


def parse_crops(items: list[str]) -> dict[str, list]:
    """``--crop KEY=CAMERA:X0,Y0,X1,Y1`` items -> {key: [camera, x0, y0, x1, y1]} (ValueError saying the form)."""
    crops: dict[str, list] = {}
    for item in items:
        key, _, rest = item.partition("=")
        camera, _, box = rest.partition(":")
        try:
            values = [float(v) for v in box.split(",")]
        except ValueError:
            values = []
        if not key or not camera or len(values) != 4 or key in crops:
            raise ValueError(f"--crop {item!r}: expected KEY=CAMERA:X0,Y0,X1,Y1 (fractions), each key once")
        crops[key] = [camera, *values]
    return crops


def parse_turn(items: list[str]) -> dict[str, float]:
    """``--turn JOINT=COEFFICIENT ...`` -> {joint: coefficient} (ValueError saying the form)."""
    turn: dict[str, float] = {}
    for item in items:
        joint, _, value = item.partition("=")
        try:
            coefficient = float(value)
        except ValueError:
            coefficient = float("nan")
        if not joint or joint in turn or coefficient != coefficient:
            raise ValueError(f"--turn {item!r}: expected JOINT=COEFFICIENT, each joint once")
        turn[joint] = coefficient
    return turn


def demo_args(items: list[str]) -> GraphArgs:
    """The demo's launch arguments: without a policy, the model shipped for the robot, else its scripted expert."""
    args = _launch_args(items)
    if not any(a.startswith("policy:=") for a in items):
        from .policies.builtin import SHIPPED
        from .robots import load_robot

        name = load_robot(args.robot).name  # (robot:= may be a preset file)
        if not (SHIPPED / f"builtin_{name}" / "config.json").exists():
            print(f"no built-in model is shipped for robot {name!r}: the demo runs its scripted expert "
                  "(policy:=scripted)")
            args = _launch_args([*items, "policy:=scripted"])
    return args


def main(argv: list[str] | None = None) -> int:
    arg_help = "\n".join(f"  {a.name}:={a.default!r}  {a.description}" for a in LAUNCH_ARGUMENTS)
    parser = argparse.ArgumentParser(prog="vla-ros", formatter_class=argparse.RawDescriptionHelpFormatter,
                                     description="vla_ros without launch_ros", epilog="launch arguments:\n" + arg_help)
    sub = parser.add_subparsers(dest="command", required=True)
    p_launch = sub.add_parser("launch", help="start the graph (same nodes and config as policy.launch.py)")
    p_launch.add_argument("args", nargs="*", help="name:=value launch arguments")
    p_demo = sub.add_parser("demo", help="run seeded episodes and report success, latency and timing")
    p_demo.add_argument("args", nargs="*", help="name:=value launch arguments")
    p_demo.add_argument("--episodes", type=int, default=5)
    p_demo.add_argument("--seed", type=int, default=0)
    p_demo.add_argument("--timeout", type=float, default=20.0, help="seconds per episode")
    p_demo.add_argument("--out", type=Path, default=Path("output/demo"))
    p_demo.add_argument("--verbose", action="store_true", help="print node logs instead of writing nodes.log")
    p_serve = sub.add_parser("serve", help="serve a local backend over the openpi WebSocket protocol")
    p_serve.add_argument("args", nargs="*", help="robot:=<preset> policy:=<config> (as for launch)")
    p_serve.add_argument("--layout", default="", help="observation layout (default: the preset's openpi.layout, "
                         "else vla_ros)")
    p_serve.add_argument("--host", default="127.0.0.1", help="bind address (default loopback only)")
    p_serve.add_argument("--port", type=int, default=8000)
    p_serve.add_argument("--api-key", default="", help="require 'Authorization: Api-Key <key>'")
    p_serve.add_argument("--max-message-mb", type=float, default=64.0)
    p_serve.add_argument("--default-prompt", default="", help="instruction for requests that carry no 'prompt' "
                         "(as openpi's serve_policy --default_prompt)")
    p_serve.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                         help="override a policy parameter, e.g. --set pi0.model_path=/models/pi0")
    p_status = sub.add_parser("status", help="print the running graph's state from /diagnostics")
    p_status.add_argument("--wait", type=float, default=3.0, help="seconds to listen")
    p_record = sub.add_parser("record", help="record seeded demonstrations through the graph (one MCAP bag per "
                              "episode; resumable)")
    p_record.add_argument("args", nargs="*", help="name:=value launch arguments (default policy: scripted)")
    p_record.add_argument("--episodes", type=int, default=300)
    p_record.add_argument("--seed", type=int, default=1000)
    p_record.add_argument("--timeout", type=float, default=15.0, help="seconds per episode")
    p_record.add_argument("--out", type=Path, default=Path("data/demos"))
    p_record.add_argument("--start-spread", type=float, default=0.0, help="move each arm joint's start pose from "
                          "home by up to this much (rad, uniform, from the episode's seed)")
    p_record.add_argument("--start-spread-joint", action="append", default=[], metavar="JOINT=RAD",
                          help="one joint's own start spread (repeatable), e.g. wrist_rotate=0.6")
    p_record.add_argument("--target-region", default="", metavar="X0,X1,Y0,Y1",
                          help="record only the seeds that place the named object in this box (m, base frame): "
                          "more demonstrations where a model is weak")
    p_record.add_argument("--command-noise", type=float, default=0.0, help="std (rad) of a slowly varying offset "
                          "on the arm's servo targets: the expert corrects the strays it causes")
    p_record.add_argument("--perturb", default="nominal", help="record under an evaluation condition (camera_pose, "
                          "lighting, table, distractors, latency) or randomized (camera pose, lighting and table at "
                          "once, distractors in half the episodes), drawn per episode from its seed: randomised "
                          "training data")
    p_train = sub.add_parser("train", help="train the built-in VLA on recorded episodes")
    p_train.add_argument("--data", type=Path, nargs="+", default=[Path("data/demos")],
                         help="folder(s) of recorded episode bags, or LeRobotDataset v3.0 folders")
    p_train.add_argument("--out", type=Path, default=Path("output/builtin"))
    p_train.add_argument("--robot", default="widowx")
    p_train.add_argument("--head", default="regression", choices=("regression", "flow"))
    p_train.add_argument("--minutes", type=float, default=25.0, help="time budget, data loading included")
    p_train.add_argument("--seed", type=int, default=0)
    p_train.add_argument("--image-size", type=int, default=96)
    p_train.add_argument("--epochs", type=int, default=0, help="exactly this many epochs (default: as many as fit "
                         "--minutes)")
    p_train.add_argument("--word-dropout", type=float, default=0.0, help="chance that a word of the instruction "
                         "is hidden from a training sample (0.15 on 800 demos, the colour hidden too: the grasp head "
                         "ignored the colour)")
    p_train.add_argument("--keep-words", nargs="+", default=[], metavar="WORD",
                         help="words --word-dropout never hides (the ones naming the target, e.g. red green blue)")
    p_train.add_argument("--no-gripper-state", dest="gripper_state", action="store_false",
                         help="leave the gripper's position out of the model's inputs (it must read the gripper from "
                         "the image)")
    p_train.add_argument("--attention-heads", type=int, default=4, help="instruction-queried colour attention "
                         "heads (0: without, as the model shipped before)")
    p_train.add_argument("--still-weight", type=float, default=10.0, help="weight of the grasp-pose loss on frames "
                         "before the arm moves (only the instruction tells the cube there; other frames weigh 1)")
    p_train.add_argument("--grasp-start-tolerance", type=float, default=0.0, help="the grasp-pose head learns only "
                         "from episodes starting within this (rad) of the usual start (0: from all): demonstrations "
                         "recorded with --start-spread-joint turn the wrist by where it started")
    p_train.add_argument("--grip-jitter", type=float, default=0.0065, help="up to this much (m) added to the "
                         "finger's reading on frames that close or hold: the width a held cube reads at depends on "
                         "the grasp's angle to it (0: off)")
    p_train.add_argument("--intervention-weight", type=float, default=1.0, help="frames a teleoperator drove "
                         "(recorded takeovers) count this many times (0: left out)")
    p_train.add_argument("--init", type=Path, default=None, help="start from this checkpoint's weights (same "
                         "robot and architecture), keeping its normalisation and vocabulary: more epochs on the "
                         "same or new data")
    p_train.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (cosine decay)")
    p_train.add_argument("--precision", default="fp32", choices=("fp32", "bf16"), help="bf16: the training steps "
                         "under bfloat16 autocast (weights and validation in float32)")
    p_train.add_argument("--brightness", type=float, default=0.0, help="scale each training sample's pixels by "
                         "one factor within +-this (0.3: the lighting condition's intensity range; 0: off)")
    p_train.add_argument("--cameras", nargs="+", default=None, help="the preset's camera keys the model sees, the "
                         "first one timing the samples (default: all; ALOHA: cam_high cam_left_wrist "
                         "cam_right_wrist, as openpi feeds it)")
    p_train.add_argument("--glimpse", type=int, default=0, metavar="PIXELS", help="a crop this many pixels wide "
                         "of each frame at --glimpse-source, centred where attention head --glimpse-head looks (the "
                         "named object), read by its own CNN: the object's yaw (0: none; WidowX model: 32)")
    p_train.add_argument("--glimpse-head", type=int, default=0, help="the attention head centring the glimpse")
    p_train.add_argument("--glimpse-source", type=int, default=224, help="the frames' size the glimpse is cut from")
    p_train.add_argument("--crop", action="append", default=[], metavar="KEY=CAMERA:X0,Y0,X1,Y1",
                         help="a view cut from a camera's full-resolution frame, read as one more camera (box in "
                         "fractions of the frame's width and height), e.g. cam_high_table=cam_high:0.5,0.3,0.75,0.63")
    p_train.add_argument("--glimpse-cameras", nargs="+", default=None, metavar="KEY",
                         help="the cameras that get a glimpse (default: every camera the model sees)")
    p_train.add_argument("--turn", nargs="+", default=[], metavar="JOINT=COEFFICIENT", help="the jaws' angle about "
                         "the vertical as a sum of joints (WidowX: waist=1 wrist_rotate=-1): the grasp head reads the "
                         "grasp's angle modulo a quarter turn and --turn-joint's chunk turns the jaws to the cube's "
                         "face nearest them (a regression head cannot choose between two faces; empty: off)")
    p_train.add_argument("--read-workers", type=int, default=0, metavar="N", help="threads reading the episode "
                         "bags at once (default 0: one per core, at most 4)")
    p_train.add_argument("--turn-joint", default="", help="the joint the turn to the nearest face moves (WidowX: "
                         "wrist_rotate)")
    p_eval = sub.add_parser("eval", help="closed-loop success per instruction through the graph")
    p_eval.add_argument("args", nargs="*", help="name:=value launch arguments (default policy: builtin)")
    p_eval.add_argument("--episodes", type=int, default=50, help="episodes per instruction")
    p_eval.add_argument("--seed", type=int, default=0)
    p_eval.add_argument("--timeout", type=float, default=15.0, help="seconds per episode")
    p_eval.add_argument("--instruction", action="append", default=[], help="an instruction (repeatable); default: "
                        "one phrasing per colour")
    p_eval.add_argument("--held-out", action="store_true", help="also the phrasings never demonstrated")
    p_eval.add_argument("--perturb", default="", help="evaluation conditions, comma-separated (nominal, camera_pose, "
                        "lighting, table, distractors, latency; all: every one): one graph each, the same scenes")
    p_eval.add_argument("--out", type=Path, default=Path("output/eval"))
    p_eval.add_argument("--verbose", action="store_true", help="print node logs instead of writing nodes.log")
    p_fuzz = sub.add_parser("fuzz", help="flood every input topic with malformed messages while the arm runs; "
                            "check commands, rate and memory")
    p_fuzz.add_argument("args", nargs="*", help="name:=value launch arguments")
    p_fuzz.add_argument("--messages", type=int, default=100_000, help="messages of the main flood")
    p_fuzz.add_argument("--warmup", type=int, default=None, help="messages before the RSS baseline (default: a "
                        "fifth of --messages)")
    p_fuzz.add_argument("--seed", type=int, default=0)
    p_fuzz.add_argument("--rate", type=float, default=2000.0, help="messages per second (0: as fast as possible)")
    p_fuzz.add_argument("--out", type=Path, default=Path("output/fuzz"))
    p_fuzz.add_argument("--verbose", action="store_true", help="print node logs instead of writing nodes.log")
    p_run = sub.add_parser("run", help="run an instruction on the running graph (RunTask action) until it succeeds, "
                           "times out or Ctrl-C cancels it")
    p_run.add_argument("instruction")
    p_run.add_argument("--time-limit", type=float, default=0.0, help="seconds (0: until success or Ctrl-C)")
    p_run.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                       help="a policy_node parameter for this run (YAML value), e.g. --set builtin.seed=3")
    p_run.add_argument("--wait", type=float, default=10.0, help="seconds to wait for the action server")
    p_export = sub.add_parser("export", help="recorded episodes to a LeRobotDataset v3.0 (LeRobot / openpi train "
                              "from it)")
    p_export.add_argument("episodes", nargs="+", type=Path, help="episode bags, or folders of them")
    p_export.add_argument("--format", default="lerobot", choices=("lerobot",))
    p_export.add_argument("--out", type=Path, required=True, help="dataset folder (replaced if it exists)")
    p_export.add_argument("--robot", default=None, help="preset (default: the one the episodes were recorded with)")
    p_export.add_argument("--fps", type=int, default=None, help="frame rate (default: the preset's dataset.fps)")
    p_export.add_argument("--image-size", default=None, metavar="WxH", help="resize the camera images")
    p_export.add_argument("--successful-only", action="store_true", help="leave out failed episodes")
    p_export.add_argument("--crf", type=int, default=None, help="AV1 quality: lower is better and bigger (default 20; "
                          "LeRobot records at 30)")
    sub.add_parser("docs", help="print the node/parameter/topic tables (README format)")
    sub.add_parser("list", help="list robot presets, policy configs and backends")
    ns = parser.parse_args(argv)

    os.environ.setdefault("MUJOCO_GL", "egl")
    try:
        return _run(ns)
    except KeyboardInterrupt:  # (episodes.Interrupted: a signal stopped an episode runner, graph stopped)
        graph = "; the graph was stopped" if ns.command in ("demo", "record", "eval", "fuzz") else ""
        hint = " (finished episodes are kept; the same command resumes)" if ns.command == "record" else ""
        print(f"vla-ros {ns.command}: interrupted{graph}{hint}", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError) as exc:  # a graph that cannot work: one line saying what to set
        print(f"vla-ros {ns.command}: {exc}", file=sys.stderr)
        return 2


def _run(ns: argparse.Namespace) -> int:
    if ns.command == "launch":
        from .launcher import Graph

        return Graph(_launch_args(ns.args)).start().wait()
    if ns.command == "demo":
        from .demo import run_demo

        summary = run_demo(demo_args(ns.args), ns.episodes, ns.seed, ns.out, ns.timeout, quiet=not ns.verbose)
        return 0 if summary["graph_exit_code"] == 0 else 1
    if ns.command == "record":
        from .recording.collect import collect

        args = _launch_args(["policy:=scripted", *ns.args])
        try:
            summary = collect(args, ns.episodes, ns.seed, ns.out, ns.timeout, start_spread=ns.start_spread,
                              command_noise=ns.command_noise, perturb=ns.perturb,
                              start_spread_joints=",".join(ns.start_spread_joint), target_region=ns.target_region)
        except ValueError as exc:
            raise SystemExit(f"vla-ros record: {exc}") from exc
        return 0 if summary["episodes"] >= ns.episodes else 1
    if ns.command == "run":
        from .ros.run_task import run_task

        return run_task(ns.instruction, ns.time_limit, ns.set, ns.wait)
    if ns.command == "status":
        from .ros.status import collect, render

        statuses = collect(ns.wait)
        if not statuses:
            print(f"nothing on /diagnostics within {ns.wait:.0f} s: is the graph running (ROS_DOMAIN_ID="
                  f"{os.environ.get('ROS_DOMAIN_ID', '0')})?", file=sys.stderr)
            return 1
        print(render(statuses))
        return 0
    if ns.command == "train":
        from .learning.train import train

        report = train(ns.data, ns.out, ns.robot, ns.head, ns.image_size, minutes=ns.minutes, seed=ns.seed,
                       word_dropout=ns.word_dropout, keep_words=ns.keep_words, epochs=ns.epochs,
                       gripper_state=ns.gripper_state,
                       attention_heads=ns.attention_heads, still_weight=ns.still_weight,
                       grip_jitter=ns.grip_jitter, intervention_weight=ns.intervention_weight, init=ns.init,
                       lr=ns.lr, cameras=ns.cameras, brightness=ns.brightness, glimpse=ns.glimpse,
                       glimpse_head=ns.glimpse_head, glimpse_source=ns.glimpse_source,
                       glimpse_cameras=ns.glimpse_cameras, crops=parse_crops(ns.crop),
                       grasp_start_tolerance=ns.grasp_start_tolerance, turn=parse_turn(ns.turn),
                       turn_joint=ns.turn_joint, precision=ns.precision, read_workers=ns.read_workers)
        print(f"trained {report['epochs']} epochs in {report['minutes']:.1f} min: validation loss "
              f"{report['history']['val_loss'][-1]:.4f}; wrote {ns.out}")
        return 0
    if ns.command == "export":
        from .datasets.export import export_lerobot

        size = None
        if ns.image_size:
            try:
                size = tuple(int(v) for v in ns.image_size.lower().split("x"))
                assert len(size) == 2 and min(size) > 0
            except (ValueError, AssertionError):
                raise ValueError(f"--image-size {ns.image_size!r}: expected WIDTHxHEIGHT, e.g. 224x224") from None
        report = export_lerobot(ns.episodes, ns.out, ns.robot, ns.fps, size, ns.successful_only, crf=ns.crf)
        print(f"exported {report.episodes} episodes ({report.frames} frames, {report.recorded_seconds:.1f} s) to "
              f"{report.out} in {report.seconds:.1f} s ({report.speed:.1f}x real time); skipped {len(report.skipped)}")
        return 0 if not report.skipped else 1
    if ns.command == "eval":
        from .evaluate import default_instructions, evaluate

        args = _launch_args(["policy:=builtin", *ns.args])
        instructions = ns.instruction or default_instructions(ns.held_out, args.robot)
        from .sim.perturb import CONDITIONS

        conditions = list(CONDITIONS) if ns.perturb == "all" else [c for c in ns.perturb.split(",") if c]
        unknown = [c for c in conditions if c not in CONDITIONS]
        if unknown:
            raise ValueError(f"--perturb {unknown}: known conditions are {', '.join(CONDITIONS)}")
        summary = evaluate(args, ns.episodes, ns.seed, ns.out, ns.timeout, instructions, quiet=not ns.verbose,
                           conditions=conditions or None)
        return 0 if summary["graph_exit_code"] == 0 else 1
    if ns.command == "fuzz":
        from .fuzzing.report import render
        from .fuzzing.run import run_fuzz

        summary = run_fuzz(_launch_args(ns.args), ns.messages, ns.seed, ns.rate, ns.out, quiet_nodes=not ns.verbose,
                           warmup=ns.warmup)
        print(render(summary))
        return 0 if all(summary["goals"].values()) and summary["graph_exit_code"] == 0 else 1
    if ns.command == "serve":
        return _serve(ns)
    if ns.command == "docs":
        from .docs import render_tables

        sys.stdout.write(render_tables())
        return 0
    if ns.command == "list":
        from .paths import share_dir
        from .policies import available_backends
        from .robots import available_robots

        print("robots:  ", ", ".join(available_robots()))
        print("policies:", ", ".join(sorted(p.stem for p in (share_dir() / "config" / "policies").glob("*.yaml"))))
        print("backends:", ", ".join(available_backends()))
        return 0
    return 2


def _serve(ns: argparse.Namespace) -> int:
    import logging

    import yaml

    from .graph import policy_config_path, policy_parameters
    from .remote.server import PolicyServer
    from .robots import load_robot
    from .serving import BackendService, build_policy

    logging.basicConfig(level=logging.INFO, format="[serve] %(message)s")
    args = _launch_args(ns.args)
    params = policy_parameters(policy_config_path(args.policy))
    for item in ns.set:
        name, _, value = item.partition("=")
        params[name] = yaml.safe_load(value)
    robot = load_robot(args.robot)
    from .policies import backend_class
    from .policies.base import PolicyError
    from .policies.context import DEFAULTS

    backend = params.get("backend", DEFAULTS["backend"])
    missing = backend_class(backend).preflight(
        {k[len(backend) + 1:]: v for k, v in params.items() if k.startswith(backend + ".")}, robot, params)
    if missing:  # (as the launch refuses it: before any model is loaded)
        raise ValueError(missing)
    try:
        policy = build_policy(robot, params)
    except PolicyError as exc:
        raise ValueError(f"{backend}: {exc}") from None
    try:
        service = BackendService(policy, ns.layout or robot.openpi.layout, robot.openpi.cameras, ns.default_prompt)
    except ValueError as exc:  # a layout that cannot serve this configuration: say so now, not per request
        raise ValueError(f"{ns.layout or robot.openpi.layout} layout: {exc}") from None
    server = PolicyServer(service, service.metadata(), ns.host, ns.port, ns.api_key or None,
                          int(ns.max_message_mb * 2**20))
    logging.info(f"serving {policy.name} for {robot.name} ({service.layout.name} layout) on ws://{ns.host}:{ns.port}"
                 + (" (API key required)" if ns.api_key else ""))
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
