"""The pick-and-place family of the generalisation suite (gsenv.tasks.ood): put the named object on the named
receptacle, objects drawn per episode from a pool split into train and test.

Objects: every graspable and receptacle of the pool (gsenv.sim.objects.POOL_GRASPABLES, POOL_RECEPTACLES: cubes
of 3-5 cm in several colours and a cylinder; two plates, a bowl, a tray), all simulated in every env. An episode
puts the ones it draws on the table and parks the others out of sight (PARK_X m away, behind the wall).

Object sets: ``obj_set`` ("train", "test", "all"; the spawn configuration's field, also a gym.make keyword)
picks the split of the pools the task holds out (``FamilySpawnConfig.held_out``); the other pools always draw
from their train split. As in rl4vla, obj_set="test" means the held-out values of what a variant varies.

Initial state (from the env's per-episode generator, so an episode id fixes it): arm joints = FR3 default +
N(0, qpos_noise) (+ a per-episode offset where ``qpos_offset`` is set); the receptacle(s) in their regions, the
object(s) in theirs, never overlapping; which object and receptacle the instruction names (``goal``,
``goal_receptacle``: one-hots over the pools, kept in ``env.episode_values``); where ``move_target`` is set, the
step at which the named receptacle moves and where to (``move_step``, ``move_to``).

Instruction: one of ``instructions`` (drawn per episode), "{object}" and "{receptacle}" filled in with the named
ones' descriptions. Success: the named object on the named receptacle (its centre within the receptacle's
place radius of the receptacle's axis, 0-7 cm above the receptacle's origin), released and at rest
(``upstream_compat``: on it alone): PutCubeOnPlate's rule, the place radius per receptacle (the plate's is
PutCubeOnPlate's 7 cm). Dense reward and progress: PutCubeOnPlate's, of the named object and receptacle.
Expert: PutCubeOnPlate's (closed loop), placing at the named pair's resting height.

State (obs_mode "state": [B, 58]): agent qpos [9], qvel [9]; extra is_grasped, tcp_pose [7], obj_pose [7],
receptacle_pose [7], goal [8], goal_receptacle [4], tcp_to_obj_pos [3], obj_to_receptacle_pos [3].
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from gsenv.sim import names
from gsenv.sim.expert import scripted_expert_action
from gsenv.sim.record import POSE_SHAPE, ROBOT_STATE, Field, TaskRecord, info, pose, robot_bodies, state
from gsenv.sim.rewards import DENSE_REWARD_MAX, dense_reward, dense_reward_terms
from gsenv.tasks.base import Task
from gsenv.tasks.put_cube_on_plate import (
    ON_PLATE_DZ,
    REACHED_M,
    at_rest,
    staged_progress,
    within,
)

# the pools, as plain data (gsenv.sim.objects holds the same names with their geometry; a test checks they agree)
GRASPABLES: dict[str, tuple[str, str, float]] = {
    "cube": ("train", "red cube", 0.02),
    "green_cube": ("train", "green cube", 0.02),
    "blue_cube": ("train", "blue cube", 0.02),
    "small_magenta_cube": ("train", "small magenta cube", 0.015),
    "yellow_cube": ("test", "yellow cube", 0.02),
    "small_orange_cube": ("test", "small orange cube", 0.015),
    "large_cyan_cube": ("test", "large cyan cube", 0.025),
    "purple_cylinder": ("test", "purple cylinder", 0.025),
}
"""Graspable name -> (split, description, half its height (m): its centre above the table at rest)."""
RECEPTACLES: dict[str, tuple[str, str, float, float]] = {
    "plate": ("train", "white plate", 0.07, names.PLATE_BASE_THICKNESS - names.PLATE_HEIGHT / 2),
    "grey_plate": ("train", "grey plate", 0.06, names.PLATE_BASE_THICKNESS - names.PLATE_HEIGHT / 2),
    "bowl": ("test", "bowl", 0.06, names.PLATE_BASE_THICKNESS - names.BOWL_HEIGHT / 2),
    "tray": ("test", "tray", 0.065, names.PLATE_BASE_THICKNESS - 0.015),
}
"""Receptacle name -> (split, description, place radius (m): its inner radius less 12 mm, the plate's 7 cm as
PutCubeOnPlate's; top height (m): its floor's top above its origin)."""
GRASPABLE_NAMES, RECEPTACLE_NAMES = tuple(GRASPABLES), tuple(RECEPTACLES)
POOLS = ("graspables", "receptacles")
PARK_X = 10.0
"""x (m) of the objects an episode leaves out: behind the wall, out of every camera's sight."""
FINGER_CLEARANCE = 0.07
"""A distractor's centre stays this far (m) beyond a receptacle's footprint: the open fingers reach 6 cm."""
MAX_TRIES = 200
TRAIN_INSTRUCTIONS = ("put the {object} on the {receptacle}", "pick up the {object} and put it on the {receptacle}")


