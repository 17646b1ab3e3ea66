"""RecordVideo on the real GSEnv: tiled frames of env.render(), one file per episode, overlay, PNG and mp4."""
from __future__ import annotations

import gymnasium as gym
import imageio.v2 as imageio
import numpy as np
import pytest

import gsenv
from gsenv.media import ffmpeg_available, tile_frames
from gsenv.wrappers import RecordVideo

H, W = 48, 64
B = 2


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    assets = tmp_path_factory.getbasetemp() / "gsenv-assets"  # shared with test_smoke: one scene build
    assets.mkdir(exist_ok=True)
    env = gym.make(gsenv.registration.ENV_ID, num_envs=B, obs_mode="rgb", image_size=(H, W), scene_density=0.02,
                   asset_root=str(assets), num_workers=B, render_mode="rgb_array")
    yield env
    env.close()


def _actions(rng):
    return rng.uniform(-0.02, 0.02, size=(B, 7)).astype(np.float32)


def _png_frames(folder):
    return [imageio.imread(p) for p in sorted(folder.glob("*.png"))]


def test_tile_frames_layout():
    frames = np.arange(5 * 2 * 3 * 3, dtype=np.uint8).reshape(5, 2, 3, 3)
    tiled = tile_frames(frames)  # floor(sqrt(5)) = 2 rows, 3 cols, the 6th cell black
    assert tiled.shape == (4, 9, 3)
    assert np.array_equal(tiled[0:2, 3:6], frames[1]) and np.array_equal(tiled[2:4, 0:3], frames[3])
    assert not tiled[2:4, 6:9].any()
    with pytest.raises(ValueError, match="uint8"):
        tile_frames(frames.astype(np.float32))


def test_png_frames_overlay_partial_reset_and_no_extra_renders(env, tmp_path, monkeypatch):
    renderer = env.unwrapped.renderer
    calls = []
    original = renderer.render
    monkeypatch.setattr(renderer, "render", lambda *a, **k: calls.append(1) or original(*a, **k))

    plain = RecordVideo(env, tmp_path / "plain", video_format="png")
    over = RecordVideo(plain, tmp_path / "over", video_format="png", info_on_video=True)
    rng = np.random.default_rng(0)
    over.reset(seed=1)
    for _ in range(2):
        over.step(_actions(rng))
    over.reset(options={"env_idx": np.array([1])})  # partial: a frame, not a new video
    over.step(_actions(rng))
    last = tile_frames(env.unwrapped.render().cpu().numpy())
    over.flush(), plain.flush()

    assert len(calls) == 5, "one render per reset/step: the wrappers read the frame the env already has"
    assert plain.paths == [tmp_path / "plain" / "episode_0"] and plain.frames_written == [5]
    plain_frames, over_frames = _png_frames(plain.paths[0]), _png_frames(over.paths[0])
    assert len(plain_frames) == len(over_frames) == 5
    assert plain_frames[0].shape == (H, B * W, 3)
    assert np.array_equal(plain_frames[-1], last)  # lossless: exactly the tiled render() output
    assert not np.array_equal(plain_frames[1], plain_frames[2]), "the arm moved between steps"
    for p, o in zip(plain_frames, over_frames, strict=True):
        for i in range(B):  # text at each tile's top left, the rest untouched
            tile_p, tile_o = p[:, i * W:(i + 1) * W], o[:, i * W:(i + 1) * W]
            assert (tile_p[:H // 3, :W // 2] != tile_o[:H // 3, :W // 2]).any(axis=-1).sum() > 20
            assert np.array_equal(tile_p[-4:], tile_o[-4:])


def test_max_steps_per_video_and_max_envs(env, tmp_path):
    rec = RecordVideo(env, tmp_path, video_format="png", max_steps_per_video=2, max_envs=1, name_prefix="run")
    rng = np.random.default_rng(1)
    rec.reset(seed=2)
    for _ in range(3):
        rec.step(_actions(rng))
    rec.flush()
    assert [p.name for p in rec.paths] == ["run_0", "run_1"]
    assert rec.frames_written == [3, 1]  # reset + 2 steps, then the step after the cut
    assert _png_frames(rec.paths[0])[0].shape == (H, W, 3)  # one env recorded


def test_bad_arguments(env, tmp_path):
    with pytest.raises(ValueError, match="video_format"):
        RecordVideo(env, tmp_path, video_format="gif")
    with pytest.raises(ValueError, match="max_steps_per_video"):
        RecordVideo(env, tmp_path, max_steps_per_video=0)


@pytest.mark.skipif(not ffmpeg_available(), reason="needs imageio-ffmpeg for mp4")
def test_mp4_one_file_per_episode(env, tmp_path):  # last: closes the env through the wrapper
    rec = RecordVideo(env, tmp_path, info_on_video=True)
    rng = np.random.default_rng(2)
    rec.reset(seed=0)
    for _ in range(3):
        rec.step(_actions(rng))
    first = tile_frames(env.unwrapped.render().cpu().numpy())
    rec.reset(seed=5)  # a full reset ends the episode's video
    rec.step(_actions(rng))
    rec.close()  # flushes the running video
    assert rec.paths == [tmp_path / "episode_0.mp4", tmp_path / "episode_1.mp4"]
    for path, n in zip(rec.paths, (4, 2), strict=True):
        frames = list(imageio.get_reader(str(path), format="FFMPEG").iter_data())
        assert len(frames) == n and frames[0].shape == (H, B * W, 3)
    last = np.asarray(list(imageio.get_reader(str(rec.paths[0]), format="FFMPEG").iter_data())[-1], np.float32)
    # lossy, but close to the last frame of episode 0 away from the text
    assert np.abs(last[-10:] - first[-10:]).mean() < 12
