"""`gsenv real compare` on "real" recordings made by rendering the embedded scene (tiny images, CPU
reference renderer) under a known camera offset, a colour shift and sensor noise, written as a LeRobot
v2.1 dataset by gsenv's own writer (H.264 videos, as a real recording's). It recovers the offset, flags
a frame whose hand was moved, and passes an unperturbed recording. Plus the measures and the inputs."""
from __future__ import annotations

import json
import math
import re

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from gsenv.geometry import matrix_to_rotvec
from gsenv.lerobot_v21 import LeRobotV21Writer, VectorFeature, VideoFeature
from gsenv.realgap.camera_fit import se3_exp
from gsenv.realgap.metrics import MAX_PSNR_DB, psnr, silhouette_offset, ssim
from gsenv.realgap.recording import QposMapping, RecordingError, read_recording
from gsenv.realgap.synthetic import arm_configurations, video_key, write_synthetic_recording
from gsenv.scene_build.default import load_default_bundle
from gsenv.sim import names
from gsenv.tools.cli import main

DENSITY = 0.25
SIZE = (96, 128)  # height, width: tiny, for the CPU
CAMERA = "3rd_view_camera"
VIDEO = video_key(CAMERA)
FRAMES = 5
PERTURBED = 2  # the frame whose hand is moved
# the camera offset to recover: 5 mm and 0.5 degrees, in the camera's own axes
TRUE_T = np.array([0.003, -0.004, 0.0])
_AXIS = np.array([0.6, -0.4, 0.66]) / np.linalg.norm([0.6, -0.4, 0.66])
TRUE_W = _AXIS * math.radians(0.5)


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    return tmp_path_factory.mktemp("assets")


@pytest.fixture(scope="module")
def bundle(assets):
    return load_default_bundle(assets, density=DENSITY, progress=False)


def _qpos(n: int, seed: int = 0) -> np.ndarray:
    return arm_configurations(n, seed)


def _record(root, bundle, assets, qpos, *, offset=None, moved_hand=None, seed=0):
    """The robot rendered at qpos through the camera moved by offset, colour shifted, with noise, as a
    LeRobot dataset; moved_hand: (frame, [3] m) moves that frame's hand link."""
    moved = None if moved_hand is None else {(moved_hand[0], names.HAND_LINK): moved_hand[1]}
    return write_synthetic_recording(root, bundle, qpos, image_size=SIZE, camera_offset=offset, moved_links=moved,
                                     colour_gain=(1.06, 0.97, 1.0), colour_bias=(6.0, -4.0, 3.0), noise_std=2.0,
                                     seed=seed, render_backend="torch", device="cpu", asset_root=assets)


def _run(monkeypatch, assets, *argv):
    monkeypatch.setenv("GSENV_ASSETS", str(assets))
    return main(["real", "compare", *argv, "--density", str(DENSITY), "--render-backend", "torch",
                 "--device", "cpu"])


# ----------------------------------------------------------------------------------------- the measures
def test_psnr_and_ssim_of_known_images():
    a = np.full((16, 16, 3), 100, np.uint8)
    b = a.copy()
    b[:8] += 10  # half the pixels off by 10 -> MSE 50
    assert psnr(a, a) == MAX_PSNR_DB and ssim(a, a) == pytest.approx(1.0)
    assert psnr(a, b) == pytest.approx(10 * math.log10(255 ** 2 / 50))
    mask = np.zeros((16, 16), bool)
    mask[8:] = True  # the untouched half
    assert psnr(a, b, mask) == MAX_PSNR_DB and psnr(a, b, np.zeros_like(mask)) is None
    assert ssim(a, b) < 1.0


def test_silhouette_offset_finds_a_shifted_edge():
    mask = np.zeros((48, 64), bool)
    mask[15:33, 20:40] = True
    real = np.zeros((48, 64, 3), np.uint8)
    real[17:35, 23:43] = 200  # the real silhouette 3 px right, 2 px down
    dx, dy = silhouette_offset(mask, real)
    assert dx == pytest.approx(3, abs=0.3) and dy == pytest.approx(2, abs=0.3)  # sub-pixel refinement: < 0.3 px
    assert silhouette_offset(np.zeros_like(mask), real) is None


def test_se3_exp_is_rodrigues():
    xi = torch.tensor([0.01, 0.0, -0.02, 0.0, 0.0, math.pi / 2], dtype=torch.float64)
    T = se3_exp(xi)
    assert torch.allclose(T[:3, :3], torch.tensor([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]], dtype=torch.float64),
                          atol=1e-12)
    assert torch.equal(T[:3, 3], xi[:3])


# ----------------------------------------------------------------------------------------- the inputs
def _vector_dataset(root, state: np.ndarray, key=VIDEO, camera=None):
    from gsenv.lerobot_v21 import Episode

    n = len(state)
    w = LeRobotV21Writer(root, fps=10, features={key: VideoFeature(16, 16, camera=camera),
                                                 "observation.state": VectorFeature(state.shape[1])})
    frames = {key: np.zeros((n, 16, 16, 3), np.uint8), "observation.state": state.astype(np.float32)}
    w.add_episode(Episode(frames, "t"))
    w.close()
    return root


