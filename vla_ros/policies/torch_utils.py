"""What the torch backends share: device/dtype/thread selection and checkpoint-path parameters."""

from __future__ import annotations

from pathlib import Path

from ..params import ParamSpec
from .base import Policy, PolicyContext

DEVICES = ("auto", "cpu", "cuda")
DTYPES = ("auto", "float32", "bfloat16", "float16")


def pick_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but torch sees no CUDA device")
    return device


def pick_dtype(dtype: str, device: str):
    """``auto``: bfloat16 on CUDA, float32 on the CPU."""
    import torch

    if dtype == "auto":
        return torch.bfloat16 if device == "cuda" else torch.float32
    return getattr(torch, dtype)


def set_threads(threads: int) -> int:
    """Intra-op CPU threads (0: auto = half the cores, 1 to 8). Backends infer on a worker thread, where
    OpenMP teams of several threads slow tiny models down on small machines (measured 1.8x on 2 cores)."""
    import os

    import torch

    n = threads if threads > 0 else max(1, min(8, (os.cpu_count() or 2) // 2))
    torch.set_num_threads(n)
    return n


def require_model_path(path: str, backend: str) -> str:
    """A local directory or a hub id; a clear error when neither is given."""
    if not path:
        raise ValueError(f"{backend}.model_path is empty: give a local checkpoint directory or a hub id")
    local = Path(path).expanduser()
    return str(local) if local.exists() else path


def load_checked(cls, path: str, unused_ok: tuple[str, ...] = (), **kwargs):
    """``cls.from_pretrained(path)``, refused (PolicyError naming the keys) when the checkpoint's weights leave a
    model parameter uninitialised, go unused or do not fit: such a model runs with random layers (a pi0.5
    checkpoint loaded as pi0 did, without an error). Unused weights whose names start with ``unused_ok`` (the
    statistics buffers of LeRobot < 0.4, read elsewhere) are expected."""
    from .base import PolicyError

    model, info = cls.from_pretrained(path, output_loading_info=True, **kwargs)
    problems = []
    for kind, what in (("missing_keys", "parameters the checkpoint does not hold (left random)"),
                       ("unexpected_keys", "weights no parameter takes"), ("mismatched_keys", "shape mismatches"),
                       ("error_msgs", "errors")):
        keys = sorted(str(k[0] if isinstance(k, tuple) else k) for k in (info.get(kind) or []))
        if kind == "unexpected_keys":
            keys = [k for k in keys if not unused_ok or not k.startswith(unused_ok)]
        if keys:
            problems.append(f"{len(keys)} {what}: {', '.join(keys[:6])}{', ...' if len(keys) > 6 else ''}")
    if problems:
        names = " ".join(str(k) for kind in ("missing_keys", "unexpected_keys") for k in info.get(kind) or [])
        hint = (" The keys are pi0.5's (adaRMS time conditioning): this is a pi0.5 checkpoint; run it with "
                "policy:=pi05." if "time_mlp" in names or "adarms" in names.lower() else "")
        raise PolicyError(f"{path} does not fit {cls.__name__}: {'; '.join(problems)}.{hint}")
    return model


class TorchPolicy(Policy):
    """A backend whose model loads with ``from_pretrained``; subclasses add their own PARAMS."""

    TORCH_PARAMS = [
        ParamSpec("model_path", "", "Checkpoint directory or hub id (from_pretrained)"),
        ParamSpec("device", "auto", "Torch device", choices=DEVICES),
        ParamSpec("dtype", "auto", "Weights dtype (auto: bfloat16 on CUDA, float32 on CPU)", choices=DTYPES),
        ParamSpec("threads", 0, "Torch CPU threads (0: half the cores, at most 8)", min=0, max=256),
    ]

    @classmethod
    def preflight(cls, options: dict, robot, node: dict | None = None) -> str:
        path = str(options.get("model_path", ""))
        if not path:
            return (f"policy {cls.name!r} needs a checkpoint: set {cls.name}.model_path (a local checkpoint directory "
                    f"or a hub id) in a params_file, e.g. policy_node: {{ros__parameters: {{{cls.name}: {{model_path: "
                    "/models/my_checkpoint}}}")
        local = Path(path).expanduser()
        if (path.startswith(("/", ".", "~")) or local.exists()) and not (local / "config.json").exists():
            return f"{cls.name}.model_path {path!r} holds no checkpoint (no config.json there)"
        return ""

    def __init__(self, context: PolicyContext):
        super().__init__(context)
        import torch

        self.torch = torch
        self.model_path = require_model_path(self.options["model_path"], self.name)
        set_threads(int(self.options["threads"]))
        self.device = pick_device(self.options["device"])
        self.dtype = pick_dtype(self.options["dtype"], self.device)
