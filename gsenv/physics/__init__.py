"""Physics backends behind one batched interface (CPU worker pool; GPU PhysX in one ManiSkill env)."""
