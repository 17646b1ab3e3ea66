"""Measure the research collector's episode lengths by running its planner logic against gsenv's FR3 task.

The research collector (ManiSkill-GS ``scripts/collect_data.py`` -> ``motionplan/solutions/pick_cube.py``
``solve`` -> ``motionplan/motionplanner.py`` ``FR3MotionPlanningSolver``) is reproduced here step for step,
on gsenv's physics-only PutCubeOnPlate env (``GSEnvSim-PutCubeOnPlate-v0``, CPU PhysX, no rendering):

- reset(seed), then 10 settle steps (zero motion, gripper open 1) that are not recorded;
- mplib screw motions (``plan_screw`` with time_step = the control step 0.1 s; TOPP-RA time
  parametrisation under joint velocity / acceleration limits 0.9 rad/s, 0.9 rad/s^2 per joint, as its
  ``setup_planner`` passes them), one plan point per recorded control step, each turned into an
  end-effector delta between consecutive planned TCP poses (``compute_delta_ee_pose_action``);
- waypoints: pre-grasp (grasp + 0.15 m), grasp (OBB grasp of the cube, 2 cm lower), close (-0.5) 10 steps,
  lift to grasp + 0.1 m, above the plate + 0.1 m, down to plate + 0.05 m, open (1) 15 steps, retract to
  plate + 0.15 m.

An episode's length is the number of recorded steps (the moves' plan points + 10 + 15). The screw planner
is mplib 0.1.1's (ManiSkill 3's pin) on SAPIEN's pinocchio model (see ResearchPlanner).
Prints one line per seed and a summary; ``--json PATH`` writes the lengths.

    python scripts/research_collector_lengths.py --seeds 48 --json research_lengths.json
"""
from __future__ import annotations

import argparse
import json
import statistics

import gymnasium as gym
import mplib
import numpy as np
import sapien
from mani_skill.examples.motionplanning.base_motionplanner.utils import compute_grasp_info_by_obb, get_actor_obb
from scipy.spatial.transform import Rotation
from transforms3d.quaternions import mat2quat

from gsenv.sim.task import register_physics_task
from gsenv.tasks import get_task

OPEN, CLOSED = 1.0, -0.5
SETTLE_STEPS, CLOSE_STEPS, OPEN_STEPS = 10, 10, 15
VEL_LIMIT = ACC_LIMIT = 0.9


def _exp_coordinate(pose: np.ndarray) -> tuple[np.ndarray, float]:
    """mplib 0.1.1 plan_screw's pose2exp_coordinate: 4x4 transform -> (twist [v, w] per unit angle, angle)."""
    def skew(v):
        return np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])

    rot = pose[:3, :3]
    if np.isclose(rot.trace(), 3):
        omega, theta = np.zeros(3), 1
    elif np.isclose(rot.trace(), -1):
        return np.zeros(3), -1e6
    else:
        theta = np.arccos((rot.trace() - 1) / 2)
        omega = 1 / 2 / np.sin(theta) * np.array([rot[2, 1] - rot[1, 2], rot[0, 2] - rot[2, 0], rot[1, 0] - rot[0, 1]])
    ss = skew(omega)
    inv_left_jacobian = np.eye(3) / theta - 0.5 * ss + (1.0 / theta - 0.5 / np.tan(theta / 2)) * ss @ ss
    return np.concatenate([inv_left_jacobian @ pose[:3, 3], omega]), theta