FAR_RECEPTACLE_CENTER: tuple[float, float] = (0.70, -0.12)
"""Where MultiReceptacle's second receptacle stands and PositionChangeTo's jumps to (m): beside and beyond the
plate (a tray beside a bowl still clears the first), its rim inside the third-person view (image u ~ 0.65-0.95)."""
FAR_RECEPTACLE_HALF_RANGE: tuple[float, float] = (0.01, 0.01)


@dataclass(frozen=True)
class FamilySpawnConfig:
    """Where and what episodes start with (see the module docstring). Regions: xy ~ centre + U(-half, +half).

    obj_set / held_out: which split the held-out pools draw from. n_graspables: (min, max) objects on the table
    (the named one and distractors); n_receptacles: receptacles on the table (the first in the receptacle region,
    a second in the second region). qpos_offset: None, or (min, max) |offset| (rad) per arm joint added with a
    random sign. move_target: None, or (first, last): after that many steps (drawn per episode) the named
    receptacle jumps into the moved-to region, before the next action."""

    obj_set: str = "train"
    held_out: tuple[str, ...] = POOLS
    n_graspables: tuple[int, int] = (1, 1)
    n_receptacles: int = 1
    object_center: tuple[float, float] = names.CUBE_SPAWN_CENTER
    object_half_range: tuple[float, float] = names.CUBE_SPAWN_HALF_RANGE
    distractor_center: tuple[float, float] = (0.43, 0.25)
    distractor_half_range: tuple[float, float] = (0.13, 0.10)
    min_object_gap: float = 0.10
    receptacle_center: tuple[float, float] = names.PLATE_SPAWN_CENTER
    receptacle_half_range: tuple[float, float] = names.PLATE_SPAWN_HALF_RANGE
    second_center: tuple[float, float] = FAR_RECEPTACLE_CENTER
    second_half_range: tuple[float, float] = FAR_RECEPTACLE_HALF_RANGE
    min_gap: float = 0.01
    qpos_noise: float = 0.02
    qpos_offset: tuple[tuple[float, float], ...] | None = None
    move_target: tuple[int, int] | None = None
    moved_center: tuple[float, float] = FAR_RECEPTACLE_CENTER
    moved_half_range: tuple[float, float] = FAR_RECEPTACLE_HALF_RANGE
    randomize_yaw: bool = False

    def split(self, pool: str) -> tuple[str, ...]:
        """The splits ``pool`` draws from."""
        chosen = self.obj_set if pool in self.held_out else "train"
        return ("train", "test") if chosen == "all" else (chosen,)


def _tcp_to_obj_pos(v: Mapping[str, Any]) -> Any:
    return v["state/extra/obj_pose"][..., :3] - v["state/extra/tcp_pose"][..., :3]


def _obj_to_receptacle_pos(v: Mapping[str, Any]) -> Any:
    return v["state/extra/receptacle_pose"][..., :3] - v["state/extra/obj_pose"][..., :3]


RECORD = TaskRecord(
    state=(
        *ROBOT_STATE,
        state("extra", "is_grasped", (), "bool"),
        state("extra", "tcp_pose", POSE_SHAPE),
        state("extra", "obj_pose", POSE_SHAPE),
        state("extra", "receptacle_pose", POSE_SHAPE),
        state("extra", "goal", (len(GRASPABLES),)),
        state("extra", "goal_receptacle", (len(RECEPTACLES),)),
        state("extra", "tcp_to_obj_pos", (3,), derive=_tcp_to_obj_pos),
        state("extra", "obj_to_receptacle_pos", (3,), derive=_obj_to_receptacle_pos),
    ),
    info=(
        info("obj_on_receptacle"),
        info("obj_static"),
        info("is_grasped", same_as="state/extra/is_grasped"),
        info("success"),
    ),
    bodies=(
        *robot_bodies(tcp_same_as="state/extra/tcp_pose"),
        *(pose(o) for o in (*GRASPABLES, *RECEPTACLES)),
    ),
    terminated=Field("terminated", (), "bool", same_as="info/success"),
)


