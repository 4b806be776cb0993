"""Build a MuJoCo MJCF scene (robot from its URDF, table, cubes, cameras) from a robot preset."""

from __future__ import annotations

from xml.sax.saxutils import quoteattr

import numpy as np

from ..core.transforms import look_at, matrix_to_quat_wxyz, rpy_to_matrix
from ..core.urdf import Geometry, Link, UrdfModel
from ..robots import CameraSimSpec, RobotPreset, TaskSpec
from .perturb import distractor_xml

ROBOT_CONTACT = 'contype="2" conaffinity="1"'  # robot geoms touch the world and objects, not each other
WORLD_CONTACT = 'contype="1" conaffinity="3"'


def _fmt(values) -> str:
    return " ".join(f"{float(v):.6g}" for v in values)


def _quat(rpy) -> str:
    return _fmt(matrix_to_quat_wxyz(rpy_to_matrix(rpy)))


def _geom_xml(geom: Geometry, rgba, name: str) -> str:
    if geom.kind == "box":
        size = np.asarray(geom.size) / 2.0
        kind = "box"
    elif geom.kind == "cylinder":
        size = (geom.size[0], geom.size[1] / 2.0)
        kind = "cylinder"
    else:
        size = geom.size
        kind = "sphere"
    color = rgba or (0.5, 0.5, 0.5, 1.0)
    return (f'<geom name={quoteattr(name)} type="{kind}" size="{_fmt(size)}" pos="{_fmt(geom.xyz)}" '
            f'quat="{_quat(geom.rpy)}" rgba="{_fmt(color)}" {ROBOT_CONTACT}/>')


def _link_xml(model: UrdfModel, link: Link, fixed: set[str], indent: str,
              attached: dict[str, list[str]] | None = None) -> list[str]:
    """The body content of ``link`` and its subtree; ``attached``: extra elements per link (wrist cameras)."""
    attached = attached or {}
    out = [indent + line for line in attached.get(link.name, [])]
    if link.inertial is not None:
        inr = link.inertial
        diag = np.maximum(np.diag(inr.inertia), 1e-9)
        out.append(f'{indent}<inertial pos="{_fmt(inr.xyz)}" quat="{_quat(inr.rpy)}" mass="{inr.mass:.6g}" '
                   f'diaginertia="{_fmt(diag)}"/>')
    for i, geom in enumerate(link.collisions):
        rgba = link.visuals[i].rgba if i < len(link.visuals) else None
        out.append(indent + _geom_xml(geom, rgba, f"{link.name}/geom{i}"))
    for joint in model.child_joints(link.name):
        child = model.links[joint.child]
        out.append(f'{indent}<body name={quoteattr(child.name)} pos="{_fmt(joint.xyz)}" quat="{_quat(joint.rpy)}" '
                   f'gravcomp="1">')
        if joint.movable and joint.name not in fixed:
            kind = "slide" if joint.type == "prismatic" else "hinge"
            rng = f' range="{joint.lower:.6g} {joint.upper:.6g}"' if np.isfinite(joint.lower) else ""
            out.append(f'{indent}  <joint name="{joint.name}" type="{kind}" axis="{_fmt(joint.axis)}"{rng} '
                       f'damping="{joint.damping:.6g}" frictionloss="{joint.friction:.6g}"/>')
        out.extend(_link_xml(model, child, fixed, indent + "  ", attached))
        out.append(f"{indent}</body>")
    return out


def camera_quat(spec: CameraSimSpec) -> np.ndarray:
    return matrix_to_quat_wxyz(look_at(np.array(spec.pos), np.array(spec.lookat), np.array(spec.up, float)))


def _camera_xml(cam) -> str:
    return (f'<camera name="{cam.name}" pos="{_fmt(cam.sim.pos)}" quat="{_fmt(camera_quat(cam.sim))}" '
            f'fovy="{cam.sim.fovy}"/>')


