"""`gsenv replay`: a real collection (ManiSkill physics, splat images, ffmpeg videos) drawn again from its
recorded body poses with the wrist camera added and at another image size; actions, states, poses and
task text carried over exactly, the third-person frames the source's, the new dataset whole; a second run
goes on where the first stopped; bad inputs exit 2 with a message saying what to do."""
from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
import imageio.v3 as iio
import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from reset_render import rendered_at_reset

import gsenv
from gsenv.lerobot_v21 import Episode, LeRobotV21Writer, VectorFeature, VideoFeature, verify
from gsenv.tools.cli import main as cli
from gsenv.tools.collect import ENV_STATE_KEY, pose_feature

DENSITY = "0.05"  # few gaussians: real renders, cheap on CPU
THIRD, WRIST = "3rd_view_camera", "wrist_camera"
SIZE = 32
VECTOR_KEYS = ("observation.state", "actions", ENV_STATE_KEY)


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _collect(out: Path, episodes: int = 2, size: int = SIZE) -> int:
    return cli(["collect", "--episodes", str(episodes), "--num-envs", "2", "--image-size", str(size), "--out",
                str(out), "--device", "cpu", "--scene-density", DENSITY, "--num-workers", "2", "--no-progress",
                "--expert-style", "gsenv", "--camera", THIRD])


def _replay(source: Path, out: Path, *args: str) -> int:
    return cli(["replay", str(source), "--out", str(out), "--device", "cpu", "--num-envs", "4", "--no-progress",
                *args])


def _table(root: Path, episode: int):
    return pq.read_table(root / "data" / "chunk-000" / f"episode_{episode:06d}.parquet")


def _column(table, key: str) -> np.ndarray:
    return np.stack(table.column(key).to_numpy(zero_copy_only=False))


def _video(root: Path, key: str, episode: int) -> np.ndarray:
    return iio.imread(root / "videos" / "chunk-000" / key / f"episode_{episode:06d}.mp4")


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255**2 / mse))


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("replay") / "source"
    assert _collect(out) == 0
    return out


@pytest.fixture(scope="module")
def with_wrist(source) -> Path:
    out = source.parent / "with-wrist"
    assert _replay(source, out, "--camera", f"{THIRD},{WRIST}") == 0
    return out


@pytest.mark.slow
def test_replay_with_the_wrist_camera_keeps_everything_and_draws_the_same_frames(source, with_wrist):
    info = verify(with_wrist)  # whole: metadata, parquet files, every video decoded
    src_info = verify(source)
    videos = {k: f["camera"] for k, f in info["features"].items() if f["dtype"] == "video"}
    assert videos == {"observation.image": THIRD, "observation.wrist_image": WRIST}
    assert info["total_episodes"] == src_info["total_episodes"] == 2 and info["total_videos"] == 4
    assert info["total_frames"] == src_info["total_frames"]
    for key in VECTOR_KEYS:
        assert info["features"][key]["names"] == src_info["features"][key]["names"]
    src_rows, rows = _jsonl(source / "meta" / "episodes.jsonl"), _jsonl(with_wrist / "meta" / "episodes.jsonl")
    for i, (a, b) in enumerate(zip(src_rows, rows)):
        assert b == {**a, "replayed_from": i}  # task text, length, seed, style: the source's
        src_table, table = _table(source, i), _table(with_wrist, i)
        for key in VECTOR_KEYS:  # carried over bit for bit
            assert np.array_equal(_column(src_table, key), _column(table, key)), key
        # the same poses, cameras and size, drawn by the same renderer, encoded by the same codec: the
        # decoded frames must agree to well above the codec's own loss (x264 at 32x32: ~35-45 dB)
        assert _psnr(_video(source, "observation.image", i), _video(with_wrist, "observation.image", i)) >= 40
    assert _jsonl(with_wrist / "meta" / "tasks.jsonl") == _jsonl(source / "meta" / "tasks.jsonl")


