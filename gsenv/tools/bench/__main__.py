"""`python -m gsenv.tools.bench`: the benchmark (see gsenv.tools.bench.cli)."""
import sys

if __name__ == "__main__":
    from gsenv.tools.bench.cli import main

    sys.exit(main())