def build_mjcf(robot: RobotPreset, distractors: bool = False) -> str:
    """MJCF text for the robot preset's simulated scene (``distractors``: with the two distractor objects of
    the ``distractors`` evaluation condition)."""
    if robot.sim is None:
        raise ValueError(f"robot preset {robot.name!r} has no sim section")
    sim, task = robot.sim, robot.task or TaskSpec()
    model = robot.urdf_model
    fixed = set(sim.fixed_joints)
    timestep = 1.0 / sim.physics_rate
    armature = sim.armature
    tx, ty = sim.table.center
    sx, sy = np.asarray(sim.table.size) / 2.0
    th = sim.table.thickness / 2.0
    width = max([c.width for c in robot.cameras] + [640])
    height = max([c.height for c in robot.cameras] + [480])

    lines = [
        f'<mujoco model="{robot.name}_scene">',
        '  <compiler angle="radian" autolimits="true"/>',
        f'  <option timestep="{timestep:.6g}" cone="elliptic" impratio="10" integrator="implicitfast"/>',
        f'  <visual><quality offsamples="0" shadowsize="0"/><global offwidth="{width}" offheight="{height}"/>'
        '<headlight ambient="0.45 0.45 0.45" diffuse="0.5 0.5 0.5"/></visual>',
        f'  <default><joint armature="{armature:.6g}"/>'
        '<geom friction="1.2 0.01 0.0002" solref="0.01 1" solimp="0.95 0.99 0.001"/></default>',
        "  <asset>",
        '    <texture name="grid" type="2d" builtin="checker" rgb1="0.35 0.37 0.4" rgb2="0.3 0.32 0.35" '
        'width="256" height="256"/>',
        '    <material name="floor" texture="grid" texrepeat="6 6"/>',
        '    <texture name="wood" type="2d" builtin="flat" rgb1="0.62 0.5 0.36" width="64" height="64" '
        'mark="random" random="0.05" markrgb="0.55 0.44 0.3"/>',
        '    <material name="table" texture="wood"/>',
        "  </asset>",
        "  <worldbody>",
        '    <light pos="0.3 -0.3 1.6" dir="0 0.2 -1" diffuse="0.6 0.6 0.6" castshadow="false"/>',
        f'    <geom name="floor" type="plane" size="3 3 0.1" pos="0 0 -0.75" material="floor" {WORLD_CONTACT}/>',
        f'    <geom name="table" type="box" size="{sx:.6g} {sy:.6g} {th:.6g}" pos="{tx:.6g} {ty:.6g} {-th:.6g}" '
        f'material="table" {WORLD_CONTACT}/>',
    ]
    in_world = model.root == "world"  # (a multi-arm description's root is MuJoCo's own world body)
    if not in_world:
        lines.append(f'    <body name={quoteattr(model.root)} pos="0 0 0">')
    attached: dict[str, list[str]] = {}
    for cam in robot.cameras:
        if cam.sim and cam.sim.body:
            if cam.sim.body not in model.links:
                raise ValueError(f"camera {cam.name!r}: body {cam.sim.body!r} is not a link of {robot.urdf}")
            attached.setdefault(cam.sim.body, []).append(_camera_xml(cam))
    lines.extend(_link_xml(model, model.links[model.root], fixed, "    " if in_world else "      ", attached))
    if not in_world:
        lines.append("    </body>")
    half = task.cube_size / 2.0
    mass = task.cube_mass
    for i, (name, rgba) in enumerate(task.objects.items()):
        lines.append(f'    <body name="{name}" pos="{0.3 + 0.1 * i:.3f} 0.3 {half:.4f}"><freejoint name="{name}"/>'
                     f'<geom name="{name}" type="box" size="{half} {half} {half}" mass="{mass}" rgba="{_fmt(rgba)}" '
                     f'condim="4" {WORLD_CONTACT}/></body>')
    if distractors:
        lines.extend(distractor_xml(WORLD_CONTACT))
    for cam in robot.cameras:
        if cam.sim and not cam.sim.body:
            lines.append("    " + _camera_xml(cam))
    lines.append("  </worldbody>")
    mimics = [j for j in model.joints if j.mimic and j.name not in fixed]
    if mimics:
        lines.append("  <equality>")
        for j in mimics:
            src, mult, off = j.mimic
            lines.append(f'    <joint joint1="{j.name}" joint2="{src}" polycoef="{off:.6g} {mult:.6g} 0 0 0" '
                         'solref="0.005 1"/>')
        lines.append("  </equality>")
    lines.append("  <actuator>")
    for name, gains in sim.actuators.items():
        j = model.joint(name)
        force = f' forcerange="{-j.effort:.6g} {j.effort:.6g}"' if np.isfinite(j.effort) else ""
        lines.append(f'    <position name="{name}" joint="{name}" kp="{gains.kp}" kv="{gains.kv}" '
                     f'ctrlrange="{j.lower:.6g} {j.upper:.6g}"{force}/>')
    lines.append("  </actuator>")
    lines.append("</mujoco>")
    return "\n".join(lines) + "\n"
