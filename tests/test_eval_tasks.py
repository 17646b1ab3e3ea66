"""`gsenv eval` over several tasks (issue 26): `--task` repeated or a comma list runs each task's fixed
episodes, prints one table (task, success with its 95% interval, mean progress, mean length) and writes one
report with a section per task, each episode's final progress recorded (info["progress"])."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from gsenv.tools import eval as gseval

H = W = 16
EPISODES = 2
DENSITY = 0.01


@pytest.fixture(scope="module")
def two_tasks(tmp_path_factory):
    """`gsenv eval --policy expert --task PutCubeOnPlate,PickCube` as a user runs it (tiny images, no videos)."""
    out = tmp_path_factory.mktemp("eval_tasks") / "out"
    assets = tmp_path_factory.mktemp("assets")
    proc = subprocess.run([sys.executable, "-m", "gsenv.tools.cli", "eval", "--policy", "expert", "--task",
                           "PutCubeOnPlate,PickCube", "--episodes", str(EPISODES), "--num-envs", "2", "--image-size",
                           f"{H}x{W}", "--scene-density", str(DENSITY), "--device", "cpu", "--no-video", "--out",
                           str(out)], capture_output=True, text=True,
                          env={**os.environ, "GSENV_ASSETS": str(assets)}, timeout=900)
    return proc, out


@pytest.mark.slow
def test_one_table_and_a_report_section_per_task(two_tasks):
    proc, out = two_tasks
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert report["complete"] is True and report["tasks_planned"] == ["PutCubeOnPlate", "PickCube"]
    assert list(report["tasks"]) == ["PutCubeOnPlate", "PickCube"]
    lines = proc.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("task"))
    assert "success (95% interval)" in lines[header] and "progress" in lines[header] and "length" in lines[header]
    for row, (name, section) in zip(lines[header + 1:header + 3], report["tasks"].items()):
        assert section["task"] == name and section["num_episodes"] == EPISODES
        episodes = section["episodes"]
        # the expert succeeds on these episodes; a success has reached every stage: progress 1 exactly
        assert all(e["success"] and e["progress"] == 1.0 for e in episodes), episodes
        assert section["mean_progress"] == 1.0
        assert section["mean_length"] == sum(e["length"] for e in episodes) / EPISODES
        lo, hi = gseval.wilson_interval(EPISODES, EPISODES)
        assert section["wilson_95"] == [lo, hi]
        assert row.split()[0] == name and f"{EPISODES}/{EPISODES} = 100.0% ({100 * lo:.1f}-100.0%)" in row
        assert f"{section['mean_length']:.1f}" in row.split()[-1]
        assert json.loads((out / name / "report.json").read_text())["episodes"] == episodes  # its own folder


def test_bad_task_lists_are_clear_errors():
    with pytest.raises(gseval.EvalError, match="more than once"):
        gseval.checked_tasks(["PickCube", "PutCubeOnPlate,PickCube"])
    with pytest.raises(gseval.EvalError, match="empty task name"):
        gseval.checked_tasks(["PickCube,"])
    with pytest.raises(gseval.EvalError, match="unknown task 'NoSuchTask'"):
        gseval.checked_tasks("PickCube,NoSuchTask")
    assert [t.name for t in gseval.checked_tasks(["PickCube", "PutCubeOnPlate"])] == ["PickCube", "PutCubeOnPlate"]
    assert [t.name for t in gseval.checked_tasks(None)] == ["PutCubeOnPlate"]
