"""The scene the env runs: the bundle (`bundle`) and its on-disk format (`format`), the `scene=`
argument resolved to a bundle (`resolve`), its cameras (`camera_rig`), visual domain randomisation
(`randomization`) and its renderer (`rendering`). Bundles are built offline by `gsenv.scene_build`
(the embedded default scene, dataset adapters) and `gsenv.capture` (your own cell)."""