def _table(values, device) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float32, device=device)


def _uniform(gen: torch.Generator, center, half) -> torch.Tensor:
    f64 = torch.float64
    return torch.tensor(center, dtype=f64) + (2 * torch.rand(2, generator=gen, dtype=f64) - 1) * torch.tensor(half,
                                                                                                              dtype=f64)


class PutOnReceptacle(Task):
    """Put the named object on the named receptacle (the family; gsenv.tasks.ood registers its members)."""

    name = "PutOnReceptacle"
    objects = (*GRASPABLES, *RECEPTACLES)
    record = RECORD
    instructions = TRAIN_INSTRUCTIONS
    progress_stages = ("reached", "grasped", "lifted", "placed", "released")
    dense_reward_max = DENSE_REWARD_MAX
    spawn_defaults: dict[str, Any] = {}
    """FamilySpawnConfig fields a member task changes."""

    def object_specs(self):
        from gsenv.sim.objects import POOL_GRASPABLES, POOL_RECEPTACLES  # SAPIEN: only where physics runs

        return {name: spec for name, (_, spec) in (*POOL_GRASPABLES.items(), *POOL_RECEPTACLES.items())}

    def spawn_config(self, specs):
        return FamilySpawnConfig(**self.spawn_defaults)

    # -------------------------------------------------------------------------------------- initial states
    def sample_initial_state(self, gen, spawn):
        from gsenv.sim.objects import POOL_GRASPABLES, POOL_RECEPTACLES

        f64 = torch.float64
        noise = torch.randn(names.NUM_ARM_JOINTS, generator=gen, dtype=f64) * spawn.qpos_noise
        if spawn.qpos_offset is not None:
            lo, hi = (torch.tensor(c, dtype=f64) for c in zip(*spawn.qpos_offset))
            size = lo + (hi - lo) * torch.rand(names.NUM_ARM_JOINTS, generator=gen, dtype=f64)
            sign = torch.randint(0, 2, (names.NUM_ARM_JOINTS,), generator=gen).to(f64) * 2 - 1
            noise = noise + sign * size
        graspables = [n for n in GRASPABLES if GRASPABLES[n][0] in spawn.split("graspables")]
        receptacles = [n for n in RECEPTACLES if RECEPTACLES[n][0] in spawn.split("receptacles")]
        n_g = int(torch.randint(spawn.n_graspables[0], spawn.n_graspables[1] + 1, (1,), generator=gen))
        if n_g > len(graspables) or spawn.n_receptacles > len(receptacles):
            raise ValueError(f"obj_set={spawn.obj_set!r} holds {len(graspables)} graspables and {len(receptacles)} "
                             f"receptacles, fewer than the {n_g} and {spawn.n_receptacles} an episode puts out")
        picked_g = [graspables[i] for i in torch.randperm(len(graspables), generator=gen)[:n_g].tolist()]
        order_r = torch.randperm(len(receptacles), generator=gen)[:spawn.n_receptacles].tolist()
        picked_r = [receptacles[i] for i in order_r]
        goal_g = int(torch.randint(n_g, (1,), generator=gen))
        goal_r = int(torch.randint(spawn.n_receptacles, (1,), generator=gen))
        radius = {n: s.footprint_radius for n, (_, s) in (*POOL_GRASPABLES.items(), *POOL_RECEPTACLES.items())}

        placed: dict[str, torch.Tensor] = {}  # name -> xy
        regions = [(spawn.receptacle_center, spawn.receptacle_half_range), (spawn.second_center,
                                                                            spawn.second_half_range)]
        for k, name in enumerate(picked_r):
            placed[name] = self._free_xy(gen, *regions[min(k, 1)], radius[name], placed, radius, spawn.min_gap)
        for k, name in enumerate(picked_g):
            region = (spawn.object_center, spawn.object_half_range) if k == 0 else \
                (spawn.distractor_center, spawn.distractor_half_range)
            placed[name] = self._free_xy(gen, *region, radius[name], placed, radius, spawn.min_gap,
                                         object_gap=spawn.min_object_gap, clearance=FINGER_CLEARANCE if k else 0.0)
        out: dict[str, torch.Tensor] = {"qpos_noise": noise}
        for k, name in enumerate(self.objects):
            yaw = ((2 * torch.rand(1, generator=gen, dtype=f64) - 1) * math.pi if spawn.randomize_yaw
                   else torch.zeros(1, dtype=f64))
            xy = placed.get(name, torch.tensor([PARK_X, 0.5 * k], dtype=f64))
            out[name] = torch.cat([xy, yaw])
        out["goal"] = torch.nn.functional.one_hot(torch.tensor(GRASPABLE_NAMES.index(picked_g[goal_g])),
                                                  len(GRASPABLES)).to(torch.float32)
        out["goal_receptacle"] = torch.nn.functional.one_hot(
            torch.tensor(RECEPTACLE_NAMES.index(picked_r[goal_r])), len(RECEPTACLES)).to(torch.float32)
        if spawn.move_target is not None:
            first, last = spawn.move_target
            out["move_step"] = torch.randint(first, last + 1, (1,), generator=gen)
            target = picked_r[goal_r]
            others = {n: xy for n, xy in placed.items() if n != target}
            out["move_to"] = self._free_xy(gen, spawn.moved_center, spawn.moved_half_range, radius[target], others,
                                           radius, spawn.min_gap)
        return out

    @staticmethod
    def _free_xy(gen, center, half, r, placed, radius, min_gap, object_gap=0.0, clearance=0.0) -> torch.Tensor:
        """A position in the region centre +- half whose footprint (radius r) keeps min_gap from every placed
        footprint ({name: xy}), object_gap between graspables' centres and, with clearance, that far beyond
        every placed receptacle's footprint (a distractor leaves the fingers room)."""
        for _ in range(MAX_TRIES):
            xy = _uniform(gen, center, half)
            ok = True
            for other, p in placed.items():
                need = r + radius[other] + min_gap
                need = max(need, object_gap) if other in GRASPABLES else max(need, radius[other] + clearance)
                ok &= float(torch.linalg.norm(xy - p)) >= need
            if ok:
                return xy
        raise ValueError(f"could not place an object of radius {r:.3f} m in the region {center}+-{half} clear of "
                         f"{sorted(placed)} in {MAX_TRIES} tries: widen the region or lower the gaps")

    def instruction(self, phrasing, state, index):
        extra = state["extra"]
        obj = GRASPABLE_NAMES[int(extra["goal"][index].argmax())]
        rec = RECEPTACLE_NAMES[int(extra["goal_receptacle"][index].argmax())]
        return phrasing.format(object=GRASPABLES[obj][1], receptacle=RECEPTACLES[rec][1])

    # -------------------------------------------------------------------------------------- during the episode
    def before_step(self, env):
        if env.spawn.move_target is None:
            return
        due = env.episode_values["move_step"][:, 0].to(env.elapsed_steps.device) == env.elapsed_steps
        if not bool(due.any()):
            return
        from mani_skill.utils.structs.pose import Pose

        goal_r = env.episode_values["goal_receptacle"].argmax(dim=-1)
        to = env.episode_values["move_to"].to(torch.float32)  # [B, 2]
        for k, name in enumerate(RECEPTACLE_NAMES):
            move = due & (goal_r == k)
            if not bool(move.any()):
                continue
            actor = env.objects[name]
            raw = actor.pose.raw_pose.clone()  # [B, 7]
            raw[:, :2] = torch.where(move[:, None], to.to(raw.device), raw[:, :2])
            actor.set_pose(Pose.create(raw))

    # -------------------------------------------------------------------------------------- evaluation
    def _named(self, env) -> dict[str, torch.Tensor]:
        """The named object's and receptacle's pose, velocities and grasp, and their indices, [B, ...]."""
        g = env.episode_values["goal"].argmax(dim=-1)
        r = env.episode_values["goal_receptacle"].argmax(dim=-1)
        rows = torch.arange(g.shape[0], device=g.device)
        objs = [env.objects[n] for n in GRASPABLE_NAMES]
        pick = lambda xs: torch.stack(xs, dim=1)[rows, g]  # noqa: E731  [B, n, ...] -> [B, ...]
        receptacles = torch.stack([env.objects[n].pose.raw_pose for n in RECEPTACLE_NAMES], dim=1)  # [B, 4, 7]
        return dict(g=g, r=r, obj_pose=pick([o.pose.raw_pose for o in objs]), receptacle_pose=receptacles[rows, r],
                    lin=pick([o.linear_velocity for o in objs]), ang=pick([o.angular_velocity for o in objs]),
                    grasped=pick([env.agent.is_grasping(o) for o in objs]))

    def evaluate(self, env):
        n = self._named(env)
        place_radius = _table([v[2] for v in RECEPTACLES.values()], n["r"].device)[n["r"]]
        p, q = n["obj_pose"][:, :3], n["receptacle_pose"][:, :3]
        on = within(p, q, place_radius, ON_PLATE_DZ)
        static = at_rest(n["lin"], n["ang"])
        success = on.clone() if env.upstream_compat else on & ~n["grasped"] & static
        return dict(obj_on_receptacle=on, is_grasped=n["grasped"], obj_static=static, success=success)

    def obs_extra(self, env, info):
        n = self._named(env)
        tcp = env.agent.tcp.pose
        return dict(is_grasped=info["is_grasped"], tcp_pose=tcp.raw_pose, obj_pose=n["obj_pose"],
                    receptacle_pose=n["receptacle_pose"], goal=env.episode_values["goal"].clone(),
                    goal_receptacle=env.episode_values["goal_receptacle"].clone(),
                    tcp_to_obj_pos=n["obj_pose"][:, :3] - tcp.p,
                    obj_to_receptacle_pos=n["receptacle_pose"][:, :3] - n["obj_pose"][:, :3])

    def dense_reward(self, env, info):
        n = self._named(env)
        terms = dense_reward_terms(env.agent.tcp.pose.p, n["obj_pose"][:, :3], n["receptacle_pose"][:, :3], n["lin"],
                                   info["is_grasped"], info["obj_on_receptacle"])
        return dense_reward(terms, info["success"])

    def progress(self, state, info):
        extra = state["extra"]
        grasped = extra["is_grasped"].bool()
        reached = grasped | (torch.linalg.norm(extra["tcp_to_obj_pos"], dim=-1) < REACHED_M)
        half = _table([v[2] for v in GRASPABLES.values()], grasped.device)[extra["goal"].argmax(dim=-1)]
        lifted = grasped & (extra["obj_pose"][:, 2] - half >= 0.02)  # 2 cm off the table
        return staged_progress([reached, grasped, lifted, info["obj_on_receptacle"].bool(), info["success"].bool()])

    # -------------------------------------------------------------------------------------- expert
    def expert_inputs(self, state):
        extra = state["extra"]
        dev = extra["obj_pose"].device
        half = _table([v[2] for v in GRASPABLES.values()], dev)[extra["goal"].argmax(dim=-1)]
        top = _table([v[3] for v in RECEPTACLES.values()], dev)[extra["goal_receptacle"].argmax(dim=-1)]
        return dict(tcp_pose=extra["tcp_pose"], cube_pose=extra["obj_pose"], plate_pose=extra["receptacle_pose"],
                    gripper_qpos=state["agent"]["qpos"][:, names.NUM_ARM_JOINTS:names.NUM_JOINTS],
                    place_height=top + half)

    def expert_action(self, **inputs):
        return scripted_expert_action(**inputs)


