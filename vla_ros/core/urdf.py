"""A small URDF reader: links, joints, limits, inertials and primitive geometry.

It is the single description that the kinematics helpers and the MuJoCo scene builder share.
Meshes are not supported on purpose: the package's descriptions use primitives so that they load
anywhere without extra assets.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class Geometry:
    """A primitive shape (box: size = full extents; cylinder: radius, length; sphere: radius)."""

    kind: str
    size: tuple[float, ...]
    xyz: np.ndarray
    rpy: np.ndarray
    rgba: tuple[float, float, float, float] | None = None


@dataclass
class Inertial:
    mass: float
    xyz: np.ndarray
    rpy: np.ndarray
    inertia: np.ndarray  # 3x3 in the inertial frame


@dataclass
class Link:
    name: str
    inertial: Inertial | None = None
    visuals: list[Geometry] = field(default_factory=list)
    collisions: list[Geometry] = field(default_factory=list)


@dataclass
class Joint:
    name: str
    type: str
    parent: str
    child: str
    xyz: np.ndarray
    rpy: np.ndarray
    axis: np.ndarray
    lower: float = -np.inf
    upper: float = np.inf
    velocity: float = np.inf
    effort: float = np.inf
    damping: float = 0.0
    friction: float = 0.0
    mimic: tuple[str, float, float] | None = None  # (joint, multiplier, offset)

    @property
    def movable(self) -> bool:
        return self.type in ("revolute", "continuous", "prismatic")


@dataclass
class UrdfModel:
    name: str
    links: dict[str, Link]
    joints: list[Joint]
    materials: dict[str, tuple[float, float, float, float]]

    def joint(self, name: str) -> Joint:
        for j in self.joints:
            if j.name == name:
                return j
        raise KeyError(f"no joint {name!r} in URDF {self.name!r}")

    @property
    def root(self) -> str:
        children = {j.child for j in self.joints}
        roots = [name for name in self.links if name not in children]
        if len(roots) != 1:
            raise ValueError(f"URDF {self.name!r} has {len(roots)} root links: {roots}")
        return roots[0]

    def child_joints(self, link: str) -> list[Joint]:
        return [j for j in self.joints if j.parent == link]

    def path(self, base: str, tip: str) -> list[Joint]:
        """Joints from ``base`` down to ``tip`` (tip must be a descendant of base)."""
        by_child = {j.child: j for j in self.joints}
        chain: list[Joint] = []
        link = tip
        while link != base:
            if link not in by_child:
                raise ValueError(f"{tip!r} is not below {base!r} in URDF {self.name!r}")
            joint = by_child[link]
            chain.append(joint)
            link = joint.parent
        return chain[::-1]


def _vec(text: str | None, default: tuple[float, ...] = (0.0, 0.0, 0.0)) -> np.ndarray:
    return np.array([float(v) for v in text.split()]) if text else np.array(default, dtype=float)


def _origin(elem: ET.Element | None) -> tuple[np.ndarray, np.ndarray]:
    if elem is None:
        return np.zeros(3), np.zeros(3)
    return _vec(elem.get("xyz")), _vec(elem.get("rpy"))


def _geometry(elem: ET.Element, materials: dict) -> Geometry | None:
    xyz, rpy = _origin(elem.find("origin"))
    geom = elem.find("geometry")
    if geom is None or len(geom) == 0:
        return None
    shape = geom[0]
    if shape.tag == "box":
        size = tuple(_vec(shape.get("size")))
    elif shape.tag == "cylinder":
        size = (float(shape.get("radius")), float(shape.get("length")))
    elif shape.tag == "sphere":
        size = (float(shape.get("radius")),)
    else:
        raise ValueError(f"unsupported URDF geometry <{shape.tag}> (primitives only)")
    rgba = None
    mat = elem.find("material")
    if mat is not None:
        color = mat.find("color")
        rgba = tuple(_vec(color.get("rgba"))) if color is not None else materials.get(mat.get("name"))
    return Geometry(shape.tag, size, xyz, rpy, rgba)


def parse_urdf(source: str | Path) -> UrdfModel:
    """Parse a URDF file path or XML string."""
    text = Path(source).read_text() if not str(source).lstrip().startswith("<") else str(source)
    root = ET.fromstring(text)
    materials = {}
    for mat in root.findall("material"):
        color = mat.find("color")
        if color is not None:
            materials[mat.get("name")] = tuple(_vec(color.get("rgba")))
    links: dict[str, Link] = {}
    for le in root.findall("link"):
        link = Link(le.get("name"))
        ie = le.find("inertial")
        if ie is not None:
            xyz, rpy = _origin(ie.find("origin"))
            i = ie.find("inertia")
            g = {k: float(i.get(k, 0.0)) for k in ("ixx", "ixy", "ixz", "iyy", "iyz", "izz")}
            tensor = np.array(
                [[g["ixx"], g["ixy"], g["ixz"]], [g["ixy"], g["iyy"], g["iyz"]], [g["ixz"], g["iyz"], g["izz"]]]
            )
            link.inertial = Inertial(float(ie.find("mass").get("value")), xyz, rpy, tensor)
        link.visuals = [g for g in (_geometry(v, materials) for v in le.findall("visual")) if g]
        link.collisions = [g for g in (_geometry(c, materials) for c in le.findall("collision")) if g]
        links[link.name] = link
    joints = []
    for je in root.findall("joint"):
        xyz, rpy = _origin(je.find("origin"))
        axis_e = je.find("axis")
        axis = _vec(axis_e.get("xyz")) if axis_e is not None else np.array([1.0, 0.0, 0.0])
        j = Joint(je.get("name"), je.get("type"), je.find("parent").get("link"), je.find("child").get("link"),
                  xyz, rpy, axis / np.linalg.norm(axis))
        lim = je.find("limit")
        if lim is not None:
            if j.type != "continuous":
                j.lower = float(lim.get("lower", -np.inf))
                j.upper = float(lim.get("upper", np.inf))
            j.velocity = float(lim.get("velocity", np.inf))
            j.effort = float(lim.get("effort", np.inf))
        dyn = je.find("dynamics")
        if dyn is not None:
            j.damping = float(dyn.get("damping", 0.0))
            j.friction = float(dyn.get("friction", 0.0))
        mim = je.find("mimic")
        if mim is not None:
            j.mimic = (mim.get("joint"), float(mim.get("multiplier", 1.0)), float(mim.get("offset", 0.0)))
        joints.append(j)
    return UrdfModel(root.get("name"), links, joints, materials)
