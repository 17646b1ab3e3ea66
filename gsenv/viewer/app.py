"""`Viewer`: a viser server that shows one env of a running GSEnv and drives all of them.

The env is only touched from the viewer's own thread: the browser's buttons put commands on a queue
that thread works through (step, reset, play at a speed, ...), so env calls never overlap. While a
viewer is open it drives the env; close() (or Ctrl-C in `gsenv view`) stops it and the server.
"""
from __future__ import annotations

import contextlib
import io
import logging
import queue
import threading
import time

import numpy as np
import torch

from gsenv.sim import names
from gsenv.sim.inputs import checked_action_chunk
from gsenv.viewer.drivers import EE_ACTION_DIM, TeleopDriver, expert_driver
from gsenv.viewer.history import EpisodeFrames, Frame
from gsenv.viewer.net import DEFAULT_HOST, DEFAULT_PORT, checked_address, warn_if_exposed
from gsenv.viewer.scene_view import SceneView

__all__ = ["INSTALL_HINT", "DEFAULT_SPEED", "MAX_SPEED", "COMMANDS", "NO_EPISODE_ID", "OVERVIEW_OFFSET",
           "require_viser", "Viewer"]

logger = logging.getLogger(__name__)

INSTALL_HINT = 'the viewer needs viser: pip install "gsenv[viewer]" (or: pip install "viser>=1.1.1,<1.2")'
DEFAULT_SPEED = 5.0  # steps per second while playing
MAX_SPEED = 30.0
COMMANDS = frozenset({"step", "play", "pause", "reset", "driver", "env", "collision", "scrub"})
NO_EPISODE_ID = -1  # the reset control's "episode id" when the seed decides
OVERVIEW_OFFSET = (0.65, -0.3, 0.45)  # m: the page's first view, from the first camera's target


def require_viser():
    """The viser module, or an ImportError that says how to install it."""
    try:
        import viser
    except ImportError as e:
        raise ImportError(INSTALL_HINT) from e
    return viser


def _checked_index(env_index, num_envs: int) -> int:
    if not (isinstance(env_index, (int, np.integer)) and not isinstance(env_index, bool)
            and 0 <= env_index < num_envs):
        raise ValueError(f"env_index must be an int in [0, {num_envs}) (the env to show), got {env_index!r}")
    return int(env_index)


