"""`gsenv eval --suite` (issue 27): every row of a suite on the same episode ids, one table by category, one
report; a run stopped by SIGINT and started again continues where it stopped and ends with the same table
as an uninterrupted run."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from gsenv.tools import eval_suite
from gsenv.tools.eval import EvalError

H = W = 16
DENSITY = 0.01
SUITE_YAML = """\
name: tiny
rows:
  - task: PickCube
    category: semantic
  - env_id: GSEnv/PutCubeOnPlate-v0
    name: PutCubeOnPlateDim
    category: vision
    change: the light at 60% of its intensity
    kwargs: {domain_randomization: {light: [0.6, 0.6]}}
"""
EPISODE_IDS = ["0", "1", "2"]


def _cmd(suite, out, *extra):
    return [sys.executable, "-m", "gsenv.tools.cli", "eval", "--policy", "expert", "--suite", str(suite),
            "--episode-ids", *EPISODE_IDS, "--num-envs", "1", "--image-size", f"{H}x{W}", "--scene-density",
            str(DENSITY), "--device", "cpu", "--no-video", "--out", str(out), *extra]


@pytest.fixture(scope="module")
def suite_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("suite") / "tiny.yaml"
    path.write_text(SUITE_YAML)
    return path


@pytest.fixture(scope="module")
def env_vars(tmp_path_factory):
    return {**os.environ, "GSENV_ASSETS": str(tmp_path_factory.mktemp("assets"))}


@pytest.fixture(scope="module")
def uninterrupted(suite_file, env_vars, tmp_path_factory):
    out = tmp_path_factory.mktemp("whole") / "out"
    proc = subprocess.run(_cmd(suite_file, out), capture_output=True, text=True, env=env_vars, timeout=1200)
    return proc, out


def _outcomes(report: dict) -> dict:
    """What the table shows, per row: each episode's success, length and final progress."""
    return {name: [(e["episode_id"], e["success"], e["length"], e["progress"]) for e in row["episodes"]]
            for name, row in report["rows"].items()}


@pytest.mark.slow
def test_one_table_by_category_and_a_report(uninterrupted):
    proc, out = uninterrupted
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert report["complete"] is True and report["suite"] == "tiny"
    assert report["rows_planned"] == ["PickCube", "PutCubeOnPlateDim"]
    lines = proc.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("category"))
    table = [line.split()[:2] for line in lines[header + 1:header + 3]]
    # vision before semantic (the protocol's order), whatever the file's order
    assert table == [["vision", "PutCubeOnPlateDim"], ["semantic", "PickCube"]]
    for name, row in report["rows"].items():
        assert row["num_episodes"] == 3 and [e["episode_id"] for e in row["episodes"]] == [0, 1, 2]
        assert row["success_rate"] == 1.0, (name, row["episodes"])  # the expert solves these episodes
        assert json.loads((out / name / "report.json").read_text())["episodes"] == row["episodes"]
    assert report["rows"]["PutCubeOnPlateDim"]["change"] == "the light at 60% of its intensity"
    assert report["rows"]["PickCube"]["task"] == "PickCube"


@pytest.mark.slow
def test_sigint_then_run_again_continues_and_ends_with_the_same_table(uninterrupted, suite_file, env_vars,
                                                                       tmp_path):
    out = tmp_path / "out"
    proc = subprocess.Popen(_cmd(suite_file, out), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env_vars)
    second = out / "PutCubeOnPlateDim" / "report.json"  # the second row: interrupt it after its first episode
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if json.loads(second.read_text())["num_episodes"] >= 1:
                break
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err[-3000:]
    stopped = json.loads((out / "report.json").read_text())
    assert stopped["complete"] is False and list(stopped["rows"]) == ["PickCube"]
    cut = json.loads(second.read_text())
    assert cut["complete"] is False and 1 <= cut["num_episodes"] < 3
    first_row = (out / "PickCube" / "report.json").read_text()

    again = subprocess.run(_cmd(suite_file, out), capture_output=True, text=True, env=env_vars, timeout=1200)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "continuing it" in again.stderr
    final = json.loads((out / "report.json").read_text())
    assert final["complete"] is True
    assert (out / "PickCube" / "report.json").read_text() == first_row  # a finished row is not run again
    resumed = json.loads(second.read_text())
    assert resumed["episodes_from_earlier_run"] == cut["num_episodes"]
    assert not any(p.name.startswith("previous-run-") for p in out.iterdir())  # nothing moved aside
    whole = json.loads((uninterrupted[1] / "report.json").read_text())
    assert _outcomes(final) == _outcomes(whole)
    table = lambda text: text[text.index("category"):text.index("report:")]  # noqa: E731
    assert table(again.stdout) == table(uninterrupted[0].stdout)

    restarted = subprocess.run(_cmd(suite_file, out, "--restart"), capture_output=True, text=True, env=env_vars,
                               timeout=1200)
    assert restarted.returncode == 0, restarted.stderr[-3000:]
    assert "continuing" not in restarted.stderr
    moved = [p for p in out.iterdir() if p.name.startswith("previous-run-")]
    assert len(moved) == 1 and json.loads((moved[0] / "report.json").read_text())["complete"] is True
    assert "episodes_from_earlier_run" not in json.loads(second.read_text())  # run again from its start
    assert _outcomes(json.loads((out / "report.json").read_text())) == _outcomes(whole)


