"""The GPU PhysX self-check's child process: `python -m gsenv.physics.gpu_check_run CANDIDATE REFERENCE` runs
the scripted expert's episodes on both backends and prints the verdict of
gsenv.physics.gpu_check.compare_episodes as one JSON line (kept apart from gpu_check, which
gsenv.physics.backend imports, so that neither imports the other)."""
from __future__ import annotations

import json
import sys
from collections.abc import Sequence

from gsenv.physics.gpu_check import SEEDS, STEPS, Verdict, compare_episodes, expert_episodes


def run_check(candidate: str, reference: str, seeds: Sequence[int] = SEEDS, steps: int = STEPS) -> Verdict:
    """Run the expert episodes on both backends in this process and compare them. A backend that
    cannot start or fails mid-episode gives a failed verdict naming it and its error."""
    import torch

    from gsenv.physics.backend import make_physics

    results = []  # [candidate's, reference's]: the pair may name one backend twice
    for backend in (candidate, reference):
        device = torch.device("cuda" if backend == "physx_cuda" and torch.cuda.is_available() else "cpu")
        try:
            physics = make_physics(backend, len(seeds), {}, device, num_workers=min(len(seeds), 2))
        except Exception as exc:
            return Verdict(False, f"{backend} could not start: {type(exc).__name__}: {_one_line(exc)}")
        try:
            results.append(expert_episodes(physics, seeds, steps))
        except Exception as exc:
            return Verdict(False, f"{backend} failed during the expert episodes: {type(exc).__name__}: "
                                  f"{_one_line(exc)}")
        finally:
            physics.close()
    return compare_episodes(reference=results[1], candidate=results[0])


def _one_line(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[:limit] + "..."


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m gsenv.physics.gpu_check_run CANDIDATE REFERENCE`: prints the verdict as one JSON line."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2:
        print("usage: python -m gsenv.physics.gpu_check_run CANDIDATE REFERENCE", file=sys.stderr)
        return 2
    verdict = run_check(args[0], args[1])
    print(json.dumps({"ok": verdict.ok, "reason": verdict.reason}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