def test_qpos_mapping_with_a_gripper_column_and_camera_by_key(tmp_path):
    q = _qpos(3)
    state = np.concatenate([np.zeros((3, 2)), q[:, :7], q[:, 7:8] * 2], 1)  # 2 other values, arm, gripper width
    root = _vector_dataset(tmp_path / "d", state, key=f"observation.images.{CAMERA}")
    rec = read_recording(root, [CAMERA], qpos=QposMapping(columns=(2, 3, 4, 5, 6, 7, 8, 9)), max_frames=2)
    assert rec.frame_index.tolist() == [0, 2] and rec.video_keys == {CAMERA: f"observation.images.{CAMERA}"}
    np.testing.assert_allclose(rec.qpos, q[[0, 2]], atol=1e-6)  # float32 storage
    with pytest.raises(RecordingError, match="fewer than the FR3's 9"):
        read_recording(_vector_dataset(tmp_path / "e", q[:, :8], camera=CAMERA), [CAMERA])
    with pytest.raises(RecordingError, match=r"fr3_joint4 is 0.1673 in frame 0, outside the FR3.s range"):
        read_recording(root, [CAMERA])  # its first 9 columns are not the joints


@pytest.mark.parametrize("args, match", [
    (["--camera", "nope=3rd_view_camera"], "the dataset has no video 'nope'"),
    (["--camera", f"{VIDEO}=top"], "the scene has no camera 'top'"),
    (["--episode", "3"], r"the dataset has episodes 0..0"),
    (["--state-key", "observation.qpos"], "the dataset has no vector feature 'observation.qpos'"),
    (["--object", "mug=observation.state"], r"object poses for \['mug'\]|must hold 7 finite values"),
])
def test_bad_input_is_exit_2_with_the_reason(tmp_path, monkeypatch, capsys, assets, args, match):
    root = _vector_dataset(tmp_path / "d", _qpos(2), camera=CAMERA)
    assert _run(monkeypatch, assets, str(root), "--out", str(tmp_path / "out"), *args) == 2
    err = capsys.readouterr().err
    assert "gsenv real compare: error:" in err and re.search(match, err), err


def test_unmatched_cameras_and_a_missing_dataset_are_exit_2(tmp_path, monkeypatch, capsys, assets):
    root = _vector_dataset(tmp_path / "d", _qpos(2), key="observation.images.top")
    assert _run(monkeypatch, assets, str(root)) == 2
    assert "map them with --camera VIDEO_KEY=SCENE_CAMERA" in capsys.readouterr().err
    assert _run(monkeypatch, assets, str(tmp_path / "nothing")) == 2
    assert "no such folder" in capsys.readouterr().err


# ----------------------------------------------------------------------------------------- the comparison
@pytest.mark.slow
def test_recovers_a_camera_offset_and_flags_the_frame_with_a_moved_hand(tmp_path, monkeypatch, capsys, assets,
                                                                         bundle):
    true = se3_exp(torch.tensor([*TRUE_T, *TRUE_W], dtype=torch.float64))
    root = _record(tmp_path / "rec", bundle, assets, _qpos(FRAMES), offset=true,
                   moved_hand=(PERTURBED, [0.0, 0.02, 0.0]))
    out = tmp_path / "out"
    assert _run(monkeypatch, assets, str(root), "--out", str(out)) == 1
    err = capsys.readouterr().err
    report = json.loads((out / "report.json").read_text())
    (fit,) = report["corrections"]
    assert fit["converged"]
    # the fitted offset against the true one: within 1 mm and 0.1 degrees
    error = torch.linalg.inv(torch.tensor(fit["offset"], dtype=torch.float64)) @ true
    assert error[:3, 3].norm().item() < 1e-3, fit
    assert math.degrees(matrix_to_rotvec(error[:3, :3]).norm().item()) < 0.1, fit
    assert fit["shift_mm"] == pytest.approx(5.0, abs=1.0) and fit["turn_deg"] == pytest.approx(0.5, abs=0.1)
    # the colour shift is found too (gain 1.06, 0.97, 1.0): within 0.03 (noise, H.264)
    np.testing.assert_allclose(fit["colour_gain"], [1.06, 0.97, 1.0], atol=0.03)
    flagged = [f["frame"] for f in report["frames"] if f["flags"]]
    assert flagged == [PERTURBED], report["summary"]
    assert "calibration is off by 5.0 mm" in err and f"frame {PERTURBED}:" in err
    sheet = iio.imread(out / "contact_sheet.png")
    assert sheet.shape == (FRAMES * SIZE[0] + (FRAMES - 1) * 2, 3 * SIZE[1] + 4, 3)
    assert tuple(sheet[0, 0]) == (255, 0, 0)  # the flagged frame first, in a red border


@pytest.mark.slow
def test_an_unperturbed_recording_passes(tmp_path, monkeypatch, capsys, assets, bundle):
    root = _record(tmp_path / "rec", bundle, assets, _qpos(4, seed=1), seed=1)
    out = tmp_path / "out"
    assert _run(monkeypatch, assets, str(root), "--out", str(out), "--iterations", "10") == 0
    assert "the scene agrees with the recording" in capsys.readouterr().out
    report = json.loads((out / "report.json").read_text())
    assert report["passed"] and not report["problems"]
    (fit,) = report["corrections"]
    assert fit["shift_mm"] < 1.0 and fit["turn_deg"] < 0.1, fit
    for f in report["frames"]:
        assert f["robot_psnr_db"] > 25 and f["robot_ssim"] > 0.8, f  # colour shift + noise + H.264 only
