"""Building scene bundles offline: the embedded default scene from its recipe and ManiSkill's meshes
(`default`, `mesh_sampling`), the real-cell dataset adapter (`rlinf_dataset`), folders staged for
atomic builds (`staging`) and their rows in `gsenv doctor` (`doctor`). What the env reads at run time
(the bundle, its format, cameras, randomisation) is `gsenv.scene`; a capture of your own cell is
built by `gsenv.capture`."""