@pytest.mark.slow
def test_the_added_wrist_frames_are_the_wrist_cameras_view(source, with_wrist):
    """Frame 0 of the new wrist video is the wrist camera's image right after the episode's reset (an env
    rendering it directly), not the third-person one."""
    episode = _jsonl(source / "meta" / "episodes.jsonl")[1]
    rendered = {c: img.numpy() for c, img in rendered_at_reset(episode["seed"], [THIRD, WRIST], SIZE, DENSITY).items()}
    wrist = _video(with_wrist, "observation.wrist_image", 1)[0]
    assert _psnr(wrist, rendered[WRIST]) > 30, _psnr(wrist, rendered[WRIST])  # the picture, through the codec
    assert _psnr(wrist, rendered[WRIST]) > _psnr(wrist, rendered[THIRD]) + 5  # and not the other camera's


@pytest.mark.slow
def test_the_recorded_poses_are_what_the_episode_simulates_from_its_seed(source):
    """observation.environment_state holds the poses each frame was drawn from: a fresh one-env GSEnv reset
    with the episode's seed and stepped with its actions gives them again. Measured max abs difference:
    0.0 (collection and re-simulation on the same CPU and code path; every reset starts a fresh PhysX
    scene, gsenv.sim.physx_history), so re-simulating from the seed is exact here; replay itself never
    re-simulates."""
    episode = _jsonl(source / "meta" / "episodes.jsonl")[1]
    table = _table(source, 1)
    recorded, actions = _column(table, ENV_STATE_KEY), _column(table, "actions")
    bodies = json.loads((source / "meta" / "info.json").read_text())["features"][ENV_STATE_KEY]["gsenv"]["bodies"]
    assert bodies == sorted(bodies) and {"cube", "plate", "fr3_hand"} <= set(bodies)
    assert recorded.shape == (len(actions), 7 * len(bodies))
    env = gym.make(gsenv.registration.ENV_ID, num_envs=1, obs_mode="state_dict", device="cpu", num_workers=1,
                   scene_density=float(DENSITY))
    try:
        env.reset(seed=[episode["seed"]])
        poses = []
        for a in actions:
            p = env.unwrapped.get_body_poses()
            poses.append(np.concatenate([p[b][0].numpy() for b in bodies]))
            env.step(torch.as_tensor(a)[None])
    finally:
        env.close()
    poses = np.stack(poses)
    assert np.abs(poses - recorded).max() == 0.0
    cube = bodies.index("cube") * 7
    assert np.abs(recorded[-1, cube:cube + 3] - recorded[0, cube:cube + 3]).max() > 0.02  # the cube was moved


@pytest.mark.slow
def test_replay_at_another_image_size(source, tmp_path):
    out = tmp_path / "small"
    assert _replay(source, out, "--image-size", "16x24") == 0
    info = verify(out)
    assert info["features"]["observation.image"]["shape"] == [16, 24, 3]
    assert info["features"]["observation.image"]["camera"] == THIRD
    video = _video(out, "observation.image", 0)
    assert video.shape == (_jsonl(source / "meta" / "episodes.jsonl")[0]["length"], 16, 24, 3)
    for key in VECTOR_KEYS:
        assert np.array_equal(_column(_table(source, 0), key), _column(_table(out, 0), key)), key
    # the source's picture at the new size: its frame 0 shrunk to 16x24 is near (codec + resampling)
    shrunk = torch.nn.functional.interpolate(torch.from_numpy(_video(source, "observation.image", 0)[:1]).permute(
        0, 3, 1, 2).double(), size=(16, 24), mode="area")[0].permute(1, 2, 0).numpy()
    assert _psnr(video[0], shrunk) > 20, _psnr(video[0], shrunk)


@pytest.mark.slow
def test_a_second_run_goes_on_after_the_episodes_already_replayed(tmp_path, capsys):
    src, out = tmp_path / "src", tmp_path / "out"
    assert _collect(src, episodes=1, size=16) == 0
    assert _replay(src, out) == 0
    first = _video(out, "observation.image", 0)
    assert _collect(src, episodes=1, size=16) == 0  # collect appends a second episode to the source
    capsys.readouterr()
    assert _replay(src, out) == 0
    assert "replayed 1 episodes" in capsys.readouterr().out
    rows = _jsonl(out / "meta" / "episodes.jsonl")
    assert [r["replayed_from"] for r in rows] == [0, 1] and verify(out)["total_episodes"] == 2
    assert np.array_equal(_video(out, "observation.image", 0), first)  # the first episode was left alone
    assert np.array_equal(_column(_table(src, 1), "actions"), _column(_table(out, 1), "actions"))
    assert _replay(src, out) == 0  # all replayed: nothing to do
    assert "replayed 0 episodes" in capsys.readouterr().out
    assert _replay(src, out, "--image-size", "32") == 2  # the same folder with other settings
    assert "other settings" in capsys.readouterr().err


