"""`gsenv view`: an interactive browser viewer of the env (gsenv.viewer, viser).

Cheap to import: the env, the viewer and the policies load in the handler.
"""
from __future__ import annotations

import argparse
import logging
import sys

from gsenv.tools.args import add_image_size, add_task, checked_task

logger = logging.getLogger(__name__)

DEFAULT_IMAGE_SIZE = "224"
EXPERT = "expert"

EPILOG = """\
Opens the --task's env (GSEnv/<Task>-v0) on SCENE (default: the embedded scene) and serves a viewer on
http://HOST:PORT: the splat scene of one env (gaussians), the simulator's collision geometry as an
overlay, each camera as a frustum showing its current image, and controls: play, pause, step, speed,
reset (seed or episode id), the driver (the scripted expert, --policy, or end-effector teleop with a
transform gizmo and a gripper toggle), reward, success and the instruction, and a slider through the
frames of the episode. It listens on 127.0.0.1 only unless --host says otherwise (a warning then:
the viewer has no login). Ctrl-C stops it.

Needs the viewer extra: pip install "gsenv[viewer]"."""


def add_commands(sub) -> None:
    p = sub.add_parser("view", help="an interactive browser viewer of the env (splats, cameras, controls)",
                       description="Serve an interactive browser viewer of the env.", epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("scene", nargs="?", default="default", metavar="SCENE",
                   help="the embedded scene (default), a dataset name, a bundle or dataset directory")
    add_task(p)
    p.add_argument("--policy", default=EXPERT, metavar="SPEC",
                   help="what drives the robot at the start: 'expert' (default), 'module:callable' or "
                        "'ws://host:port' (as gsenv eval); expert and teleop stay selectable in the page")
    p.add_argument("--chunk", type=int, default=5, metavar="T",
                   help="steps of a policy's action chunk run open-loop before it is asked again (default 5)")
    p.add_argument("--host", default=None, metavar="HOST", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, metavar="PORT", help="port (default 8080; 0: any free one)")
    p.add_argument("--num-envs", type=int, default=1, metavar="N", help="envs to simulate (default 1)")
    p.add_argument("--env-index", type=int, default=0, metavar="I", help="the env to show (default 0)")
    add_image_size(p, DEFAULT_IMAGE_SIZE)
    p.add_argument("--scene-density", type=float, default=1.0, metavar="D",
                   help="gaussian density of the embedded scene, in (0, 1] (default 1)")
    p.add_argument("--device", default=None, metavar="DEVICE", help="torch device (default: cuda if available)")
    p.add_argument("--seed", type=int, default=0, help="seed of the first reset (default 0)")
    p.set_defaults(func=_view)


def _view(args: argparse.Namespace) -> int:
    from gsenv.viewer.app import INSTALL_HINT
    from gsenv.viewer.net import DEFAULT_HOST, DEFAULT_PORT, checked_address

    try:
        import viser  # noqa: F401
    except ImportError:
        print(f"gsenv view: error: {INSTALL_HINT}", file=sys.stderr)
        return 1
    host = DEFAULT_HOST if args.host is None else args.host
    port = DEFAULT_PORT if args.port is None else args.port
    try:
        checked_address(host, port)
        if args.chunk < 1:
            raise ValueError(f"--chunk must be >= 1, got {args.chunk}")
        if args.num_envs < 1:
            raise ValueError(f"--num-envs must be >= 1, got {args.num_envs}")
        if not 0 <= args.env_index < args.num_envs:
            raise ValueError(f"--env-index must lie in [0, {args.num_envs}), got {args.env_index}")
        if not 0 < args.scene_density <= 1:
            raise ValueError(f"--scene-density must lie in (0, 1], got {args.scene_density}")
    except ValueError as e:
        print(f"gsenv view: error: {e}", file=sys.stderr)
        return 2
    import gymnasium as gym

    import gsenv  # noqa: F401  (registers the env id)
    from gsenv.scene.format import SceneError
    from gsenv.scene.resolve import resolve_scene
    from gsenv.scene.task_fit import task_needs
    from gsenv.tasks import env_ids
    from gsenv.tools.policies import PolicyError, make_policy

    # every camera of the scene, fixed and on robot links (a wrist camera), not only the env's default ones
    try:
        task = checked_task(args.task, ValueError)
        bundle = resolve_scene(args.scene, density=args.scene_density, task=task_needs(task))
    except (SceneError, ValueError) as e:
        print(f"gsenv view: error: {e}", file=sys.stderr)
        return 2
    cameras = [c.name for c in bundle.cameras] + [c.name for c in getattr(bundle, "link_cameras", ())]
    env = gym.make(env_ids(task.name)[0], num_envs=args.num_envs, obs_mode="rgb", image_size=args.image_size,
                   device=args.device, scene=bundle, cameras=cameras)
    viewer = driver = None
    try:
        # the viewer has its own expert (and teleop); other specs become its "policy" driver
        driver = None if args.policy == EXPERT else make_policy(args.policy, env, chunk=args.chunk)
        viewer = env.unwrapped.open_viewer(host=host, port=port, driver=driver, env_index=args.env_index,
                                             seed=args.seed)
        print(f"gsenv view: {viewer.url} (Ctrl-C stops)", flush=True)
        viewer.wait()
    except PolicyError as e:  # a bad --policy spec or an unreachable server: make_policy says which
        print(f"gsenv view: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("gsenv view: stopped")
    finally:
        if viewer is not None:
            viewer.close()
        if driver is not None:
            driver.close()
        env.close()
    return 0
