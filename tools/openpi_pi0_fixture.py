"""Golden fixtures for openpi checkpoints converted to PyTorch (pi0 and pi0.5, DROID), made with openpi itself.

openpi's own inference runs here: its `policy_config.create_trained_policy` with its `pi0_droid` and `pi05_droid`
train configs (DroidInputs, Normalize, ResizeImages, TokenizePrompt, PadStatesAndActions, the PyTorch PI0Pytorch,
Unnormalize, DroidOutputs) on a TINY model whose checkpoint folder is laid out as openpi's
examples/convert_jax_model_to_pytorch.py writes one (model.safetensors by safetensors.torch.save_model, its
config.json, assets/droid/norm_stats.json). Nothing of openpi is copied here: pass its source with --openpi.

Environment, prepared BY HAND outside the repository: the scratch venv of tools/lerobot_pi05_fixture.py
(transformers 4.53.2 with openpi's transformers_replace, which PI0Pytorch needs) plus openpi's JAX-side imports:

  /tmp/pi05venv/bin/pip install jax==0.5.3 jaxlib==0.5.3 flax==0.10.2 jaxtyping==0.2.36 beartype==0.19.0 \\
      chex==0.1.90 numpydantic sentencepiece ml_collections==1.0.0 einops dm-tree augmax equinox tqdm-loggable \\
      "fsspec[gcs]" filelock "tyro>=0.9.5" wandb polars treescope rich
  git clone https://github.com/Physical-Intelligence/openpi /tmp/openpi   # 15a9616a00943ada6c20a0f158e3adb39df2ccac
  OMP_NUM_THREADS=1 /tmp/pi05venv/bin/python tools/openpi_pi0_fixture.py --openpi /tmp/openpi \\
      --out test/fixtures/openpi

What is replaced for the run (module attributes only; openpi's code runs as it is):
* `lerobot.common.datasets.lerobot_dataset` (openpi.training.data_loader imports LeRobot < 0.4's module path, absent
  from LeRobot 0.4.4; nothing here loads a dataset) is an empty stand-in module.
* `openpi.models.gemma.get_config` gives TINY sizes for "gemma_2b"/"gemma_300m", and the two transformers classes
  `openpi.models_pytorch.gemma_pytorch` builds shrink the hard-coded vocabulary and SigLIP (as the LeRobot fixtures).
* `PaligemmaTokenizer` downloads gs://big_vision/paligemma_tokenizer.model: its SentencePiece processor is replaced
  by the pi0.5 fixture's tiny word-level tokenizer behind SentencePiece's encode(text, add_bos) interface.
* `PaliGemmaWithExpertModel.to_bfloat16_for_selected_params`: create_trained_policy casts the PyTorch model to
  bfloat16 (even on CPU); the parity goal is float32, so the cast keeps float32.
* The train configs get dtype float32 and no torch.compile (their default `max-autotune`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import sys
import types
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lerobot_pi05_fixture import (  # noqa: E402
    TINY_GEMMA,
    TINY_VISION,
    VOCAB_SIZE,
    build_tokenizer,
    perturb,
    shrunk_paligemma,
    smooth_image,
)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

CONFIGS = ("pi0_droid", "pi05_droid")
MODEL_SEED, DATA_SEED, NOISE_SEED = 20261211, 20261213, 20261214
CASES = [
    {"name": "square_images", "task": "pick up the red cube", "sizes": {"ext": (224, 224), "wrist": (224, 224)}},
    {"name": "droid_zed_aspect", "task": "  put_the spoon\nin the bowl ", "sizes": {"ext": (180, 320),
                                                                                  "wrist": (180, 320)}},
    {"name": "odd_sizes_out_of_range_state", "task": "stack the green block on the blue block",
     "sizes": {"ext": (224, 224), "wrist": (130, 109)}, "state_scale": 1.8},
]
# made-up DROID statistics: 7 joint positions + gripper (state), 7 joint velocities + gripper (actions)
STATE_MEAN = [0.0, 0.2, 0.0, -2.0, 0.0, 2.3, 0.8, 0.3]
STATE_STD = [0.3, 0.4, 0.3, 0.4, 0.3, 0.4, 0.5, 0.35]
ACTION_MEAN = [0.0, 0.05, 0.0, -0.05, 0.0, 0.05, 0.0, 0.3]
ACTION_STD = [0.3, 0.35, 0.3, 0.4, 0.3, 0.35, 0.45, 0.4]


def install_stand_ins(openpi_src: Path, tok_dir: Path) -> None:
    sys.path[:0] = [str(openpi_src / "src"), str(openpi_src / "packages" / "openpi-client" / "src")]
    for name in ("lerobot.common", "lerobot.common.datasets", "lerobot.common.datasets.lerobot_dataset"):
        sys.modules.setdefault(name, types.ModuleType(name))
    stub = sys.modules["lerobot.common.datasets.lerobot_dataset"]
    stub.LeRobotDataset = stub.LeRobotDatasetMetadata = None

    import openpi.models.gemma as gemma
    import openpi.models.tokenizer as tokenizer
    import openpi.models_pytorch.gemma_pytorch as gp
    from transformers import AutoTokenizer

    real_get = gemma.get_config
    gemma.get_config = lambda variant: (dataclasses.replace(real_get(variant), **TINY_GEMMA[variant])
                                        if variant in TINY_GEMMA else real_get(variant))
    real_paligemma, real_gemma_lm = gp.PaliGemmaForConditionalGeneration, gp.GemmaForCausalLM

    paligemma = shrunk_paligemma(real_paligemma, VOCAB_SIZE)

    def gemma_lm(config):
        config.vocab_size = VOCAB_SIZE
        return real_gemma_lm(config=config)

    gp.PaliGemmaForConditionalGeneration, gp.GemmaForCausalLM = paligemma, gemma_lm

    def keep_float32(self, precision="bfloat16"):
        self.to(dtype=__import__("torch").float32)

    gp.PaliGemmaWithExpertModel.to_bfloat16_for_selected_params = keep_float32
    hf = AutoTokenizer.from_pretrained(tok_dir)

    class SentencePieceLike:
        """SentencePieceProcessor.encode(text, add_bos=..., add_eos=...) over the tiny tokenizer."""

        def encode(self, text, add_bos=False, add_eos=False):
            ids = hf(text, add_special_tokens=False)["input_ids"]
            return ([hf.bos_token_id] if add_bos else []) + ids + ([hf.eos_token_id] if add_eos else [])

    def tokenizer_init(self, max_len: int = 48):
        self._max_len = max_len
        self._tokenizer = SentencePieceLike()

    tokenizer.PaligemmaTokenizer.__init__ = tokenizer_init


def droid_obs(case: dict, rng: np.random.Generator, horizon: int) -> tuple[dict, np.ndarray]:
    images = {k: smooth_image(rng, h, w) for k, (h, w) in case["sizes"].items()}
    z = rng.uniform(-1, 1, 8) * case.get("state_scale", 1.0)
    state = (np.asarray(STATE_MEAN) + z * np.asarray(STATE_STD)).astype(np.float32)
    noise = rng.standard_normal((horizon, 32)).astype(np.float32)
    return {"observation/exterior_image_1_left": images["ext"], "observation/wrist_image_left": images["wrist"],
            "observation/joint_position": state[:7], "observation/gripper_position": state[7:],
            "prompt": case["task"]}, noise


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--openpi", required=True, type=Path, help="an openpi source tree (git clone)")
    parser.add_argument("--out", default="test/fixtures/openpi")
    ns = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    out = Path(ns.out).resolve()
    known = {"README.md", "tokenizer", *CONFIGS, "reference.npz", "cases.json"}
    if out.exists() and not {p.name for p in out.iterdir()} <= known:
        raise SystemExit(f"{out} holds files this script did not make: refusing to replace it")
    for p in [out / n for n in known if n != "README.md"]:
        shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
    tok_dir = out / "tokenizer"
    tok_dir.mkdir(parents=True)
    tok_info = build_tokenizer(tok_dir)
    install_stand_ins(ns.openpi, tok_dir)

    import openpi.models_pytorch.pi0_pytorch as pi0_pytorch
    import openpi.policies.policy_config as policy_config
    import openpi.shared.normalize as normalize
    import openpi.training.config as train_configs
    import safetensors.torch
    import transformers

    stats = {"state": normalize.NormStats(mean=np.asarray(STATE_MEAN), std=np.asarray(STATE_STD),
                                          q01=np.asarray(STATE_MEAN) - 2.33 * np.asarray(STATE_STD),
                                          q99=np.asarray(STATE_MEAN) + 2.33 * np.asarray(STATE_STD)),
             "actions": normalize.NormStats(mean=np.asarray(ACTION_MEAN), std=np.asarray(ACTION_STD),
                                            q01=np.asarray(ACTION_MEAN) - 2.33 * np.asarray(ACTION_STD),
                                            q99=np.asarray(ACTION_MEAN) + 2.33 * np.asarray(ACTION_STD))}
    arrays: dict[str, np.ndarray] = {}
    meta: dict = {"versions": {"transformers": transformers.__version__, "torch": torch.__version__,
                               "numpy": np.__version__},
                  "seeds": {"model": MODEL_SEED, "data": DATA_SEED},
                  "architecture": {"vocab_size": VOCAB_SIZE, "vlm": TINY_GEMMA["gemma_2b"],
                                   "expert": TINY_GEMMA["gemma_300m"], "vision": {**TINY_VISION, "patch_size": 14}},
                  "tokenizer": tok_info, "stats": {k: {f: np.asarray(getattr(v, f)).tolist()
                                                       for f in ("mean", "std", "q01", "q99")}
                                                   for k, v in stats.items()}, "configs": {}}
    for name in CONFIGS:
        cfg = train_configs.get_config(name)
        cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, dtype="float32",
                                                                 pytorch_compile_mode=None))
        ckpt = out / name
        (ckpt / "assets").mkdir(parents=True)
        torch.manual_seed(MODEL_SEED)
        model = pi0_pytorch.PI0Pytorch(cfg.model)
        info = perturb(model)
        safetensors.torch.save_model(model, str(ckpt / "model.safetensors"))
        m = cfg.model
        (ckpt / "config.json").write_text(json.dumps(
            {"action_dim": m.action_dim, "action_horizon": m.action_horizon, "paligemma_variant": m.paligemma_variant,
             "action_expert_variant": m.action_expert_variant, "precision": "float32"}, indent=2))
        normalize.save(ckpt / "assets" / "droid", stats)
        policy = policy_config.create_trained_policy(cfg, ckpt, pytorch_device="cpu")
        seen = {}
        orig = policy._sample_actions  # noqa: SLF001

        def record(device, observation, noise=None, num_steps=10, _orig=orig, seen=seen):
            seen["obs"] = observation
            seen["x"] = _orig(device, observation, noise=noise, num_steps=num_steps)
            return seen["x"]

        policy._sample_actions = record  # noqa: SLF001
        rng = np.random.default_rng(DATA_SEED)
        summary = []
        for i, case in enumerate(CASES):
            obs, noise = droid_obs(case, rng, m.action_horizon)
            result = policy.infer({k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in obs.items()},
                                  noise=noise.copy())
            again = policy.infer({k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in obs.items()},
                                 noise=noise.copy())
            assert np.array_equal(result["actions"], again["actions"]), f"{name} case {i} not deterministic"
            o = seen["obs"]
            p = f"{name}_c{i}_"
            mask = o.tokenized_prompt_mask[0].numpy().astype(bool)
            arrays.update({p + "ext": obs["observation/exterior_image_1_left"],
                           p + "wrist": obs["observation/wrist_image_left"],
                           p + "state": np.concatenate([obs["observation/joint_position"],
                                                        obs["observation/gripper_position"]]),
                           p + "noise": noise, p + "tokens": o.tokenized_prompt[0].numpy()[mask],
                           p + "state_model": o.state[0].numpy(), p + "x": seen["x"][0].numpy(),
                           p + "actions": np.asarray(result["actions"])})
            for slot, img in o.images.items():
                arrays[p + f"pixels_{slot}"] = img[0].numpy()
            summary.append({"name": case["name"], "task": case["task"], "sizes_hw": case["sizes"],
                            "image_masks": {k: bool(v[0]) for k, v in o.image_masks.items()},
                            "n_tokens": int(mask.sum()), "actions_shape": list(np.shape(result["actions"]))})
            print(name, case["name"], "tokens", int(mask.sum()), "actions", np.shape(result["actions"]), flush=True)
        meta["configs"][name] = {"model": {k: getattr(m, k) for k in ("action_dim", "action_horizon",
                                                                      "max_token_len", "pi05",
                                                                      "discrete_state_input")},
                                 "use_quantile_norm": name.startswith("pi05"), "cases": summary, **info}
    np.savez_compressed(out / "reference.npz", **arrays)
    meta["npz_keys"] = {k: [list(v.shape), str(v.dtype)] for k, v in arrays.items()}
    (out / "cases.json").write_text(json.dumps(meta, indent=1) + "\n")
    print("wrote", out)


if __name__ == "__main__":
    main()
