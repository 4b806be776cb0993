"""Golden fixtures for the pi0-FAST backend, made with LeRobot 0.4.4's own PI0FastPolicy (run in a scratch venv).

Runs in the scratch venv of tools/lerobot_pi05_fixture.py (LeRobot 0.4.4 on transformers 4.53.2 patched with
openpi's transformers_replace: PI0FastPytorch.__init__ checks it too) plus scipy (LeRobot's FAST decoding imports
scipy.fftpack). The FAST tokenizer class, UniversalActionProcessor, is not in LeRobot: it is the remote code of the
Hub repo physical-intelligence/fast (processing_action_tokenizer.py), which LeRobot loads with trust_remote_code.
This script never contains or copies it: pass the folder holding that file with --fast-code (outside the
repository). Offline, CPU, one torch thread:

  /tmp/pi05venv/bin/pip install scipy==1.17.1
  OMP_NUM_THREADS=1 /tmp/pi05venv/bin/python tools/lerobot_pi0fast_fixture.py --fast-code /tmp/fastproc \\
      --out test/fixtures/pi0fast

It rebuilds, deterministically, inside OUT (README.md there is kept, everything else is replaced):
  tokenizer/       a tiny word-level PaliGemma stand-in (vocabulary VOCAB_SIZE, <bos> first as PaliGemma's).
  fast_tokenizer/  a FAST tokenizer fitted by UniversalActionProcessor.fit on made-up normalised chunks and saved
                   by its save_pretrained (processor_config.json, tokenizer files; the .py it also writes is
                   deleted: loaders must not need it).
  checkpoint/      a TINY PI0FastPolicy saved by LeRobot itself, first trained by LeRobot's own forward (its
                   pre-processor tokenising the target chunks with its ActionTokenizerProcessorStep) until its greedy
                   decoding writes the three training chunks: a random model never writes "Action: ...|", and
                   LeRobot would assert or decode zeros. Tokenizer names rewritten to the Hub names.
  reference.npz    per case: inputs, prompt tokens, LeRobot's generated tokens (KV-cache path; the no-cache path is
                   asserted equal), its normalised chunk and actions; per detokenisation case: the tokens and
                   LeRobot's decoded chunk.
  cases.json       versions, seeds, sizes, stats, prompts, what LeRobot did per case.

Tiny sizes: `get_gemma_config` and `PaliGemmaForConditionalGeneration` monkeypatched in
`lerobot.policies.pi0_fast.modeling_pi0_fast` only, as the pi0.5 fixture does. PaliGemma's tokenizer honours
LeRobot's add_bos_token=False / add_eos_token=True (ActionTokenizerProcessorStep, PI0FastPolicy); a generic
tokenizer ignores them, so those two loaded copies get the post-processor GemmaTokenizerFast would build
("$A <eos>"): the training targets are "<bos>Action: <fast>|<eos>" as with the real tokenizer.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lerobot_pi05_fixture import (  # noqa: E402
    ACTION_STATS,
    CONST_DIM,
    STATE,
    STATE_STATS,
    TINY_GEMMA,
    TINY_VISION,
    TOP,
    WRIST,
    build_tokenizer,
    rewrite_json,
    shrunk_paligemma,
    smooth_image,
    stats_for,
)
from lerobot_pi05_fixture import PIECES as PI05_PIECES  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

HUB_TOKENIZER = "google/paligemma-3b-pt-224"
HUB_FAST = "physical-intelligence/fast"
MODEL_SEED, TRAIN_SEED, DATA_SEED, FAST_SEED = 20261201, 20261202, 20261203, 20261204
DIM = 7
VOCAB_SIZE = 1024  # FAST ids 0..FAST_VOCAB-1 land on PaliGemma ids VOCAB_SIZE-1-128-id (here 895 .. 384)
FAST_VOCAB = 400
PIECES = [*PI05_PIECES, "|"]  # the pi0.5 fixture's pieces and the end-of-action marker
POLICY = {"chunk_size": 10, "n_action_steps": 10, "max_state_dim": 32, "max_action_dim": 32, "max_action_tokens": 80,
          "max_decoding_steps": 80, "dtype": "float32", "device": "cpu", "tokenizer_max_length": 200}
TRAIN_STEPS, LR = 400, 2e-3
CASES = [  # cases 0-2 are trained on (their target chunks), case 3 is not
    {"name": "square_images", "task": "pick up the red cube", "sizes": {"top": (224, 224), "wrist": (224, 224)}},
    {"name": "letterbox_and_cleaning", "task": "  put_the spoon\nin the bowl  ",
     "sizes": {"top": (180, 240), "wrist": (224, 224)}},
    {"name": "odd_sizes", "task": "stack the green block on the blue block", "sizes": {"top": (224, 224),
                                                                                     "wrist": (130, 109)}},
    {"name": "untrained", "task": "place it in the bowl", "sizes": {"top": (224, 224), "wrist": (224, 224)}},
]


def smooth_chunk(rng: np.random.Generator, steps: int = 10) -> np.ndarray:
    """A made-up normalised action chunk (steps, DIM): per dimension a random cubic through [-1.2, 1.2]."""
    t = np.linspace(0, 1, steps)[:, None]
    coef = rng.uniform(-1, 1, (4, DIM))
    chunk = coef[0] + coef[1] * t + coef[2] * t**2 - coef[3] * t**3
    chunk[:, CONST_DIM] = 0.0
    return np.clip(chunk, -1.2, 1.2).astype(np.float32)


def gemma_flags(tokenizer):
    """What GemmaTokenizerFast(add_bos_token=False, add_eos_token=True) does to its post-processor."""
    from tokenizers import processors

    tokenizer._tokenizer.post_processor = processors.TemplateProcessing(  # noqa: SLF001
        single="$A <eos>", pair="$A <eos> $B <eos>", special_tokens=[("<eos>", tokenizer.eos_token_id)])
    return tokenizer


def build_fast(fast_code: Path, fast_dir: Path, rng: np.random.Generator) -> tuple[object, dict]:
    sys.path.insert(0, str(fast_code))
    from processing_action_tokenizer import UniversalActionProcessor

    data = [smooth_chunk(rng) for _ in range(600)]
    proc = UniversalActionProcessor.fit(data, scale=10, vocab_size=FAST_VOCAB, time_horizon=10, action_dim=DIM)
    UniversalActionProcessor.register_for_auto_class()
    proc.save_pretrained(fast_dir)
    from transformers import AutoProcessor

    loaded = AutoProcessor.from_pretrained(str(fast_dir), trust_remote_code=True)
    probe = data[:3]
    assert np.allclose(loaded.decode(loaded(np.stack(probe))), np.stack(probe), atol=0.1)
    return loaded, {"scale": loaded.scale, "min_token": loaded.min_token, "vocab_size": loaded.vocab_size,
                    "bpe_len": len(loaded.bpe_tokenizer), "fit_chunks": len(data)}


def install_tiny_patches() -> None:
    from lerobot.policies.pi0_fast import modeling_pi0_fast as m

    if getattr(m, "_tiny_fixture_patched", False):
        return
    real_paligemma = m.PaliGemmaForConditionalGeneration

    paligemma = shrunk_paligemma(real_paligemma, VOCAB_SIZE)

    m.get_gemma_config = lambda variant: m.GemmaConfig(**TINY_GEMMA[variant])
    m.PaliGemmaForConditionalGeneration = paligemma
    m._tiny_fixture_patched = True  # noqa: SLF001


def make_config(tok_dir: Path, fast_dir: Path):
    from lerobot.configs.types import FeatureType, PolicyFeature
    from lerobot.policies.pi0_fast.configuration_pi0_fast import PI0FastConfig

    inputs = {STATE: PolicyFeature(type=FeatureType.STATE, shape=(DIM,)),
              TOP: PolicyFeature(type=FeatureType.VISUAL, shape=(3, 224, 224)),
              WRIST: PolicyFeature(type=FeatureType.VISUAL, shape=(3, 224, 224))}
    outputs = {"action": PolicyFeature(type=FeatureType.ACTION, shape=(DIM,))}
    return PI0FastConfig(input_features=inputs, output_features=outputs, text_tokenizer_name=str(tok_dir),
                         action_tokenizer_name=str(fast_dir), **POLICY)


def raw_batch(task: str, images: dict, state: np.ndarray, action: np.ndarray | None = None) -> dict:
    import torch

    raw = {STATE: torch.from_numpy(state.copy()), "task": task}
    for cam, img in images.items():
        raw[f"observation.images.{cam}"] = torch.from_numpy(img).permute(2, 0, 1).float() / 255.0
    if action is not None:
        raw["action"] = torch.from_numpy(action.copy())[None]
    return raw


def fix_tokenizers(policy, pre) -> None:
    from lerobot.processor import ActionTokenizerProcessorStep

    gemma_flags(policy._paligemma_tokenizer)  # noqa: SLF001
    policy.model._paligemma_tokenizer = policy._paligemma_tokenizer  # noqa: SLF001
    for step in pre.steps:
        if isinstance(step, ActionTokenizerProcessorStep):
            gemma_flags(step._paligemma_tokenizer)  # noqa: SLF001


def train(policy, pre, samples: list[dict]) -> list[float]:
    import torch

    torch.manual_seed(TRAIN_SEED)
    batches = [pre(raw_batch(s["task"], s["images"], s["state"], s["raw_action"])) for s in samples]
    opt = torch.optim.AdamW(policy.parameters(), lr=LR, weight_decay=0.0)
    policy.train()
    losses = []
    for step in range(TRAIN_STEPS):
        opt.zero_grad()
        loss = sum(policy.forward(b)[0] for b in batches) / len(batches)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
        if step % 50 == 0:
            print(f"train step {step} loss {losses[-1]:.4f}", flush=True)
    policy.eval()
    return losses


def generate(policy, pre, post, task: str, images: dict, state: np.ndarray) -> dict:
    """LeRobot's inference, with the generated tokens recorded (KV-cache path; no-cache asserted equal)."""
    import torch

    model = policy.model
    seen = {}
    orig = model.sample_actions_fast_kv_cache

    def record(*args, **kwargs):
        seen["tokens"] = orig(*args, **kwargs).clone()
        return seen["tokens"]

    model.sample_actions_fast_kv_cache = record
    out: dict = {}
    try:
        with torch.inference_mode():
            batch = pre(raw_batch(task, images, state))
            try:
                chunk = policy.predict_action_chunk(batch)
                out.update(chunk=chunk.numpy(), actions=post(chunk).numpy(), error="")
            except AssertionError as exc:
                out["error"] = f"AssertionError: {str(exc)[:120]}"
            plain = model.sample_actions_fast(*policy._preprocess_images(batch),  # noqa: SLF001
                                              batch["observation.language.tokens"],
                                              batch["observation.language.attention_mask"],
                                              max_decoding_steps=policy.config.max_decoding_steps)
    finally:
        del model.sample_actions_fast_kv_cache
    assert torch.equal(plain, seen["tokens"]), "LeRobot's cached and uncached decoding differ"
    mask = batch["observation.language.attention_mask"][0]
    out.update(tokens=seen["tokens"][0].numpy(), lang_tokens=batch["observation.language.tokens"][0][mask].numpy(),
               state_norm=batch[STATE][0].numpy())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fast-code", required=True, type=Path,
                        help="folder with physical-intelligence/fast's processing_action_tokenizer.py")
    parser.add_argument("--out", default="test/fixtures/pi0fast")
    ns = parser.parse_args()

    import lerobot
    import scipy
    import tokenizers
    import torch
    import transformers
    from lerobot.policies.pi0_fast.modeling_pi0_fast import PI0FastPolicy
    from lerobot.policies.pi0_fast.processor_pi0_fast import make_pi0_fast_pre_post_processors
    from transformers.models.siglip import check

    if not check.check_whether_transformers_replace_is_installed_correctly():
        raise SystemExit("needs transformers 4.53.2 with openpi's transformers_replace (tools/lerobot_pi05_fixture.py)")
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    out = Path(ns.out).resolve()
    known = {"README.md", "tokenizer", "fast_tokenizer", "checkpoint", "reference.npz", "cases.json"}
    if out.exists() and not {p.name for p in out.iterdir()} <= known:
        raise SystemExit(f"{out} holds files this script did not make: refusing to replace it")
    tok_dir, fast_dir, ckpt = out / "tokenizer", out / "fast_tokenizer", out / "checkpoint"
    for p in (tok_dir, fast_dir, ckpt, out / "reference.npz", out / "cases.json"):
        shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
    tok_dir.mkdir(parents=True)

    tok_info = build_tokenizer(tok_dir, VOCAB_SIZE, PIECES)
    _, fast_info = build_fast(ns.fast_code, fast_dir, np.random.default_rng(FAST_SEED))
    install_tiny_patches()

    rng = np.random.default_rng(DATA_SEED)
    stats = {STATE: stats_for(STATE_STATS, rng), "action": stats_for(ACTION_STATS, rng)}
    config = make_config(tok_dir, fast_dir)
    torch.manual_seed(MODEL_SEED)
    policy = PI0FastPolicy(config)
    pre, post = make_pi0_fast_pre_post_processors(config, stats)
    fix_tokenizers(policy, pre)

    samples = []
    for case in CASES:
        images = {cam: smooth_image(rng, h, w) for cam, (h, w) in case["sizes"].items()}
        u = rng.uniform(0.05, 0.95, DIM).astype(np.float32)
        state = (stats[STATE]["mean"] + (u - 0.5) * 2 * stats[STATE]["std"]).astype(np.float32)
        norm_action = smooth_chunk(rng)
        raw_action = (stats["action"]["mean"] + norm_action * stats["action"]["std"]).astype(np.float32)
        samples.append({"task": case["task"], "images": images, "state": state, "raw_action": raw_action,
                        "norm_action": norm_action})
    losses = train(policy, pre, samples[:3])

    policy.save_pretrained(ckpt)
    pre.save_pretrained(ckpt)
    post.save_pretrained(ckpt)

    def hub_names(data):
        for key, local in (("text_tokenizer_name", tok_dir), ("action_tokenizer_name", fast_dir)):
            if data.get(key) == str(local):
                data[key] = HUB_TOKENIZER if key == "text_tokenizer_name" else HUB_FAST
        for step in data.get("steps", []):
            c = step.get("config", {})
            for key, value in list(c.items()):
                if value == str(tok_dir):
                    c[key] = HUB_TOKENIZER
                elif value == str(fast_dir):
                    c[key] = HUB_FAST

    for name in ("config.json", "policy_preprocessor.json"):
        rewrite_json(ckpt / name, hub_names)
    for f in ckpt.glob("*.json"):
        assert str(out) not in f.read_text() and "/tmp" not in f.read_text(), f"local path left in {f}"

    # reload as a user would (tokenizers pointed at the local copies), then record
    from lerobot.configs.policies import PreTrainedConfig
    from lerobot.processor import PolicyProcessorPipeline
    from lerobot.processor.converters import policy_action_to_transition, transition_to_policy_action

    built = {k: v.clone() for k, v in policy.state_dict().items()}
    cfg = PreTrainedConfig.from_pretrained(ckpt)
    cfg.text_tokenizer_name, cfg.action_tokenizer_name = str(tok_dir), str(fast_dir)
    policy = PI0FastPolicy.from_pretrained(ckpt, config=cfg, strict=True)
    differ = [k for k, v in policy.state_dict().items() if not torch.equal(v, built[k])]
    assert not differ, f"reloaded weights differ: {differ[:5]}"
    local = {"tokenizer_processor": {"tokenizer_name": str(tok_dir)},
             "action_tokenizer_processor": {"action_tokenizer_name": str(fast_dir),
                                            "paligemma_tokenizer_name": str(tok_dir)}}
    pre = PolicyProcessorPipeline.from_pretrained(ckpt, config_filename="policy_preprocessor.json", overrides=local)
    post = PolicyProcessorPipeline.from_pretrained(ckpt, config_filename="policy_postprocessor.json",
                                                   to_transition=policy_action_to_transition,
                                                   to_output=transition_to_policy_action)
    fix_tokenizers(policy, pre)
    shutil.rmtree(fast_dir / "__pycache__", ignore_errors=True)
    (fast_dir / "processing_action_tokenizer.py").unlink()
    pj = json.loads((fast_dir / "processor_config.json").read_text())
    tok = policy._paligemma_tokenizer  # noqa: SLF001

    arrays: dict[str, np.ndarray] = {}
    summary = []
    for i, (case, s) in enumerate(zip(CASES, samples)):
        res = generate(policy, pre, post, s["task"], s["images"], s["state"])
        again = generate(policy, pre, post, s["task"], s["images"], s["state"])
        assert np.array_equal(res["tokens"], again["tokens"]), f"case {i} is not deterministic"
        strings = tok.convert_ids_to_tokens(res["tokens"].tolist())
        end = strings.index("|") + 1 if "|" in strings else len(strings)
        p = f"c{i}_"
        arrays.update({p + f"img_{c}": img for c, img in s["images"].items()})
        arrays.update({p + "state": s["state"], p + "tokens": res["tokens"], p + "lang_tokens": res["lang_tokens"],
                       p + "state_norm": res["state_norm"]})
        if not res["error"]:
            arrays.update({p + "chunk": res["chunk"], p + "actions": res["actions"]})
        if i < 3:
            arrays[p + "target_norm_action"] = s["norm_action"]
        summary.append({"name": case["name"], "task": case["task"], "trained_on": i < 3,
                        "generated_until_end": strings[:end], "n_generated_until_end": end,
                        "lerobot_error": res["error"], "camera_sizes_hw": case["sizes"],
                        "actions_range": ([float(res["actions"].min()), float(res["actions"].max())]
                                          if not res["error"] else None)})
        print(case["name"], "error" if res["error"] else "ok", strings[:6], "...", end, "tokens", flush=True)
    assert all(not s["lerobot_error"] for s in summary[:3]), "training did not make the chunks decodable"

    # LeRobot's detokenisation on designed sequences (validate prefix on; all start with "Action:")
    c0 = arrays["c0_tokens"].tolist()
    body = c0[3: c0.index(tok.convert_tokens_to_ids("|"))]  # FAST tokens of case 0
    act = tok.encode("Action: ", add_special_tokens=False)
    bar, eos, pick = tok.convert_tokens_to_ids("|"), tok.eos_token_id, tok.convert_tokens_to_ids("pick")
    designed = {"as_generated": act + body + [bar, eos], "junk_after_end": act + body + [bar] + body[:5] + [pick],
                "prefix_repeated_inside": act + body[:4] + act + body[4:] + [bar],
                "short_padded": act + body[: max(1, len(body) // 2)] + [bar],
                "long_cut": act + body + body + [bar], "no_end_marker": act + body,
                "word_token_inside": act + body[:3] + [pick] + body[3:] + [bar]}
    detok = {}
    for name, ids in designed.items():
        chunk = policy.detokenize_actions(torch.tensor(ids), POLICY["n_action_steps"], DIM)
        arrays[f"d_{name}_ids"] = np.asarray(ids, np.int64)
        arrays[f"d_{name}_chunk"] = chunk.numpy()
        detok[name] = {"n_ids": len(ids), "all_zero": bool(not chunk.abs().max())}
    np.savez_compressed(out / "reference.npz", **arrays)
    meta = {
        "versions": {"lerobot": lerobot.__version__, "transformers": transformers.__version__,
                     "torch": torch.__version__, "numpy": np.__version__, "tokenizers": tokenizers.__version__,
                     "scipy": scipy.__version__},
        "seeds": {"model": MODEL_SEED, "train": TRAIN_SEED, "data": DATA_SEED, "fast_fit": FAST_SEED},
        "architecture": {"vocab_size": VOCAB_SIZE, "vlm": TINY_GEMMA["gemma_2b"], "expert": TINY_GEMMA["gemma_300m"],
                         "vision": {**TINY_VISION, "patch_size": 14}},
        "policy": POLICY, "train": {"steps": TRAIN_STEPS, "lr": LR, "first_loss": losses[0], "last_loss": losses[-1]},
        "tokenizer": tok_info, "fast_tokenizer": {**fast_info, "processor_config": pj},
        "stats": {k: {n: v.tolist() for n, v in d.items()} for k, d in stats.items()},
        "cases": summary, "detokenise": detok,
        "npz_keys": {k: [list(v.shape), str(v.dtype)] for k, v in arrays.items()},
    }
    (out / "cases.json").write_text(json.dumps(meta, indent=1) + "\n")
    print("wrote", out, "losses", losses[0], losses[-1])


if __name__ == "__main__":
    main()
