"""The SFT YAMLs in examples/rlinf/ as RLinf loads them, against datasets `gsenv collect` wrote.

What RLinf does with such a YAML (read in RLinf v0.3 and main): examples/sft/run_vla_sft.sh runs
train_vla_sft.py, whose hydra.main(version_base="1.1") composes the YAML from examples/sft/config/
(its defaults pull model/pi0_5.yaml from there); the SFT worker resolves data.train_data_paths with
rlinf's resolve_lerobot_repo_id / resolve_lerobot_dataset_root and builds the data pipeline from
RLinf's openpi config actor.model.openpi.config_name, whose RepackTransform names the dataset keys
it reads; the norm stats come from <model_path>/<the config's repo id>/norm_stats.json.

Here, in the RLinf-stack venv (scripts/ci_rlinf_stack.sh: rlinf 0.3.0, hydra-core):
- the same hydra composition in a copy of RLinf's SFT config folder (model/pi0_5.yaml is RLinf's file
  byte for byte, sha256 below; the same at v0.3 and main), every interpolation resolved;
- the data path resolved by the installed rlinf's own functions to the collected dataset;
- RLinf's openpi configs read from the installed rlinf's source files, parsed, not imported (importing
  them needs RLinf's openpi environment: rlinf-openpi pins torch 2.7.1 and jax[cuda12], not this
  stack): the config exists, its action horizon is the YAML's chunk, every key its RepackTransform
  reads is a feature of the dataset (with the camera gsenv recorded for it).
The two-camera YAML's config comes from examples/rlinf/rlinf-pi05_gsenv_wrist.patch, applied with
`git apply` to a copy of the installed rlinf's dataconfig folder.
"""
from __future__ import annotations

import ast
import hashlib
import importlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

hydra = pytest.importorskip("hydra", reason="the SFT config test needs hydra-core (scripts/ci_rlinf_stack.sh)")
pytest.importorskip("rlinf", reason="the SFT config test needs rlinf==0.3.0 (scripts/ci_rlinf_stack.sh)")

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples" / "rlinf"
RLINF_MODEL_YAML = Path(__file__).parent / "data" / "rlinf_sft_config" / "model" / "pi0_5.yaml"
RLINF_MODEL_YAML_SHA256 = "25148f9a098c3d81000c5fe4d27da9dffc4aa0e38f0c196c0477a99bbcf75899"
PATCH = EXAMPLES / "rlinf-pi05_gsenv_wrist.patch"
DATACONFIG = "rlinf/models/embodiment/openpi/dataconfig"  # inside the installed rlinf's site-packages
REPO_ID = "RLinf/GSEnv-PutCubeOnPlate-v0"  # RLinf's pi05_gsenv repo id: where its norm stats are looked up
THIRD, WRIST = "3rd_view_camera", "wrist_camera"
CASES = {  # YAML -> (its openpi config, the dataset's repo id under HF_LEROBOT_HOME, collect's --camera)
    "gsenv_sft_openpi_pi05": ("pi05_gsenv", REPO_ID, THIRD),
    "gsenv_sft_openpi_pi05_wrist": ("pi05_gsenv_wrist", REPO_ID + "-wrist", f"{THIRD},{WRIST}"),
}


def _resolvers():
    """rlinf's own resolve_lerobot_repo_id / resolve_lerobot_dataset_root (module moved after v0.3)."""
    for name in ("rlinf.data.storage.lerobot", "rlinf.data.lerobot_paths"):
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError:
            continue
        return module.resolve_lerobot_repo_id, module.resolve_lerobot_dataset_root
    raise AssertionError("the installed rlinf has no LeRobot path resolvers")


# ----------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def hf_home(tmp_path_factory):
    """$HF_LEROBOT_HOME holding the datasets the README's collect commands write (tiny: 1 episode, 32x32)."""
    home = tmp_path_factory.mktemp("lerobot")
    assets = tmp_path_factory.mktemp("assets")
    for _, repo_id, cameras in CASES.values():
        proc = subprocess.run([sys.executable, "-m", "gsenv.tools.cli", "collect", "--episodes", "1", "--num-envs", "1",
                               "--image-size", "32x32", "--device", "cpu", "--scene-density", "0.02", "--num-workers",
                               "1", "--no-progress", "--camera", cameras, "--out", str(home / repo_id)],
                              capture_output=True, text=True, timeout=900,
                              env={**os.environ, "GSENV_ASSETS": str(assets)})
        assert proc.returncode == 0, proc.stderr[-3000:]
    return home


