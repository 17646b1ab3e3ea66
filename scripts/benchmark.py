#!/usr/bin/env python3
"""gsenv's throughput benchmark (the same as `gsenv bench` and `python -m gsenv.tools.bench`): see
gsenv/tools/bench/cli.py and docs/benchmarks.md.

    python scripts/benchmark.py --out results            # full run (GPU machine, ~6-8 min)
    python scripts/benchmark.py --quick --device cpu     # tiny sizes, CPU, ~1 min (a smoke test)
"""
import sys
from pathlib import Path

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from gsenv.tools.bench.cli import main

    sys.exit(main(prog="benchmark.py"))
