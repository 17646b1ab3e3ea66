"""scripts/benchmark.py --quick on CPU (torch rasteriser, tiny sizes, real ManiSkill physics in worker
processes): every section is in the JSON with positive numbers, the plot and the tables exist.
No timing assertions: the numbers of a quick run mean nothing."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import imageio.v3 as imageio
import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent


def _positive(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and x > 0


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bench")
    out = tmp / "out"
    env = {**os.environ, "GSENV_ASSETS": str(tmp / "assets"), "CUDA_VISIBLE_DEVICES": ""}
    cmd = [sys.executable, str(ROOT / "scripts" / "benchmark.py"), "--quick", "--device", "cpu", "--out", str(out)]
    proc = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"benchmark failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    return json.loads((out / "benchmark.json").read_text()), out, proc.stdout


@pytest.mark.slow
def test_render_and_research_sections(quick_run):
    res, _, _ = quick_run
    assert res["config"]["quick"] and res["scene"]["density"] == 0.01 and res["scene"]["total_gaussians"] > 0
    render = res["render"]
    assert {(r["cache"], r["B"]) for r in render} == {(c, b) for c in (True, False) for b in (1, 2)}
    for r in render:
        assert _positive(r["fps"]) and _positive(r["ms"]), r
    assert {r["B"] for r in res["research_strategy"]} == {1, 2}
    for r in res["research_strategy"]:
        assert _positive(r["fps"]) and _positive(r["ms"]), r
    (chk,) = res["baseline_check"]
    assert _positive(chk["ours_ms"]) and _positive(chk["reference_ms"]) and _positive(chk["ratio"])
    assert isinstance(chk["ok"], bool)


@pytest.mark.slow
def test_env_and_physics_sections(quick_run):
    res, _, _ = quick_run
    c = res["end_to_end"]
    assert c["obs_mode"] == "rgb" and c["num_envs"] == 2
    for k in ("env_steps_per_s", "step_ms", "render_only_ms", "partial_reset_ms", "partial_reset_in_steps"):
        assert _positive(c[k]), (k, c)
    d = res["physics"]
    assert d["gsenv_state"]["obs_mode"] == "state"
    for part in ("gsenv_state", "single_process", "async_vector_env"):
        assert _positive(d[part]["env_steps_per_s"]), (part, d[part])
    for k in ("speedup_vs_async", "parallel_efficiency", "async_parallel_efficiency"):
        assert _positive(d[k]), (k, d)
    assert _positive(d["gsenv_state"]["partial_reset_in_steps"])
    assert res["machine"]["usable_cores"] >= 1 and "lscpu" in res["machine"]


@pytest.mark.slow
def test_outputs(quick_run):
    res, out, stdout = quick_run
    png = out / "benchmark.png"
    assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert res["plot"] in ("matplotlib", "fallback")
    names = {b["bar"] for b in res["bars"]}
    assert "physics-only / AsyncVectorEnv, one process per core each" in names
    assert "end-to-end rgb / physics-only" in names
    assert all(_positive(v) for v in res["timing_s"].values() if v)
    # the table comes last, after the logs
    assert "performance bar" in stdout and stdout.rstrip().splitlines()[-1].startswith("results:")


@pytest.mark.slow
def test_plot_without_matplotlib(quick_run, tmp_path, monkeypatch):
    from gsenv.tools.bench.plot import plot

    res, _, _ = quick_run
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib raises ImportError
    assert plot(res, tmp_path / "plot.png") == "fallback"
    img = imageio.imread(tmp_path / "plot.png")
    assert img.shape == (400, 640, 3) and len(np.unique(img.reshape(-1, 3), axis=0)) > 3  # axes and series


@pytest.mark.slow
def test_replot_and_cli(quick_run, tmp_path):
    _, out, _ = quick_run
    src = tmp_path / "benchmark.json"
    src.write_bytes((out / "benchmark.json").read_bytes())
    proc = subprocess.run([sys.executable, "-m", "gsenv.tools.cli", "bench", "--replot", str(src)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "benchmark.png").is_file() and "(a) render-only" in proc.stdout


@pytest.mark.parametrize("entry", [[str(ROOT / "scripts" / "benchmark.py")], ["-m", "gsenv.tools.bench"]])
def test_bad_sections_are_refused(entry):
    proc = subprocess.run([sys.executable, *entry, "--sections", "ax"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "sections are letters" in proc.stderr


def test_pool_tool_refuses_bad_counts():
    proc = subprocess.run([sys.executable, "-m", "gsenv.tools.bench.pool", "--workers", "16,x"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "comma-separated integers" in proc.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown where CUDA is missing")
def test_render_profile_says_it_needs_cuda():
    proc = subprocess.run([sys.executable, "-m", "gsenv.tools.bench.profile", "--batch", "4"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "run it where CUDA is available" in proc.stderr


@pytest.mark.slow
def test_soak_tiny(tmp_path):
    """The soak benchmark (issue 18) with tiny sizes on CPU: samples of every process, finite growth."""
    import math

    out = tmp_path / "soak"
    env = {**os.environ, "GSENV_ASSETS": str(tmp_path / "assets"), "CUDA_VISIBLE_DEVICES": ""}
    cmd = [sys.executable, "-m", "gsenv.tools.bench.soak", "--env-steps", "40", "--num-envs", "2", "--num-workers",
           "2", "--image-size", "24x32", "--density", "0.01", "--sample-every", "2", "--out", str(out)]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"soak failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    res = json.loads((out / "soak.json").read_text())
    samples = res["samples"]
    assert res["config"]["env_steps"] == 40 and len(samples) == 11
    for s in samples:
        assert len(s["worker_pids"]) == 2 and _positive(s["main.rss_mb"]), s
        for i in range(2):
            assert all(_positive(s[f"worker{i}.{k}"]) for k in ("rss_mb", "pss_mb", "uss_mb")), s
    series = res["summary"]["series"]
    assert {"main.rss_mb", "worker0.uss_mb", "worker1.pss_mb"} <= set(series)
    assert all(math.isfinite(v["growth"]) for v in series.values()), series
    assert res["summary"]["verdict"] in ("PASS", "FAIL") and "growth after warm-up" in proc.stdout


@pytest.mark.slow
def test_startup_tiny(tmp_path):
    """The start-up probe (run in a fresh interpreter, carrying proc.py's source) measures gym.make and
    the memory of the workers it started."""
    import json

    from gsenv.tools.bench import startup

    out = tmp_path / "startup.json"
    assert startup.main(["--num-envs", "2", "--num-workers", "1", "--methods", "server",
                         "--asset-root", str(tmp_path / "assets"), "--out", str(out)]) == 0
    rows = json.loads(out.read_text())["methods"]["server"]["rows"]
    assert [r["phase"] for r in rows] == ["cold", "warm"]
    for r in rows:
        assert r["gym_make_s"] > 0 and len(r["workers"]) == 1
        assert 0 < r["workers"][0]["uss_mb"] <= r["workers"][0]["rss_mb"]
        assert r["server"]["rss_mb"] > 0


@pytest.mark.slow
def test_views_benchmark_times_every_view_set_and_part_on_the_cpu():
    """`bench.render --views --parts` on tiny images through the torch renderer: a row per view set and
    randomisation setting and per part, ratios computed from those rows, and the table names the parts."""
    from gsenv.tools.bench.render import RANDOMIZATION_PARTS, VIEW_SETS, views_benchmark, views_table

    result = views_benchmark(batch=2, image_size=(16, 16), device="cpu", density=0.02, min_time=0.0, partial=1,
                             parts=True)
    seen = [(r["views"], r["randomization"]) for r in result["rows"]]
    assert seen == [("third", False), ("third", True), *(("third", p) for p in RANDOMIZATION_PARTS),
                    ("third+wrist", False), ("third+wrist", True)]
    # the structure only: rates are timings (they vary run to run and machine to machine) and the rows
    # hold them rounded, so no value is recomputed from them
    assert set(result["ratios"]) == ({f"randomization_cost_{v}" for v in VIEW_SETS} | {"wrist_cost"}
                                     | {f"randomization_cost_{p}" for p in RANDOMIZATION_PARTS})
    assert all(isinstance(v, float) and v < 1 for v in result["ratios"].values())  # 1 - (a rate / a rate)
    assert all(r["env_steps_per_s"] > 0 and r["images_per_s"] > 0 for r in result["rows"])
    assert all(r["ms"] > 0 and r["B"] == 2 and r["res"] == "16x16" for r in result["rows"])
    assert "partial_reset_ms" in result["rows"][1] and result["device"] == "cpu"
    table = views_table(result)
    assert "| third | camera only |" in table and "| third+wrist | on |" in table


@pytest.mark.slow
def test_node_benchmark_table_on_the_cpu(tmp_path):
    """`gsenv bench node` tiny on CPU: a row per layout, every instance timed, each instance's workers
    as the host's share gives them, all of them alive while stepping. Timed values are not checked."""
    from gsenv.physics.cpu_pool import usable_cores
    from gsenv.tools.bench.node import COLUMNS

    out = tmp_path / "out"
    env = {**os.environ, "GSENV_ASSETS": str(tmp_path / "assets"), "CUDA_VISIBLE_DEVICES": ""}
    env.pop("GSENV_NUM_WORKERS", None)
    cmd = [sys.executable, "-m", "gsenv.tools.cli", "bench", "node", "--instances", "1,2", "--num-envs", "2",
           "--image-size", "16", "--seconds", "0.5", "--min-steps", "3", "--device", "cpu", "--density", "0.01",
           "--out", str(out)]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"bench node failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    result = json.loads((out / "node.json").read_text())
    rows = result["rows"]
    assert [(r["instances"], r["processes"], r["per_process"]) for r in rows] == [(1, 1, 1), (2, 2, 1), (2, 1, 2)]
    cores = usable_cores()
    for r in rows:
        assert len(r["per_instance"]) == r["instances"]
        assert all(x["steps"] >= 3 and x["p99_ms"] >= x["p50_ms"] > 0 for x in r["per_instance"])
        # each instance's share of the host (other gsenv pools on this host, if any, hold theirs: the
        # exact split is tested in test_physics_cores)
        workers = r["workers_per_instance"]
        assert all(1 <= w <= min(2, cores) for w in workers)
        if r["per_process"] == 1:  # separate processes: the first at most the cores, each later one what is
            assert sum(workers) <= cores + len(workers) - 1  # left, at least one worker (the floor)
        else:  # one process: its instances step in turn, so each takes the process's whole share
            assert len(set(workers)) == 1
        assert r["worker_processes"] == sum(r["workers_per_instance"])
        assert r["servers"] == r["processes"]
        assert _positive(r["aggregate_env_steps_per_s"]) and 0 <= r["cpu_util_pct"] <= 100
    lines = proc.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:2] == ["instances", "layout"])
    assert all(c.split()[0] in lines[header] for c in COLUMNS)
    assert [line.split()[0] for line in lines[header + 1:header + 4]] == ["1", "2", "2"]
    assert "2 in 1 proc" in lines[header + 3]


@pytest.mark.parametrize("bad", [["--instances", "0,2"], ["--instances", "x"], ["--num-envs", "0"],
                                 ["--seconds", "0"]])
def test_node_benchmark_refuses_bad_options(bad):
    proc = subprocess.run([sys.executable, "-m", "gsenv.tools.cli", "bench", "node", *bad], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "node" in proc.stderr and ("--instances" in proc.stderr or "must be" in proc.stderr)
