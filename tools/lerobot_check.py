"""Check vla_ros's LeRobotDataset v3 output with LeRobot's own code (run in the LeRobot venv, not the project's).

Build that venv with tools/lerobot_venv.sh; then, with its python:
  reference FRAMES.npz OUT.json   LeRobot 0.4.4 writes the frames in FRAMES.npz (LeRobotDataset.create /
                                  add_frame / save_episode / finalize) and OUT.json records what it wrote:
                                  info.json, stats.json, tasks, every episodes-parquet and data-parquet row.
  load DATASET [TRUTH.npz [K]]    LeRobotDataset(repo_id, root=DATASET) offline; every (K-th) frame's state,
                                  action, task, timestamp and decoded images, compared with TRUTH.npz (what
                                  vla_ros exported, from `tools/lerobot_truth.py`); prints a JSON report.
  train DATASET OUT_DIR STEPS     lerobot-train with ACT on the dataset for STEPS steps (CPU).
  normalizers OUT_DIR             LeRobot's policy_preprocessor/postprocessor files for each normalisation mode
                                  and what its normaliser makes of fixed inputs (test/fixtures/lerobot_norm).
An npz holds per episode e: e<e>_state, e<e>_action (float32), e<e>_task (str), e<e>_img_<camera> (uint8 NHWC),
and fps, robot_type, state_names, action_names, names_key.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


def episodes(data) -> list[int]:
    return sorted({int(k[1:].split("_")[0]) for k in data.files if k.startswith("e")})


def cameras(data, e: int) -> list[str]:
    return sorted(k.split("_img_", 1)[1] for k in data.files if k.startswith(f"e{e}_img_"))


def jsonable(value):
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if hasattr(value, "tolist"):
        return value.tolist()
    return value


def reference(frames: str, out: str) -> None:
    import pyarrow.parquet as pq
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    data = np.load(frames)
    names_key = str(data["names_key"])

    def names(values):
        return {names_key: [str(v) for v in values]} if names_key else [str(v) for v in values]

    first = episodes(data)[0]
    features = {"observation.state": {"dtype": "float32", "shape": (len(data["state_names"]),),
                                      "names": names(data["state_names"])},
                "action": {"dtype": "float32", "shape": (len(data["action_names"]),),
                           "names": names(data["action_names"])}}
    for cam in cameras(data, first):
        features[f"observation.images.{cam}"] = {"dtype": "video", "shape": data[f"e{first}_img_{cam}"].shape[1:],
                                                 "names": ["height", "width", "channels"]}
    root = Path(tempfile.mkdtemp()) / "ds"
    ds = LeRobotDataset.create("local/reference", fps=int(data["fps"]), features=features, root=root,
                               robot_type=str(data["robot_type"]), use_videos=True)
    for e in episodes(data):
        for i in range(len(data[f"e{e}_state"])):
            frame = {"observation.state": data[f"e{e}_state"][i], "action": data[f"e{e}_action"][i],
                     "task": str(data[f"e{e}_task"])}
            frame.update({f"observation.images.{c}": data[f"e{e}_img_{c}"][i] for c in cameras(data, e)})
            ds.add_frame(frame)
        ds.save_episode()
    ds.finalize()
    result = {"made_with": {"lerobot": __import__("lerobot").__version__, "numpy": np.__version__},
              "info": json.loads((root / "meta/info.json").read_text()),
              "stats": json.loads((root / "meta/stats.json").read_text()),
              "tasks": pq.read_table(root / "meta/tasks.parquet").to_pylist(),
              "episodes": pq.read_table(root / "meta/episodes/chunk-000/file-000.parquet").to_pylist(),
              "data": pq.read_table(root / "data/chunk-000/file-000.parquet").to_pylist(),
              "schemas": {name: pq.read_schema(root / path).to_string(show_schema_metadata=False)
                          for name, path in [("tasks", "meta/tasks.parquet"),
                                             ("episodes", "meta/episodes/chunk-000/file-000.parquet"),
                                             ("data", "data/chunk-000/file-000.parquet")]}}
    Path(out).write_text(json.dumps(jsonable(result), indent=1))
    shutil.rmtree(root.parent)
    print(f"reference written to {out}")


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def load(dataset: str, truth: str | None = None, stride: str = "1") -> dict:
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    ds = LeRobotDataset("local/exported", root=dataset)
    report = {"episodes": ds.num_episodes, "frames": ds.num_frames, "fps": ds.fps, "features": list(ds.features),
              "camera_keys": ds.meta.camera_keys}
    if truth:
        data = np.load(truth)
        worst = {"state": 0.0, "action": 0.0, "timestamp": 0.0}
        min_psnr: dict[str, float] = {}
        squared: dict[str, list[float]] = {}
        tasks_equal = True
        index = 0
        compared = 0
        for e in episodes(data):
            for i in range(len(data[f"e{e}_state"])):
                index += 1
                if (index - 1) % int(stride):
                    continue
                item = ds[index - 1]
                compared += 1
                worst["state"] = max(worst["state"], float(np.abs(item["observation.state"].numpy()
                                                                  - data[f"e{e}_state"][i]).max()))
                worst["action"] = max(worst["action"], float(np.abs(item["action"].numpy()
                                                                    - data[f"e{e}_action"][i]).max()))
                worst["timestamp"] = max(worst["timestamp"], abs(float(item["timestamp"]) - i / ds.fps))
                tasks_equal &= item["task"] == str(data[f"e{e}_task"])
                for cam in cameras(data, e):
                    img = (item[f"observation.images.{cam}"].numpy().transpose(1, 2, 0) * 255).round()
                    min_psnr[cam] = min(min_psnr.get(cam, np.inf), psnr(img, data[f"e{e}_img_{cam}"][i]))
                    diff = img - data[f"e{e}_img_{cam}"][i].astype(np.float64)
                    squared.setdefault(cam, []).append(float(np.mean(diff**2)))
        report.update(compared_frames=compared, max_abs_error=worst, tasks_equal=bool(tasks_equal),
                      psnr_db={c: float(10 * np.log10(255.0**2 / np.mean(v))) for c, v in squared.items()},
                      worst_frame_psnr_db=min_psnr)
    print(json.dumps(report, indent=1))
    return report


def train(dataset: str, out: str, steps: str) -> None:
    cmd = [str(Path(sys.executable).with_name("lerobot-train")), "--dataset.repo_id=local/exported",
           f"--dataset.root={dataset}", "--policy.type=act", "--policy.device=cpu", "--policy.push_to_hub=false",
           "--policy.pretrained_backbone_weights=null",  # (offline: no ImageNet download)
           f"--output_dir={out}", f"--steps={steps}", "--batch_size=2", "--log_freq=1", "--save_checkpoint=false",
           "--wandb.enable=false", "--num_workers=0", "--eval_freq=0"]
    print(" ".join(cmd))
    subprocess.run(cmd, check=True)



def normalizers(out: str) -> None:
    """For each mode LeRobot writes: its policy pre/post-processor files (the normaliser steps as
    make_pi05_pre_post_processors builds them, without the tokenizer step, which needs the hub) and what they
    make of fixed inputs: OUT/<mode>/ + OUT/<mode>/expected.json."""
    import torch
    from lerobot.configs.types import FeatureType, NormalizationMode, PolicyFeature
    from lerobot.processor import (
        AddBatchDimensionProcessorStep,
        DeviceProcessorStep,
        NormalizerProcessorStep,
        PolicyProcessorPipeline,
        RenameObservationsProcessorStep,
        UnnormalizerProcessorStep,
    )
    from lerobot.processor.converters import policy_action_to_transition, transition_to_policy_action

    rng = np.random.default_rng(7)
    features = {"observation.state": PolicyFeature(FeatureType.STATE, (6,)),
                "observation.images.cam": PolicyFeature(FeatureType.VISUAL, (3, 8, 8))}
    outputs = {"action": PolicyFeature(FeatureType.ACTION, (6,))}

    def stats_for(scale: float) -> dict:
        lo = rng.normal(size=6) * scale
        spread = np.abs(rng.normal(size=6)) * scale + 0.1
        spread[2] = 0.0  # a constant dimension: LeRobot's zero-denominator rule
        return {"mean": lo + spread / 2, "std": spread / 3, "min": lo, "max": lo + spread, "q01": lo + spread * 0.01,
                "q99": lo + spread * 0.99, "q10": lo + spread * 0.1, "q90": lo + spread * 0.9}

    stats = {"observation.state": stats_for(1.0), "action": stats_for(2.0)}
    state = torch.tensor(rng.normal(size=(4, 6)), dtype=torch.float32)
    model_actions = torch.tensor(rng.uniform(-1.2, 1.2, size=(4, 6)), dtype=torch.float32)
    for mode in ("MEAN_STD", "MIN_MAX", "QUANTILES", "QUANTILE10", "IDENTITY"):
        norm_map = {FeatureType.VISUAL: NormalizationMode.IDENTITY, FeatureType.STATE: NormalizationMode(mode),
                    FeatureType.ACTION: NormalizationMode(mode)}
        pre = PolicyProcessorPipeline(steps=[
            RenameObservationsProcessorStep(rename_map={}), AddBatchDimensionProcessorStep(),
            NormalizerProcessorStep(features={**features, **outputs}, norm_map=norm_map, stats=stats),
            DeviceProcessorStep(device="cpu")], name="policy_preprocessor")
        post = PolicyProcessorPipeline(steps=[
            UnnormalizerProcessorStep(features=outputs, norm_map=norm_map, stats=stats),
            DeviceProcessorStep(device="cpu")], name="policy_postprocessor",
            to_transition=policy_action_to_transition, to_output=transition_to_policy_action)
        folder = Path(out) / mode.lower()
        pre.save_pretrained(folder)
        post.save_pretrained(folder)
        normalizer = pre.steps[2]
        unnormalizer = post.steps[0]
        normalized = normalizer._apply_transform(state, "observation.state", FeatureType.STATE, inverse=False)
        actions = unnormalizer._apply_transform(model_actions, "action", FeatureType.ACTION, inverse=True)
        expected = {"made_with": {"lerobot": __import__("lerobot").__version__, "torch": torch.__version__},
                    "state": state.tolist(), "normalized_state": normalized.tolist(),
                    "model_actions": model_actions.tolist(), "actions": actions.tolist()}
        (folder / "expected.json").write_text(json.dumps(expected, indent=1))
        print(f"{mode}: {sorted(p.name for p in folder.iterdir())}")


if __name__ == "__main__":
    command, *rest = sys.argv[1:]
    {"reference": reference, "load": load, "train": train, "normalizers": normalizers}[command](*rest)
