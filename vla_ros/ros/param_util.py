"""Declare parameters from the tables in :mod:`vla_ros.params` and read them back."""

from __future__ import annotations

from typing import Any

from rcl_interfaces.msg import (
    FloatingPointRange,
    IntegerRange,
    ParameterDescriptor,
    ParameterType,
    SetParametersResult,
)
from rclpy.exceptions import ParameterUninitializedException
from rclpy.node import Node
from rclpy.parameter import Parameter

from ..params import ParamSpec

_TYPES = {
    "bool": ParameterType.PARAMETER_BOOL,
    "int": ParameterType.PARAMETER_INTEGER,
    "double": ParameterType.PARAMETER_DOUBLE,
    "string": ParameterType.PARAMETER_STRING,
    "string_array": ParameterType.PARAMETER_STRING_ARRAY,
    "double_array": ParameterType.PARAMETER_DOUBLE_ARRAY,
    "integer_array": ParameterType.PARAMETER_INTEGER_ARRAY,
    "bool_array": ParameterType.PARAMETER_BOOL_ARRAY,
}
_EMPTY = {
    "string_array": Parameter.Type.STRING_ARRAY,
    "double_array": Parameter.Type.DOUBLE_ARRAY,
    "integer_array": Parameter.Type.INTEGER_ARRAY,
    "bool_array": Parameter.Type.BOOL_ARRAY,
}


def _descriptor(spec: ParamSpec, prefix: str) -> ParameterDescriptor:
    desc = spec.description
    if spec.choices:
        desc += f" (one of: {', '.join(spec.choices)})"
    d = ParameterDescriptor(name=prefix + spec.name, type=_TYPES[spec.kind], description=desc,
                            read_only=False, dynamic_typing=False)
    if spec.kind == "double" and (spec.min is not None or spec.max is not None):
        d.floating_point_range = [FloatingPointRange(from_value=float(spec.min), to_value=float(spec.max), step=0.0)]
    if spec.kind == "int" and (spec.min is not None or spec.max is not None):
        d.integer_range = [IntegerRange(from_value=int(spec.min), to_value=int(spec.max), step=1)]
    return d


def declare(node: Node, specs: list[ParamSpec], prefix: str = "") -> dict[str, Any]:
    """Declare ``specs`` (names prefixed) and return their values; raises ValueError on a bad choice."""
    values = {}
    for spec in specs:
        name = prefix + spec.name
        default = _EMPTY[spec.kind] if isinstance(spec.default, (list, tuple)) and not spec.default else spec.default
        node.declare_parameter(name, default, _descriptor(spec, prefix))
        try:
            value = node.get_parameter(name).value
        except ParameterUninitializedException:
            value = []
        if spec.choices and value not in spec.choices:
            raise ValueError(f"parameter {name}={value!r} must be one of {list(spec.choices)}")
        values[spec.name] = list(value) if isinstance(value, (list, tuple)) else value
    return values


def choice_guard(specs: list[ParamSpec], prefix: str = ""):
    """An on-set-parameters callback rejecting values outside ``choices`` and changes to static params."""
    by_name = {prefix + s.name: s for s in specs}

    def callback(params: list[Parameter]) -> SetParametersResult:
        for p in params:
            spec = by_name.get(p.name)
            if spec is None:
                continue
            if not spec.dynamic:
                return SetParametersResult(successful=False, reason=f"{p.name} cannot change at run time")
            if spec.choices and p.value not in spec.choices:
                return SetParametersResult(successful=False, reason=f"{p.name} must be one of {list(spec.choices)}")
        return SetParametersResult(successful=True)

    return callback
