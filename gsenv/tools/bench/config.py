"""The sizes of one benchmark run: the full run and the quick (CPU smoke test) one.

Every image size is (height, width), as the env's image_size.
"""
from __future__ import annotations

from dataclasses import dataclass

SECTIONS = "abcd"
"""a render-only, b research-code strategy and its check, c end-to-end env steps, d physics-only."""


@dataclass
class Config:
    """Sizes of one benchmark run."""

    density: float = 1.0
    render_batches: tuple = (1, 16, 64, 256, 1024)
    render_sizes: tuple = ((224, 224), (480, 640))  # (height, width) each
    render_min_time: float = 0.5
    render_max_iters: int = 50
    render_budget_s: float = 150.0
    research_batches: tuple = (1, 16, 64, 256)
    research_max_config_s: float = 25.0
    check_cases: tuple = ((100_000, 224, 224, 16), (100_000, 224, 224, 64))  # (gaussians, height, width, B)
    env_batch: int = 64
    env_image_size: tuple = (224, 224)  # (height, width)
    # Every physics measurement times the same 60 steps after 2 warm-up steps from a fresh reset: the
    # cost of a PhysX step depends on the arm's motion and contacts, so equal steps, not equal seconds.
    env_min_time: float = 0.0
    env_max_steps: int = 60
    env_min_steps: int = 60
    single_steps: int = 60
    reset_repeats: int = 3
    quick: bool = False


def full_config() -> Config:
    return Config()


def quick_config() -> Config:
    """Tiny sizes (24x32 images, B <= 2, density 0.01, 3 steps): runs on CPU in about a minute; its
    numbers mean nothing."""
    return Config(density=0.01, render_batches=(1, 2), render_sizes=((24, 32),), render_min_time=0.0,
                  render_max_iters=2, render_budget_s=60.0, research_batches=(1, 2), research_max_config_s=30.0,
                  check_cases=((300, 24, 32, 2),), env_batch=2, env_image_size=(24, 32), env_min_time=0.0,
                  env_max_steps=3, env_min_steps=3, single_steps=3, reset_repeats=1, quick=True)
