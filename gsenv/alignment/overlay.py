"""Pictures of the comparison: 50% blends, difference maps, and the splat-vs-mesh side-by-side.

Difference map colours: grey = both renders show the same body; magenta = splat only (the splat
body covers a pixel the simulator's mesh does not); green = mesh only; yellow = both show a body
but not the same one; black = neither.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = ["AGREE", "SPLAT_ONLY", "MESH_ONLY", "DISAGREE", "blend", "difference", "hstack", "write_overlays",
           "splat_vs_mesh"]

AGREE = (150, 150, 150)
SPLAT_ONLY = (255, 0, 255)
MESH_ONLY = (0, 220, 0)
DISAGREE = (255, 220, 0)


def blend(splat_rgb: np.ndarray, mesh_rgb: np.ndarray, weight: float = 0.5) -> np.ndarray:
    """uint8 [H, W, 3]: splat over mesh, `weight` of the splat."""
    a, b = np.asarray(splat_rgb, np.float32), np.asarray(mesh_rgb, np.float32)
    if a.shape != b.shape:
        raise ValueError(f"images must have one shape, got {a.shape} and {b.shape}")
    return np.clip(weight * a + (1.0 - weight) * b, 0, 255).round().astype(np.uint8)


def difference(splat_any: np.ndarray, mesh_any: np.ndarray, same: np.ndarray) -> np.ndarray:
    """uint8 [H, W, 3] difference map from boolean [H, W] masks: splat shows a body, mesh shows a
    body, both show the same label (see the module doc for the colours)."""
    s, m, same = (np.asarray(x, bool) for x in (splat_any, mesh_any, same))
    img = np.zeros(s.shape + (3,), np.uint8)
    img[s & m & same] = AGREE
    img[s & m & ~same] = DISAGREE
    img[s & ~m] = SPLAT_ONLY
    img[~s & m] = MESH_ONLY
    return img


def hstack(images: Sequence[np.ndarray], gap: int = 2) -> np.ndarray:
    """Images of one height side by side with white gaps."""
    h = images[0].shape[0]
    if any(im.shape[0] != h for im in images):
        raise ValueError(f"images must share a height, got {[im.shape[0] for im in images]}")
    sep = np.full((h, gap, 3), 255, np.uint8)
    parts = []
    for i, im in enumerate(images):
        parts += ([sep] if i else []) + [np.asarray(im, np.uint8)]
    return np.concatenate(parts, 1)


def write_overlays(out_dir: str | Path, stem: str, splat_rgb, mesh_rgb, splat_any, mesh_any, same) -> list[str]:
    """Write <stem>_blend.png, <stem>_diff.png and <stem>_panel.png (splat | mesh | blend | diff) under
    out_dir; returns the file names."""
    import imageio.v3 as iio

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    b = blend(splat_rgb, mesh_rgb)
    d = difference(splat_any, mesh_any, same)
    files = {f"{stem}_blend.png": b, f"{stem}_diff.png": d,
             f"{stem}_panel.png": hstack([np.asarray(splat_rgb), np.asarray(mesh_rgb), b, d])}
    for name, img in files.items():
        iio.imwrite(out / name, img)
    return list(files)


def splat_vs_mesh(bundle, qpos=None, object_poses: dict | None = None, camera: str | None = None,
                  image_size: tuple[int, int] | None = None, background: bool = True,
                  render_backend: str = "auto", device=None, mesh_renderer: str | None = None,
                  task=None) -> np.ndarray:
    """Side by side, one state, one camera: the splat render (left) and SAPIEN's render of the
    simulator's meshes (right). uint8 [H, 2W + 2, 3].

    Args:
        bundle: the scene bundle.
        qpos: [9] joint configuration (default: the task's default configuration, fingers open).
        object_poses: {object name: [7] xyz + quaternion wxyz} for each of the task's objects (default:
            where the task's episode 0 starts them).
        camera: bundle camera name (default: the first).
        image_size: (height, width) (default: the camera's calibrated size).
        background: include the splat background and backdrop (the table, the room) on the left;
            False: the bodies only, over the background colour.
        render_backend: the splat rasteriser, as the env's ("auto", "gsplat", "torch").
        device: where the splat renderer runs (default: CUDA if available).
        mesh_renderer: ManiSkill's render backend for SAPIEN (see MeshView).
        task: the gsenv task whose objects the scene holds (a Task or its name; None: the default task).
    """
    import torch

    from gsenv.alignment.mesh_view import MeshView
    from gsenv.scene.camera_rig import bundle_cameras, camera_specs
    from gsenv.scene.rendering import body_renderer, make_renderer
    from gsenv.scene.task_fit import objects_of_task
    from gsenv.sim import names

    if not bundle.cameras:
        raise ValueError(f"scene {bundle.name!r} has no cameras")
    cam_names = [camera or bundle.cameras[0].name]
    spec = camera_specs(bundle, cam_names, image_size)[0]
    device = torch.device(device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu"))
    with MeshView(bundle, [spec], mesh_renderer, task=task) as view:
        q = np.asarray(names.FR3_DEFAULT_QPOS if qpos is None else qpos, dtype=np.float64)
        if object_poses is None:
            from gsenv.sim.initial_state import episode_generator, yaw_to_quat

            drawn = view.gsenv_task.sample_initial_state(episode_generator(0), view.task.spawn)
            object_poses = {name: np.r_[drawn[name][:2].numpy(), view.object_specs[name].rest_height,
                                        yaw_to_quat(drawn[name][2:3])[0].numpy()] for name in view.gsenv_task.objects}
        view.set_state(q, object_poses)
        bundle = objects_of_task(bundle, view.gsenv_task.objects)  # drawn: the objects the view poses
        mesh = view.render()[0].rgb
        poses = {k: v.to(device) for k, v in view.body_poses().items()}
    make = make_renderer if background else body_renderer
    renderer = make(bundle, render_backend, device)
    cams = bundle_cameras(bundle, cam_names, 1, device, image_size)  # [1, 1]
    splat = renderer.render(poses, cams).rgb[0, 0].cpu().numpy()
    return hstack([splat, mesh])