@pytest.mark.slow
def test_randomisation_is_drawn_from_each_episodes_seed_as_collection_drew_it(tmp_path):
    """A collection under the default randomisation, replayed with the randomisation it recorded, gives
    its frames again (the draws come from each episode's seed, the noise from each frame's step);
    replayed without it, the same motion in the scene's own look."""
    from gsenv.tools.collect import collect

    src = tmp_path / "src"
    collect(src, 2, num_envs=2, image_size=16, camera=THIRD, device="cpu", progress=False, expert_style="gsenv",
            scene_density=float(DENSITY), num_workers=2, domain_randomization="default")
    assert _replay(src, tmp_path / "same") == 0
    assert _replay(src, tmp_path / "plain", "--domain-randomization", "none") == 0
    for i in range(2):
        source = _video(src, "observation.image", i)
        assert _psnr(source, _video(tmp_path / "same", "observation.image", i)) >= 40
        assert _psnr(source, _video(tmp_path / "plain", "observation.image", i)) < 30  # randomised vs not
        assert np.array_equal(_column(_table(src, i), ENV_STATE_KEY), _column(_table(tmp_path / "plain", i),
                                                                              ENV_STATE_KEY))
    info = json.loads((tmp_path / "plain" / "meta" / "info.json").read_text())
    assert info["features"][ENV_STATE_KEY]["gsenv"]["domain_randomization"] is None  # what it was drawn with


@pytest.mark.slow
def test_render_body_poses_draws_the_observation_of_those_poses_and_refuses_bad_ones():
    """GSEnv.render_body_poses of the env's own poses is its observation, bit for bit (the same renderer,
    poses and cameras); the wrist camera follows the given hand pose; bad poses are a ValueError."""
    env = gym.make(gsenv.registration.ENV_ID, num_envs=2, obs_mode="rgb", image_size=SIZE, device="cpu",
                   num_workers=1, scene_density=float(DENSITY), cameras=[THIRD, WRIST])
    try:
        u = env.unwrapped
        env.reset(seed=[3, 4])
        obs, *_ = env.step(torch.as_tensor(u.expert_action()))
        poses = u.get_body_poses()
        drawn = u.render_body_poses(poses)  # [B, C, H, W, 3]
        assert drawn.shape == (2, 2, SIZE, SIZE, 3) and drawn.dtype == torch.uint8
        for c, name in enumerate(u.camera_names):
            assert torch.equal(drawn[:, c], obs["sensor_data"][name]["rgb"]), name
        swapped = {k: v.flip(0) for k, v in poses.items()}  # env 0 drawn with env 1's poses
        assert torch.equal(u.render_body_poses(swapped)[0], drawn[1])
        with pytest.raises(ValueError, match=r"lacks \['cube'\]"):
            u.render_body_poses({k: v for k, v in poses.items() if k != "cube"})
        with pytest.raises(ValueError, match=r"body_poses\['cube'\] must be \[2, 7\]"):
            u.render_body_poses({**poses, "cube": poses["cube"][:1]})
    finally:
        env.close()


def _dataset_without_poses(root: Path) -> None:
    """A real v2.1 dataset as an older gsenv collect wrote it: no observation.environment_state."""
    writer = LeRobotV21Writer(root, fps=10, features={"observation.image": VideoFeature(16, 16, camera=THIRD),
                                                      "observation.state": VectorFeature(9),
                                                      "actions": VectorFeature(7)})
    try:
        writer.add_episode(Episode({"observation.image": np.zeros((3, 16, 16, 3), np.uint8),
                                    "observation.state": np.zeros((3, 9)), "actions": np.zeros((3, 7))}, task="t"))
    finally:
        writer.close()


