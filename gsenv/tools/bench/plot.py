"""benchmark.png: render env-frames/s vs B (with the research strategy), render memory per env, and
env-steps/s of the physics settings.

With matplotlib (not a dependency of gsenv) a labelled three-panel figure; without it a label-free
line chart of the render rates drawn with numpy (redraw it elsewhere with `gsenv bench --replot`).
"""
from __future__ import annotations

import logging
import math
from pathlib import Path

from gsenv.tools.bench.report import physics_pairs

logger = logging.getLogger(__name__)

PLOT_NAME = "benchmark.png"
FALLBACK_COLOURS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75)]


def plot(results: dict, path: Path) -> str:
    """Draw results into the PNG `path`: with matplotlib when importable, else the plain line chart
    of _plot_fallback (no labels: regenerate it elsewhere with --replot). Returns which was used:
    "matplotlib" or "fallback"."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        logger.warning("matplotlib is not installed: writing a label-free fallback plot; "
                       "rerun `gsenv bench --replot %s` where matplotlib is installed", path.with_suffix(".json"))
        _plot_fallback(results, path)
        return "fallback"
    fig, axes = plt.subplots(1, 3, figsize=(17, 5))
    ax = axes[0]
    for res in sorted({r["res"] for r in results.get("render") or []}):
        for cache in (True, False):
            rows = [r for r in results["render"] if r["res"] == res and r["cache"] == cache and r.get("fps")]
            if rows:
                ax.plot([r["B"] for r in rows], [r["fps"] for r in rows], "o-",
                        label=f"gsenv {res} cache {'on' if cache else 'off'}")
        rows = [r for r in results.get("research_strategy") or [] if r["res"] == res and r.get("fps")]
        if rows:
            ax.plot([r["B"] for r in rows], [r["fps"] for r in rows], "x--", label=f"research strategy {res}")
    ax.set(xscale="log", yscale="log", xlabel="B (envs)", ylabel="env-frames/s", title="render-only, default scene")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    ax = axes[1]
    for res in sorted({r["res"] for r in results.get("render") or []}):
        for cache in (True, False):
            rows = [r for r in results["render"] if r["res"] == res and r["cache"] == cache and r.get("peak_mem_mb")]
            if rows:
                ax.plot([r["B"] for r in rows], [r["mem_mb_per_env"] for r in rows], "o-",
                        label=f"{res} cache {'on' if cache else 'off'}")
    ax.axhline(40, color="r", ls=":", label="bar: 40 MB/env")
    ax.set(xscale="log", xlabel="B (envs)", ylabel="MB per env (peak growth / B)", title="render GPU memory")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    ax = axes[2]
    labels, vals = [], []
    d, c = results.get("physics"), results.get("end_to_end")
    if d:
        labels.append("1 process")
        vals.append(d["single_process"]["env_steps_per_s"])
        for g, a in physics_pairs(d):
            labels += [f"AsyncVectorEnv x{a['processes']}", f"GSEnv state, {g['workers']} workers"]
            vals += [a["env_steps_per_s"], g["env_steps_per_s"]]
    if c:
        labels.append(f"GSEnv rgb {c['image']}")
        vals.append(c["env_steps_per_s"])
    if vals:
        colour = lambda k: "grey" if k == "1 process" else "tab:orange" if k.startswith("Async") else \
            "tab:blue" if "state" in k else "tab:green"  # noqa: E731
        ax.bar(labels, vals, color=[colour(k) for k in labels])
        for i, v in enumerate(vals):
            ax.text(i, v, f"{v:,.0f}", ha="center", va="bottom", fontsize=8)
    ax.set(ylabel="env-steps/s", title="physx_cpu env steps")
    ax.tick_params(axis="x", labelsize=7, labelrotation=20)
    m = results.get("machine", {})
    fig.suptitle(f"gsenv benchmark: {m.get('gpu') or m.get('device')}, {m.get('usable_cores')} cores, "
                 f"{m.get('date', '')[:10]}"
                 f"{' (QUICK: meaningless sizes)' if results.get('config', {}).get('quick') else ''}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return "matplotlib"


def _plot_fallback(results: dict, path: Path) -> None:
    """A log-log line chart of render env-frames/s vs B (one colour per series), drawn into an RGB
    image [400, 640, 3] and written as a PNG."""
    import imageio.v3 as iio
    import numpy as np

    W, H, pad = 640, 400, 30
    img = np.full((H, W, 3), 255, np.uint8)
    img[H - pad, pad:W - pad] = 0
    img[pad:H - pad, pad] = 0
    series = []
    for res in sorted({r["res"] for r in results.get("render") or []}):
        for cache in (True, False):
            series.append([(r["B"], r["fps"]) for r in results["render"]
                           if r["res"] == res and r["cache"] == cache and r.get("fps")])
        series.append([(r["B"], r["fps"]) for r in results.get("research_strategy") or []
                       if r["res"] == res and r.get("fps")])
    pts = [p for s in series for p in s]
    if pts:
        bx = np.log10([p[0] for p in pts])
        fy = np.log10([p[1] for p in pts])
        x0, x1 = bx.min(), max(bx.max(), bx.min() + 1e-6)
        y0, y1 = fy.min(), max(fy.max(), fy.min() + 1e-6)
        colours = FALLBACK_COLOURS
        for k, s in enumerate(series):
            xy = [(pad + (math.log10(b) - x0) / (x1 - x0) * (W - 2 * pad - 1),
                   H - pad - (math.log10(f) - y0) / (y1 - y0) * (H - 2 * pad - 1)) for b, f in s]
            for (xa, ya), (xb, yb) in zip(xy[:-1], xy[1:], strict=True):
                for t in np.linspace(0, 1, 400):
                    img[int(ya + t * (yb - ya)), int(xa + t * (xb - xa))] = colours[k % len(colours)]
            for x, y in xy:
                img[max(0, int(y) - 2):int(y) + 3, max(0, int(x) - 2):int(x) + 3] = colours[k % len(colours)]
    iio.imwrite(path, img)