# ------------------------------------------------------------------------------------------ the suite's members
# (gsenv.tasks.ood lists them with what each changes; the vision members are the in-distribution task under
# another id, their change is the domain randomisation their ids pass)
class PutCubeOnPlateMain(PutOnReceptacle):
    """In distribution: a train graspable on a train receptacle (obj_set splits both pools)."""

    name = "PutCubeOnPlateMain"


class PutCubeOnPlateVisionImage(PutCubeOnPlateMain):
    name = "PutCubeOnPlateVisionImage"
    spawn_defaults = {"held_out": ()}


class PutCubeOnPlateVisionTexture03(PutCubeOnPlateVisionImage):
    name = "PutCubeOnPlateVisionTexture03"


class PutCubeOnPlateVisionTexture05(PutCubeOnPlateVisionImage):
    name = "PutCubeOnPlateVisionTexture05"


class PutCubeOnPlateVisionWhole03(PutCubeOnPlateVisionImage):
    name = "PutCubeOnPlateVisionWhole03"


class PutCubeOnPlateVisionWhole05(PutCubeOnPlateVisionImage):
    name = "PutCubeOnPlateVisionWhole05"


class PutCubeOnPlateUnseenObjects(PutCubeOnPlateMain):
    """obj_set splits the graspables only."""

    name = "PutCubeOnPlateUnseenObjects"
    spawn_defaults = {"held_out": ("graspables",)}


