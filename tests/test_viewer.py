"""`gsenv view` / env.open_viewer(): a real viser server on 127.0.0.1 driving a real env (1 env, tiny
images, a thin embedded scene), looked at by a real headless Chromium over the DevTools protocol."""
from __future__ import annotations

import importlib.util
import logging
import os
import sys
import time

import numpy as np
import pytest
import torch
from browser import Browser, chromium_missing_reason  # tests/browser.py

from gsenv.tools.bench.proc import descendants

IMAGE_SIZE = (24, 32)
DENSITY = 0.02
WAIT_S = 120.0  # generous: 2 shared CPU cores
needs_viser = pytest.mark.skipif(importlib.util.find_spec("viser") is None,
                                 reason='the viewer extra is not installed (pip install "gsenv[viewer]")')


# ------------------------------------------------------------------------------ sockets
def _listening() -> dict[int, tuple[str, int]]:
    """{socket inode: (address, port)} of every listening TCP socket on this machine."""
    out = {}
    for path, v6 in (("/proc/net/tcp", False), ("/proc/net/tcp6", True)):
        try:
            lines = open(path).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if f[3] != "0A":  # LISTEN
                continue
            addr_hex, port_hex = f[1].split(":")
            raw = bytes.fromhex(addr_hex)
            if v6:  # four little-endian 32-bit words
                raw = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
                import ipaddress

                addr = str(ipaddress.IPv6Address(raw))
            else:
                addr = ".".join(str(b) for b in raw[::-1])
            out[int(f[9])] = (addr, int(port_hex, 16))
    return out


def _socket_inodes(pids) -> set[int]:
    inodes = set()
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if link.startswith("socket:["):
                inodes.add(int(link[8:-1]))
    return inodes


def listening_sockets_of_this_process_tree() -> set[tuple[str, int]]:
    """(address, port) of every socket this process or one of its descendants listens on."""
    pids = {os.getpid(), *descendants(os.getpid())}
    listening = _listening()
    return {listening[i] for i in _socket_inodes(pids) if i in listening}


# ------------------------------------------------------------------------------ one env, one viewer
@pytest.fixture(scope="module")
def session():
    import gymnasium as gym

    import gsenv  # noqa: F401

    before = listening_sockets_of_this_process_tree()
    env = gym.make("GSEnv/PutCubeOnPlate-v0", num_envs=1, obs_mode="rgb", image_size=IMAGE_SIZE,
                   scene_density=DENSITY, num_workers=1, device="cpu")
    after_make = listening_sockets_of_this_process_tree()
    viewer = env.unwrapped.open_viewer(port=0)  # the default host; any free port
    try:
        yield {"env": env, "viewer": viewer, "before": before, "after_make": after_make}
    finally:
        viewer.close()
        env.close()


def _robot_pose(env) -> np.ndarray:
    return env.unwrapped.get_body_poses()["fr3_hand_tcp"][0].numpy().copy()


@needs_viser
def test_gym_make_opens_no_port_and_the_viewer_binds_loopback_only(session):
    viewer = session["viewer"]
    assert session["after_make"] == session["before"], "gym.make alone must not listen on any port"
    mine = listening_sockets_of_this_process_tree() - session["before"]
    assert mine, "the viewer's server socket was not found among this process's listening sockets"
    assert {port for _, port in mine} == {viewer.port}
    assert {addr for addr, _ in mine} == {"127.0.0.1"}, f"bound to {mine}: must be loopback only by default"
    assert viewer.url == f"http://127.0.0.1:{viewer.port}"


@pytest.mark.slow
@needs_viser
@pytest.mark.skipif(chromium_missing_reason() is not None, reason=str(chromium_missing_reason()))
def test_browser_sees_the_scene_and_step_advances_the_simulation(session):
    env, viewer = session["env"], session["viewer"]
    viewer.submit("reset", (0, None), wait=WAIT_S)
    with Browser(width=800, height=600, timeout_s=WAIT_S) as page:
        page.open(viewer.url)
        page.wait_for("document.body.innerText.includes('episode step 0')", what="the viewer's status")
        rect = page.wait_for("(() => { const c = document.querySelector('canvas'); if (!c) return null;"
                             " const r = c.getBoundingClientRect(); return r.width > 0 ? [r.x, r.y, r.width, r.height]"
                             " : null; })()", what="a 3D canvas")
        # the canvas left of the control panel: white until the splats are drawn
        deadline = time.monotonic() + WAIT_S
        while True:
            shot = page.screenshot()
            x, y, w, h = (int(v) for v in rect)
            canvas = shot[y:y + h, x:x + int(w * 0.55)].astype(np.float32)
            drawn = (np.abs(canvas - 255.0).max(-1) > 40).mean()  # share of pixels far from the white background
            if drawn > 0.2 or time.monotonic() > deadline:
                break
            time.sleep(1.0)
        assert drawn > 0.2, f"the canvas is (nearly) blank: {drawn:.1%} of its pixels differ from the background"
        assert canvas.std() > 20.0 and len(np.unique(canvas.reshape(-1, 3), axis=0)) > 200

        steps, pose = viewer.step_count, _robot_pose(env)
        page.click_button("Step")
        deadline = time.monotonic() + WAIT_S
        while viewer.step_count == steps and time.monotonic() < deadline:
            time.sleep(0.1)
        assert viewer.step_count == steps + 1
        page.wait_for("document.body.innerText.includes('episode step 1')", what="the step in the page")
        moved = np.abs(_robot_pose(env)[:3] - pose[:3]).max()
        assert moved > 1e-3, f"the expert's first step should move the hand, it moved {moved} m"


