"""Reference images for pi0's LeRobot preprocessing, produced by LeRobot 0.4.4's own code.

Run in LeRobot's side venv (tools/lerobot_venv.sh), outside ``make test``:

    $LEROBOT_VENV/bin/python tools/lerobot_pi0_images.py --out test/fixtures/lerobot_pi0_images

LeRobot's PI0Policy cannot be built here (it needs openpi's patched transformers 4.53.2), but its image path
is a module-level function: ``resize_with_pad_torch`` on float [0, 1] channels-last frames to
``image_resolution`` (skipped when the frame already has that size), then ``* 2 - 1``, as
``PI0Policy._preprocess_images`` does. Seeded uint8 frames of several sizes go in (as LeRobot gets them:
``uint8 / 255``); the frames and LeRobot's outputs are stored in ``reference.npz`` (numbers only).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

SIZES = [(120, 160), (56, 56), (25, 75), (75, 25), (57, 55)]  # (height, width)
RESOLUTION = (56, 56)  # small, to keep the fixture small; the function is size-generic


def main() -> None:
    import lerobot
    import torch
    from lerobot.policies.pi0.modeling_pi0 import resize_with_pad_torch

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    rng = np.random.default_rng(20261203)
    arrays = {}
    for i, (h, w) in enumerate(SIZES):
        frame = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        img = torch.from_numpy(frame).float()[None] / 255.0  # (1, H, W, C) in [0, 1], as LeRobot's batch
        if tuple(img.shape[1:3]) != RESOLUTION:
            img = resize_with_pad_torch(img, *RESOLUTION)
        arrays[f"frame_{i}"] = frame
        arrays[f"model_{i}"] = (img * 2.0 - 1.0)[0].permute(2, 0, 1).numpy().astype(np.float32)  # (3, 56, 56)
    args.out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out / "reference.npz", **arrays)
    print(f"lerobot {lerobot.__version__}, torch {torch.__version__}: {len(SIZES)} frames -> {args.out}")


if __name__ == "__main__":
    main()