class PutCubeOnPlateUnseenReceptacles(PutCubeOnPlateMain):
    """obj_set splits the receptacles only."""

    name = "PutCubeOnPlateUnseenReceptacles"
    spawn_defaults = {"held_out": ("receptacles",)}


INSTRUCT_INSTRUCTIONS = ("place the {object} onto the {receptacle}", "set the {object} down on the {receptacle}",
                         "could you move the {object} over to the {receptacle}",
                         "grab the {object} and leave it on the {receptacle}")
"""The Instruct member's phrasings: none of them is a training phrasing (TRAIN_INSTRUCTIONS)."""


class PutCubeOnPlateInstruct(PutCubeOnPlateMain):
    """New phrasings; train objects and receptacles."""

    name = "PutCubeOnPlateInstruct"
    instructions = INSTRUCT_INSTRUCTIONS
    spawn_defaults = {"held_out": ()}


class PutCubeOnPlateMultiObject(PutCubeOnPlateMain):
    """Two or three graspables (the named one and distractors, from obj_set's split); one receptacle."""

    name = "PutCubeOnPlateMultiObject"
    spawn_defaults = {"held_out": ("graspables",), "n_graspables": (2, 3)}


class PutCubeOnPlateMultiReceptacle(PutCubeOnPlateMain):
    """Two receptacles (from obj_set's split), the named one either."""

    name = "PutCubeOnPlateMultiReceptacle"
    spawn_defaults = {"held_out": ("receptacles",), "n_receptacles": 2}