@needs_viser
def test_scrub_shows_earlier_frames_and_collision_overlay(session):
    env, viewer = session["env"], session["viewer"]
    viewer.submit("reset", (3, None), wait=WAIT_S)
    for _ in range(2):
        viewer.submit("step", wait=WAIT_S)
    assert len(viewer.history) == 3 and [viewer.history[i].step for i in range(3)] == [0, 1, 2]
    view = viewer._view
    name = "fr3_hand"
    node = view._body_nodes[name]  # the hand's gaussians, moved as one node
    np.testing.assert_allclose(node.position, viewer.history[2].poses[name][:3], atol=1e-6)
    viewer.submit("scrub", 0, wait=WAIT_S)
    np.testing.assert_allclose(node.position, viewer.history[0].poses[name][:3], atol=1e-6)
    assert np.abs(viewer.history[0].poses[name][:3] - viewer.history[2].poses[name][:3]).max() > 1e-3
    assert viewer.history[0].images.shape == (1, *IMAGE_SIZE, 3)

    viewer.submit("collision", True, wait=WAIT_S)
    assert view.collision_visible and view.has_collision
    cube = view._collision_nodes["cube"]
    extent = cube.vertices.max(0) - cube.vertices.min(0)
    np.testing.assert_allclose(extent, [0.04, 0.04, 0.04], atol=1e-4)  # the 4 cm cube, in its body frame
    np.testing.assert_allclose(cube.position, env.unwrapped.get_body_poses()["cube"][0, :3].numpy(), atol=1e-5)
    viewer.submit("collision", False, wait=WAIT_S)
    assert not view._collision_nodes["cube"].visible


@needs_viser
def test_teleop_moves_the_hand_towards_the_gizmo_target(session):
    env, viewer = session["env"], session["viewer"]
    viewer.submit("reset", (5, None), wait=WAIT_S)
    viewer.submit("driver", "teleop", wait=WAIT_S)
    assert viewer._gizmo.visible
    start = _robot_pose(env)
    viewer._teleop.set_target(start[:3] + np.array([0.0, 0.0, 0.08]), start[3:])
    viewer.submit("step", wait=WAIT_S)
    viewer.submit("step", wait=WAIT_S)
    rise = _robot_pose(env)[2] - start[2]
    assert rise > 0.02, f"the hand should rise towards the target 8 cm above it, it rose {rise} m"
    viewer.submit("driver", "expert", wait=WAIT_S)
    assert not viewer._gizmo.visible


class _ChunkPolicy:
    """A real policy callable: holds still in chunks of 5 steps, records its calls and resets."""

    def __init__(self):
        self.calls, self.resets = 0, []

    def __call__(self, obs, env):
        self.calls += 1
        assert obs["sensor_data"]["3rd_view_camera"]["rgb"].shape == (1, *IMAGE_SIZE, 3)
        action = torch.zeros(1, 5, 7)
        action[..., 6] = 1.0  # gripper open
        return action

    def reset(self, env_idx):
        self.resets.append([int(i) for i in np.asarray(env_idx)])


HOLD_STILL = _ChunkPolicy()  # `--policy test_viewer:HOLD_STILL`


@needs_viser
def test_a_module_callable_policy_runs_its_chunks_open_loop():
    """The --policy path: make_policy("module:callable", chunk=3) as the viewer's driver."""
    import gymnasium as gym

    import gsenv  # noqa: F401
    from gsenv.tools.policies import make_policy

    env = gym.make("GSEnv/PutCubeOnPlate-v0", num_envs=1, obs_mode="rgb", image_size=IMAGE_SIZE,
                   scene_density=DENSITY, num_workers=1, device="cpu")
    try:
        with make_policy(f"{__name__}:HOLD_STILL", env, chunk=3) as policy, \
                env.unwrapped.open_viewer(port=0, driver=policy) as viewer:
            assert HOLD_STILL.resets == [[0]]  # the viewer's first reset
            for _ in range(4):
                viewer.submit("step", wait=WAIT_S)
            assert viewer.step_count == 4
            assert HOLD_STILL.calls == 2  # steps 1-3 from the first chunk (cut to 3), step 4 from the next
        # a driver returning integer actions: refused (not silently converted), said in the page, no step
        with env.unwrapped.open_viewer(port=0, driver=lambda obs, env: torch.zeros(1, 7, dtype=torch.int64)) as viewer:
            viewer.submit("step", wait=WAIT_S)
            assert viewer.step_count == 0
            assert "dtype torch.int64; expected a floating dtype" in viewer._status.content
    finally:
        env.close()