@pytest.fixture(scope="module")
def rlinf_openpi_sources(tmp_path_factory):
    """The installed rlinf's openpi dataconfig folder, copied, with the wrist patch applied by git."""
    import rlinf

    site = Path(rlinf.__file__).resolve().parents[1]
    root = tmp_path_factory.mktemp("rlinf-src")
    shutil.copytree(site / DATACONFIG, root / DATACONFIG)
    proc = subprocess.run(["git", "apply", "--verbose", str(PATCH)], cwd=root, capture_output=True, text=True)
    assert proc.returncode == 0, f"the patch does not apply to rlinf {rlinf_version()}:\n{proc.stderr}"
    return root / DATACONFIG


def rlinf_version() -> str:
    import importlib.metadata as md

    return md.version("rlinf")


def compose(yaml_name: str, tmp_path: Path, monkeypatch, overrides: list[str]):
    """The YAML composed as RLinf's train_vla_sft.py does (hydra.main, version_base 1.1, config folder
    examples/sft/config/ holding model/pi0_5.yaml, EMBODIED_PATH set by run_vla_sft.sh), then resolved."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from omegaconf import OmegaConf

    embodied = tmp_path / "examples" / "sft"  # run_vla_sft.sh's EMBODIED_PATH
    config = embodied / "config"
    (config / "model").mkdir(parents=True)
    shutil.copy(RLINF_MODEL_YAML, config / "model" / "pi0_5.yaml")
    shutil.copy(EXAMPLES / f"{yaml_name}.yaml", config)  # the README's copy step
    monkeypatch.setenv("EMBODIED_PATH", str(embodied))
    with initialize_config_dir(version_base="1.1", config_dir=str(config)):
        cfg = hydra_compose(config_name=yaml_name, overrides=overrides)
    OmegaConf.resolve(cfg)  # every ${...} the YAML and RLinf's model file name
    return cfg


def openpi_configs(dataconfig_dir: Path) -> dict[str, dict]:
    """RLinf's openpi TrainConfigs, read from its source: {name: {"action_horizon", "pi05", "data_class",
    "repo_id", "prompt_from_task", "repack": {openpi key: dataset key}}}."""
    init = ast.parse((dataconfig_dir / "__init__.py").read_text())
    modules = {a.asname or a.name: node.module for node in ast.walk(init) if isinstance(node, ast.ImportFrom)
               for a in node.names}
    configs = {}
    for call in ast.walk(init):
        if not (isinstance(call, ast.Call) and getattr(call.func, "id", None) == "TrainConfig"):
            continue
        kw = {k.arg: k.value for k in call.keywords}
        model = {k.arg: k.value for k in kw["model"].keywords}
        data = kw["data"]
        data_kw = {k.arg: k.value for k in data.keywords}
        base = {k.arg: k.value for k in data_kw["base_config"].keywords} if "base_config" in data_kw else {}
        data_class = data.func.id
        configs[ast.literal_eval(kw["name"])] = {
            "action_horizon": ast.literal_eval(model["action_horizon"]) if "action_horizon" in model else 50,
            "pi05": ast.literal_eval(model.get("pi05", ast.Constant(False))),
            "data_class": data_class,
            "repo_id": ast.literal_eval(data_kw["repo_id"]),
            "prompt_from_task": ast.literal_eval(base.get("prompt_from_task", ast.Constant(False))),
            "repack": _repack(dataconfig_dir, modules.get(data_class), data_class),
        }
    return configs


def _repack(dataconfig_dir: Path, module: str | None, class_name: str) -> dict | None:
    """The dict literal given to RepackTransform inside class_name's create() (None if not a literal)."""
    if module is None or not module.startswith("rlinf.models.embodiment.openpi.dataconfig."):
        return None
    tree = ast.parse((dataconfig_dir / (module.rsplit(".", 1)[1] + ".py")).read_text())
    (cls,) = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == class_name]
    for call in ast.walk(cls):
        if isinstance(call, ast.Call) and getattr(call.func, "attr", None) == "RepackTransform" \
                and isinstance(call.args[0], ast.Dict):
            return ast.literal_eval(call.args[0])
    return None


# ----------------------------------------------------------------------------------------- tests
def test_rlinfs_model_file_is_unchanged():
    assert hashlib.sha256(RLINF_MODEL_YAML.read_bytes()).hexdigest() == RLINF_MODEL_YAML_SHA256


