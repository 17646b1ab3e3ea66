"""`gsenv eval --suite`: one policy on every row of a suite (a task or a variant of it, each in its category),
the same fixed episode ids on each; one table by category, one JSON report; resumable.

A suite is ``ood`` (the rl4vla out-of-distribution protocol on the splat cell: gsenv.tasks.ood.SUITE) or
a YAML file:

    name: my-suite                  # optional (default: the file's stem)
    rows:
      - task: PutCubeOnPlate        # a task name or MODULE:NAME ...
        category: in-distribution   # optional (default: "tasks")
      - env_id: GSEnv/PutCubeOnPlate-v0   # ... or a registered gymnasium id
        name: PutCubeOnPlateDimLight      # the row's name, also its folder (default: the task's name)
        category: vision
        change: the light at half its intensity
        kwargs: {domain_randomization: {light: [0.5, 0.5]}}   # more gym.make arguments

Each row's outputs go to DIR/<row name>/ (its report.json and videos, as one `gsenv eval`), and
DIR/report.json holds every row's section, rewritten as rows end. A run stopped early (Ctrl-C, a
policy that failed) and started again with the same suite, policy and options continues where it
stopped: rows that finished are kept, a row cut off keeps its finished episodes and runs the rest
(an episode depends only on its id, so the table equals an uninterrupted run's). ``--restart`` (or
other options) starts again, moving the earlier outputs aside.

Cheap to import: the heavy work happens when a suite runs.
"""
from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from gsenv.atomic import write_text_atomic
from gsenv.tools.eval import (
    REPORT_NAME,
    RUNNING_NOTE,
    EpisodeResult,
    EvalError,
    EvalResult,
    checked_episode_ids,
    prepare_out_dir,
    run_eval,
    stop_reason,
)

logger = logging.getLogger(__name__)

BUILTIN_SUITES = ("ood",)
CATEGORY_ORDER = ("in-distribution", "vision", "semantic", "execution")
"""The table's order of the ood protocol's categories; other categories follow in the order they appear."""
DEFAULT_CATEGORY = "tasks"
ROW_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
"""A row name: also its output folder's name."""
EVAL_OWNS = frozenset({"num_envs", "obs_mode", "image_size", "device", "scene", "scene_density", "asset_root",
                       "total_num_trials", "max_episode_steps", "cameras"})
"""gym.make arguments `gsenv eval` sets from its own options: a row's kwargs may not set them."""
ROW_KEYS = frozenset({"task", "env_id", "name", "category", "change", "kwargs"})


@dataclass(frozen=True)
class SuiteRow:
    """One row of a suite: the env to make (``env_id`` with ``make_kwargs``), its category and what it changes."""

    category: str
    name: str
    env_id: str
    change: str = ""
    make_kwargs: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Suite:
    name: str
    rows: tuple[SuiteRow, ...]