class Viewer:
    """An interactive browser view of `env` (a GSEnv, wrapped or not), served on http://host:port.

    Args:
        env: the env to show and drive; its scene bundle, cameras and body poses are read from
            env.unwrapped.
        host, port: where to listen (default 127.0.0.1:8080; port 0: any free port). A host other than
            loopback logs a warning.
        driver: a policy ``driver(obs, env) -> actions [B, A] or [B, T, A]`` (optional
            ``driver.reset(env_idx)``) offered as "policy" and selected; the scripted expert and
            end-effector teleoperation are always there.
        env_index: the env shown (its splats, images, reward and history).
        seed: the first reset's seed.
        max_frames: frames of the shown env's episode kept for scrubbing.

    `step_count` counts the env steps the viewer ran; `url` is where to point a browser.
    """

    def __init__(self, env, *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, driver=None,
                 env_index: int = 0, seed: int = 0, max_frames: int = 1000):
        viser = require_viser()
        host, port = checked_address(host, port)
        warn_if_exposed(host)
        self.env = env
        self._base = env.unwrapped
        self.num_envs = int(self._base.num_envs)
        self.env_index = _checked_index(env_index, self.num_envs)
        self.step_count = 0
        self.history = EpisodeFrames(max_frames)
        self._teleop = TeleopDriver()
        self._drivers = {"expert": expert_driver, "teleop": self._teleop}
        if driver is not None:
            self._drivers = {"policy": driver, **self._drivers}
        self._driver_name = next(iter(self._drivers))
        self._chunk: torch.Tensor | None = None  # [B, T, A] actions still to run open-loop
        self._chunk_pos = 0
        self._obs = None
        self._pending_reset = np.zeros(self.num_envs, dtype=bool)  # envs whose episode ended
        self._playing = False
        self._speed = DEFAULT_SPEED
        self._commands: queue.Queue = queue.Queue()
        self._stopped = threading.Event()
        self._scrubbing = False

        with contextlib.redirect_stdout(io.StringIO()):  # viser prints a banner: library code only logs
            self.server = viser.ViserServer(host=host, port=port, verbose=False)
        self.host, self.port = host, self.server.get_port()
        if port and self.port != port:
            logger.warning("port %d is in use: the viewer listens on port %d instead", port, self.port)
        # viser's share button tunnels the page through a public relay: never from here
        self.server.request_share_url = self._no_share_url
        try:
            self.server.gui.configure_theme(show_share_button=False, control_width="medium")
            self.server.scene.set_up_direction("+z")
            self._view = SceneView(self.server, self._base.scene, self._base.camera_names, self._base.cameras,
                                   self.env_index)
            self._build_gui()
            self._look_from_first_camera()
            self._reset_all(seed=seed, episode_id=None)
        except BaseException:
            with contextlib.redirect_stdout(io.StringIO()):
                self.server.stop()
            raise
        self._thread = threading.Thread(target=self._loop, name="gsenv-viewer", daemon=True)
        self._thread.start()
        logger.info("gsenv viewer: %s", self.url)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host  # an IPv6 address
        return f"http://{host}:{self.port}"

    @staticmethod
    def _no_share_url(*_args, **_kwargs) -> None:
        logger.warning("gsenv viewer: share URLs are off (they would publish the page through a relay); "
                       "use --host to listen on another address")
        return None

    # ------------------------------------------------------------------ lifetime
    def wait(self, timeout: float | None = None) -> bool:
        """Block until the viewer is closed (True) or `timeout` seconds passed (False)."""
        return self._stopped.wait(timeout)

    def close(self) -> None:
        """Stop driving the env and stop the server (the env itself stays open)."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=60)
        with contextlib.redirect_stdout(io.StringIO()):  # "(viser) Server stopped"
            self.server.stop()

    def __enter__(self) -> Viewer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def submit(self, command: str, value=None, wait: float | None = None) -> None:
        """Queue a command for the viewer's thread: "step", "play", "pause", "reset" (value: (seed,
        episode_id or None)), "driver" (name), "env" (index), "collision" (bool), "scrub" (frame index).
        With `wait` (seconds), return once it ran; a TimeoutError if it did not within that time."""
        if command not in COMMANDS:
            raise ValueError(f"unknown viewer command {command!r}; one of {sorted(COMMANDS)}")
        if command == "driver" and value not in self._drivers:
            raise ValueError(f"unknown driver {value!r}; choose one of {list(self._drivers)}")
        if command == "env":
            _checked_index(value, self.num_envs)
        done = threading.Event()
        self._commands.put((command, value, done))
        if wait is not None and not done.wait(wait):
            raise TimeoutError(f"the viewer did not run {command!r} within {wait} s")

    # ------------------------------------------------------------------ the viewer's thread
    def _loop(self) -> None:
        next_step = time.monotonic()
        while not self._stopped.is_set():
            wait = max(0.0, next_step - time.monotonic()) if self._playing else 0.1
            try:
                command, value, done = self._commands.get(timeout=wait)
            except queue.Empty:
                command, value, done = None, None, None
            try:
                if command is not None:
                    self._run(command, value)
                elif self._playing and time.monotonic() >= next_step:
                    self._step()
                    next_step = time.monotonic() + 1.0 / self._speed
            except Exception as e:  # a failing driver or env: say it in the page, keep serving
                logger.exception("gsenv viewer: %s failed", command or "step")
                self._playing = False
                self._status.content = f"**error** in {command or 'step'}: `{type(e).__name__}: {e}`"
            finally:
                if done is not None:
                    done.set()

    def _run(self, command: str, value) -> None:
        if command == "step":
            self._playing = False
            self._step()
        elif command == "play":
            self._playing = True
        elif command == "pause":
            self._playing = False
        elif command == "reset":
            self._playing = False
            self._reset_all(*value)
        elif command == "driver":
            self._set_driver(value)
        elif command == "env":
            self._show_env(value)
        elif command == "collision":
            self._set_collision(value)
        elif command == "scrub":
            self._scrub(value)

    # ------------------------------------------------------------------ env work (viewer thread only)
    def _reset_all(self, seed: int, episode_id: int | None) -> None:
        options = None if episode_id is None else {"episode_id": [episode_id] * self.num_envs}
        self._obs, _ = self.env.reset(seed=seed, options=options)
        self._after_reset(np.arange(self.num_envs))

    def _reset_ended(self) -> None:
        idx = np.flatnonzero(self._pending_reset)
        self._obs, _ = self.env.reset(options={"env_idx": idx.tolist()})
        self._after_reset(idx)

    def _after_reset(self, idx: np.ndarray) -> None:
        self._pending_reset[idx] = False
        self._chunk = None  # a chunk planned before the reset no longer fits those envs
        for driver in self._drivers.values():
            if hasattr(driver, "reset"):
                driver.reset(idx)
        if self.env_index in idx:
            self.history.start(self._frame(0, 0.0, False))
            self._show_latest()

    def _next_actions(self) -> torch.Tensor:
        """[B, A]: the next action of the current chunk, asking the driver for a new chunk when done."""
        if self._chunk is None or self._chunk_pos >= self._chunk.shape[1]:
            actions = self._drivers[self._driver_name](self._obs, self.env)
            self._chunk = checked_action_chunk(actions, self.num_envs, self._base.single_action_space.shape[0],
                                               f"the {self._driver_name!r} driver").cpu()
            self._chunk_pos = 0
        action = self._chunk[:, self._chunk_pos]
        self._chunk_pos += 1
        return action

    def _step(self) -> None:
        if self._pending_reset.any():
            self._reset_ended()
        self._obs, reward, terminated, truncated, info = self.env.step(self._next_actions())
        self.step_count += 1
        i = self.env_index
        done = (torch.as_tensor(terminated) | torch.as_tensor(truncated)).cpu().numpy().astype(bool)
        self._pending_reset |= done
        success = bool(torch.as_tensor(info["success"])[i])
        step = int(self._base.elapsed_steps[i])
        self.history.add(self._frame(step, float(torch.as_tensor(reward)[i]), success))
        self._show_latest()
        if done[i]:
            self._playing = False  # the episode is over: scrub through it; step or play starts the next
            self._status.content += f"\n\n**episode over** ({'success' if success else 'no success'}): " \
                                    "step or play starts the next one"

    def _frame(self, step: int, reward: float, success: bool) -> Frame:
        i = self.env_index
        poses = {k: v[i].detach().cpu().numpy().astype(np.float32) for k, v in self._base.get_body_poses().items()}
        viewmats = self._base.cameras.viewmats[i].detach().cpu().numpy().astype(np.float32)
        return Frame(step, poses, self._images(), viewmats, reward, success)

    def _images(self) -> np.ndarray:
        """uint8 [C, H, W, 3]: the shown env's camera images of the current state."""
        sensors = self._obs.get("sensor_data", {}) if isinstance(self._obs, dict) else {}
        names = self._base.camera_names
        if all(name in sensors and "rgb" in sensors[name] for name in names):
            return np.stack([sensors[n]["rgb"][self.env_index].detach().cpu().numpy() for n in names])
        # an obs mode without images: render the current state (all envs: the renderer is batched)
        out = self._base.renderer.render(self._base.get_body_poses(), self._base.cameras)
        return out.rgb[self.env_index].detach().cpu().numpy()

    def _set_driver(self, name: str) -> None:
        if name == "teleop":
            if self._base.single_action_space.shape[0] != EE_ACTION_DIM:
                raise ValueError("teleop needs an end-effector control mode (7-D actions), e.g. "
                                 "control_mode='pd_ee_target_delta_pose'")
            tcp = self._base.get_body_poses()[names.TCP_LINK][self.env_index].detach().cpu().numpy()
            self._teleop.set_target(tcp[:3], tcp[3:])
            self._gizmo.position, self._gizmo.wxyz = tcp[:3], tcp[3:]
        self._gizmo.visible = name == "teleop"
        self._driver_name = name
        self._chunk = None

    def _show_env(self, index: int) -> None:
        self.env_index = _checked_index(index, self.num_envs)
        self._view.set_cameras(self._base.camera_names, self._base.cameras, self.env_index)
        self.history.start(self._frame(int(self._base.elapsed_steps[self.env_index]), 0.0, False))
        self._show_latest()

    def _set_collision(self, visible: bool) -> None:
        if visible and not self._view.has_collision:
            from gsenv.viewer.collision import collision_meshes

            self._status.content = "building the simulator's collision geometry (a few seconds) ..."
            self._view.set_collision(collision_meshes(self._base.scene, self._base.task))
            self._view.show(self.history.latest)
        self._view.collision_visible = visible
        self._show_status(self.history.latest)

    def _scrub(self, index: int) -> None:
        self._playing = False
        index = min(max(int(index), 0), len(self.history) - 1)
        frame = self.history[index]
        self._view.show(frame)
        self._show_status(frame)

    def _show_latest(self) -> None:
        frame = self.history.latest
        self._view.show(frame)
        self._scrubbing = True  # our own slider update is no request to scrub
        try:
            last = len(self.history) - 1
            self._frame_slider.max = max(1, last)
            self._frame_slider.value = last
        finally:
            self._scrubbing = False
        self._steps.value = self.step_count
        self._show_status(frame)

    def _show_status(self, frame: Frame) -> None:
        instruction = self._base.get_language_instruction()[self.env_index]
        self._status.content = (f"**{instruction}**\n\nenv {self.env_index} · episode step {frame.step} · "
                                f"reward {frame.reward:.3f} · success **{'yes' if frame.success else 'no'}**")

    # ------------------------------------------------------------------ page
    def _look_from_first_camera(self) -> None:
        """Start the page's camera on what the first camera looks at (where its view axis meets the
        table, z = 0), from the front-side of the robot, a bit higher: robot, objects and frustum in view."""
        from gsenv.viewer.scene_view import camera_pose

        vm = self._base.cameras.viewmats[self.env_index, 0].detach().cpu().numpy()
        position, _ = camera_pose(vm)
        forward = np.linalg.inv(vm)[:3, 2]
        reach = -position[2] / forward[2] if forward[2] < -1e-3 else 0.8
        target = position + min(reach, 2.0) * forward
        self.server.initial_camera.look_at = target
        self.server.initial_camera.position = target + np.array(OVERVIEW_OFFSET)
        self.server.initial_camera.up = (0.0, 0.0, 1.0)

    def _build_gui(self) -> None:
        gui = self.server.gui
        self._status = gui.add_markdown("starting ...")
        self._steps = gui.add_number("steps", initial_value=0, disabled=True)
        with gui.add_folder("Run"):
            for label, command in (("Play", "play"), ("Pause", "pause"), ("Step", "step")):
                button = gui.add_button(label)
                button.on_click(lambda _e, c=command: self.submit(c))
            speed = gui.add_slider("steps / s", min=0.5, max=MAX_SPEED, step=0.5, initial_value=DEFAULT_SPEED)
            speed.on_update(lambda _e: setattr(self, "_speed", float(speed.value)))
            driver = gui.add_dropdown("driver", tuple(self._drivers), initial_value=self._driver_name)
            driver.on_update(lambda _e: self.submit("driver", driver.value))
        with gui.add_folder("Teleop"):
            grip = gui.add_button("Toggle gripper")
            grip.on_click(lambda _e: setattr(self._teleop, "gripper_open", not self._teleop.gripper_open))
        with gui.add_folder("Reset"):
            seed = gui.add_number("seed", initial_value=0, min=0, step=1)
            episode = gui.add_number("episode id (-1: seed)", initial_value=NO_EPISODE_ID, min=NO_EPISODE_ID,
                                     max=int(self._base.total_num_trials) - 1, step=1)
            reset = gui.add_button("Reset")
            reset.on_click(lambda _e: self.submit("reset", (int(seed.value), None if int(episode.value) < 0
                                                            else int(episode.value))))
        with gui.add_folder("Show"):
            env_number = gui.add_number("env", initial_value=self.env_index, min=0, max=self.num_envs - 1, step=1)
            env_number.on_update(lambda _e: self.submit("env", int(env_number.value)))
            collision = gui.add_checkbox("collision geometry", initial_value=False)
            collision.on_update(lambda _e: self.submit("collision", bool(collision.value)))
            self._frame_slider = gui.add_slider("episode frame", min=0, max=1, step=1, initial_value=0)
            self._frame_slider.on_update(
                lambda _e: None if self._scrubbing else self.submit("scrub", int(self._frame_slider.value)))
        self._gizmo = self.server.scene.add_transform_controls("/teleop/target", scale=0.15, visible=False)
        self._gizmo.on_update(lambda _e: self._teleop.set_target(self._gizmo.position, self._gizmo.wxyz))
