#!/usr/bin/env python
"""Trainer-interface smoke test: drives GSEnv exactly as RLinf does and checks the trainer contract.

Creates the env with ``gym.make(**init_params)`` from RLinf's GSEnv config (id
"gsenv:GSEnv-PutCubeOnPlate-v0", obs_mode "state" + gs_kwargs.render_interface "gs_rlinf"), resets it
with RLinf's fixed episode ids, steps small random numpy float32 [B, 7] actions in 5-step chunks,
resets envs partially between chunks (env_idx + episode_id), and checks every key, shape, dtype and
device that RLinf, ManiSkill's baselines and gymnasium read (docs: shared/reference/trainer-contract.md).
All failures are collected (never stops at the first); a tiled video of the camera stream is written
(mp4, or PNG frames where ffmpeg is missing); exits 1 on any failed check, 2 on bad arguments.

    python scripts/test_rlinf_interface.py                       # 4 envs, 30 steps, 480x640, full scene
    python scripts/test_rlinf_interface.py --device cuda         # on the GPU machine
    python scripts/test_rlinf_interface.py --num-envs 2 --steps 10 --image-size 48x64 --scene-density 0.02
    python scripts/test_rlinf_interface.py --set init_params.gs_kwargs.cache_table=false   # a config variant
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = REPO / "tests" / "data" / "rlinf_gsenv_env.yaml"
CHUNK = 5  # RLinf's num_action_chunks: consecutive step() calls per policy call
CAMERA = "3rd_view_camera"  # the camera RLinf reads as main_images
RLINF_IMAGE_HW = (480, 640)
# RLinf's GSEnv config (examples/embodiment/config/env/gsenv_put_cube_on_plate.yaml), used when the yaml
# copy in tests/data is not there (e.g. an installed package without the tests)
EMBEDDED_CONFIG = {
    "seed": 0, "auto_reset": False, "ignore_terminations": False, "use_fixed_reset_state_ids": True,
    "init_params": {
        "id": "gsenv:GSEnv-PutCubeOnPlate-v0", "num_envs": None, "obs_mode": "state",
        "control_mode": "pd_ee_target_delta_pose", "max_episode_steps": 100, "robot_uids": "my_franka",
        "render_mode": "rgb_array", "disable_env_checker": True,
        "sim_config": {"sim_freq": 500, "control_freq": 10},
        "gs_kwargs": {"render_interface": "gs_rlinf", "cache_table": True, "render_bs": 4},
    },
}


# ---------------------------------------------------------------------------------------------- checks
class Checks:
    """Named checks, each possibly run many times (every step); keeps counts and the first failures."""

    def __init__(self):
        self.results: dict[str, dict] = {}  # name -> {"ok": n, "fail": n, "detail": str, "level": str}

    def record(self, name: str, failure: str | None, level: str = "FAIL") -> bool:
        r = self.results.setdefault(name, {"ok": 0, "fail": 0, "detail": "", "level": level})
        if failure:
            r["fail"] += 1
            r["detail"] = r["detail"] or failure
        else:
            r["ok"] += 1
        return not failure

    def run(self, name: str, fn, *args, level: str = "FAIL") -> bool:
        """fn(*args) returns None (pass) or a failure message; an exception is a failure too."""
        try:
            failure = fn(*args)
        except Exception as exc:  # a crash inside a check is that check's failure, never the end of the run
            failure = f"raised {type(exc).__name__}: {exc}"
        return self.record(name, failure, level)

    @property
    def failed(self) -> list[str]:
        return [n for n, r in self.results.items() if r["fail"] and r["level"] == "FAIL"]


def _dev(d) -> tuple[str, int]:
    import torch

    d = torch.device(d)
    return d.type, (d.index or 0) if d.type == "cuda" else 0


def tensor_failure(value, shape, dtype, device) -> str | None:
    """None when value is a torch tensor of that shape, dtype and device; else what is wrong."""
    import torch

    if not torch.is_tensor(value):
        return f"expected a torch.Tensor, got {type(value).__name__}"
    problems = []
    if tuple(value.shape) != tuple(shape):
        problems.append(f"shape {list(value.shape)} != {list(shape)}")
    if value.dtype != dtype:
        problems.append(f"dtype {value.dtype} != {dtype}")
    if device is not None and _dev(value.device) != _dev(device):
        problems.append(f"device {value.device} != {device}")
    return "; ".join(problems) or None


# ---------------------------------------------------------------------------------------------- config
def load_config(path: Path | None, overrides: list[str]) -> dict:
    import copy

    try:
        import yaml

        parse = yaml.safe_load
    except ImportError:  # no PyYAML (e.g. a bare GPU machine): the embedded config, JSON-style values
        import json

        if path is not None and path != DEFAULT_CONFIG:
            raise ValueError(f"reading --config {path} needs PyYAML (pip install pyyaml)") from None
        path = None

        def parse(raw):
            try:
                return json.loads(raw)
            except ValueError:
                return raw
    if path is None:
        cfg = copy.deepcopy(EMBEDDED_CONFIG)
    else:
        cfg = parse(Path(path).read_text())
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--set takes KEY=VALUE with a dotted KEY (e.g. init_params.obs_mode=rgb), got {item!r}")
        node = cfg
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ValueError(f"--set {item!r}: {part!r} is not a mapping in the config")
        node[leaf] = parse(raw)
    if not isinstance(cfg.get("init_params"), dict) or "id" not in cfg["init_params"]:
        raise ValueError("the config has no init_params.id (RLinf calls gym.make(**init_params))")
    return cfg


def image_size(text: str) -> tuple[int, int]:
    """'HxW' or 'N' (square) -> (H, W)."""
    try:
        parts = [int(v) for v in text.lower().split("x")]
    except ValueError:
        parts = []
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2 or min(parts) <= 0:
        raise argparse.ArgumentTypeError(f"image size must be HxW or N with positive ints (e.g. 480x640), got {text!r}")
    return parts[0], parts[1]


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--num-envs", type=int, default=4, help="B (default 4)")
    p.add_argument("--steps", type=int, default=30, help=f"env steps, in chunks of {CHUNK} (default 30)")
    p.add_argument("--device", default=None, help="where observations live: cpu, cuda (default: cuda if available)")
    p.add_argument("--out", type=Path, default=Path("outputs/rlinf_interface"), help="folder for the video")
    p.add_argument("--image-size", type=image_size, default=None,
                   help="HxW camera images (default: RLinf's 480x640); small values keep CPU runs short")
    p.add_argument("--scene-density", type=float, default=None,
                   help="density of the embedded default scene, in (0, 1] (default: full scene)")
    p.add_argument("--asset-root", default=None, help="where scenes/datasets live (default: $GSENV_ASSETS or cache)")
    p.add_argument("--num-workers", type=int, default=None, help="physx_cpu worker processes (default: env's)")
    p.add_argument("--config", type=Path, default=DEFAULT_CONFIG if DEFAULT_CONFIG.exists() else None,
                   help="RLinf env yaml (default: tests/data/rlinf_gsenv_env.yaml, else an embedded copy)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value (dotted key, yaml value), e.g. init_params.max_episode_steps=20")
    p.add_argument("--seed", type=int, default=None, help="reset seed and action rng (default: the config's seed)")
    args = p.parse_args(argv)
    if args.num_envs < 1:
        p.error(f"--num-envs must be >= 1, got {args.num_envs}")
    if args.steps < 1:
        p.error(f"--steps must be >= 1, got {args.steps}")
    if args.scene_density is not None and not 0 < args.scene_density <= 1:
        p.error(f"--scene-density must be in (0, 1], got {args.scene_density}")
    if args.num_workers is not None and args.num_workers < 1:
        p.error(f"--num-workers must be >= 1, got {args.num_workers}")
    try:
        args.cfg = load_config(args.config, args.overrides)
    except (OSError, ValueError) as exc:
        p.error(str(exc))
    return args


# ---------------------------------------------------------------------------------------------- the run
class Run:
    def __init__(self, args):
        import torch

        self.args, self.checks, self.times = args, Checks(), {}
        self.B = args.num_envs
        self.hw = tuple(args.image_size or RLINF_IMAGE_HW)
        self.expected_device = torch.device(args.device) if args.device else None  # None: the env's choice
        self.video_note = "no video"

    # -------------------------------------------------------------------------- helpers
    def tensor(self, name, value, shape, dtype):
        return self.checks.run(name, tensor_failure, value, shape, dtype, self.device)

    def check(self, name, fn, *a, level="FAIL"):
        return self.checks.run(name, fn, *a, level=level)

    def state(self, obs):
        """Per-env initial-state vector: qpos + the task's extra state (cube, plate, tcp poses)."""
        import torch

        base = self.env.unwrapped
        parts = [base.agent.robot.get_qpos()]
        if isinstance(obs, dict) and isinstance(obs.get("extra"), dict):
            parts += [v.reshape(self.B, -1) for _, v in sorted(obs["extra"].items()) if torch.is_tensor(v)]
        return torch.cat([p.float().reshape(self.B, -1) for p in parts], dim=1).cpu()

    # -------------------------------------------------------------------------- contract
    def check_obs(self, obs, where):
        import torch

        B, (H, W) = self.B, self.hw
        base = self.env.unwrapped
        rgb = None
        if self.check(f'obs["sensor_data"]["{CAMERA}"]["rgb"] present', lambda: None if isinstance(obs, dict)
                      and CAMERA in obs.get("sensor_data", {}) and "rgb" in obs["sensor_data"][CAMERA]
                      else f"obs is {type(obs).__name__}"
                      + (f" with keys {sorted(obs)}" if isinstance(obs, dict) else "")
                      + " (RLinf's default mode reads this key)"):
            rgb = obs["sensor_data"][CAMERA]["rgb"]
            if self.tensor(f'obs rgb uint8 [B, {H}, {W}, 3]', rgb, (B, H, W, 3), torch.uint8):
                self.check("obs rgb has image content (not constant)",
                           lambda: None if rgb.float().std() > 1.0 else f"std {rgb.float().std():.3f}")
            for key, shape in (("extrinsic_cv", (B, 3, 4)), ("cam2world_gl", (B, 4, 4)), ("intrinsic_cv", (B, 3, 3))):
                self.check(f'obs["sensor_param"][cam]["{key}"] float32 {list(shape)}',
                           lambda k=key, s=shape: tensor_failure(obs["sensor_param"][CAMERA][k], s, torch.float32,
                                                                 self.device))
            self.check('obs["agent"]["qpos"] float32 [B, 9]',
                       lambda: tensor_failure(obs["agent"]["qpos"], (B, 9), torch.float32, self.device))
        qpos = base.agent.robot.get_qpos()
        if self.tensor("agent.robot.get_qpos() float32 [B, 9]", qpos, (B, 9), torch.float32):
            self.check("get_qpos() finite", lambda: None if torch.isfinite(qpos).all() else "NaN/inf in qpos")
        self.check("get_language_instruction() list of B non-empty str", self._language)
        self.tensor("unwrapped.elapsed_steps int [B]", base.elapsed_steps, (B,), base.elapsed_steps.dtype)
        self.check("unwrapped.elapsed_steps is an integer dtype",
                   lambda: None if not base.elapsed_steps.dtype.is_floating_point else str(base.elapsed_steps.dtype))
        frame = base.render()
        if self.tensor("render() uint8 [B, H, W, 3]", frame, (B, H, W, 3), torch.uint8) and rgb is not None:
            self.check("render() == the obs camera frame (current state)",
                       lambda: None if torch.equal(frame, rgb) else f"differs from obs rgb ({where})")
            self.check("render() reuses the rendered frame (no re-render)",
                       lambda: None if base.render().data_ptr() == frame.data_ptr()
                       else "a second render() made a new image")
        return rgb

    def _language(self):
        text = self.env.unwrapped.get_language_instruction()
        if not isinstance(text, list) or len(text) != self.B:
            return f"got {type(text).__name__} of length {len(text) if hasattr(text, '__len__') else '?'}"
        if not all(isinstance(t, str) and t.strip() for t in text):
            return f"entries must be non-empty str: {text!r}"

    def check_info(self, info, where):
        import torch

        self.check('info["success"] bool [B]',
                   lambda: tensor_failure(info["success"], (self.B,), torch.bool, self.device))
        evaluated = self.env.unwrapped.evaluate()
        self.check('evaluate()["success"] bool [B]',
                   lambda: tensor_failure(evaluated["success"], (self.B,), torch.bool, self.device))
        # RLinf's "raw" wrap_obs_mode (not its default) reads info["extracted_obs"]: reported, not failed
        self.check('info["extracted_obs"] (RLinf wrap_obs_mode "raw" only)', lambda: None if "extracted_obs" in info
                   else "absent: RLinf's raw wrap_obs_mode would fail", level="WARN")

    def check_attributes(self):
        import gymnasium as gym
        import numpy as np
        import torch

        base = self.env.unwrapped
        self.check("unwrapped.num_envs == --num-envs", lambda: None if base.num_envs == self.B else f"{base.num_envs}")
        self.check("unwrapped.device is a torch.device", lambda: None if isinstance(base.device, torch.device)
                   else f"{type(base.device).__name__}")
        if self.expected_device is not None:
            self.check(f"unwrapped.device == {self.expected_device}",
                       lambda: None if _dev(base.device) == _dev(self.expected_device) else f"got {base.device}")
        self.check('metadata["render_fps"] > 0', lambda: None if base.metadata.get("render_fps", 0) > 0
                   else f"{base.metadata.get('render_fps')!r}")
        self.check("unwrapped.total_num_trials positive int",
                   lambda: None if isinstance(base.total_num_trials, (int, np.integer)) and base.total_num_trials > 0
                   else f"{getattr(base, 'total_num_trials', 'missing')!r} (RLinf falls back to 127)")
        self.check("unwrapped.seed has one entry per env",
                   lambda: None if len(base.seed) == self.B else f"{base.seed!r}")
        self.check("action_space Box [B, 7] float32", lambda: None if isinstance(self.env.action_space, gym.spaces.Box)
                   and self.env.action_space.shape == (self.B, 7) and self.env.action_space.dtype == np.float32
                   else f"{self.env.action_space}")
        self.check("single_action_space Box [7]", lambda: None if base.single_action_space.shape == (7,)
                   else f"{base.single_action_space}")
        self.check("single_observation_space / observation_space present", lambda: None if
                   base.single_observation_space is not None and self.env.observation_space is not None else "missing")

    # -------------------------------------------------------------------------- phases
    def make(self):
        import gymnasium as gym

        params = dict(self.args.cfg["init_params"])
        params["num_envs"] = self.B
        extra = {"device": self.args.device, "image_size": self.args.image_size,
                 "scene_density": self.args.scene_density, "asset_root": self.args.asset_root,
                 "num_workers": self.args.num_workers}
        params.update({k: v for k, v in extra.items() if v is not None})
        self.params = params
        t = time.perf_counter()
        try:
            self.env = gym.make(**params)
        except Exception as exc:
            self.checks.record("gym.make(**init_params)", f"raised {type(exc).__name__}: {exc}")
            return False
        self.times["gym.make"] = time.perf_counter() - t
        self.checks.record("gym.make(**init_params)", None)
        self.device = self.expected_device or self.env.unwrapped.device
        return True

    def reset_checks(self):
        """RLinf's full reset (same seed each epoch + episode ids) and what the ids must decide."""
        import torch

        base = self.env.unwrapped
        self.seed = self.args.seed if self.args.seed is not None else int(self.args.cfg.get("seed", 0) or 0)
        trials = int(getattr(base, "total_num_trials", 127))
        gen = torch.Generator().manual_seed(self.seed)
        self.ids = torch.randint(0, trials, (self.B,), generator=gen)  # as RLinf's update_reset_state_ids
        t = time.perf_counter()
        obs, info = self.env.reset(seed=self.seed, options={"episode_id": self.ids})
        self.times["full reset"] = time.perf_counter() - t
        self.check_obs(obs, "after reset")
        self.check_info(info, "after reset")
        self.check("elapsed_steps == 0 after a full reset",
                   lambda: None if (base.elapsed_steps == 0).all() else f"{base.elapsed_steps.tolist()}")
        self.initial = self.state(obs)
        obs2, _ = self.env.reset(seed=self.seed + 1, options={"episode_id": self.ids})
        self.check("episode_id decides the initial state (same ids, other seed -> same state)",
                   lambda: None if torch.allclose(self.state(obs2), self.initial, atol=1e-5)
                   else f"max diff {(self.state(obs2) - self.initial).abs().max():.3g}")
        if self.B >= 2 and len(set(self.ids.tolist())) > 1:
            rolled = torch.roll(self.ids, 1)
            obs3, _ = self.env.reset(seed=self.seed, options={"episode_id": rolled})
            self.check("episode_id moves with the env (rolled ids -> rolled states)",
                       lambda: None if torch.allclose(self.state(obs3), torch.roll(self.initial, 1, dims=0), atol=1e-5)
                       else "env i's state does not follow its episode id")
        obs, _ = self.env.reset(seed=self.seed, options={"episode_id": self.ids})
        self.check("the same reset again gives the same state", lambda: None if torch.allclose(
            self.state(obs), self.initial, atol=1e-5) else "not deterministic")

    def partial_reset(self, idx, obs_before_state, counters, reason):
        import torch

        base = self.env.unwrapped
        idx_t = torch.as_tensor(idx, dtype=torch.long)
        t = time.perf_counter()
        obs, info = self.driver.reset(options={"env_idx": idx_t, "episode_id": self.ids[idx_t]})
        self.times.setdefault("partial resets", []).append(time.perf_counter() - t)
        counters[idx] = 0
        keep = [i for i in range(self.B) if i not in set(idx)]
        self.check_obs(obs, f"after partial reset ({reason})")
        after = self.state(obs)
        self.check("partial reset: elapsed_steps 0 for reset envs, unchanged for the others",
                   lambda: None if base.elapsed_steps.cpu().tolist() == counters.tolist()
                   else f"{base.elapsed_steps.tolist()} != {counters.tolist()} (reset {idx})")
        self.check("partial reset: other envs' state untouched",
                   lambda: None if torch.equal(after[keep], obs_before_state[keep])
                   else f"envs {keep} changed")
        self.check("partial reset: reset envs back to their episode_id's initial state",
                   lambda: None if torch.allclose(after[idx], self.initial[idx], atol=1e-5)
                   else f"envs {idx} differ from their initial state")
        return obs

    def rollout(self):
        """Steps in RLinf's chunks through self.driver (the env inside the video recorder)."""
        import numpy as np
        import torch

        base = self.env.unwrapped
        rng = np.random.default_rng(self.seed)
        counters = np.zeros(self.B, dtype=np.int64)
        step_times, obs = [], None
        done_steps, chunk = 0, 0
        while done_steps < self.args.steps:
            for _ in range(min(CHUNK, self.args.steps - done_steps)):
                action = rng.uniform(-0.02, 0.02, size=(self.B, 7)).astype(np.float32)  # m / rad per step
                action[:, 6] = rng.uniform(-1, 1, size=self.B)  # gripper
                t = time.perf_counter()
                obs, reward, terminated, truncated, info = self.driver.step(action)
                step_times.append(time.perf_counter() - t)
                counters += 1
                done_steps += 1
                self.tensor("step reward float32 [B]", reward, (self.B,), torch.float32)
                self.tensor("step terminated bool [B]", terminated, (self.B,), torch.bool)
                self.tensor("step truncated bool tensor [B] (batch time limit)", truncated, (self.B,), torch.bool)
                self.check_obs(obs, f"step {done_steps}")
                self.check_info(info, f"step {done_steps}")
                self.check("elapsed_steps counts steps since each env's reset",
                           lambda: None if base.elapsed_steps.cpu().tolist() == counters.tolist()
                           else f"{base.elapsed_steps.tolist()} != {counters.tolist()}")
            chunk += 1
            if done_steps >= self.args.steps:
                break
            # RLinf's auto-reset after a chunk: only the envs that are done
            done = (torch.as_tensor(terminated) | torch.as_tensor(truncated)).cpu().numpy()
            before = self.state(obs)
            if done.any():
                obs = self.partial_reset(np.flatnonzero(done), before, counters, "done envs")
            elif chunk == 1:  # nothing done yet: reset every other env once, as an auto-reset would
                obs = self.partial_reset(np.arange(0, self.B, 2), before, counters, "scheduled")
        self.times["step (mean)"] = float(np.mean(step_times))
        self.times["chunk of 5 (mean)"] = float(np.mean(step_times)) * CHUNK

    def main(self) -> int:
        import numpy as np

        t0 = time.perf_counter()
        if self.make():
            try:
                self.check_attributes()
                self.reset_checks()
                from gsenv.wrappers.video import RecordVideo

                video = RecordVideo(self.env, self.args.out, info_on_video=True, max_envs=16,
                                    name_prefix="rlinf_interface")
                video.reset(seed=self.seed, options={"episode_id": self.ids})
                self.driver = video
                self.rollout()
                video.flush()
                if video.paths:
                    path, n = video.paths[-1], video.frames_written[-1]
                    self.video_note = (f"{path} ({n} frames)" if video.video_format == "mp4" else
                                       f"{path}/ ({n} PNG frames: no ffmpeg here, pip install imageio-ffmpeg for mp4)")
                    self.checks.record("video written", None if path.exists() else f"{path} missing")
            except Exception as exc:  # a crash outside a check: report it as the phase's failure
                self.checks.record(f"run ({type(exc).__name__})", f"{exc}")
            finally:
                t = time.perf_counter()
                try:
                    self.env.close()
                    self.checks.record("env.close()", None)
                except Exception as exc:
                    self.checks.record("env.close()", f"raised {type(exc).__name__}: {exc}")
                self.times["close"] = time.perf_counter() - t
        self.times["total"] = time.perf_counter() - t0
        if "partial resets" in self.times:
            self.times["partial reset (mean)"] = float(np.mean(self.times.pop("partial resets")))
        return self.summary()

    def summary(self) -> int:
        results = self.checks.results
        failed = self.checks.failed
        warned = [n for n, r in results.items() if r["fail"] and r["level"] == "WARN"]
        p = self.params if hasattr(self, "params") else {"id": self.args.cfg["init_params"]["id"]}
        print("=" * 78)
        print(f"gsenv trainer-interface smoke test: {p['id']}  B={self.B}  image {self.hw[0]}x{self.hw[1]}  "
              f"device {getattr(self, 'device', self.args.device or 'auto')}  steps {self.args.steps}")
        print("-" * 78)
        for name, r in results.items():
            if r["fail"]:
                tag = "FAIL" if r["level"] == "FAIL" else "WARN"
                print(f"{tag}  {name}  [{r['fail']} of {r['ok'] + r['fail']}]: {r['detail']}")
        passed = [n for n, r in results.items() if not r["fail"]]
        print(f"{len(passed)} checks passed ({sum(r['ok'] for r in results.values())} assertions), "
              f"{len(failed)} failed, {len(warned)} warnings")
        print("timings: " + ", ".join(f"{k} {v:.3f}s" for k, v in self.times.items()))
        print(f"video: {self.video_note}")
        print("RESULT: " + ("FAILED: " + "; ".join(failed) if failed else "OK"))
        return 1 if failed else 0


def main(argv=None) -> int:
    args = parse_args(argv)
    return Run(args).main()


if __name__ == "__main__":
    sys.exit(main())
