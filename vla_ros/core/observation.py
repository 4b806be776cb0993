"""Observations for policies, and the buffer that assembles them from the newest inputs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


class MissingInput(RuntimeError):
    """An observation cannot be built: an input is missing or stale."""


@dataclass
class Observation:
    """What a backend sees: images by model key (HxWx3 uint8), state in the preset's joint order."""

    stamp: float
    state: np.ndarray
    images: dict[str, np.ndarray] = field(default_factory=dict)
    instruction: str = ""
    extras: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Stamped:
    value: Any
    stamp: float


class ObservationBuffer:
    """Keeps the newest value and capture stamp of each input and builds an :class:`Observation`."""

    def __init__(self, image_keys: list[str], max_age: float):
        self.image_keys = list(image_keys)
        self.max_age = max_age
        self._images: dict[str, _Stamped] = {}
        self._state: _Stamped | None = None
        self._extras: dict[str, _Stamped] = {}

    def set_image(self, key: str, image: np.ndarray, stamp: float) -> None:
        self._images[key] = _Stamped(image, stamp)

    def set_state(self, state: np.ndarray, stamp: float) -> None:
        self._state = _Stamped(state, stamp)

    def set_extra(self, key: str, value: Any, stamp: float) -> None:
        self._extras[key] = _Stamped(value, stamp)

    def clear(self) -> None:
        self._images.clear()
        self._extras.clear()
        self._state = None

    def build(self, now: float, instruction: str, use_images: bool, extra_keys: tuple[str, ...] = ()) -> Observation:
        """The newest inputs; the stamp is the oldest capture time among the inputs used.

        Raises :class:`MissingInput` naming every missing or stale input.
        """
        problems: list[str] = []
        used: list[_Stamped] = []

        def take(label: str, item: _Stamped | None) -> None:
            if item is None:
                problems.append(f"{label}: no data yet")
            elif now - item.stamp > self.max_age:
                problems.append(f"{label}: stale ({now - item.stamp:.3f} s old > {self.max_age:.3f} s)")
            elif item.stamp - now > self.max_age:  # another clock, or from before the clock went back
                problems.append(f"{label}: stamped {item.stamp - now:.3f} s in the future")
            else:
                used.append(item)

        take("joint state", self._state)
        if use_images:
            for key in self.image_keys:
                take(f"image {key!r}", self._images.get(key))
        for key in extra_keys:
            take(f"input {key!r}", self._extras.get(key))
        if problems:
            raise MissingInput("; ".join(problems))
        images = {k: self._images[k].value for k in self.image_keys if k in self._images} if use_images else {}
        return Observation(
            stamp=min(item.stamp for item in used),
            state=np.array(self._state.value, dtype=float),
            images=images,
            instruction=instruction,
            extras={k: self._extras[k].value for k in extra_keys},
        )