@needs_viser
def test_bad_viewer_inputs_fail_before_a_port_opens(session):
    env = session["env"]
    before = listening_sockets_of_this_process_tree()
    with pytest.raises(ValueError, match="env_index"):
        env.unwrapped.open_viewer(port=0, env_index=1)
    with pytest.raises(ValueError, match="port"):
        env.unwrapped.open_viewer(port=70000)
    viewer = session["viewer"]
    with pytest.raises(ValueError, match="unknown driver 'nope'"):
        viewer.submit("driver", "nope")
    with pytest.raises(ValueError, match="unknown viewer command"):
        viewer.submit("jump")
    assert listening_sockets_of_this_process_tree() == before


def test_a_non_loopback_host_is_warned_about(caplog):
    from gsenv.viewer.net import is_loopback, warn_if_exposed

    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5")
    with caplog.at_level(logging.WARNING, logger="gsenv.viewer.net"):
        warn_if_exposed("127.0.0.1")
        assert not caplog.records
        warn_if_exposed("0.0.0.0")
    assert "0.0.0.0" in caplog.text and "no login" in caplog.text


def test_without_viser_the_viewer_says_how_to_install_it(monkeypatch, capsys):
    from gsenv.tools.cli import main
    from gsenv.viewer.app import require_viser

    monkeypatch.setitem(sys.modules, "viser", None)  # what an environment without the extra looks like
    with pytest.raises(ImportError, match=r"gsenv\[viewer\]"):
        require_viser()
    assert main(["view"]) == 1
    assert 'gsenv view: error: the viewer needs viser: pip install "gsenv[viewer]"' in capsys.readouterr().err


@pytest.mark.slow
@needs_viser
def test_gsenv_view_serves_on_loopback_and_ctrl_c_stops_it_cleanly():
    """The command itself: prints its URL, serves the page, and Ctrl-C ends it with no process left."""
    import signal
    import subprocess
    import urllib.request

    from gsenv.tools.bench.proc import alive

    cmd = [sys.executable, "-m", "gsenv.tools.cli", "view", "--port", "0", "--image-size", "24x32",
           "--scene-density", str(DENSITY), "--device", "cpu"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        url = None
        for line in proc.stdout:  # viser's own banner comes first
            if line.startswith("gsenv view: http://"):
                url = line.split()[2]
                break
        assert url and url.startswith("http://127.0.0.1:"), proc.stderr.read()[-3000:]
        with urllib.request.urlopen(url, timeout=30) as r:
            assert r.status == 200 and b"<html" in r.read().lower()
        tree = descendants(proc.pid)
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C: the terminal signals the whole process group
        assert proc.wait(timeout=60) == 0
        assert "gsenv view: stopped" in proc.stdout.read()
        deadline = time.monotonic() + 30
        while any(alive(p) for p in tree) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert [p for p in tree if alive(p)] == []
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@needs_viser
def test_gsenv_view_bad_arguments_are_one_line_on_stderr(capsys, tmp_path):
    from gsenv.tools.cli import main

    assert main(["view", "--num-envs", "0"]) == 2
    out = capsys.readouterr()
    assert "gsenv view: error: --num-envs must be >= 1, got 0" in out.err and not out.out
    assert main(["view", str(tmp_path / "none")]) == 2
    assert "gsenv view: error: invalid scene bundle" in capsys.readouterr().err


@needs_viser
@pytest.mark.parametrize("host, why", [("8.8.8.8", "Cannot assign requested address"),
                                       ("no-such-host.invalid", "it does not resolve")])
def test_gsenv_view_on_a_host_it_cannot_listen_on_is_bad_input(host, why):
    """An address of another machine, or a name that does not resolve: exit 2 naming the host, before
    the env is made (viser would try 1000 ports there and then wait forever)."""
    import subprocess

    proc = subprocess.run([sys.executable, "-m", "gsenv.tools.cli", "view", "--host", host, "--port", "0",
                           "--image-size", "24x32", "--scene-density", str(DENSITY), "--device", "cpu"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr[-3000:]
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith(f"gsenv view: error: cannot listen on host {host!r}") and why in line
    assert "127.0.0.1" in line and not proc.stdout
