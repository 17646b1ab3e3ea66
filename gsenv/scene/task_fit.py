"""What a task needs of a scene bundle, and the check that a bundle gives it, made where a bundle is
loaded for the env (gsenv.scene.resolve) and before `gsenv scene build` builds one.

A bundle can be well-formed and still wrong for the task: a body the physics simulates but the bundle
does not draw is invisible in every image while the robot still collides with it; a robot
description without the joints the task drives fails only inside a physics worker. `TaskNeeds` names
what a task needs; `task_needs(task)` derives it from the task's declaration (gsenv.tasks.Task: its
objects; the robot's links and joints are every task's).
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from gsenv.scene.bundle import SceneBundle
from gsenv.scene.format import MANIFEST, SceneError, camera_problems
from gsenv.sim import names
from gsenv.tasks import get_task

__all__ = ["objects_of_task", "background_within_heights",
           "MOVABLE_JOINT_TYPES", "TaskNeeds", "task_needs", "DEFAULT_TASK_NEEDS", "urdf_problems",
           "bundle_problems", "check_bundle_for_task"]

MOVABLE_JOINT_TYPES = ("revolute", "continuous", "prismatic")


@dataclass(frozen=True)
class TaskNeeds:
    """The bodies a task simulates and the robot joints it drives."""

    task: str
    """The task's name, for messages."""
    drawn_links: tuple[str, ...]
    """Robot links with geometry: the bundle must carry gaussians for each."""
    objects: tuple[str, ...]
    """Objects the task simulates: the bundle must carry gaussians for each."""
    joints: tuple[str, ...]
    """Joints the task's controllers drive: the robot description must have them, movable."""
    frames: tuple[str, ...]
    """Links the task reads (drawn or not, e.g. the TCP): the robot description must have them."""


def task_needs(task=None) -> TaskNeeds:
    """What ``task`` (a gsenv.tasks.Task or its name; None: the default task) needs of a bundle: the FR3's
    drawn links, joints and TCP frame, and gaussians for each of the task's objects."""
    task = get_task(task)
    return TaskNeeds(
        task=task.name,
        drawn_links=names.ROBOT_VISUAL_LINK_NAMES,
        objects=tuple(task.objects),
        joints=names.JOINT_NAMES,
        frames=(*names.ROBOT_VISUAL_LINK_NAMES, names.TCP_LINK),
    )


DEFAULT_TASK_NEEDS = task_needs()
"""What the default task (gsenv.tasks.DEFAULT_TASK) needs: the default of the checks below."""


def urdf_problems(urdf: str | Path, needs: TaskNeeds = DEFAULT_TASK_NEEDS, shown_as: str | None = None) -> list[str]:
    """What the robot description at urdf lacks of needs (joints the task drives, links it reads);
    shown_as: how messages name the file (default: its path)."""
    shown = shown_as or str(urdf)
    try:
        root = ET.parse(urdf).getroot()
    except (OSError, ET.ParseError) as exc:
        return [f"{shown}: not a readable URDF ({exc})"]
    movable = [j.get("name") for j in root.iter("joint") if j.get("type") in MOVABLE_JOINT_TYPES]
    links = {el.get("name") for el in root.iter("link")}
    problems = []
    lacking = [j for j in needs.joints if j not in movable]
    if lacking:
        problems.append(f"{shown} lacks the joints task {needs.task} drives: {', '.join(lacking)} (its movable "
                        f"joints: {', '.join(movable) or 'none'})")
    lacking = [link for link in needs.frames if link not in links]
    if lacking:
        problems.append(f"{shown} lacks the links task {needs.task} reads: {', '.join(lacking)}; a robot "
                        "description for gsenv uses the names of gsenv.sim.names")
    return problems


def _body_problems(key: str, have: dict, wanted: tuple[str, ...], needs: TaskNeeds, where: str) -> list[str]:
    """One line for the bodies missing from have (one or several), one per body without gaussians."""
    problems = []
    missing = [body for body in wanted if body not in have]
    has = ", ".join(sorted(have)) or "none"
    if len(missing) == 1:
        problems.append(f"{key}.{missing[0]}: missing: task {needs.task} simulates it, so the bundle must draw it "
                        f"(add its PLY under {where}; the bundle has {has})")
    elif missing:
        problems.append(f"{key}: {', '.join(missing)} missing: task {needs.task} simulates them, so the bundle "
                        f"must draw them (add their PLYs under {where}; the bundle has {has})")
    problems += [f"{key}.{body}: has no gaussians: task {needs.task} draws it (its PLY is empty)"
                 for body in wanted if body in have and len(have[body]) == 0]
    return problems


def bundle_problems(bundle: SceneBundle, needs: TaskNeeds = DEFAULT_TASK_NEEDS) -> list[str]:
    """Everything the bundle lacks for the task: joints or links missing from its robot description
    (when it brings one), bodies without gaussians, invalid cameras. Paths as scene.json's."""
    problems = []
    if bundle.robot_urdf is not None:
        urdf = Path(bundle.robot_urdf)
        shown = str(urdf)
        if bundle.root is not None and urdf.resolve().is_relative_to(Path(bundle.root).resolve()):
            shown = str(urdf.resolve().relative_to(Path(bundle.root).resolve()))
        problems += [f"robot.urdf: {p}" for p in urdf_problems(urdf, needs, shown)]
    problems += _body_problems("robot.links", bundle.links, needs.drawn_links, needs, 'scene.json\'s "robot"."links"')
    objects = {name: obj.gaussians for name, obj in bundle.objects.items()}
    problems += _body_problems("objects", objects, needs.objects, needs, 'scene.json\'s "objects"')
    return problems + camera_problems(bundle)


def check_bundle_for_task(bundle: SceneBundle, needs: TaskNeeds = DEFAULT_TASK_NEEDS) -> SceneBundle:
    """The bundle, unchanged, when it has what the task needs; SceneError listing every problem otherwise."""
    problems = bundle_problems(bundle, needs)
    if problems:
        where = Path(bundle.root) / MANIFEST if bundle.root is not None else f"scene {bundle.name!r}"
        raise SceneError(where, problems)
    return bundle


def objects_of_task(bundle: SceneBundle, object_names) -> SceneBundle:
    """The scene a task runs: the bundle with only the objects it simulates (object_names), so that
    another task's objects (the embedded scene holds several) are neither drawn nor expected in poses."""
    import dataclasses

    return dataclasses.replace(bundle, objects={k: v for k, v in bundle.objects.items() if k in object_names})


def background_within_heights(bundle: SceneBundle, heights) -> SceneBundle:
    """The bundle with only the static background's gaussians whose centre lies ``heights`` = (low, high) metres
    above the robot base (the simulator's z): e.g. (-0.03, 0.03) keeps the table top and drops the wall and the
    floor, so that a backdrop (domain randomisation's backdrop_images or backdrop_color) shows wherever they
    were. ValueError for a range that is not two finite numbers low < high."""
    import dataclasses
    import math

    import torch

    if (not isinstance(heights, (tuple, list)) or len(heights) != 2
            or not all(isinstance(h, (int, float)) and not isinstance(h, bool) and math.isfinite(h) for h in heights)
            or not heights[0] < heights[1]):
        raise ValueError(f"background_heights must be (low, high) in metres with low < high, got {heights!r}")
    if bundle.background is None:
        return bundle
    z = bundle.background_in_sim().means[:, 2]
    keep = torch.nonzero((z >= heights[0]) & (z <= heights[1])).reshape(-1)
    return dataclasses.replace(bundle, background=bundle.background.subset(keep))