def _dataset_with_poses(root: Path) -> None:
    """A real v2.1 dataset in collect's layout, with poses (all zero) of two bodies."""
    poses = pose_feature(["cube", "plate"], {"task": "PutCubeOnPlate", "scene": "default",
                                             "scene_density": float(DENSITY), "domain_randomization": None})
    writer = LeRobotV21Writer(root, fps=10, features={"observation.image": VideoFeature(16, 16, camera=THIRD),
                                                      "observation.state": VectorFeature(9),
                                                      "actions": VectorFeature(7), ENV_STATE_KEY: poses})
    try:
        writer.add_episode(Episode({"observation.image": np.zeros((3, 16, 16, 3), np.uint8),
                                    "observation.state": np.zeros((3, 9)), "actions": np.zeros((3, 7)),
                                    ENV_STATE_KEY: np.zeros((3, 14))}, task="t"))
    finally:
        writer.close()


def test_bad_inputs_exit_2_saying_what_to_do(tmp_path, capsys):
    def refused(*args: str) -> str:
        assert cli(["replay", *args, "--device", "cpu", "--no-progress"]) == 2
        return capsys.readouterr().err

    assert "not a LeRobot dataset" in refused(str(tmp_path / "nothing"), "--out", str(tmp_path / "o1"))
    old = tmp_path / "old"
    _dataset_without_poses(old)
    err = refused(str(old), "--out", str(tmp_path / "o2"))
    assert "collected without every body's pose" in err and "re-collect" in err
    ds = tmp_path / "ds"
    _dataset_with_poses(ds)
    assert "is the source dataset" in refused(str(ds), "--out", str(ds))
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    assert "not an unfinished replay" in refused(str(ds), "--out", str(foreign))
    assert (foreign / "notes.txt").read_text() == "mine" and len(list(foreign.iterdir())) == 1
    assert "even height and width" in refused(str(ds), "--out", str(tmp_path / "o3"), "--image-size", "17x16")
    assert not (tmp_path / "o2").exists() and not (tmp_path / "o3").exists()  # nothing written
    assert cli(["collect", "--episodes", "1", "--image-size", "16", "--out", str(old), "--device", "cpu"]) == 2
    assert "collected by an older gsenv" in capsys.readouterr().err  # nor is it appended to
    assert verify(old)["total_episodes"] == 1


@pytest.mark.slow
def test_an_unknown_camera_and_other_bodies_are_refused_before_anything_is_written(tmp_path, capsys):
    ds = tmp_path / "ds"
    _dataset_with_poses(ds)
    assert cli(["replay", str(ds), "--out", str(tmp_path / "a"), "--camera", "nope", "--device", "cpu"]) == 2
    assert "nope" in capsys.readouterr().err
    assert cli(["replay", str(ds), "--out", str(tmp_path / "b"), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "records the poses of ['cube', 'plate']" in err and "replay it with the gsenv that collected it" in err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


@pytest.mark.slow
def test_drawn_frames_are_what_the_env_rendered_before_the_codec(source):
    """drawn_frames (what scripts/check_lerobot_reader.py compares a reader's decoded frames with): frame 0 of
    an episode is the env's own render right after that episode's reset, up to float32 rounding (another
    batch shape), and an episode the dataset lacks is a ReplayError naming it."""
    from tolerances import assert_same_render

    from gsenv.tools.replay import ReplayError, drawn_frames

    episode = _jsonl(source / "meta" / "episodes.jsonl")[1]
    frames = drawn_frames(source, 1, device="cpu", num_workers=1)
    assert list(frames) == ["observation.image"] and frames["observation.image"].shape == (episode["length"], SIZE,
                                                                                            SIZE, 3)
    rendered = rendered_at_reset(episode["seed"], [THIRD], SIZE, DENSITY)[THIRD]
    assert_same_render(torch.from_numpy(frames["observation.image"][0]), rendered)
    assert _psnr(frames["observation.image"][-1], rendered.numpy()) < 40  # and the last frame is another picture
    with pytest.raises(ReplayError, match="no episode 7"):
        drawn_frames(source, 7, device="cpu")