def test_bad_suites_are_clear_errors(tmp_path):
    def load(text):
        path = tmp_path / "s.yaml"
        path.write_text(text)
        return eval_suite.load_suite(str(path))

    with pytest.raises(EvalError, match="not a built-in suite"):
        eval_suite.load_suite(str(tmp_path / "missing.yaml"))
    with pytest.raises(EvalError, match="non-empty list 'rows'"):
        load("name: x\n")
    with pytest.raises(EvalError, match="exactly one of 'task'"):
        load("rows:\n  - {task: PickCube, env_id: GSEnv/PickCube-v0}\n")
    with pytest.raises(EvalError, match="unknown keys \\['kwarg'\\]"):
        load("rows:\n  - {task: PickCube, kwarg: {}}\n")
    with pytest.raises(EvalError, match="more than once"):
        load("rows:\n  - {task: PickCube}\n  - {task: PickCube}\n")
    with pytest.raises(EvalError, match="not a registered gymnasium id"):
        load("rows:\n  - {env_id: GSEnv/NoSuch-v0}\n")
    with pytest.raises(EvalError, match=r"kwargs \['num_envs'\] are set by"):
        load("rows:\n  - {task: PickCube, kwargs: {num_envs: 3}}\n")
    with pytest.raises(EvalError, match="unknown task 'NoSuchTask'"):
        load("rows:\n  - {task: NoSuchTask}\n")
    with pytest.raises(EvalError, match="cannot read it as YAML"):
        load("rows: [\n")
    suite = load("rows:\n  - {task: PickCube}\n  - {env_id: GSEnv/PutCubeOnPlate-v0, category: vision}\n")
    assert [(r.name, r.category, r.env_id) for r in suite.rows] == [
        ("PickCube", "tasks", "GSEnv/PickCube-v0"), ("PutCubeOnPlate", "vision", "GSEnv/PutCubeOnPlate-v0")]


def test_suite_and_task_together_or_restart_alone_exit_2(tmp_path):
    base = [sys.executable, "-m", "gsenv.tools.cli", "eval", "--policy", "expert", "--episodes", "1", "--out",
            str(tmp_path / "o")]
    both = subprocess.run([*base, "--suite", "ood", "--task", "PickCube"], capture_output=True, text=True)
    assert both.returncode == 2 and "--suite or --task, not both" in both.stderr
    alone = subprocess.run([*base, "--restart"], capture_output=True, text=True)
    assert alone.returncode == 2 and "--restart goes with --suite" in alone.stderr


def test_a_config_equals_the_one_its_report_holds():
    """A run continues an earlier one when their configs are equal, and the earlier one is read back from
    JSON: ranges given as tuples (the ood suite's vision rows) must compare equal to their JSON lists."""
    import json

    suite = eval_suite.Suite("t", (eval_suite.SuiteRow("vision", "R", "GSEnv/PutCubeOnPlate-v0", "",
                                                       {"domain_randomization": {"light": (0.6, 0.6)}}),))
    config = eval_suite.suite_config(suite, "expert", [0, 1], {"image_size": (16, 16), "camera": None})
    assert json.loads(json.dumps(config)) == config
    assert config["rows"][0]["make_kwargs"]["domain_randomization"]["light"] == [0.6, 0.6]
