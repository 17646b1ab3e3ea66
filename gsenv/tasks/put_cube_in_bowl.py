"""PutCubeInBowl-v0: pick up the cube and put it in the bowl (PutCubeOnPlate's skill, another receptacle).

Objects: the 4 cm 0.3 kg cube and the 16 cm, 4 cm deep bowl (gsenv.sim.objects.bowl_spec: the plate's
build, taller). Initial state: PutCubeOnPlate's (gsenv.sim.initial_state) with the bowl in the plate's
place. Success: the cube in the bowl (its centre within IN_BOWL_XY of the bowl's axis and below the rim
top), released and at rest (``upstream_compat``: in the bowl alone). Dense reward: PutCubeOnPlate's terms
(reach, grasp, carry, place, release) with the bowl as receptacle, 5 where it succeeds. Expert:
PutCubeOnPlate's, lowering the cube onto the bowl's floor.

State (obs_mode "state": [B, 46]): agent qpos [9], qvel [9]; extra is_grasped, tcp_pose [7], cube_pose [7],
bowl_pose [7], tcp_to_cube_pos [3], cube_to_bowl_pos [3].
"""
from __future__ import annotations

from gsenv.sim import names
from gsenv.sim.rewards import DENSE_REWARD_MAX
from gsenv.tasks.put_cube_on_plate import (
    CarryCubeTask,
    pick_and_place_record,
)

CUBE, BOWL = names.CUBE, names.BOWL

IN_BOWL_XY = names.BOWL_RADIUS - names.PLATE_RIM_THICKNESS - names.CUBE_HALF_SIZE
"""cube_in_bowl: |cube.xy - bowl.xy| below this (m): the whole cube inside the rim (5.2 cm)."""
IN_BOWL_DZ = (0.0, names.BOWL_HEIGHT / 2)
"""cube_in_bowl: IN_BOWL_DZ[0] <= cube.z - bowl.z <= IN_BOWL_DZ[1] (m): its centre below the rim top."""
PLACE_HEIGHT = names.PLATE_BASE_THICKNESS - names.BOWL_HEIGHT / 2 + names.CUBE_HALF_SIZE
"""The cube's centre above the bowl's origin when it rests on the bowl's floor (m)."""


RECORD = pick_and_place_record(BOWL, "cube_in_bowl")


class PutCubeInBowl(CarryCubeTask):
    """Pick up the cube and put it in the bowl."""

    name = "PutCubeInBowl"
    objects = (CUBE, BOWL)
    record = RECORD
    target, placed, expert_place_height = BOWL, "cube_in_bowl", PLACE_HEIGHT
    place_xy, place_dz = IN_BOWL_XY, IN_BOWL_DZ
    instructions = ("put the cube in the bowl", "pick up the cube and put it in the bowl",
                    "place the cube into the bowl")
    progress_stages = ("reached", "grasped", "lifted", "placed", "released")
    dense_reward_max = DENSE_REWARD_MAX

    def object_specs(self):
        from gsenv.sim.objects import bowl_spec, default_cube_spec  # SAPIEN: only where physics runs

        return {CUBE: default_cube_spec(), BOWL: bowl_spec()}
