"""How many CPU-physics envs this machine's memory can hold: a clear refusal instead of a machine
that swaps for minutes before the OOM killer ends the run."""
from __future__ import annotations

import os

ENV_BYTES = 16 * 2**20
"""Memory of one more single-env instance in a worker: about 4 MB unique (2-core CPU machine,
2026-12-01, workers forked from the preloaded server), taken 4x for safety."""
WORKER_BYTES = 200 * 2**20
"""Memory of a worker with its first instance: 121-169 MB proportional set size (same machine; its
RSS counts the server's shared pages too)."""
NO_LIMIT_ENV = "GSENV_NO_MEMORY_LIMIT"
"""Environment variable: "1" skips the check (e.g. where workers share pages the estimate ignores)."""


def physical_memory() -> int:
    """Bytes of RAM of this machine."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def check_cpu_envs_fit(num_envs: int, num_workers: int, total_bytes: int | None = None) -> None:
    """ValueError when num_envs instances over num_workers processes would need more than the RAM."""
    if os.environ.get(NO_LIMIT_ENV, "").strip() == "1":
        return
    total = physical_memory() if total_bytes is None else total_bytes
    need = num_envs * ENV_BYTES + num_workers * WORKER_BYTES
    if need > total:
        fit = max(0, (total - num_workers * WORKER_BYTES) // ENV_BYTES)
        raise ValueError(
            f"num_envs={num_envs} on CPU physics needs about {need / 2**30:.1f} GiB ({ENV_BYTES >> 20} MiB per env "
            f"+ {WORKER_BYTES >> 20} MiB per worker x {num_workers}), more than this machine's "
            f"{total / 2**30:.1f} GiB: use at most about {fit} envs here, or set {NO_LIMIT_ENV}=1 to start anyway")
