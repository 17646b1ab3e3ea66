"""The benchmark's report: the performance bar evaluated on a run's numbers, the tables printed
at the end, and benchmark.json.

Resolutions in the results are written "WIDTHxHEIGHT" ("640x480"), as in every stored run and
docs/benchmarks.md.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

JSON_NAME = "benchmark.json"


def write_json(results: dict, out_dir: Path) -> Path:
    """Write results to <out_dir>/benchmark.json (numpy and torch scalars as floats); returns the path."""
    path = Path(out_dir) / JSON_NAME
    path.write_text(json.dumps(results, indent=1, default=float))
    return path


def find_row(rows: list[dict] | None, **kw) -> dict | None:
    """The first measured row (one with a frame rate) whose fields equal kw, or None."""
    for r in rows or []:
        if all(r.get(k) == v for k, v in kw.items()) and r.get("fps"):
            return r
    return None


def performance_bars(results: dict) -> list[dict]:
    """The issue's performance bar, evaluated on this run's numbers (None where not measured)."""
    a, b = results.get("render"), results.get("research_strategy")
    c, d = results.get("end_to_end"), results.get("physics")
    bars = []

    def bar(name, value, target, ok):
        bars.append(dict(bar=name, value=None if value is None else round(value, 3), target=target,
                         ok=None if value is None else bool(ok)))

    r = find_row(a, cache=True, res="224x224", B=256)
    bar("render 224x224 B=256 env-frames/s (cache on)", r and r["fps"], ">= 20000", r and r["fps"] >= 20000)
    r64, s64 = find_row(a, cache=True, res="224x224", B=64), find_row(b, res="224x224", B=64)
    ratio = r64["fps"] / s64["fps"] if r64 and s64 else None
    bar("render 224x224 B=64 vs research strategy", ratio, ">= 10x", ratio is not None and ratio >= 10)
    r = find_row(a, cache=True, res="640x480", B=256)
    bar("render 640x480 B=256 env-frames/s (cache on)", r and r["fps"], ">= 5000", r and r["fps"] >= 5000)
    r = find_row(a, cache=True, res="224x224", B=256)
    v = r and r.get("mem_mb_per_env")
    bar("render memory per env, 224x224 B=256 (MB)", v, "<= 40", v is not None and v <= 40)
    big = [x for x in (a or []) if x.get("B") == 1024 and x.get("res") == "224x224" and x.get("cache")]
    fits = None if not big else bool(big[0].get("fps"))
    bars.append(dict(bar="B=1024 fits on the card (224x224, cache on)", value=fits, target="fits", ok=fits))
    if c and d:
        frac = c["env_steps_per_s"] / d["gsenv_state"]["env_steps_per_s"]
        bar("end-to-end rgb / physics-only", frac, ">= 0.85", frac >= 0.85)
    if d:
        bar("physics-only / AsyncVectorEnv, one process per core each", d["speedup_vs_async"], ">= 1.2x",
            d["speedup_vs_async"] >= 1.2)
        if "speedup_best_vs_best" in d:
            v = d["speedup_best_vs_best"]
            bar("physics-only, faster pool setting / faster AsyncVectorEnv", v, ">= 1.2x", v >= 1.2)
        v = d["gsenv_state"]["partial_reset_in_steps"]
        bar("partial reset of B/4 envs (step times)", v, "<= 2", v <= 2)
    chk = results.get("baseline_check")
    if chk:
        worst = max(chk, key=lambda x: abs(x["ratio"] - 1))
        bar("baseline vs seed_strategy_bench (time ratio)", worst["ratio"], "within 20%", worst["ok"])
    return bars


def physics_pairs(d: dict) -> list[tuple[dict, dict]]:
    """Section d's (GSEnv, AsyncVectorEnv) results at equal process counts: one per core, and one per
    env where that is a different count (results of older runs have only the first)."""
    pairs = [(d["gsenv_state"], d["async_vector_env"])]
    per_env = d.get("gsenv_state_per_env")
    if per_env and per_env["workers"] != d["gsenv_state"]["workers"]:
        pairs.append((per_env, d["async_vector_env_per_env"]))
    return pairs


def _fmt(v, nd=0) -> str:
    """A table cell: "-" for missing or NaN, yes/NO for bools, thousands separators for floats."""
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "NO"
    if isinstance(v, float):
        if math.isnan(v):
            return "-"
        return f"{v:,.{nd}f}"
    return str(v)


def tables(results: dict) -> str:
    """Markdown tables of every section in results, the performance bar and the seconds per section."""
    out = []
    m = results.get("machine", {})
    out.append(f"gsenv benchmark  {m.get('date', '')}  device {m.get('gpu') or m.get('device')}  "
               f"cores {m.get('usable_cores')}  torch {m.get('torch')}  gsplat {m.get('gsplat')}"
               f"{'  [QUICK: sizes too small to mean anything]' if results.get('config', {}).get('quick') else ''}")
    if m.get("lscpu"):
        out.append("lscpu: " + "; ".join(f"{k}: {v}" for k, v in m["lscpu"].items()))
    if results.get("render"):
        out += ["", "(a) render-only, default scene (env-frames/s; memory: peak MB and MB per env)",
                "| cache | resolution | B | ms / render | env-frames/s | peak MB | MB / env |",
                "|---|---|---|---|---|---|---|"]
        for r in results["render"]:
            note = r.get("skipped") or r.get("error")
            out.append(f"| {'on' if r['cache'] else 'off'} | {r['res']} | {r['B']} | {_fmt(r.get('ms'), 2)} | "
                       f"{_fmt(r.get('fps')) if not note else note} | {_fmt(r.get('peak_mem_mb'))} | "
                       f"{_fmt(r.get('mem_mb_per_env'), 2)} |")
    if results.get("research_strategy"):
        out += ["", "(b) research-code strategy (every camera rasterises all envs' gaussians, 4 cameras per call)",
                "| resolution | B | ms / step | env-frames/s | ours (cache on) / research | peak MB |",
                "|---|---|---|---|---|---|"]
        for r in results["research_strategy"]:
            note = r.get("skipped") or r.get("error")
            ours = find_row(results.get("render"), cache=True, res=r["res"], B=r["B"])
            ratio = ours["fps"] / r["fps"] if ours and r.get("fps") else None
            out.append(f"| {r['res']} | {r['B']} | {_fmt(r.get('ms'), 2)} | "
                       f"{_fmt(r.get('fps')) if not note else note} | "
                       f"{_fmt(ratio, 1)} | {_fmt(r.get('peak_mem_mb'))} |")
    if results.get("baseline_check"):
        out += ["", "(b) baseline check vs ../shared/bench/seed_strategy_bench.py (same synthetic input)",
                "| gaussians | resolution | B | ours ms | reference ms | ratio | within 20% |",
                "|---|---|---|---|---|---|---|"]
        for r in results["baseline_check"]:
            out.append(f"| {r['gaussians']:,} | {r['res']} | {r['B']} | {r['ours_ms']:.2f} | {r['reference_ms']:.2f} | "
                       f"{r['ratio']:.3f} | {_fmt(r['ok'])} |")
    c, d = results.get("end_to_end"), results.get("physics")
    if c or d:
        out += ["", "(c, d) env steps (physx_cpu)",
                "| what | envs | workers | ms / step | env-steps/s | partial reset of B/4 (step times) |",
                "|---|---|---|---|---|---|"]
        if c:
            out.append(f"| GSEnv rgb {c['image']} (end-to-end) | {c['num_envs']} | {c['workers']} | "
                       f"{c['step_ms']:.1f} | "
                       f"{c['env_steps_per_s']:,.0f} | {c['partial_reset_in_steps']:.2f} |")
        if d:
            s = d["single_process"]
            for g, a in physics_pairs(d):
                out.append(f"| GSEnv state (physics-only) | {g['num_envs']} | {g['workers']} | {g['step_ms']:.1f} | "
                           f"{g['env_steps_per_s']:,.0f} | {g['partial_reset_in_steps']:.2f} |")
                out.append(f"| gymnasium AsyncVectorEnv, 1 env/process | {a['processes']} | {a['processes']} | "
                           f"{a['step_ms']:.1f} | {a['env_steps_per_s']:,.0f} | - |")
            out.append(f"| one process, one env | 1 | 1 | {s['step_ms']:.1f} | {s['env_steps_per_s']:,.0f} | - |")
            out.append(f"parallel efficiency (one process per core): GSEnv {d['parallel_efficiency']:.2f}, "
                       f"AsyncVectorEnv {d['async_parallel_efficiency']:.2f}; GSEnv / AsyncVectorEnv at equal process "
                       f"counts: {d['speedup_vs_async']:.2f}x (one per core)"
                       + (f", {d['speedup_vs_async_per_env']:.2f}x (one per env); faster vs faster: "
                          f"{d['speedup_best_vs_best']:.2f}x" if "speedup_best_vs_best" in d else ""))
        if c:
            out.append(f"end-to-end: render alone {c['render_only_ms']:.1f} ms of a {c['step_ms']:.1f} ms step "
                       f"({c['render_share']:.0%})")
    if results.get("bars"):
        out += ["", "performance bar", "| bar | value | target | met |", "|---|---|---|---|"]
        for b in results["bars"]:
            out.append(f"| {b['bar']} | {_fmt(b['value'], 2)} | {b['target']} | {_fmt(b['ok'])} |")
    t = results.get("timing_s", {})
    if t:
        out += ["", "seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in t.items())]
    return "\n".join(out)
