"""An interactive browser viewer of a running env (viser): the splat scene, the cameras and their
images, the simulator's collision geometry, and controls to step, play, reset and drive the robot.

    viewer = open_viewer(env)          # http://127.0.0.1:8080; needs the extra: pip install "gsenv[viewer]"
    viewer.wait()                      # or keep working; viewer.close() stops it

Layer 3, beside the env: it takes the env object and a driver callable, never imports the env class
or the tools. Modules: `app` (the Viewer: server, page, the thread that drives the env), `scene_view`
(viser nodes), `splats` (gaussians for viser), `collision` (the simulator's shapes), `drivers`
(expert, teleop), `history` (frames for scrubbing), `net` (where it listens).
"""
from __future__ import annotations

from gsenv.viewer.net import DEFAULT_HOST, DEFAULT_PORT


def open_viewer(env, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, driver=None, env_index: int = 0,
                seed: int = 0):
    """Serve a viewer of `env` and return the running :class:`gsenv.viewer.app.Viewer` (see there)."""
    from gsenv.viewer.app import Viewer

    return Viewer(env, host=host, port=port, driver=driver, env_index=env_index, seed=seed)


__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "open_viewer"]
