"""Load a `gsenv collect` dataset with LeRobot's own v2.1 reader.

    python scripts/check_lerobot_reader.py DATASET_DIR [torchcodec|pyav]

Either LeRobot that reads v2.1: lerobot 0.3.x (`lerobot.datasets`) or the commit openpi pins
(0cf8648, `lerobot.common.datasets`); the one installed is used and named in the first line.
lerobot 0.3.x cannot be installed beside gsenv (it pins torch < 2.8); install it without its
dependencies into a separate folder and put that first on PYTHONPATH (docs/benchmarks.md says where
this ran and what it printed). Every camera's decoded frames are compared with what the env rendered
for that camera before the codec (drawn again from the recorded poses, as `gsenv replay` draws them):
PSNR >= 35 dB. Exits non-zero on any disagreement with what gsenv wrote.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

# where LeRobotDataset lives: lerobot 0.3.x, then the older layout of the commit openpi pins
# H.264 at collect's quality keeps a frame within this of what the env rendered (issue 24's bound)
MIN_PSNR_DB = 35.0
LEROBOT_DATASET_MODULES = ("lerobot.datasets.lerobot_dataset", "lerobot.common.datasets.lerobot_dataset")


def lerobot_dataset_class():
    """(LeRobotDataset, its module name) from whichever module path the installed LeRobot has."""
    import importlib

    for name in LEROBOT_DATASET_MODULES:
        try:
            return importlib.import_module(name).LeRobotDataset, name
        except ModuleNotFoundError as exc:
            if exc.name is None or not name.startswith(exc.name):  # a dependency of LeRobot is missing
                raise
    sys.exit(f"no LeRobot with a v2.1 reader is importable (tried {', '.join(LEROBOT_DATASET_MODULES)}): install "
             "lerobot 0.3.x or openpi's pinned commit and put it on PYTHONPATH")


def main(root: str, backend: str = "torchcodec") -> int:
    import importlib.util

    import imageio.v3 as iio
    import torchvision

    from gsenv.tools.replay import drawn_frames

    LeRobotDataset, module = lerobot_dataset_class()
    import lerobot

    plugin = "pyav" if importlib.util.find_spec("av") else None  # imageio's own ffmpeg where PyAV is missing
    lerobot_version, vision_version = getattr(lerobot, "__version__", "?"), getattr(torchvision, "__version__", "?")
    print(f"lerobot {lerobot_version} ({module}) | torchvision {vision_version} | video backend", backend)
    info = json.loads((Path(root) / "meta" / "info.json").read_text())
    ds = LeRobotDataset("RLinf/GSEnv-PutCubeOnPlate-v0", root=root, video_backend=backend)
    print(f"episodes {ds.num_episodes} frames {ds.num_frames} fps {ds.fps} codebase {ds.meta.info['codebase_version']}")
    assert (ds.num_episodes, ds.num_frames) == (info["total_episodes"], info["total_frames"])
    print("features", {k: (v["dtype"], tuple(v["shape"])) for k, v in ds.features.items()})
    video_keys = [k for k, f in info["features"].items() if f.get("dtype") == "video"]
    worst, psnr_min, drawn = 0.0, {k: float("inf") for k in video_keys}, {}
    for i in sorted({0, ds.num_frames // 2, ds.num_frames - 1}):
        item = ds[i]
        ep, t = int(item["episode_index"]), int(item["frame_index"])
        assert item["observation.state"].shape == (9,) and item["actions"].shape == (7,)
        if ep not in drawn:  # what the env rendered for every camera, before the codec (replayed exactly)
            drawn[ep] = drawn_frames(root, ep, device="cpu")
        for key in video_keys:
            assert item[key].shape == (3, *info["features"][key]["shape"][:2]), (key, item[key].shape)
            theirs = item[key].permute(1, 2, 0).numpy()  # [H, W, 3] floats in [0, 1]
            video = Path(root) / info["video_path"].format(episode_chunk=0, video_key=key, episode_index=ep)
            ours = iio.imread(video, plugin=plugin)[t].astype(np.float32) / 255.0  # the same file via imageio
            worst = max(worst, float(np.abs(ours - theirs).max()))
            rendered = drawn[ep][key][t].astype(np.float64) / 255.0
            mse = float(((theirs.astype(np.float64) - rendered) ** 2).mean())
            psnr_min[key] = min(psnr_min[key], 10 * np.log10(1.0 / max(mse, 1e-12)))
        print(f"  item {i}: episode {ep} frame {t} task {item['task']!r} images "
              + ", ".join(f"{k} {tuple(item[k].shape)}" for k in video_keys))
    print(f"decoded frames vs imageio's decode of the same file: max abs difference {worst:.4f}")
    assert worst < 0.05
    print("decoded frames vs the env's render before the codec, worst PSNR: "
          + ", ".join(f"{k} {v:.1f} dB" for k, v in psnr_min.items()))
    assert min(psnr_min.values()) >= MIN_PSNR_DB
    # how openpi reads it: action chunks through delta_timestamps
    chunked = LeRobotDataset("RLinf/GSEnv-PutCubeOnPlate-v0", root=root, video_backend=backend,
                             delta_timestamps={"actions": [k / ds.fps for k in range(10)]})
    item = chunked[0]
    print("with delta_timestamps actions[0:10]:", tuple(item["actions"].shape),
          "padded", item["actions_is_pad"].tolist())
    assert item["actions"].shape == (10, 7)
    mean = ds.meta.stats["observation.image"]["mean"].reshape(-1).round(3)
    print("stats:", sorted(ds.meta.stats), "image mean", mean)
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