# ----------------------------------------------------------------------------------------- loading
def load_suite(spec: str) -> Suite:
    """``spec``: "ood" or a YAML file (see the module docstring) -> the Suite, every row checked (EvalError
    naming the row and what is wrong: an unknown id, a repeated name, a kwarg eval sets itself)."""
    if spec == "ood":
        from gsenv.tasks.ood import SUITE

        rows = [SuiteRow(v.category, v.name, v.env_id, v.change, dict(v.make_kwargs)) for v in SUITE]
        return _checked(Suite("ood", tuple(rows)))
    path = Path(spec)
    if not path.is_file():
        raise EvalError(f"--suite {spec}: not a built-in suite ({', '.join(BUILTIN_SUITES)}) nor a YAML file")
    import yaml

    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise EvalError(f"--suite {spec}: cannot read it as YAML: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("rows"), list) or not doc["rows"]:
        raise EvalError(f"--suite {spec}: a suite file is a mapping with a non-empty list 'rows' (see `gsenv eval "
                        f"--help`)")
    unknown = set(doc) - {"name", "rows"}
    if unknown:
        raise EvalError(f"--suite {spec}: unknown top-level keys {sorted(unknown)}; a suite has 'name' and 'rows'")
    rows = [_row_from_yaml(spec, k, r) for k, r in enumerate(doc["rows"])]
    return _checked(Suite(str(doc.get("name") or path.stem), tuple(rows)))


def _row_from_yaml(spec: str, k: int, row: Any) -> SuiteRow:
    where = f"--suite {spec}: row {k}"
    if not isinstance(row, dict):
        raise EvalError(f"{where}: a row is a mapping with 'task' or 'env_id', got {row!r}")
    unknown = set(row) - ROW_KEYS
    if unknown:
        raise EvalError(f"{where}: unknown keys {sorted(unknown)}; a row may have {', '.join(sorted(ROW_KEYS))}")
    if ("task" in row) == ("env_id" in row):
        raise EvalError(f"{where}: give exactly one of 'task' (a task name) and 'env_id' (a gymnasium id)")
    kwargs = row.get("kwargs") or {}
    if not isinstance(kwargs, dict):
        raise EvalError(f"{where}: 'kwargs' must be a mapping of gym.make arguments, got {kwargs!r}")
    if "task" in row:
        from gsenv.tasks import env_ids
        from gsenv.tools.args import checked_task

        task = checked_task(row["task"], EvalError)
        env_id, name = env_ids(task.name)[0], row.get("name", task.name)
    else:
        env_id, name = str(row["env_id"]), row.get("name", str(row["env_id"]).split("/")[-1].removesuffix("-v0"))
    return SuiteRow(str(row.get("category", DEFAULT_CATEGORY)), str(name), env_id, str(row.get("change", "")),
                    kwargs)


def _checked(suite: Suite) -> Suite:
    import gymnasium as gym

    import gsenv  # noqa: F401  (registers the ids)

    names = [r.name for r in suite.rows]
    for r in suite.rows:
        where = f"suite {suite.name!r}, row {r.name!r}"
        if not ROW_NAME.fullmatch(r.name):
            raise EvalError(f"{where}: a row name is letters, digits, '_', '.', '-' (it names the row's folder)")
        if names.count(r.name) > 1:
            raise EvalError(f"{where}: the name appears more than once; give each row its own 'name'")
        if r.env_id not in gym.registry:
            raise EvalError(f"{where}: {r.env_id!r} is not a registered gymnasium id (import the module that "
                            f"registers it, or give 'task')")
        owned = sorted(EVAL_OWNS & set(r.make_kwargs))
        if owned:
            raise EvalError(f"{where}: kwargs {owned} are set by `gsenv eval`'s own options; leave them out")
    return suite


# ----------------------------------------------------------------------------------------- running
def suite_config(suite: Suite, policy: str, episode_ids: Sequence[int], options: Mapping[str, Any]) -> dict:
    """What makes two runs of a suite the same run (a run continues only an earlier run with this config), as
    the report holds it: JSON values (tuples become lists), so a config compares equal to its report's."""
    config = {"suite": suite.name, "policy": policy, "episode_ids": list(episode_ids),
              "rows": [{**asdict(r), "make_kwargs": dict(r.make_kwargs)} for r in suite.rows],
              "options": dict(sorted(options.items()))}
    return json.loads(json.dumps(config))


RESULT_OPTIONS = ("chunk", "image_size", "scene", "scene_density", "max_steps", "camera")
"""run_eval options that change results (part of suite_config); the others (num_envs, device, video,
timeout) may differ between a run and its continuation."""


def _earlier_rows(out: Path, config: dict) -> dict[str, dict] | None:
    """The row reports of an earlier run in ``out`` with the same config (-> {row name: its report, those
    that exist}), or None when there is none to continue (no report, another config, unreadable)."""
    try:
        report = json.loads((out / REPORT_NAME).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(report, dict) or report.get("suite_config") != config:
        return None
    rows = {}
    for row in config["rows"]:
        try:
            rows[row["name"]] = json.loads((out / row["name"] / REPORT_NAME).read_text())
        except (OSError, ValueError):
            continue  # never started, or cut off before its first report: it runs from the start
    return rows


def _finished_episodes(row_report: dict, ids: Sequence[int], policy: str) -> list[EpisodeResult]:
    """The episodes a row's earlier report lists as finished (for these ids and this policy)."""
    if row_report.get("policy") != policy:
        return []
    wanted = set(ids)
    return [EpisodeResult(**e) for e in row_report.get("episodes", []) if e.get("episode_id") in wanted]


def run_suite(policy: str, suite: Suite, out_dir: str | Path, *, episodes: int | None = None,
              episode_ids: Sequence[int] | None = None, restart: bool = False,
              **kwargs: Any) -> dict[str, EvalResult]:
    """Evaluate ``policy`` on every row of ``suite`` (run_eval per row, same episode ids, each row into
    out_dir/<row name>/), writing out_dir/report.json (one section per row, rewritten after each row) ->
    {row name: its result}. An earlier run in out_dir of the same suite, policy, ids and result options
    is continued unless ``restart``; otherwise its outputs are moved aside. kwargs: run_eval's."""
    ids = checked_episode_ids(episodes, episode_ids)
    config = suite_config(suite, policy, ids, {k: kwargs.get(k) for k in RESULT_OPTIONS})
    out = Path(out_dir)
    earlier = None if restart else _earlier_rows(out, config)
    if earlier is None:
        out, moved = prepare_out_dir(out)
    else:
        moved = None
        logger.warning("%s holds an unfinished run of this suite: continuing it (--restart starts again)", out)
    results: dict[str, EvalResult] = {}
    rows_json: dict[str, dict] = {}

    def write(complete: bool, reason: str | None) -> None:
        report = {"complete": complete, "incomplete_reason": reason, "policy": policy, "suite": suite.name,
                  "rows_planned": [r.name for r in suite.rows], "rows": rows_json, "suite_config": config}
        if moved is not None:
            report["previous_run_moved_to"] = moved.name
        write_text_atomic(out / REPORT_NAME, json.dumps(report, indent=2) + "\n")

    write(False, RUNNING_NOTE)
    for row in suite.rows:
        before = (earlier or {}).get(row.name)
        done = _finished_episodes(before, ids, policy) if before else []
        if len(done) == len(ids) and before.get("complete"):
            r = EvalResult.from_json(before)  # a row the earlier run finished: kept as it is
        else:
            try:
                r = run_eval(policy, episode_ids=ids, out_dir=out / row.name, env_id=row.env_id,
                             env_kwargs=dict(row.make_kwargs), done=done or None, **kwargs)
            except BaseException as exc:
                write(False, f"row {row.name}: {stop_reason(exc)}")
                raise
        results[row.name] = r
        rows_json[row.name] = {"category": row.category, "env_id": row.env_id, "change": row.change, **r.to_json()}
        finished = len(results) == len(suite.rows)
        write(finished, None if finished else RUNNING_NOTE)
    return results


def format_suite_table(suite: Suite, results: Mapping[str, EvalResult]) -> str:
    """One line per row, grouped by category (in-distribution, vision, semantic, execution, then others in
    order): success with its 95% Wilson interval, mean progress, mean episode length."""
    order = {c: k for k, c in enumerate(CATEGORY_ORDER)}
    seen: list[str] = []
    for r in suite.rows:
        if r.category not in seen:
            seen.append(r.category)
    categories = sorted(seen, key=lambda c: (order.get(c, len(order)), seen.index(c)))
    lines = [("category", "row", "success (95% interval)", "progress", "length")]
    for cat in categories:
        for row in suite.rows:
            if row.category != cat or row.name not in results:
                continue
            res = results[row.name]
            lo, hi = res.wilson_95
            lines.append((cat, row.name, f"{res.successes}/{len(res.episodes)} = {100 * res.success_rate:.1f}% "
                          f"({100 * lo:.1f}-{100 * hi:.1f}%)", f"{res.mean_progress:.3f}", f"{res.mean_length:.1f}"))
    widths = [max(len(line[c]) for line in lines) for c in range(5)]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in lines)


__all__ = ["BUILTIN_SUITES", "CATEGORY_ORDER", "Suite", "SuiteRow", "format_suite_table", "load_suite", "run_suite"]
