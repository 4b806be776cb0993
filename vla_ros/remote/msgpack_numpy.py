"""msgpack with numpy arrays, wire-compatible with openpi-client's ``msgpack_numpy``.

An ndarray travels as ``{b"__ndarray__": True, b"data": bytes, b"dtype": dtype.str, b"shape": shape}``,
a numpy scalar as ``{b"__npgeneric__": True, b"data": item, b"dtype": dtype.str}``. Void, object and
complex dtypes are refused.
"""

from __future__ import annotations

from typing import Any

import msgpack
import numpy as np

_REFUSED = ("V", "O", "c")


def _default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind in _REFUSED:
            raise TypeError(f"unsupported dtype {obj.dtype}")
        return {b"__ndarray__": True, b"data": np.ascontiguousarray(obj).tobytes(), b"dtype": obj.dtype.str,
                b"shape": obj.shape}
    if isinstance(obj, np.generic):
        if obj.dtype.kind in _REFUSED:
            raise TypeError(f"unsupported dtype {obj.dtype}")
        return {b"__npgeneric__": True, b"data": obj.item(), b"dtype": obj.dtype.str}
    raise TypeError(f"cannot serialise {type(obj).__name__}")


def _dtype(obj: dict) -> np.dtype:
    """The declared dtype, refused (ValueError) when it could carry objects: never unpickled or trusted."""
    dtype = np.dtype(obj[b"dtype"])
    if dtype.kind in _REFUSED or dtype.hasobject:
        raise ValueError(f"refused dtype {dtype}")
    return dtype


def _object_hook(obj: dict) -> Any:
    if b"__ndarray__" in obj:
        return np.ndarray(buffer=obj[b"data"], dtype=_dtype(obj), shape=tuple(obj[b"shape"]))
    if b"__npgeneric__" in obj:
        return _dtype(obj).type(obj[b"data"])
    return obj


def packb(obj: Any) -> bytes:
    return msgpack.packb(obj, default=_default)


def unpackb(data: bytes) -> Any:
    return msgpack.unpackb(data, object_hook=_object_hook)
