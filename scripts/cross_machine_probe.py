"""Where two machines' CPU simulations part: run it on each, then compare the two files.

    python scripts/cross_machine_probe.py save OUT.pt        (on each machine)
    python scripts/cross_machine_probe.py compare A.pt B.pt

It records, on fixed inputs: Python's math and glibc's float functions, numpy's SIMD functions,
ManiSkill's torch rotation helpers (B=1 and 64), sapien's pinocchio IK (50 targets), and 60 steps of
ManiSkill's PickCube-v1 under joint-space control (PhysX alone) and under pd_ee_delta_pose (PhysX, IK
and the controller's torch math). `compare` prints, per probe, how many values differ, the largest
difference and the first row that differs. docs/benchmarks.md (2026-12-07) has one comparison:
only the torch/MKL math of the end-effector controller differed, which MKL_CBWR=COMPATIBLE (gsenv's
default in its physics workers) mostly removes.
"""
from __future__ import annotations

import ctypes
import math
import os
import platform
import sys

import numpy as np


def _libm_float(xf: np.ndarray) -> np.ndarray:
    libm = ctypes.CDLL("libm.so.6")
    one = ("sinf", "cosf", "expf", "sqrtf", "acosf")
    for name in (*one, "atan2f"):
        getattr(libm, name).restype = ctypes.c_float
        getattr(libm, name).argtypes = [ctypes.c_float] * (2 if name == "atan2f" else 1)
    return np.array([[libm.sinf(v), libm.cosf(v), libm.expf(v / 3), libm.sqrtf(abs(v)), libm.acosf(v / 10.5),
                      libm.atan2f(v, 1.3)] for v in xf], dtype=np.float32)


def _maniskill_run(control_mode: str) -> np.ndarray:
    import gymnasium as gym
    import mani_skill.envs  # noqa: F401  (registers PickCube-v1)

    env = gym.make("PickCube-v1", obs_mode="state", control_mode=control_mode, sim_backend="physx_cpu")
    env.reset(seed=0)
    rng = np.random.default_rng(1)
    obs = [np.asarray(env.step(rng.uniform(-1, 1, env.action_space.shape).astype(np.float32))[0]).reshape(-1)
           for _ in range(60)]
    env.close()
    return np.stack(obs)


def _ik_and_rotations() -> dict[str, np.ndarray]:
    import gymnasium as gym
    import mani_skill.envs  # noqa: F401
    import sapien
    import torch
    from mani_skill.utils.geometry.rotation_conversions import (
        euler_angles_to_matrix,
        matrix_to_quaternion,
        quaternion_apply,
        quaternion_multiply,
    )
    from mani_skill.utils.structs.pose import Pose

    out = {}
    g = torch.Generator().manual_seed(0)
    for b in (1, 64):
        e = torch.rand(b, 3, generator=g) - 0.5
        q = torch.nn.functional.normalize(torch.rand(b, 4, generator=g) - 0.5, dim=1)
        p = torch.rand(b, 3, generator=g)
        m = euler_angles_to_matrix(e, "XYZ")
        out[f"torch rotations B={b}"] = torch.cat(
            [m.reshape(b, -1), matrix_to_quaternion(m), quaternion_multiply(q, matrix_to_quaternion(m)),
             quaternion_apply(q, p)], 1).numpy()
    env = gym.make("PickCube-v1", obs_mode="state", control_mode="pd_ee_delta_pose", sim_backend="physx_cpu")
    env.reset(seed=0)
    kinematics = env.unwrapped.agent.controller.controllers["arm"].kinematics
    q0 = env.unwrapped.agent.robot.get_qpos()
    rng = np.random.default_rng(2)
    rows = []
    for _ in range(50):
        target = sapien.Pose(p=(0.1 * rng.uniform(-1, 1, 3) + [0.0, 0.0, 0.3]).astype(np.float32).tolist(),
                             q=[0, 1, 0, 0])
        r = kinematics.compute_ik(Pose.create(target), q0)
        rows.append(np.full(7, np.nan) if r is None else r.reshape(-1).numpy())
    env.close()
    out["pinocchio IK"] = np.stack(rows)
    return out


def save(path: str) -> None:
    import torch

    x = np.random.default_rng(0).uniform(-10, 10, 20000)
    xf = x.astype(np.float32)
    probes = {
        "python math": np.array([[math.sin(v), math.cos(v), math.exp(v / 3), math.atan2(v, 1.3),
                                  math.log(abs(v) + 1e-3)] for v in x]),
        "glibc float": _libm_float(xf[:5000]),
        "numpy float64": np.stack([np.sin(x), np.cos(x), np.exp(x / 3), np.arctan2(x, 1.3)]),
        "numpy float32": np.stack([np.sin(xf), np.cos(xf), np.exp(xf / 3), np.arctan2(xf, np.float32(1.3))]),
        **_ik_and_rotations(),
        "ManiSkill joint control (PhysX)": _maniskill_run("pd_joint_delta_pos"),
        "ManiSkill ee control (PhysX + IK + torch)": _maniskill_run("pd_ee_delta_pose"),
    }
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.processor())
    machine = {"cpu": cpu, "numpy": np.__version__, "torch": torch.__version__, "libc": "-".join(platform.libc_ver()),
               **{k: os.environ.get(k) for k in ("MKL_CBWR", "ATEN_CPU_CAPABILITY", "NPY_DISABLE_CPU_FEATURES")}}
    torch.save({"machine": machine, "probes": probes}, path)
    print(f"saved {len(probes)} probes from {machine} to {path}")


def compare(a_path: str, b_path: str) -> int:
    import torch

    a, b = torch.load(a_path, weights_only=False), torch.load(b_path, weights_only=False)
    print("A:", a["machine"])
    print("B:", b["machine"])
    for name, x in a["probes"].items():
        y = b["probes"][name]
        differ = x != y
        rows = differ.reshape(len(x), -1).any(1)
        first = f", first in row {int(np.argmax(rows))}" if rows.any() else ""
        largest = float(np.nanmax(np.abs(x.astype(np.float64) - y.astype(np.float64))))
        print(f"{name:44s} {int(differ.sum()):6d} of {x.size} differ, largest {largest:.2e}{first}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "save":
        save(sys.argv[2])
    elif len(sys.argv) == 4 and sys.argv[1] == "compare":
        sys.exit(compare(sys.argv[2], sys.argv[3]))
    else:
        sys.exit(__doc__)