class ResearchPlanner:
    """FR3MotionPlanningSolver's planning and stepping, with the recorded actions (its data collector).

    ``plan_screw`` is mplib 0.1.1's, line for line, on SAPIEN's pinocchio model of the simulated FR3 (the
    robot's own kinematics; mplib 0.1.1's ArticulatedModel crashes with this environment's numpy 2, and
    mplib 0.2.1 would downgrade numpy): Jacobian pseudo-inverse steps of 0.1 rad along the screw, then
    mplib's ``Planner.TOPP`` (toppra, ParametrizeConstAccel) sampled every control step. Left out: mplib's
    self-collision check along the path (an empty scene: the research planner has no point cloud)."""

    def __init__(self, env):
        self.env, self.u = env, env.unwrapped
        self.robot = self.u.agent.robot
        art = self.robot._objs[0]
        self.model = art.create_pinocchio_model()
        self.ee_index = [link.name.endswith("fr3_hand_tcp") for link in art.links].index(True)
        self.limits = np.concatenate([j.limit for j in art.active_joints])  # [9, 2]
        self.joint_vel_limits = np.ones(7) * VEL_LIMIT  # mplib.Planner.TOPP reads these two
        self.joint_acc_limits = np.ones(7) * ACC_LIMIT
        self.gripper = OPEN
        self.last_ee = None
        self.recorded: list[np.ndarray] = []  # the recorded actions
        self.moves: list[dict] = []  # per screw move: TCP distance (m), rotation (rad), plan points

    def plan_screw(self, target: sapien.Pose, qpos: np.ndarray, time_step: float, qpos_step: float = 0.1) -> dict:
        qpos = qpos.astype(np.float64).copy()
        self.model.compute_forward_kinematics(qpos)
        current = self.model.get_link_pose(self.ee_index).to_transformation_matrix()
        twist, theta = _exp_coordinate(target.to_transformation_matrix() @ np.linalg.inv(current))
        if theta < -1e4:
            return {"status": "screw plan failed."}
        omega = twist * theta
        path = [qpos[:7].copy()]
        while True:
            self.model.compute_full_jacobian(qpos)
            jac = self.model.get_link_jacobian(self.ee_index, local=False)
            dq = np.linalg.pinv(jac) @ omega
            dq *= qpos_step / np.linalg.norm(dq)
            d_twist = jac @ dq
            last = False
            if np.linalg.norm(d_twist) > np.linalg.norm(omega):
                ratio = np.linalg.norm(omega) / np.linalg.norm(d_twist)
                dq, d_twist, last = dq * ratio, d_twist * ratio, True
            qpos += dq
            omega -= d_twist
            inside = np.all(qpos >= self.limits[:, 0] - 1e-3) and np.all(qpos <= self.limits[:, 1] + 1e-3)
            if np.linalg.norm(d_twist) < 1e-4 or not inside:
                return {"status": "screw plan failed"}
            path.append(qpos[:7].copy())
            if last:
                times, pos, vel, acc, duration = mplib.Planner.TOPP(self, np.vstack(path), time_step)
                return {"status": "Success", "time": times, "position": pos, "duration": duration}

    def _ee_from_qpos(self, qpos: np.ndarray) -> np.ndarray:
        current = self.robot.get_qpos()
        full = np.concatenate([qpos[:7], current[0, 7:].cpu().numpy()])
        self.robot.set_qpos(__import__("torch").tensor(full, dtype=current.dtype)[None])
        tcp = self.u.agent.tcp.pose
        ee = np.concatenate([tcp.p[0].cpu().numpy(), tcp.q[0].cpu().numpy()])
        self.robot.set_qpos(current)
        return ee

    def _delta(self, target_qpos: np.ndarray) -> np.ndarray:
        target = self._ee_from_qpos(target_qpos)
        if self.last_ee is None:
            self.last_ee = self._ee_from_qpos(self.robot.get_qpos()[0, :7].cpu().numpy())
        r_cur = Rotation.from_quat(self.last_ee[3:][[1, 2, 3, 0]])
        r_tgt = Rotation.from_quat(target[3:][[1, 2, 3, 0]])
        delta = np.concatenate([target[:3] - self.last_ee[:3], (r_tgt * r_cur.inv()).as_rotvec()])
        self.last_ee = target.copy()
        return delta

    def _step(self, action: np.ndarray):
        self.recorded.append(action.astype(np.float32))
        return self.env.step(action[None])

    def move_screw(self, pose: sapien.Pose) -> bool:
        for _ in range(2):  # BaseMotionPlanningSolver.move_to_pose_with_screw tries twice
            result = self.plan_screw(pose, self.robot.get_qpos().cpu().numpy()[0], self.u.control_timestep)
            if result["status"] == "Success":
                break
        else:
            return False
        tcp = self.u.agent.tcp.pose
        rot = Rotation.from_quat(pose.q[[1, 2, 3, 0]]) * Rotation.from_quat(tcp.q[0].cpu().numpy()[[1, 2, 3, 0]]).inv()
        self.moves.append(dict(distance=float(np.linalg.norm(pose.p - tcp.p[0].cpu().numpy())),
                               rotation=float(rot.magnitude()), steps=len(result["position"])))
        for qpos in result["position"]:
            self._step(np.concatenate([self._delta(qpos), [self.gripper]]))
        return True

    def gripper_for(self, value: float, steps: int) -> None:
        self.gripper = value
        for _ in range(steps):
            self._step(np.concatenate([np.zeros(6), [value]]))


