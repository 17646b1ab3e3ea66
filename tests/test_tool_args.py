"""What the `gsenv` commands share: --device cuda where there is no CUDA, an output folder that cannot
be made and a scene that is not one, refused by demo, eval and collect before anything is written; any
other failure is one line with exit 1, the traceback with -v."""
from __future__ import annotations

import pytest
import torch

from gsenv.tools.cli import main as cli

COMMANDS = {
    "demo": ["demo", "--num-envs", "1"],
    "eval": ["eval", "--policy", "expert", "--episodes", "1"],
    "collect": ["collect", "--episodes", "1"],
}


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
@pytest.mark.parametrize("command", list(COMMANDS))
def test_device_cuda_without_cuda_is_refused_before_any_file(command, tmp_path, capsys):
    out = tmp_path / "out"
    assert cli(COMMANDS[command] + ["--device", "cuda", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--device cuda needs CUDA, which is not available here; use --device cpu" in err
    assert "Traceback" not in err and not out.exists()


@pytest.mark.parametrize("command", ["demo", "eval"])
def test_an_output_folder_that_cannot_be_made_is_one_clear_error(command, tmp_path, capsys):
    (tmp_path / "file").write_text("not a folder")
    out = tmp_path / "file" / "out"
    assert cli(COMMANDS[command] + ["--device", "cpu", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"cannot create the output directory {out}" in err and "Traceback" not in err


def test_collect_with_a_bad_scene_is_a_clear_error_and_leaves_no_dataset(tmp_path, capsys):
    out = tmp_path / "ds"
    argv = ["collect", "--episodes", "1", "--scene", str(tmp_path / "no_scene"), "--device", "cpu", "--out", str(out)]
    assert cli(argv) == 2
    err = capsys.readouterr().err
    assert "gsenv collect: error: invalid scene bundle" in err and "Traceback" not in err
    assert not out.exists()
    # a dataset that was there before is left as it was
    from gsenv.lerobot_v21 import LeRobotV21Writer
    from gsenv.tools.args import parse_image_size
    from gsenv.tools.collect import DEFAULT_IMAGE_SIZE, FPS, ROBOT_TYPE, _features, pose_feature

    poses = pose_feature(["cube"], {"task": "PutCubeOnPlate", "scene": "default", "scene_density": 1.0,
                                    "domain_randomization": None})
    features = _features(parse_image_size(DEFAULT_IMAGE_SIZE), {"observation.image": "3rd_view_camera"}, poses)
    LeRobotV21Writer(out, fps=FPS, features=features, robot_type=ROBOT_TYPE).close()
    info = (out / "meta" / "info.json").read_text()
    assert cli(argv) == 2 and (out / "meta" / "info.json").read_text() == info
    assert "invalid scene bundle" in capsys.readouterr().err


def test_a_failing_run_is_one_line_and_the_traceback_comes_with_v(tmp_path, capsys, monkeypatch):
    """A policy of the user's that raises: `gsenv eval` says so in one line (exit 1); with -v the
    traceback, down to the line that raised, comes first."""
    (tmp_path / "broken_policy_t1.py").write_text("def act(obs, env):\n    return 1 / 0\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    argv = ["eval", "--policy", "broken_policy_t1:act", "--episodes", "1", "--device", "cpu", "--image-size", "16",
            "--scene-density", "0.02", "--no-video", "--out", str(tmp_path / "out")]
    assert cli(argv) == 1
    err = capsys.readouterr().err
    assert "gsenv eval: failed: ZeroDivisionError: division by zero (run `gsenv -v eval ...` for the traceback)" in err
    assert "Traceback" not in err
    assert cli(["-v"] + argv) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "return 1 / 0" in err and "gsenv eval: failed: ZeroDivisionError" in err
