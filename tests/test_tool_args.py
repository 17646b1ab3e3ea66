"""What the `gsenv` commands share: --device cuda where there is no CUDA, and an output folder that
cannot be made, refused by demo, eval and collect before anything starts or is written."""
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