def grasp_pose(u, cube) -> sapien.Pose:
    closing = u.agent.tcp.pose.to_transformation_matrix()[0, :3, 1].cpu().numpy()
    info = compute_grasp_info_by_obb(get_actor_obb(cube), approaching=np.array([0.0, 0.0, -1.0]),
                                     target_closing=closing, depth=0.025)
    z, y = info["approaching"], info["closing"]
    y = y - np.dot(y, z) * z
    y = y / np.linalg.norm(y)
    x = np.cross(y, z)
    return sapien.Pose(p=info["center"].copy(), q=mat2quat(np.stack([x, y, z]).T))


def episode(env, seed: int) -> tuple[int, bool, np.ndarray, list[dict]]:
    """(recorded steps, success at the end, the recorded actions [T, 7], the moves) of one research episode."""
    u = env.unwrapped
    env.reset(seed=seed)
    for _ in range(SETTLE_STEPS):
        env.step(np.array([[0, 0, 0, 0, 0, 0, OPEN]], dtype=np.float32))
    mp = ResearchPlanner(env)
    g = grasp_pose(u, u.objects["cube"])
    g.p += np.array([0.0, 0.0, -0.02])
    mp.moves.append(dict(grasp_minus_cube=(g.p - u.objects["cube"].pose.p[0].cpu().numpy()).tolist()))
    plate = u.objects["plate"].pose.p[0].cpu().numpy()
    plan = [("move", g.p + [0, 0, 0.15]), ("move", g.p), ("grip", (CLOSED, CLOSE_STEPS)), ("move", g.p + [0, 0, 0.1]),
            ("move", plate + [0, 0, 0.1]), ("move", plate + [0, 0, 0.05]), ("grip", (OPEN, OPEN_STEPS)),
            ("move", plate + [0, 0, 0.15])]
    for kind, arg in plan:
        if kind == "move" and not mp.move_screw(sapien.Pose(p=arg, q=g.q)):
            return len(mp.recorded), False, np.stack(mp.recorded), mp.moves
        if kind == "grip":
            mp.gripper_for(*arg)
    success = bool(u.get_info()["cube_on_plate"][0])  # the research success rule: on the plate
    return len(mp.recorded), success, np.stack(mp.recorded), mp.moves


def gsenv_research_style(env, seed: int) -> tuple[int, bool]:
    """(recorded steps, success at the end) of gsenv collect's research-style episode for this seed
    (gsenv.sim.waypoint_expert.ScriptedEpisodes on the same physics env)."""
    from gsenv.sim.waypoint_expert import ScriptedEpisodes

    u = env.unwrapped
    env.reset(seed=seed)
    player = ScriptedEpisodes(u.task, 1)
    n = 0
    while not player.finished()[0]:
        action, recorded = player.actions(u.get_expert_inputs())
        n += int(recorded[0])
        env.step(action)
    return n, bool(u.get_info()["success"][0])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, default=48)
    p.add_argument("--json", default=None)
    p.add_argument("--upstream-compat", action="store_true",
                   help="the research env's physics (no gravity compensation; default: gsenv's)")
    p.add_argument("--gsenv", action="store_true",
                   help="measure gsenv collect's research-style demonstrations instead (no planner)")
    args = p.parse_args()
    env = gym.make(register_physics_task(get_task("PutCubeOnPlate")), render_backend="none",
                   control_mode="pd_ee_target_delta_pose", upstream_compat=args.upstream_compat)
    rows = []
    for seed in range(args.seeds):
        if args.gsenv:
            n, ok = gsenv_research_style(env, seed)
            rows.append(dict(seed=seed, length=n, success=ok))
            print(f"seed {seed}: {n} steps, success {ok}", flush=True)
            continue
        n, ok, actions, moves = episode(env, seed)
        moving = np.linalg.norm(actions[:, :3], axis=1)
        rows.append(dict(seed=seed, length=n, success=ok, max_step_m=float(moving.max()), moves=moves))
        print(f"seed {seed}: {n} steps, success {ok}, largest step {1000 * moving.max():.1f} mm", flush=True)
    env.close()
    lengths = [r["length"] for r in rows if r["success"]]
    print(f"lengths of the {len(lengths)} successful episodes: mean {statistics.mean(lengths):.1f}, "
          f"sd {statistics.pstdev(lengths):.1f}, "
          f"min {min(lengths)}, median {statistics.median(lengths)}, max {max(lengths)}; "
          f"success {sum(r['success'] for r in rows)}/{len(rows)}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
