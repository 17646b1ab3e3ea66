"""The simulator's side of the comparison: SAPIEN renders its own meshes of a bundle's task.

`MeshView` builds the physics task (``GSEnvSim-<Task>-v0`` of its task, with the bundle's robot URDF
and object collision geometry) with one SAPIEN camera per bundle camera, sets states (joint
configuration, object poses) and renders per-pixel body labels (SAPIEN's actor-level
segmentation, mapped to link / object names) and colour. Needs a Vulkan device; on machines
without a GPU SAPIEN renders on the CPU through Mesa's lavapipe.

SAPIEN keeps the camera shader directory and the picture formats in process-wide settings, and
ManiSkill rewrites them whenever it builds a camera sensor (its default ``"minimal"`` shader pack
has no ``Segmentation`` output and turns ``Color`` into uint8). So the cameras here name SAPIEN's
``default`` shader pack themselves instead of taking the process's current one, and colour is
read in whichever format SAPIEN is set to: a ManiSkill env made (and closed) earlier in the same
process changes nothing here, and nothing here changes those settings.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from gsenv.geometry import CV_IN_SAPIEN
from gsenv.scene.bundle import CameraSpec, SceneBundle


def opencv_to_sapien_pose(cam_to_world_cv: np.ndarray) -> np.ndarray:
    """[4, 4] camera pose with OpenCV axes -> the same camera's pose with SAPIEN's axes."""
    T = np.array(cam_to_world_cv, dtype=np.float64, copy=True)
    T[:3, :3] = T[:3, :3] @ CV_IN_SAPIEN.numpy().T
    return T


@dataclass
class MeshFrame:
    """One camera's mesh render.

    labels: int64 [H, W] index into MeshView.body_names of the body seen at each pixel, -1 for none
            (the simulator's table has no visual: it is empty background here).
    rgb:    uint8 [H, W, 3].
    """

    labels: np.ndarray
    rgb: np.ndarray


def default_shader_dir() -> str:
    """SAPIEN's own ``default`` shader pack (rasterized; has the ``Segmentation`` and ``Color`` outputs).

    A camera's shader must be given as a path: only the process-wide setter resolves pack names.
    """
    from importlib import resources

    return str(resources.files("sapien") / "vulkan_shader" / "default")


def color_to_uint8(picture: np.ndarray) -> np.ndarray:
    """SAPIEN's ``Color`` picture [H, W, 4] -> uint8 RGB [H, W, 3], whatever its picture format
    (float in [0, 1] by default; uint8 after ManiSkill set ``r8g8b8a8unorm``)."""
    color = np.asarray(picture)[..., :3]
    if color.dtype == np.uint8:
        return np.ascontiguousarray(color)
    if np.issubdtype(color.dtype, np.integer):  # another unorm format
        return (color.astype(np.float64) * (255.0 / np.iinfo(color.dtype).max)).round().astype(np.uint8)
    return (np.clip(color, 0.0, 1.0) * 255.0).round().astype(np.uint8)


def default_mesh_renderer() -> str:
    """ManiSkill render backend for the mesh render: SAPIEN on CUDA where there is a GPU, else on the
    CPU (lavapipe)."""
    return "sapien_cuda" if torch.cuda.is_available() else "sapien_cpu"


class MeshView:
    """The bundle's task in SAPIEN, with cameras, for rendering segmentation of chosen states.

    Args:
        bundle: the scene bundle (its robot URDF and object collision geometry build the task).
        cameras: calibrated cameras (at the resolution to render; see CameraSpec.at_resolution); a
            camera on a link (CameraSpec.link) is mounted on that robot link and moves with it.
        mesh_renderer: ManiSkill's render backend for SAPIEN, e.g. "sapien_cpu" or "sapien_cuda"
            (default: see default_mesh_renderer).
    """

    def __init__(self, bundle: SceneBundle, cameras: Sequence[CameraSpec],
                 mesh_renderer: str | None = None, task=None) -> None:
        import gymnasium as gym
        import sapien

        from gsenv.scene.resolve import task_kwargs_from_bundle
        from gsenv.sim.task import register_physics_task
        from gsenv.tasks import get_task

        if not cameras:
            raise ValueError("MeshView needs at least one camera")
        self.cameras = list(cameras)
        self.gsenv_task = get_task(task)
        """The gsenv.tasks.Task whose objects this view simulates (default: the default task)."""
        self.env = gym.make(register_physics_task(self.gsenv_task), num_envs=1, obs_mode="state",
                            render_backend=mesh_renderer or default_mesh_renderer(),
                            sim_backend="physx_cpu", **task_kwargs_from_bundle(bundle, task=self.gsenv_task))
        self.env.reset(seed=0)
        self.task = self.env.unwrapped
        scene = self.task.scene.sub_scenes[0]
        self._components = []
        shader_dir = default_shader_dir()  # not the process-wide one, which ManiSkill's sensors rewrite
        links = {link.name: link for link in self.task.agent.robot.get_links()}
        for cam in self.cameras:
            comp = sapien.render.RenderCameraComponent(int(cam.width), int(cam.height), shader_dir)
            K = np.asarray(cam.K, dtype=np.float64)
            comp.set_focal_lengths(float(K[0, 0]), float(K[1, 1]))
            comp.set_principal_point(float(K[0, 2]), float(K[1, 2]))
            comp.near, comp.far = 0.01, 100.0
            if cam.on_link:  # mounted on its link's entity: it moves with the link
                if cam.link not in links:
                    raise ValueError(f"camera {cam.name!r} is mounted on {cam.link!r}, which the simulator's "
                                     f"robot does not have ({sorted(links)})")
                links[cam.link]._objs[0].entity.add_component(comp)
                comp.set_local_pose(sapien.Pose(opencv_to_sapien_pose(cam.pose)))
            else:
                entity = sapien.Entity()
                entity.name = f"gsenv_alignment_{cam.name}"
                entity.add_component(comp)
                entity.set_pose(sapien.Pose(opencv_to_sapien_pose(cam.pose)))
                scene.add_entity(entity)
            self._components.append(comp)
        # per-scene entity id -> body name (links and actors; the table and cameras map to nothing)
        id_map = self.task.segmentation_id_map
        self.body_names: tuple[str, ...] = tuple(sorted({obj.name for obj in id_map.values()}))
        index = {n: i for i, n in enumerate(self.body_names)}
        size = max(id_map) + 1 if id_map else 1
        self._lut = np.full(size, -1, dtype=np.int64)
        for sid, obj in id_map.items():
            self._lut[sid] = index[obj.name]
        self.robot_link_names = tuple(link.name for link in self.task.agent.robot.get_links())

    # ------------------------------------------------------------------ state
    @property
    def object_specs(self) -> dict:
        """{object name: its ObjectSpec} of the task's objects, as the simulator built them."""
        return self.task.object_specs

    def set_state(self, qpos, object_poses: dict) -> None:
        """qpos [9] (7 arm joints rad + 2 fingers m), object_poses {object name: [7] xyz + quaternion wxyz}
        for every object of the task."""
        from mani_skill.utils.structs.pose import Pose

        q = torch.as_tensor(np.asarray(qpos, dtype=np.float32)).reshape(1, -1)
        if q.shape[1] != self.task.agent.robot.max_dof:
            raise ValueError(f"qpos must have {self.task.agent.robot.max_dof} values, got {q.shape[1]}")
        self.task.agent.robot.set_qpos(q)
        self.task.agent.robot.set_qvel(torch.zeros_like(q))
        missing = [name for name in self.task.objects if name not in object_poses]
        if missing:
            raise ValueError(f"object_poses lacks {missing}: give a pose for each of {list(self.task.objects)}")
        for name, actor in self.task.objects.items():
            p = torch.as_tensor(np.asarray(object_poses[name], dtype=np.float32)).reshape(1, -1)
            if p.shape[1] != 7:
                raise ValueError(f"the pose of {name} must be 7 values (xyz + quaternion wxyz), got {p.shape[1]}")
            actor.set_pose(Pose.create_from_pq(p[:, :3], p[:, 3:]))

    def body_poses(self) -> dict[str, torch.Tensor]:
        """{body name: float32 [1, 7]} read back from the simulator (what the splat renderer gets)."""
        from gsenv.sim.poses import body_poses

        return {k: v.detach().cpu() for k, v in body_poses(self.task).items()}

    # ------------------------------------------------------------------ render
    def render(self) -> list[MeshFrame]:
        """Render every camera at the current state."""
        scene = self.task.scene.sub_scenes[0]
        scene.update_render()
        frames = []
        for comp in self._components:
            comp.take_picture()
            seg = np.asarray(comp.get_picture("Segmentation"))[..., 1].astype(np.int64)
            seg = np.where(seg < len(self._lut), seg, 0)
            labels = self._lut[seg]
            frames.append(MeshFrame(labels, color_to_uint8(comp.get_picture("Color"))))
        return frames

    def close(self) -> None:
        self.env.close()

    def __enter__(self) -> MeshView:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
