"""Train the built-in VLA on recorded episodes: ``vla-ros train --data DIR --out DIR``.

Fixed seed, a held-out validation split by episode, a time budget (the run stops early rather than
late), a progress bar, and everything a checkpoint needs in one folder: config.json,
model.safetensors, norm_stats.json, tokenizer.json, plus training.json (data, command, losses, time)
and loss_curve.png.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from ..core.image import check_crops, crop_camera
from ..core.normalize import NormStats, Stats
from ..robots import load_robot
from .dataset import Samples, load_folders
from .model import ModelConfig, TinyVLA
from .tokenizer import WordTokenizer

PRECISIONS = ("fp32", "bf16")


def action_space_arrays(samples: Samples, state_joints: list[str], action_joints: list[str],
                        delta_joints: list[str]) -> np.ndarray:
    """Model-space actions (N, horizon, A): targets minus the state for delta joints, absolute otherwise."""
    actions = samples.targets.astype(np.float64).copy()
    for j, name in enumerate(action_joints):
        if name in delta_joints:
            actions[:, :, j] -= samples.state[:, None, state_joints.index(name)]
    return actions


def grasp_goals(samples: Samples, gripper: int | list[int] | None) -> np.ndarray:
    """Per sample, the commanded positions when its episode's gripper closed halfway after opening (the
    grasp pose; the last command if it never closed). Several grippers (two arms): the one that closed first
    (a transfer's giver, taking the object from the table). Samples of an episode are in time order."""
    first = samples.targets[:, 0, :].astype(np.float64)
    columns = [] if gripper is None else [gripper] if isinstance(gripper, int) else list(gripper)
    goals = np.empty_like(first)
    for ep in np.unique(samples.episode):
        idx = np.nonzero(samples.episode == ep)[0]
        closes = [c for c in (_closing(first[idx, col]) for col in columns) if c is not None]
        goals[idx] = first[idx[min(closes)] if closes else idx[-1]]
    return goals


def _closing(g: np.ndarray) -> int | None:
    """Index of the first value below halfway after the maximum (the gripper closing), None if it never does."""
    span = g.max() - g.min()
    opened = int(np.argmax(g))  # (an episode may start with the gripper still closed)
    closing = np.nonzero(g[opened:] < g[opened] - 0.5 * span)[0] if span > 1e-4 else np.array([], int)
    return opened + int(closing[0]) if len(closing) else None


def first_frames(episodes: np.ndarray) -> np.ndarray:
    """Mask of each episode's first sample (samples of an episode are consecutive and in time order)."""
    episodes = np.asarray(episodes)
    return np.r_[True, episodes[1:] != episodes[:-1]] if len(episodes) else np.zeros(0, bool)


def away_from_usual_start(samples: Samples, joints: list[int], tolerance: float) -> np.ndarray:
    """Mask of the samples of episodes whose first state is more than ``tolerance`` (rad, any of ``joints``) from
    the median episode start (the data's usual start pose)."""
    first = first_frames(samples.episode)
    starts = samples.state[first][:, joints]
    if not len(starts):
        return np.zeros(len(samples), bool)
    away = np.abs(starts - np.median(starts, axis=0)).max(axis=1) > tolerance
    return np.isin(samples.episode, samples.episode[first][away])


def still_frames(samples: Samples, joints: list[int], tolerance: float = 0.1) -> np.ndarray:
    """Mask of the samples taken before the arm moved ``tolerance`` (rad, any of ``joints``) from where its
    episode began: in them only the instruction tells which cube is meant (later, the arm heads for it)."""
    state = samples.state[:, joints].astype(np.float64)
    mask = np.zeros(len(state), bool)
    for ep in np.unique(samples.episode):
        idx = np.nonzero(samples.episode == ep)[0]
        mask[idx] = np.abs(state[idx] - state[idx[0]]).max(axis=1) < tolerance
    return mask


def holding_frames(samples: Samples, gripper_state: int | None, gripper_action: int | None, closed: float,
                   opened: float) -> np.ndarray:
    """Mask of the samples whose first target closes the gripper (below the middle of its range) while the
    finger still reads open of the closed limit: closing on the object or holding it."""
    if gripper_state is None or gripper_action is None:
        return np.zeros(len(samples), bool)
    command = samples.targets[:, 0, gripper_action].astype(np.float64)
    return (command < 0.5 * (closed + opened)) & (samples.state[:, gripper_state] > closed + 1e-3)


def jitter_grip(state, holding, column: int, width: float, std: float, generator):
    """A held object's width as the finger reads it varies with the grasp: a 3 cm cube taken across a diagonal
    stops the fingers 6 mm wider than one taken across its faces (the expert always takes the faces, the
    model may misread the cube's yaw). Holding rows get up to ``width`` (m, normalised by ``std``) added
    to the finger's reading, so the lift does not depend on how square the grasp was."""
    import torch

    if width <= 0.0 or not bool(holding.any()):
        return state
    state = state.clone()
    noise = torch.rand(int(holding.sum()), generator=generator).to(state.device) * (width / std)
    state[holding, column] += noise
    return state


def fit_stats(state: np.ndarray, actions: np.ndarray) -> NormStats:
    """z-score statistics: state per joint, actions per joint over every step of the chunk."""
    flat = actions.reshape(-1, actions.shape[-1])
    return NormStats("zscore", Stats(mean=state.mean(0), std=state.std(0) + 1e-3),
                     Stats(mean=flat.mean(0), std=flat.std(0) + 1e-4))


def split_episodes(episodes: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Validation mask: whole episodes (a random ``fraction`` of them), never frames of training ones."""
    ids = np.unique(episodes)
    rng = np.random.default_rng(seed)
    val = rng.choice(ids, size=max(1, int(round(fraction * len(ids)))), replace=False)
    return np.isin(episodes, val)


def shift(images, pixels: int, generator):
    """Random translation by up to ``pixels`` (edge replicated): robustness to small camera shifts."""
    import torch
    import torch.nn.functional as F

    if pixels <= 0:
        return images
    b, c, k, h, w = images.shape
    padded = F.pad(images.flatten(1, 2).float(), (pixels,) * 4, mode="replicate")
    dx, dy = torch.randint(0, 2 * pixels + 1, (2, b), generator=generator).tolist()
    out = torch.stack([padded[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w] for i in range(b)])
    return out.view(b, c, k, h, w).round().to(torch.uint8)


def brightness_factors(n: int, spread: float, generator):
    """``n`` factors drawn from [1 - spread, 1 + spread] (None when ``spread`` is 0)."""
    import torch

    return 1.0 + spread * (2.0 * torch.rand(n, generator=generator) - 1.0) if spread > 0.0 else None


def brighten(images, spread: float, generator, factor=None):
    """Each sample's pixels scaled by one factor drawn from [1 - spread, 1 + spread] (or ``factor``, (B,)) and
    clipped to 0..255: the light's intensity changes what every camera sees at once."""
    import torch

    factor = brightness_factors(images.shape[0], spread, generator) if factor is None else factor
    if factor is None:
        return images
    scaled = images.float().mul_(factor.to(images.device).view(-1, *([1] * (images.dim() - 1))))
    return scaled.clamp_(0, 255).round_().to(torch.uint8)  # (in place: one float copy of the batch)


def drop_words(tokens, p: float, generator, kept: list[int] | None = None):
    """Each word id replaced by padding with probability ``p``, at least one word kept per row: the model
    cannot lean on any one word, so unseen combinations of seen words stay in distribution. Ids in ``kept``
    are never hidden (the words that name the target: a sample without them teaches the model to ignore them)."""
    import torch

    if p <= 0.0:
        return tokens
    words = tokens > 0
    keep = (torch.rand(tokens.shape, generator=generator) >= p) & words
    if kept:
        keep |= torch.isin(tokens, torch.as_tensor(kept, dtype=tokens.dtype))
    empty = ~keep.any(dim=1)
    if empty.any():  # restore one random word of each row that lost all of them
        choice = torch.multinomial(words[empty].float(), 1, generator=generator)
        keep[empty.nonzero()[:, 0], choice[:, 0]] = True
    return torch.where(keep, tokens, torch.zeros_like(tokens))


def model_config(robot, cameras: list[str] | None = None, image_size: int = 96, head: str = "regression",
                 gripper_state: bool = True, attention_heads: int = 4, glimpse: int = 0, glimpse_head: int = 0,
                 glimpse_source: int = 224, glimpse_cameras: list[str] | None = None,
                 crops: dict | None = None, turn: dict[str, float] | None = None, turn_joint: str = "") -> ModelConfig:
    """The built-in model's architecture and interface for ``robot`` as ``train`` builds it: the preset's cameras
    (``cameras``: a subset of their keys) and the ``crops`` {key: [camera, x0, y0, x1, y1]} after them, its state
    (the grippers left out without ``gripper_state``) and action joints, the arm joints as deltas; ``glimpse`` >
    0: a glimpse of that many pixels; ``turn`` {joint: coefficient}, ``turn_joint``: the turn to the nearest face
    (see ModelConfig)."""
    grippers = {g.joint for g in robot.grippers}
    keys = [c.key for c in robot.cameras]
    crops = dict(crops or {})
    check_crops(crops, keys)
    unknown = [k for k in cameras or [] if k not in keys and k not in crops]
    if unknown or (cameras is not None and not cameras):
        raise ValueError(f"cameras {unknown or cameras}: robot {robot.name!r} has cameras {keys}")
    image_keys = list(cameras or keys)
    return ModelConfig(image_keys=image_keys + [k for k in crops if k not in image_keys],
                       state_joints=[j for j in robot.state_joints if gripper_state or j not in grippers],
                       action_joints=list(robot.action_joints),
                       delta_joints=[j for j in robot.action_joints if j not in grippers],
                       image_size=image_size, head=head, attention_heads=attention_heads, glimpse=glimpse,
                       glimpse_head=glimpse_head, glimpse_source=glimpse_source,
                       glimpse_cameras=list(glimpse_cameras or []), crops=crops, turn=dict(turn or {}),
                       turn_joint=turn_joint)


def train(data: str | Path | list[str | Path], out: str | Path, robot_name: str = "widowx", head: str = "regression",
          image_size: int = 96, batch: int = 64, lr: float = 1e-3, minutes: float = 25.0, max_epochs: int = 40,
          val_fraction: float = 0.1, seed: int = 0, augment_pixels: int = 2, word_dropout: float = 0.0,
          keep_words: list[str] | None = None,
          threads: int = 0, device: str = "cpu", epochs: int = 0, progress: bool = True,
          gripper_state: bool = True, attention_heads: int = 4, still_weight: float = 10.0,
          grip_jitter: float = 0.0065, intervention_weight: float = 1.0, init: str | Path | None = None,
          cameras: list[str] | None = None, brightness: float = 0.0, glimpse: int = 0, glimpse_head: int = 0,
          glimpse_source: int = 224, glimpse_cameras: list[str] | None = None, crops: dict | None = None,
          grasp_start_tolerance: float = 0.0, turn: dict[str, float] | None = None, turn_joint: str = "",
          precision: str = "fp32", read_workers: int = 0) -> dict:
    """Train and save a checkpoint folder. The cosine schedule is planned after the first epoch: as many
    epochs as fit the ``minutes`` budget, or exactly ``epochs`` when > 0 (a budgeted run's schedule, made
    repeatable). ``gripper_state``: the gripper's position is a model input (as for the shipped model; off,
    the gripper must be read from the image: tried on 1,288 demonstrations, 0/30 in closed loop).
    ``attention_heads``: instruction-queried colour attention heads (0: the shipped model's architecture);
    ``still_weight``: the grasp-pose loss weight of frames before the arm moves (others weigh 1);
    ``keep_words``: words ``word_dropout`` never hides (e.g. the colours);
    ``grip_jitter``: up to this much (m) added to the finger's reading on frames that close or hold (0: off);
    ``init``: a checkpoint folder whose weights the model starts from (its config must match this run's);
    ``cameras``: the preset's camera keys the model sees, the first one's frames timing the samples (default:
    every camera of the preset); ``brightness``: each training sample's pixels scaled by up to +-this (0: off);
    ``glimpse``, ``glimpse_head``, ``glimpse_source``: a glimpse of the object attention head ``glimpse_head`` finds,
    ``glimpse`` pixels of the frame at ``glimpse_source`` (0: none; from ``init`` without one, the glimpse starts
    from zero: the model starts as the checkpoint), of the cameras ``glimpse_cameras`` (default: every one);
    ``crops`` {key: [camera, x0, y0, x1, y1]}: views cut from a camera's full frame (fractions of its width and
    height), read as more cameras (after ``cameras``); ``grasp_start_tolerance`` > 0: the grasp-pose head learns
    only from episodes that start within this (rad) of the usual start pose (from elsewhere the grasp's wrist turn
    depends on the start, which that head does not see); ``turn`` {joint: coefficient} (the jaws' angle about the
    vertical) and ``turn_joint``: the chunk turns the jaws to the nearest face of the grasp the grasp head reads
    modulo a quarter turn (see ModelConfig.turn; the regression head only); ``precision``: ``fp32``, or ``bf16``
    (the training steps' forward pass under bfloat16 autocast, the weights and the validation in float32: faster
    where the CPU has bfloat16 matrix units); ``read_workers``: threads reading the bags (0: one per core).
    """
    import torch
    from tqdm import tqdm

    from ..policies.torch_utils import set_threads

    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, not {precision!r}")
    started = time.monotonic()
    set_threads(threads or 2)
    torch.manual_seed(seed)
    robot = load_robot(robot_name)
    cfg = model_config(robot, cameras, image_size, head, gripper_state, attention_heads, glimpse, glimpse_head,
                       glimpse_source, glimpse_cameras, crops, turn, turn_joint)
    cameras = cfg.image_keys
    folders = [data] if isinstance(data, (str, Path)) else list(data)
    topics = {c.key: c.image_topic for c in robot.cameras}
    samples = load_folders(folders, {k: topics[crop_camera(k, cfg.crops)] for k in cameras},
                           list(robot.state_joints),
                           cfg.action_joints, cfg.horizon, cfg.chunk_dt, image_size, progress=progress,
                           joint_states_topic=robot.joint_states_topic, robot=robot,
                           glimpse_size=cfg.glimpse_source if cfg.glimpse else 0, glimpse_keys=cfg.glimpse_keys,
                           crops=cfg.crops, workers=read_workers)
    samples.state = samples.state[:, [list(robot.state_joints).index(j) for j in cfg.state_joints]]
    actions = action_space_arrays(samples, cfg.state_joints, cfg.action_joints, cfg.delta_joints)
    goals = grasp_goals(samples, [cfg.action_joints.index(g.joint) for g in robot.grippers
                                  if g.joint in cfg.action_joints])  # absolute: predicted without the joint state
    val = split_episodes(samples.episode, val_fraction, seed)
    # fine-tuning keeps the checkpoint's normalisation: its weights were fitted to those statistics
    stats = NormStats.load(init) if init is not None else fit_stats(samples.state[~val], actions[~val])
    goal_mean, goal_std = goals[~val].mean(0), goals[~val].std(0) + 1e-3
    arm = [cfg.state_joints.index(j) for j in cfg.delta_joints if j in cfg.state_joints]
    still = still_frames(samples, arm)
    goal_weights = np.where(still, still_weight, 1.0).astype(np.float32)
    turns = np.zeros((len(samples), 2), np.float32)  # the jaws' angle now and at the grasp (a turn model only)
    if cfg.turn:
        turns[:, 0] = cfg.turn_angle(samples.state, cfg.state_joints)
        turns[:, 1] = cfg.turn_angle(goals, cfg.action_joints)
    if grasp_start_tolerance > 0.0:
        goal_weights[away_from_usual_start(samples, arm, grasp_start_tolerance)] = 0.0
    # each gripper in the model's state: its holding frames (closing on the object, or holding it: open of the
    # tightest command in the data, which is the closed limit or, where the expert squeezes, below it)
    fingers = [(cfg.state_joints.index(g.joint), cfg.action_joints.index(g.joint), g) for g in robot.grippers
               if g.joint in cfg.state_joints and g.joint in cfg.action_joints]
    holding = np.zeros((len(samples), len(fingers)), bool)
    for k, (column, action, spec) in enumerate(fingers):
        tightest = min(spec.closed, float(samples.targets[:, :, action].min()))
        holding[:, k] = holding_frames(samples, column, action, tightest, spec.open)
    tokenizer = WordTokenizer.build(sorted(set(samples.instructions)))
    if init is not None:  # the checkpoint's words keep their ids; a word it never saw is refused
        tokenizer = init_tokenizer(Path(init), tokenizer)
    cfg.vocab_size = len(tokenizer)
    unknown = sorted(set(keep_words or []) - set(tokenizer.vocab[2:]))
    if unknown:
        raise ValueError(f"keep_words {unknown} are not words of the instructions ({tokenizer.vocab[2:]})")
    kept = [tokenizer.index[w] for w in keep_words or []]
    model = TinyVLA(cfg).to(device)
    if init is not None:
        load_init(model, cfg, Path(init))

    def tensors(selection):
        idx = np.nonzero(selection)[0] if selection.dtype == bool else selection
        return tuple(t.to(device) for t in (
            torch.from_numpy(samples.images[idx]),
            torch.from_numpy(stats.state.normalize(samples.state[idx], "zscore").astype(np.float32)),
            tokenizer.batch([samples.instructions[i] for i in idx]),
            torch.from_numpy(stats.actions.normalize(actions[idx], "zscore").astype(np.float32)),
            torch.from_numpy(((goals[idx] - goal_mean) / goal_std).astype(np.float32)),
            torch.from_numpy(goal_weights[idx]),
            torch.from_numpy(turns[idx])))

    def glimpses(rows: np.ndarray):
        """The glimpse frames of samples ``rows`` (None for a model without a glimpse): indexed per batch, as
        224x224 frames of every sample would take gigabytes twice."""
        return None if not cfg.glimpse else torch.from_numpy(samples.glimpses[rows]).to(device)

    # frames a teleoperator drove (recorded takeovers, DAgger-style corrections) count intervention_weight
    # times: repeated in each epoch (a whole number of times, 0 leaves them out)
    if not intervention_weight >= 0:
        raise ValueError(f"intervention_weight must be >= 0, got {intervention_weight}")
    repeats = np.where(samples.intervention, int(round(intervention_weight)), 1)
    training = np.repeat(np.arange(len(samples)), repeats)
    training = training[~val[training]]
    train_set, val_set = tensors(training), tensors(val)
    train_holding = torch.from_numpy(holding[training]).to(device)
    n = len(train_set[0])
    steps_per_epoch = math.ceil(n / batch)
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)

    first = first_frames(samples.episode[val])
    val_rows = np.nonzero(val)[0]

    def evaluate() -> tuple[float, list[float], list[float], float]:
        """Validation loss, and the grasp head's mean absolute error per joint (rad; the pose it must find
        in the image from the instruction) over every frame and over each episode's first frame only: later
        frames show the arm heading for the cube, the first one only the instruction can resolve (models
        that never grounded it had 0.03-0.09 rad over every frame and ordered the cubes no better than
        chance on first frames); and a turn model's error of the grasp's angle modulo turn_period (rad; nan
        without)."""
        model.eval()
        losses, errors, turn_errors = [], [], []
        with torch.no_grad():
            torch.manual_seed(seed + 1)  # the flow head's noise: the same every evaluation
            for i in range(0, len(val_set[0]), 256):
                part = [t[i:i + 256] for t in val_set]
                looks = glimpses(val_rows[i:i + 256])
                losses.append(float(model.loss(*part[:4], glimpses=looks, turns=part[6])) * len(part[0]))
                features = model.encode(*part[:3], looks)
                goal = model.grasp_pose(features)
                errors.append(((goal - part[4]).abs() * torch.as_tensor(goal_std, dtype=goal.dtype)).numpy())
                if cfg.turn:
                    turn_errors.append(model.face_turn(features, part[6][:, 1]).abs().numpy())
        model.train()
        per_frame = np.concatenate(errors) if errors else np.zeros((0, len(cfg.action_joints)))
        taught = goal_weights[val_rows] > 0.0  # (the frames the grasp-pose head learns from)
        turn_error = float(np.concatenate(turn_errors)[taught].mean()) if turn_errors else float("nan")
        return (sum(losses) / max(len(val_set[0]), 1), per_frame[taught].mean(0).tolist(),
                per_frame[first & taught].mean(0).tolist(), turn_error)

    # The budget decides the schedule: time one epoch's worth of steps, then plan the cosine decay (a fixed
    # number of epochs plans it from the first step).
    budget = minutes * 60.0 - (time.monotonic() - started)
    history = {"epoch": [], "train_loss": [], "val_loss": [], "val_grasp_error": [], "val_first_frame_grasp_error": [],
               "val_turn_error": [], "seconds": []}
    total_steps = (epochs or max_epochs) * steps_per_epoch
    step = 0
    fixed, epochs = epochs, max_epochs
    bar = tqdm(total=total_steps, desc="training", unit="step", disable=not progress)
    model.train()
    epoch = 0
    while epoch < epochs:
        epoch_start = time.monotonic()
        order = torch.randperm(n, generator=generator)
        losses = []
        for i in range(0, n, batch):
            idx = order[i:i + batch].to(device)
            images = shift(train_set[0][idx], augment_pixels, generator)
            factor = brightness_factors(len(idx), brightness, generator)  # (the same light in the glimpse)
            images = brighten(images, brightness, generator, factor)
            looks = glimpses(training[idx.cpu().numpy()])
            looks = None if looks is None else brighten(looks, brightness, generator, factor)
            for group in optimizer.param_groups:
                group["lr"] = lr * 0.5 * (1.0 + math.cos(math.pi * min(step / total_steps, 1.0)))
            tokens = drop_words(train_set[2][idx].cpu(), word_dropout, generator, kept).to(device)
            state = train_set[1][idx]
            for k, (column, _, _) in enumerate(fingers):
                state = jitter_grip(state, train_holding[idx, k], column, grip_jitter, float(stats.state.std[column]),
                                    generator)
            with torch.autocast(torch.device(device).type, torch.bfloat16, enabled=precision == "bf16"):
                loss = model.loss(images, state, tokens, *(t[idx] for t in train_set[3:6]), glimpses=looks,
                                  turns=train_set[6][idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            step += 1
            bar.update()
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.4f}")
        epoch += 1
        history["epoch"].append(epoch)
        history["train_loss"].append(float(np.mean(losses)))
        val_loss, grasp_error, first_error, turn_error = evaluate()
        history["val_loss"].append(val_loss)
        history["val_grasp_error"].append(grasp_error)
        history["val_first_frame_grasp_error"].append(first_error)
        history["val_turn_error"].append(turn_error)
        history["seconds"].append(time.monotonic() - started)
        worst = int(np.argmax(grasp_error))
        bar.write(f"epoch {epoch}: train {history['train_loss'][-1]:.4f}, val {val_loss:.4f}, grasp pose error "
                  f"{cfg.action_joints[0]} {grasp_error[0]:.4f} rad (first frames {first_error[0]:.4f}), largest "
                  f"{cfg.action_joints[worst]} {grasp_error[worst]:.4f}, "
                  + (f"grasp angle modulo the face {turn_error:.4f} rad, " if cfg.turn else "")
                  + f"{history['seconds'][-1]:.0f} s")
        if epoch == 1:  # fit the remaining epochs into the budget
            per_epoch = time.monotonic() - epoch_start
            epochs = fixed or int(max(1, min(max_epochs, (budget - 30.0) // (per_epoch * 1.15))))
            total_steps = epochs * steps_per_epoch
            bar.total = total_steps
            bar.refresh()
    bar.close()

    out = save_checkpoint(out, model.cpu(), stats, tokenizer)
    report = {"data": [str(f) for f in folders] if len(folders) > 1 else str(folders[0]),
              "episodes": int(len(np.unique(samples.episode))), "samples": int(len(samples)),
              "train_samples": int(n), "val_samples": int(val.sum()), "instructions": sorted(set(samples.instructions)),
              "config": asdict(cfg), "seed": seed, "batch": batch, "lr": lr, "augment_pixels": augment_pixels,
              "brightness": brightness, "init": str(init) if init is not None else None, "word_dropout": word_dropout,
              "keep_words": list(keep_words or []),
              "gripper_state": gripper_state, "still_weight": still_weight,
              "intervention_weight": intervention_weight, "intervention_samples": int(samples.intervention.sum()),
              "still_samples": int(still[~val].sum()), "grip_jitter": grip_jitter,
              "grasp_start_tolerance": grasp_start_tolerance,
              "grasp_head_excluded_samples": int((goal_weights[~val] == 0.0).sum()),
              "holding_samples": int(holding[~val].any(axis=1).sum()),
              "epochs": epoch, "minutes": (time.monotonic() - started) / 60.0, "history": history,
              "parameters": int(sum(p.numel() for p in model.parameters())), "device": str(device),
              "precision": precision}
    (out / "training.json").write_text(json.dumps(report, indent=1))
    plot_losses(history, out / "loss_curve.png")
    return report


def init_tokenizer(folder: Path, data: WordTokenizer) -> WordTokenizer:
    """The tokenizer of ``folder``'s checkpoint when it knows every word of ``data``'s; else ValueError naming
    the new words (the checkpoint's embeddings have no row for them)."""
    theirs = WordTokenizer.load(folder)
    new = sorted(set(data.vocab) - set(theirs.vocab))
    if new:
        raise ValueError(f"--init {folder}: the data's instructions use words its checkpoint never saw: {new}")
    return theirs


def load_init(model: TinyVLA, cfg: ModelConfig, folder: Path) -> None:
    """Start ``model`` from ``folder``'s weights; a checkpoint of another robot, camera set, vocabulary or
    architecture is refused, naming what differs, except a glimpse added to a checkpoint without one (its
    layers start from zero, so the model starts as the checkpoint)."""
    from safetensors.torch import load_file

    theirs = asdict(ModelConfig.load(folder))
    adding = not theirs["glimpse"] and cfg.glimpse
    differ = [k for k, v in asdict(cfg).items() if theirs.get(k) != v and not (adding and k.startswith("glimpse"))]
    if differ:
        raise ValueError(f"--init {folder}: its config differs in {differ}; start from a checkpoint of this run's "
                         "robot, data vocabulary and architecture")
    missing, _ = model.load_state_dict(load_file(str(folder / "model.safetensors")), strict=not adding)
    assert all(k.startswith("glimpse") for k in missing), f"weights missing from {folder}: {missing}"


def save_checkpoint(out: str | Path, model: TinyVLA, stats: NormStats, tokenizer: WordTokenizer) -> Path:
    """The folder the builtin backend loads: config.json, model.safetensors, norm_stats.json, tokenizer.json."""
    from safetensors.torch import save_file

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model.cfg.save(out)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(out / "model.safetensors"))
    stats.save(out)
    tokenizer.save(out)
    return out


def plot_losses(history: dict, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(history["epoch"], history["train_loss"], marker="o", label="train")
    ax.plot(history["epoch"], history["val_loss"], marker="o", label="validation (held-out episodes)")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (normalised actions)")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
