"""gsenv's benchmarks (`gsenv bench`, `python -m gsenv.tools.bench`; see docs/benchmarks.md).

- cli: the command line; run: one run of the sections; config: its sizes (Config, quick_config);
- render: sections a and b (render-only sweep, the research code's strategy, its baseline check);
- env: sections c and d (end-to-end and physics-only env steps, AsyncVectorEnv baseline);
- machine: CPU/GPU/versions; report: the performance bar, tables, benchmark.json; plot: benchmark.png;
- pool: physics-pool settings against AsyncVectorEnv (`python -m gsenv.tools.bench.pool`);
- node, node_instance: K instances on one node, as RLinf places them (`gsenv bench node`);
- profile: where one render's time goes (`python -m gsenv.tools.bench.profile`, CUDA).
"""