class PutCubeOnPlatePosition(PutCubeOnPlateMain):
    """The object starts beyond the receptacle, farther from the robot (x ~ 0.58 m, y ~ 0.14 m: the middle of the
    third-person image, above the plate), a region training never uses."""

    name = "PutCubeOnPlatePosition"
    spawn_defaults = {"held_out": (), "object_center": (0.58, 0.14), "object_half_range": (0.04, 0.04)}


EE_POSE_OFFSET = ((0.25, 0.45), (0.10, 0.20), (0.0, 0.0), (0.15, 0.30), (0.0, 0.0), (0.15, 0.30), (0.0, 0.0))
"""The EEPose member's arm-joint offsets: (min, max) |offset| (rad) per joint, each with a random sign: the
base turned 14-26 degrees, shoulder, elbow and wrist bent; the hand starts 10-20 cm from its usual place."""


class PutCubeOnPlateEEPose(PutCubeOnPlateMain):
    """The arm starts in another pose (EE_POSE_OFFSET added to the default joints)."""

    name = "PutCubeOnPlateEEPose"
    spawn_defaults = {"held_out": (), "qpos_offset": EE_POSE_OFFSET}


class PutCubeOnPlatePositionChangeTo(PutCubeOnPlateMain):
    """The named receptacle jumps once, at a step drawn per episode from 5..20 (mid-task: the expert is
    reaching, grasping or carrying then), to FAR_RECEPTACLE_CENTER (27 cm away), and success follows it. The
    closed-loop scripted expert reads the receptacle's pose every step, so it re-targets while it carries (README:
    the expert's scores)."""

    name = "PutCubeOnPlatePositionChangeTo"
    spawn_defaults = {"held_out": (), "move_target": (5, 20)}
