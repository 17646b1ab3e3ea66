"""Every camera under its own key: `gsenv collect --camera` with the third-person and the wrist camera writes
observation.image and observation.wrist_image, each the env's render of that camera (through the
codec), each recorded in info.json with its camera; a wrist-only collection never writes
observation.image; appending with other cameras is refused. Real collections (ManiSkill physics,
splat images, ffmpeg videos) at a small image size."""
from __future__ import annotations

import json

import imageio.v3 as iio
import numpy as np
import pytest
from reset_render import rendered_at_reset

from gsenv.lerobot_v21 import DatasetFormatError, LeRobotV21Writer, VectorFeature, VideoFeature, verify
from gsenv.tools.cli import main as cli
from gsenv.tools.collect import camera_keys

DENSITY = "0.05"
THIRD, WRIST = "3rd_view_camera", "wrist_camera"
H, W = 96, 128


def _collect(out, *cameras: str) -> int:
    camera_args = [a for c in cameras for a in ("--camera", c)]
    return cli(["collect", "--episodes", "1", "--num-envs", "1", "--image-size", f"{H}x{W}", "--out", str(out),
                "--device", "cpu", "--scene-density", DENSITY, "--num-workers", "1", "--no-progress",
                "--expert-style", "gsenv", *camera_args])  # frame 0 is the reset observation


@pytest.fixture(scope="module")
def two_cameras(tmp_path_factory):
    out = tmp_path_factory.mktemp("cameras") / "ds"
    assert _collect(out, f"{WRIST},{THIRD}") == 0  # a comma list; the wrist first, still under its own key
    return out


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(255**2 / np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)))


@pytest.mark.slow
def test_two_cameras_each_under_its_own_key_with_its_camera_recorded(two_cameras, capsys):
    info = verify(two_cameras)
    videos = {k: f for k, f in info["features"].items() if f["dtype"] == "video"}
    assert {k: f["camera"] for k, f in videos.items()} == {"observation.image": THIRD,
                                                           "observation.wrist_image": WRIST}
    assert info["total_videos"] == 2
    (episode,) = [json.loads(x) for x in (two_cameras / "meta" / "episodes.jsonl").read_text().splitlines()]
    rendered = {c: img.numpy() for c, img in rendered_at_reset(episode["seed"], [THIRD, WRIST], (H, W),
                                                                    DENSITY).items()}
    frame0 = {c: iio.imread(two_cameras / "videos" / "chunk-000" / key / "episode_000000.mp4")[0]
              for key, c in (("observation.image", THIRD), ("observation.wrist_image", WRIST))}
    # each key holds its own camera's picture (x264 at this size: > 35 dB), not the other one's
    assert _psnr(frame0[THIRD], rendered[THIRD]) >= 35 and _psnr(frame0[WRIST], rendered[WRIST]) >= 35
    assert _psnr(frame0[THIRD], rendered[WRIST]) < 20 and _psnr(frame0[WRIST], rendered[THIRD]) < 20

    # appending with other cameras is refused, and nothing is written
    assert _collect(two_cameras, WRIST) == 2
    err = capsys.readouterr().err
    assert ("holds the features ['actions', 'observation.environment_state', 'observation.image', "
            "'observation.state', 'observation.wrist_image']") in err
    assert "this run writes ['actions', 'observation.environment_state', 'observation.state', " \
           "'observation.wrist_image']" in err
    assert verify(two_cameras)["total_episodes"] == 1


@pytest.mark.slow
def test_a_wrist_only_collection_never_writes_observation_image(tmp_path):
    out = tmp_path / "ds"
    assert _collect(out, WRIST) == 0
    info = verify(out)
    assert [k for k, f in info["features"].items() if f["dtype"] == "video"] == ["observation.wrist_image"]
    assert info["features"]["observation.wrist_image"]["camera"] == WRIST
    assert not (out / "videos" / "chunk-000" / "observation.image").exists()


def test_camera_keys_follow_openpi_naming():
    assert camera_keys([THIRD], (False,)) == {"observation.image": THIRD}
    assert camera_keys([WRIST, THIRD, "side"], (True, False, False)) == {
        "observation.wrist_image": WRIST, "observation.image": THIRD, "observation.images.side": "side"}
    assert camera_keys(["w1", "w2"], (True, True)) == {"observation.wrist_image": "w1", "observation.images.w2": "w2"}


def test_the_same_key_with_another_camera_is_refused(tmp_path):
    def features(camera):
        return {"observation.image": VideoFeature(16, 16, camera=camera), "observation.state": VectorFeature(9)}

    LeRobotV21Writer(tmp_path / "ds", fps=10, features=features(THIRD)).close()
    with pytest.raises(DatasetFormatError, match=f"observation.image holds the camera '{THIRD}', this run records "
                                                 f"'{WRIST}' under it"):
        LeRobotV21Writer(tmp_path / "ds", fps=10, features=features(WRIST))
    LeRobotV21Writer(tmp_path / "old", fps=10, features=features(None)).close()  # as an older gsenv wrote it
    with pytest.raises(DatasetFormatError, match="does not record which camera it holds"):
        LeRobotV21Writer(tmp_path / "old", fps=10, features=features(THIRD))
