"""Physics half of gsenv: the PutCubeOnPlate ManiSkill3 task and the Franka FR3 agent.

Importing this package is cheap; ``import gsenv.sim.task`` registers the ManiSkill agent
(``my_franka`` / ``fr3``) and the task id ``GSEnvSim-PutCubeOnPlate-v0`` (see gsenv.sim.names).
"""
