"""`gsenv demo`: the real command in a subprocess (real physics workers, real splat rendering on a
tiny scene), its output files and sizes, its success line, its errors; the picture helpers."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import imageio.v3 as iio
import numpy as np
import pytest

from gsenv import media
from gsenv.tools import demo

H, W = 48, 64
ENVS, STEPS = 2, 10


def _run(args, tmp_path, **env_extra):
    env = {**os.environ, "GSENV_ASSETS": str(tmp_path / "assets"), **env_extra}
    return subprocess.run([sys.executable, "-m", "gsenv.tools.cli", "demo", *args], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=600)


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("demo")
    out = tmp / "out"
    proc = _run(["--num-envs", str(ENVS), "--steps", str(STEPS), "--image-size", f"{H}x{W}",
                 "--scene-density", "0.01", "--seed", "5", "--out", str(out)], tmp)
    return proc, out


@pytest.mark.slow
def test_demo_writes_video_contact_sheet_and_side_by_side(demo_run):
    proc, out = demo_run
    assert proc.returncode == 0, proc.stderr[-3000:]
    # the tiled video: 2 envs side by side with a 2-pixel gap, one frame per step plus the reset frame
    tiled = (H, 2 * W + demo.GAP, 3)
    video = out / demo.VIDEO_NAME
    if video.exists():
        frames = iio.imread(video)
        assert frames.shape == (STEPS + 1,) + tiled
    else:  # no ffmpeg: PNG frames, and the output says so
        assert "no ffmpeg" in proc.stdout
        pngs = sorted((out / demo.FRAMES_DIR).glob("frame_*.png"))
        assert len(pngs) == STEPS + 1 and iio.imread(pngs[0]).shape == tiled
        frames = np.stack([iio.imread(p) for p in pngs])
    # the scene moves: the robot reaches for the cube, so first and last frames differ
    assert np.abs(frames[0].astype(int) - frames[-1].astype(int)).mean() > 1.0
    # contact sheet: one row per env, 8 columns over the 11 frames
    sheet = iio.imread(out / demo.SHEET_NAME)
    assert sheet.shape == (ENVS * H + (ENVS - 1) * demo.GAP, 8 * W + 7 * demo.GAP, 3)
    assert sheet[:, W].min() == 255  # the white gap between the first two columns
    # the two envs start from different states (seeds 5 and 6): their rows differ
    assert not np.array_equal(sheet[:H, :W], sheet[H + demo.GAP:, :W])
    # side-by-side: splat | mesh of env 0's initial state
    sbs = iio.imread(out / demo.SIDE_BY_SIDE_NAME)
    assert sbs.shape == (H, 2 * W + 2, 3)
    splat, mesh = sbs[:, :W].astype(int), sbs[:, W + 2:].astype(int)
    assert splat.std() > 5 and mesh.std() > 5  # both show a picture, not a blank
    # the success line and the files
    m = re.search(r"^success rate: (\d+)/(\d+) envs \((\d+)%\)", proc.stdout, re.M)
    assert m and int(m.group(2)) == ENVS and int(m.group(1)) <= ENVS, proc.stdout
    assert int(m.group(3)) == round(100 * int(m.group(1)) / ENVS)
    assert f"after {STEPS} steps" in proc.stdout  # 10 steps is too short to succeed and stop early
    assert str(out / demo.SHEET_NAME) in proc.stdout and str(out / demo.SIDE_BY_SIDE_NAME) in proc.stdout


@pytest.mark.parametrize("args, message", [
    (["--image-size", "big"], "argument --image-size: image size must be one int"),
    (["--num-envs", "0"], "--num-envs must be >= 1"),
    (["--scene-density", "2"], "--scene-density must lie in (0, 1]"),
])
def test_bad_options_fail_clearly(tmp_path, args, message):
    proc = _run(args + ["--out", str(tmp_path / "out")], tmp_path)
    assert proc.returncode == 2
    assert f"gsenv demo: error: {message}" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_unknown_option_is_a_usage_error(tmp_path):
    proc = _run(["--frobnicate"], tmp_path)
    assert proc.returncode == 2 and "unrecognized arguments: --frobnicate" in proc.stderr


def test_video_frame_grid_and_borders():
    frames = np.zeros((3, 10, 12, 3), np.uint8)
    frames[1] = 100
    img = demo.video_frame(frames, success=[True, False, False])
    # 3 tiles -> 2 x 2 grid; 2*10+2 = 22 rows, 2*12+2 = 26 columns (both even)
    assert img.shape == (22, 26, 3)
    assert tuple(img[0, 0]) == demo.SUCCESS_RGB and tuple(img[0, 14]) == demo.PENDING_RGB
    assert tuple(img[5, 20]) == (100, 100, 100)  # inside tile 1, past its border
    assert img[12:, 14:].min() == 255  # the fourth cell is empty (white)
    odd = demo.video_frame(np.zeros((1, 9, 11, 3), np.uint8))
    assert odd.shape == (10, 12, 3)  # padded to even for the video codec


def test_sheet_columns_and_contact_sheet():
    assert demo.sheet_columns(11, 8) == [0, 1, 3, 4, 6, 7, 9, 10]
    assert demo.sheet_columns(5, 8) == [0, 1, 2, 3, 4]
    assert demo.sheet_columns(101, 8)[-1] == 100
    frames = np.zeros((3, 2, 4, 5, 3), np.uint8)  # [T, B, H, W, 3]: value 10 * t + b
    frames += (10 * np.arange(3)[:, None] + np.arange(2)[None, :]).astype(np.uint8)[:, :, None, None, None]
    sheet = demo.contact_sheet(frames, columns=2)  # frames 0 and 2
    assert sheet.shape == (2 * 4 + demo.GAP, 2 * 5 + demo.GAP, 3)
    assert sheet[0, 0, 0] == 0 and sheet[0, 5 + demo.GAP, 0] == 20  # env 0 at t = 0, 2
    assert sheet[4 + demo.GAP, 0, 0] == 1 and sheet[-1, -1, 0] == 21  # env 1 at t = 0, 2
    assert sheet[4, :].min() == 255  # the white gap between the rows


def test_png_frames_where_mp4_is_not_wanted(tmp_path):
    frames = [np.full((10, 12, 3), v, np.uint8) for v in (0, 200)]
    with media.FrameWriter(tmp_path / demo.VIDEO_NAME, tmp_path / demo.FRAMES_DIR, prefer_mp4=False,
                           png_name=demo.FRAME_NAME) as video:
        for f in frames:
            video.append(f)
    assert not video.is_mp4 and video.path == tmp_path / demo.FRAMES_DIR and video.frames == 2
    pngs = sorted((tmp_path / demo.FRAMES_DIR).glob("frame_*.png"))
    assert [p.name for p in pngs] == ["frame_0000.png", "frame_0001.png"]
    assert iio.imread(pngs[1]).shape == (10, 12, 3) and iio.imread(pngs[1]).min() == 200
    assert not (tmp_path / demo.VIDEO_NAME).exists()


def test_no_ffmpeg_is_detected_and_falls_back_to_png(monkeypatch, tmp_path):
    monkeypatch.setenv("IMAGEIO_FFMPEG_EXE", "/nonexistent/ffmpeg")
    assert media.ffmpeg_exe() is None and not media.ffmpeg_available()
    video = media.FrameWriter(tmp_path / "v.mp4", tmp_path / "frames")
    video.append(np.zeros((9, 11, 3), np.uint8))
    video.close()
    assert not video.is_mp4 and [p.name for p in (tmp_path / "frames").iterdir()] == ["000000.png"]
    monkeypatch.delenv("IMAGEIO_FFMPEG_EXE")
    assert media.ffmpeg_exe() is not None  # imageio-ffmpeg (a dependency) bundles a binary


def test_unwritable_output_directory_fails_clearly(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    proc = _run(["--out", str(blocker / "out")], tmp_path)
    assert proc.returncode == 2
    assert "gsenv demo: error: cannot create the output directory" in proc.stderr
    assert "Traceback" not in proc.stderr
