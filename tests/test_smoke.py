"""scripts/test_rlinf_interface.py, run as users run it (a subprocess, real env, tiny CPU settings)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import imageio.v2 as imageio
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "test_rlinf_interface.py"
TINY = ["--image-size", "48x64", "--scene-density", "0.02", "--device", "cpu"]


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    path = tmp_path_factory.getbasetemp() / "gsenv-assets"  # shared with test_video/test_smoke: one scene build
    path.mkdir(exist_ok=True)
    return str(path)


def smoke(*args, timeout=300):
    proc = subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout)
    return proc.returncode, proc.stdout + proc.stderr


@pytest.mark.slow
def test_smoke_passes_and_writes_the_video(assets, tmp_path):
    rc, out = smoke("--num-envs", "2", "--steps", "10", "--out", str(tmp_path), "--asset-root", assets, *TINY)
    assert rc == 0, out
    assert "RESULT: OK" in out and "0 failed" in out
    video = tmp_path / "rlinf_interface_0.mp4"
    if video.exists():
        frames = list(imageio.get_reader(str(video), format="FFMPEG").iter_data())
        # the reset frame, 10 steps and the partial reset after the first chunk; 2 tiles side by side
        assert len(frames) == 12 and frames[0].shape == (48, 128, 3)
        assert f"video: {video} (12 frames)" in out
    else:
        pngs = sorted((tmp_path / "rlinf_interface_0").glob("*.png"))
        assert len(pngs) == 12 and "PNG frames" in out, out


@pytest.mark.slow
def test_a_broken_contract_fails_naming_the_check(assets, tmp_path):
    # without RLinf's render_interface the "state" obs mode gives a flat tensor: no camera images in the obs
    rc, out = smoke("--num-envs", "1", "--steps", "5", "--out", str(tmp_path), "--asset-root", assets,
                    "--set", "init_params.gs_kwargs.render_interface=none", *TINY)
    assert rc == 1, out
    fails = [line for line in out.splitlines() if line.startswith("FAIL")]
    assert any('obs["sensor_data"]["3rd_view_camera"]["rgb"] present' in line for line in fails), out
    assert not any("get_qpos" in line or "elapsed_steps" in line for line in fails), out  # the rest still ran
    assert "RESULT: FAILED" in out and "render() uint8" not in "".join(fails)
    assert (tmp_path / "rlinf_interface_0.mp4").exists() or (tmp_path / "rlinf_interface_0").is_dir()


@pytest.mark.parametrize("args, message", [
    (["--num-envs", "0"], "--num-envs must be >= 1"),
    (["--image-size", "48y64"], "image size must be HxW"),
    (["--set", "init_params.obs_mode"], "--set takes KEY=VALUE"),
])
def test_bad_arguments_exit_2(args, message):
    rc, out = smoke(*args, timeout=60)
    assert rc == 2 and message in out, out
