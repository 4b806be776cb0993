"""Build typed dataclasses from YAML mappings, naming the file and key of anything wrong.

``load(cls, data, source)`` accepts exactly the fields of ``cls`` (nested dataclasses, lists, dicts,
``X | None``, numbers, strings, booleans); an unknown key, a missing required key or a value of the
wrong type raises :class:`ConfigError` with ``<file>: <key.path>: <what>``.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, get_type_hints


class ConfigError(ValueError):
    """A configuration file does not fit its schema."""


def _fail(source: str, key: str, what: str) -> ConfigError:
    return ConfigError(f"{source}: {key or '<top level>'}: {what}")


def _describe(value: Any) -> str:
    return f"{value!r} ({type(value).__name__})"


def _convert(tp: Any, value: Any, source: str, key: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None and len(options) < len(typing.get_args(tp)):
            return None
        return _convert(options[0], value, source, key)
    if tp is Any:
        return value
    if dataclasses.is_dataclass(tp):
        return load(tp, value, source, key)
    if origin is list:
        if not isinstance(value, list):
            raise _fail(source, key, f"expected a list, got {_describe(value)}")
        (item,) = typing.get_args(tp)
        return [_convert(item, v, source, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise _fail(source, key, f"expected a mapping, got {_describe(value)}")
        _, item = typing.get_args(tp)
        return {str(k): _convert(item, v, source, f"{key}.{k}") for k, v in value.items()}
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _fail(source, key, f"expected a number, got {_describe(value)}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _fail(source, key, f"expected an integer, got {_describe(value)}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise _fail(source, key, f"expected true or false, got {_describe(value)}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise _fail(source, key, f"expected a string, got {_describe(value)}")
        return value
    raise TypeError(f"unsupported schema type {tp!r} for {key}")


def load(cls: type, data: Any, source: str, key: str = "") -> Any:
    """An instance of dataclass ``cls`` from mapping ``data`` (``source``: the file, for messages)."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise _fail(source, key, f"expected a mapping, got {_describe(data)}")
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init and not f.name.startswith("_")}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        where = f"{key}.{unknown[0]}" if key else str(unknown[0])
        raise _fail(source, where, f"unknown key (known: {', '.join(sorted(fields))})")
    values = {}
    for name, f in fields.items():
        where = f"{key}.{name}" if key else name
        if name in data:
            values[name] = _convert(hints[name], data[name], source, where)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise _fail(source, where, "required key is missing")
    try:
        return cls(**values)
    except ConfigError:
        raise
    except (ValueError, TypeError) as exc:  # a dataclass's own checks: "<field>: <what>"
        raise ConfigError(f"{source}: {key + '.' if key else ''}{exc}") from exc