def test_norm_stats_are_looked_up_under_the_configs_own_repo_id(rlinf_openpi_sources):
    """README step 2 puts norm_stats.json at <model_path>/RLinf/GSEnv-PutCubeOnPlate-v0/: RLinf's
    get_openpi_config, given the dataset as repo_id, keeps the config's own repo id as the asset id
    (openpi then loads <assets_dir = model_path>/<asset id>/norm_stats.json)."""
    tree = ast.parse((rlinf_openpi_sources / "__init__.py").read_text())
    (fn,) = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "get_openpi_config"]
    kept = [k for k in ast.walk(fn) if isinstance(k, ast.keyword) and k.arg == "asset_id"
            and isinstance(k.value, ast.Name) and k.value.id == "original_repo_id"]
    assert kept, "get_openpi_config no longer keeps the config's repo id as the asset id: README step 2 is stale"
    (model_path_fn,) = [n for n in tree.body
                        if isinstance(n, ast.FunctionDef) and n.name == "_override_with_model_path"]
    assert any(isinstance(k, ast.keyword) and k.arg == "assets_dir" and getattr(k.value, "id", None) == "model_path"
               for k in ast.walk(model_path_fn))  # assets_dir <- actor.model.model_path


def test_rlinfs_pi05_gsenv_reads_what_gsenv_collect_writes(rlinf_openpi_sources):
    """RLinf's own pi05_gsenv (unpatched) and the patch's pi05_gsenv_wrist, as their source says."""
    configs = openpi_configs(rlinf_openpi_sources)
    gsenv_cfg, wrist_cfg = configs["pi05_gsenv"], configs["pi05_gsenv_wrist"]
    assert gsenv_cfg["repack"] == {"observation/image": "observation.image", "observation/state": "observation.state",
                                   "actions": "actions", "prompt": "prompt"}
    assert wrist_cfg["repack"] == {**gsenv_cfg["repack"], "observation/wrist_image": "observation.wrist_image"}
    for cfg in (gsenv_cfg, wrist_cfg):  # the wrist config is pi05_gsenv but for its inputs
        assert (cfg["pi05"], cfg["action_horizon"], cfg["repo_id"], cfg["prompt_from_task"]) == (True, 5, REPO_ID,
                                                                                                  True)


@pytest.mark.slow
@pytest.mark.parametrize("yaml_name", sorted(CASES))
def test_sft_yaml_resolves_against_a_collected_dataset(yaml_name, hf_home, rlinf_openpi_sources, tmp_path,
                                                       monkeypatch):
    config_name, repo_id, cameras = CASES[yaml_name]
    monkeypatch.setenv("HF_LEROBOT_HOME", str(hf_home))
    model_path = tmp_path / "pi05_base"
    cfg = compose(yaml_name, tmp_path, monkeypatch,
                  [f"runner.logger.log_path={tmp_path / 'logs'}", f"actor.model.model_path={model_path}"])

    # what train_vla_sft.py and the SFT worker read
    assert cfg.runner.task_type == "sft" and cfg.actor.training_backend == "fsdp"
    assert cfg.actor.model.model_type == "openpi" and cfg.actor.model.openpi.config_name == config_name
    assert cfg.actor.global_batch_size % cfg.actor.micro_batch_size == 0
    assert cfg.actor.fsdp_config.gradient_checkpointing is False  # openpi does not support it
    assert cfg.actor.model.openpi.action_chunk == cfg.actor.model.num_action_chunks == 5  # resolved
    assert cfg.actor.model.openpi.num_images_in_input == len(cameras.split(","))

    # the dataset, found by rlinf's own resolvers from data.train_data_paths
    resolve_repo_id, resolve_root = _resolvers()
    assert resolve_repo_id(cfg.data.train_data_paths) == repo_id
    root = resolve_root(resolve_repo_id(cfg.data.train_data_paths))
    assert root == (hf_home / repo_id).resolve() and (root / "meta" / "info.json").is_file()
    info = json.loads((root / "meta" / "info.json").read_text())
    assert info["codebase_version"] == "v2.1"

    # RLinf's openpi config it names reads only keys the dataset has, each camera in its slot
    openpi = openpi_configs(rlinf_openpi_sources)[config_name]
    assert openpi["action_horizon"] == cfg.actor.model.num_action_chunks
    read = {v for k, v in openpi["repack"].items() if k != "prompt"}
    assert read <= set(info["features"]), f"{config_name} reads {sorted(read - set(info['features']))}"
    assert openpi["prompt_from_task"] and (root / "meta" / "tasks.jsonl").read_text().strip()  # prompt <- task
    assert info["features"]["actions"]["shape"] == [cfg.actor.model.action_dim]
    assert info["features"]["observation.state"]["shape"] == [9]
    slots = {"observation/image": THIRD, "observation/wrist_image": WRIST}
    for openpi_key, dataset_key in openpi["repack"].items():
        if openpi_key in slots:
            assert info["features"][dataset_key]["camera"] == slots[openpi_key]

