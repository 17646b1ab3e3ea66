"""`scene=` in the env: a name or a path -> a SceneBundle, and the bundle's physics for the task."""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from gsenv.scene.bundle import SceneBundle, SceneObject
from gsenv.scene.format import MANIFEST, SceneError, load_bundle
from gsenv.scene.task_fit import DEFAULT_TASK_NEEDS, TaskNeeds, check_bundle_for_task

__all__ = ["DEFAULT_SCENE", "resolve_scene", "task_kwargs_from_bundle"]

DEFAULT_SCENE = "default"


def resolve_scene(scene: str | os.PathLike | SceneBundle = DEFAULT_SCENE, asset_root: str | os.PathLike | None = None,
                  density: float = 1.0, progress: bool = True, task: TaskNeeds | None = DEFAULT_TASK_NEEDS,
                  allow_outside_paths: bool | None = None) -> SceneBundle:
    """"default" (the embedded scene, built on first use), a known dataset name (e.g.
    "gsenv-assets-v0", downloaded with `gsenv assets download`), a bundle directory (with scene.json),
    a directory in the RLinf dataset layout, or a SceneBundle.

    task: what the bundle must give (every body drawn, the robot's joints, valid cameras; see
    gsenv.scene.task_fit.task_needs), checked
    here, in the loading process, before any simulation starts; None reads the bundle as it is.
    allow_outside_paths: see gsenv.scene.format.load_bundle (None: GSENV_ALLOW_OUTSIDE_PATHS).
    Raises SceneError listing every problem.
    """
    bundle = _load_scene(scene, asset_root, density, progress, allow_outside_paths)
    return bundle if task is None else check_bundle_for_task(bundle, task)


def _load_scene(scene, asset_root, density: float, progress: bool, allow_outside_paths: bool | None) -> SceneBundle:
    from gsenv.assets.root import asset_root as resolve_root
    from gsenv.sim import names

    if isinstance(scene, SceneBundle):
        return scene
    root = resolve_root(asset_root)
    if scene == DEFAULT_SCENE:
        from gsenv.scene_build.default import load_default_bundle

        return load_default_bundle(root, density=density, progress=progress)
    path = Path(scene).expanduser()
    if not path.exists() and "/" not in str(scene):
        from gsenv.assets.manifest import known_datasets
        from gsenv.assets.root import dataset_dir

        if str(scene) in known_datasets():
            path = dataset_dir(str(scene), root)
            if not path.is_dir():
                raise SceneError(path, [f"dataset {scene!r} is not downloaded: run `gsenv assets download {scene}` "
                                        "(or copy its files there and run `gsenv assets verify`)"])
        else:
            raise SceneError(scene, [f"unknown scene {scene!r}: use 'default', a dataset name "
                                     f"({', '.join(known_datasets())}) or a scene directory"])
    if (path / MANIFEST).is_file():
        return load_bundle(path, known_links=names.ROBOT_LINK_NAMES, allow_outside_paths=allow_outside_paths)
    if (path / "robot" / "my_franka").is_dir():
        from gsenv.scene_build.rlinf_dataset import load_rlinf_dataset

        return load_rlinf_dataset(path)
    raise SceneError(path, ["neither a scene bundle (no scene.json) nor a dataset in the RLinf layout "
                            "(no robot/my_franka)"])


def _object_spec(obj: SceneObject | None, default):
    """The simulator's ObjectSpec for a bundle object ('builtin' keeps the simulator's own geometry)."""
    if obj is None or obj.collision.get("type", "builtin") == "builtin":
        spec = default
    elif obj.collision["type"] == "box":
        hs = tuple(float(v) for v in obj.collision["half_size"])
        spec = dataclasses.replace(default, kind="box", half_size=hs, rest_height=hs[2], top_height=hs[2])
    else:  # mesh: the object's frame is the mesh's frame; it rests on its lowest point
        import trimesh

        mesh = trimesh.load(obj.collision["path"], force="mesh")
        spec = dataclasses.replace(default, kind="mesh", mesh_path=str(obj.collision["path"]),
                                   rest_height=float(-mesh.bounds[0, 2]))
    overrides = {}
    if obj is not None and obj.mass is not None:
        overrides["mass"] = obj.mass
    if obj is not None and obj.friction is not None:
        overrides.update(static_friction=obj.friction, dynamic_friction=obj.friction)
    return dataclasses.replace(spec, **overrides) if overrides else spec


def task_kwargs_from_bundle(bundle: SceneBundle, asset_root: str | os.PathLike | None = None, task=None) -> dict:
    """Robot URDF and the collision geometry of each of ``task``'s objects (a gsenv.tasks.Task or its name;
    None: the default task) the simulation task should take from the bundle: {"robot_urdf": path,
    <object name>: ObjectSpec} (the FR3 description generated under the asset root when the bundle
    brings no URDF; the task's own geometry for an object the bundle leaves 'builtin')."""
    from gsenv.sim.robot_description import default_fr3_urdf
    from gsenv.tasks import get_task

    task = get_task(task)
    kwargs: dict = {"robot_urdf": str(bundle.robot_urdf or default_fr3_urdf(asset_root))}
    for name, default in task.object_specs().items():
        kwargs[name] = _object_spec(bundle.objects.get(name), default)
    return kwargs
