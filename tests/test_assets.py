"""Asset root, dataset manifests and `gsenv assets download|verify|list`.

Downloads run the real huggingface_hub client (in a subprocess, since it reads HF_ENDPOINT at import)
against the loopback hub in tests/hubserver.py, with temporary HF_HOME and cache directories.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from plyfile import PlyData, PlyElement

from gsenv.assets import ManifestError, asset_root, dataset_dir
from gsenv.assets.manifest import DEFAULT_DATASET, known_datasets, load_manifest, parse_manifest
from gsenv.assets.record import RECORD_NAME
from gsenv.assets.verify import verify_dataset

sys.path.insert(0, str(Path(__file__).parent))
from hubserver import HubServer

MANIFEST = load_manifest(DEFAULT_DATASET)
TOKEN = "hf_loopback_test_token"


# --- miniature dataset in the manifest's layout ----------------------------------------------------
def ply_bytes(n: int, seed: int, drop: str | None = None) -> bytes:
    """A tiny 3DGS PLY (binary): x y z nx ny nz f_dc_0..2 f_rest_0..8 opacity scale_0..2 rot_0..3."""
    names = (["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"] + [f"f_rest_{i}" for i in range(9)]
             + ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"])
    names = [k for k in names if k != drop]
    rng = np.random.default_rng(seed)
    data = np.zeros(n, dtype=[(k, "f4") for k in names])
    for k in names:
        data[k] = rng.normal(size=n).astype("f4")
    data["rot_0"] = 1.0
    import io

    buf = io.BytesIO()
    PlyData([PlyElement.describe(data, "vertex")]).write(buf)
    return buf.getvalue()


def dataset_files() -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for i, f in enumerate(MANIFEST.files):
        if f.path.endswith(".ply"):
            files[f.path] = ply_bytes(20 + i, seed=i)
        elif f.path.endswith((".urdf", ".srdf")):
            files[f.path] = b'<?xml version="1.0"?>\n<robot name="fr3"><link name="fr3_link0"/></robot>\n'
        elif f.path.endswith(".obj"):
            files[f.path] = b"v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n"
        elif f.path.endswith(".jpg"):
            files[f.path] = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4
    files["robot/my_franka/meshes/fr3_link0.obj"] = b"v 0 0 0\nv 0 0 1\nv 0 1 0\nf 1 2 3\n"  # via extra_patterns
    files["README.md"] = b"not asked for by the manifest\n"
    return files


def expected_local(files: dict[str, bytes]) -> dict[str, bytes]:
    return {p: b for p, b in files.items() if p != "README.md"}


# --- helpers -------------------------------------------------------------------------------------
def make_env(base: Path) -> dict:
    e = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "GSENV_"))}
    e.update(HF_HOME=str(base / "hf_home"), XDG_CACHE_HOME=str(base / "cache"), HF_TOKEN=TOKEN,
             HF_HUB_DISABLE_TELEMETRY="1", HF_HUB_DOWNLOAD_TIMEOUT="5", HF_HUB_ETAG_TIMEOUT="5")
    return e


@pytest.fixture
def env(tmp_path):
    return make_env(tmp_path)


@dataclass
class Downloaded:
    env: dict  # the environment it ran in (default asset root under its XDG_CACHE_HOME)
    out: subprocess.CompletedProcess
    requests: list  # what the hub saw
    files: dict[str, bytes]  # what the hub served
    sha: str  # the hub's commit

    @property
    def directory(self) -> Path:
        return default_dir(self.env)


@pytest.fixture(scope="module")
def downloaded(tmp_path_factory) -> Downloaded:
    """One `gsenv assets download` of the miniature dataset into the default place (checked by the
    success test; copied by the tests that start from a downloaded copy)."""
    env = make_env(tmp_path_factory.mktemp("download"))
    files = dataset_files()
    with HubServer(MANIFEST.repo_id, files) as hub:
        out = gsenv(env, "download", endpoint=hub.endpoint)
    return Downloaded(env, out, list(hub.requests), files, hub.sha)


def copy_of(downloaded: Downloaded, target: Path) -> Path:
    assert downloaded.out.returncode == 0, downloaded.out.stdout + downloaded.out.stderr
    shutil.copytree(downloaded.directory, target, copy_function=shutil.copy2)  # keeps mtimes: still "as downloaded"
    return target


def gsenv(env: dict, *args: str, endpoint: str | None = None) -> subprocess.CompletedProcess:
    e = dict(env)
    if endpoint:
        e["HF_ENDPOINT"] = endpoint
    return subprocess.run([sys.executable, "-m", "gsenv.tools.cli", "assets", *args], capture_output=True, text=True,
                          env=e, timeout=120)


def default_dir(env: dict) -> Path:
    return Path(env["XDG_CACHE_HOME"]) / "gsenv" / "datasets" / DEFAULT_DATASET


def local_files(directory: Path) -> dict[str, bytes]:
    return {p.relative_to(directory).as_posix(): p.read_bytes() for p in directory.rglob("*")
            if p.is_file() and ".cache" not in p.relative_to(directory).parts and p.name != RECORD_NAME}


def dead_endpoint() -> str:
    with socket.socket() as s:  # a port nothing listens on once this closes
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def no_traceback(out: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in out.stderr + out.stdout, out.stderr


# --- asset root and manifests --------------------------------------------------------------------
def test_asset_root_order(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("GSENV_ASSETS", str(tmp_path / "env_root"))
    assert asset_root(tmp_path / "explicit") == tmp_path / "explicit"
    assert asset_root() == tmp_path / "env_root"
    monkeypatch.setenv("GSENV_ASSETS", "")
    assert asset_root() == tmp_path / "xdg" / "gsenv"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert asset_root() == tmp_path / "home" / ".cache" / "gsenv"
    assert dataset_dir("x", tmp_path) == tmp_path / "datasets" / "x"
    assert not (tmp_path / "home").exists()  # resolving creates nothing


def test_shipped_manifest():
    assert DEFAULT_DATASET in known_datasets()
    m = MANIFEST
    assert (m.repo_id, m.repo_type, m.revision) == ("RLinf/gsenv-assets-v0", "dataset", None)
    links = [f.link for f in m.by_role("link_ply")]
    assert links == [f"fr3_link{i}" for i in range(8)] + ["fr3_hand", "fr3_leftfinger", "fr3_rightfinger"]
    assert ({f.object for f in m.by_role("object_ply")} == {f.object for f in m.by_role("object_mesh")}
            == {"cube", "plate"})
    assert [f.path for f in m.by_role("background_ply")] == ["object/table/table_abs.ply"]
    assert [f.path for f in m.by_role("backdrop_image")] == ["background/background_image/green_background.jpg"]
    assert [f.path for f in m.by_role("robot_urdf")] == ["robot/my_franka/fr3_wristcam.urdf"]
    assert all(f.sha256 is None for f in m.files)  # none published yet


def test_broken_manifest_lists_every_problem(tmp_path):
    bad = {"schema": 1, "name": "bad name!", "hub": {"repo_id": "no-slash", "repo_type": "dataset"},
           "files": [{"path": "a.ply", "role": "link_ply"},
                     {"path": "../escape.ply", "role": "background_ply"},
                     {"path": "b.jpg", "role": "wallpaper", "sha256": "xyz"}]}
    with pytest.raises(ManifestError) as info:
        parse_manifest(json.dumps(bad), source="bad.json")
    text = str(info.value)
    for needle in ("bad.json", "6 problem(s)", "name:", "hub.repo_id: expected 'owner/name'",
                   "files[0] (a.ply).link: role 'link_ply' needs the link name", "files[1].path: '../escape.ply'",
                   "files[2] (b.jpg).role: unknown role 'wallpaper'", "files[2] (b.jpg).sha256"):
        assert needle in text, text


def test_cli_bad_input(tmp_path, env):
    out = gsenv(env, "download", "no-such-dataset", endpoint=dead_endpoint())
    assert out.returncode == 2 and "unknown dataset 'no-such-dataset'" in out.stderr
    assert DEFAULT_DATASET in out.stderr
    broken = tmp_path / "broken.json"
    broken.write_text('{"schema": 1,\n "name": "x",,}')
    out = gsenv(env, "download", str(broken), endpoint=dead_endpoint())
    assert out.returncode == 2 and "not valid JSON (line 2" in out.stderr, out.stderr
    out = gsenv(env, "verify", str(tmp_path / "nowhere"))
    assert out.returncode == 2 and "no dataset directory" in out.stderr
    for o in (out,):
        no_traceback(o)


# --- download against the loopback hub ----------------------------------------------------------
@pytest.mark.slow
def test_download_success_list_verify_and_rerun(downloaded):
    out, files, env = downloaded.out, downloaded.files, downloaded.env
    assert out.returncode == 0, out.stdout + out.stderr
    target = downloaded.directory  # no GSENV_ASSETS: under the user cache dir
    assert target == Path(env["XDG_CACHE_HOME"]) / "gsenv" / "datasets" / "gsenv-assets-v0"
    assert local_files(target) == expected_local(files)  # README.md was not asked for
    assert f"commit {downloaded.sha[:12]}" in out.stdout and "20 file(s) checked, 14 PLY(s) parsed" in out.stdout
    assert not [r for r in downloaded.requests if "README.md" in r[1]]
    assert {r[3] for r in downloaded.requests} == {f"Bearer {TOKEN}"}  # HF_TOKEN honoured
    record = json.loads((target / RECORD_NAME).read_text())
    assert record["hub"]["commit"] == downloaded.sha and record["last_verification"]["ok"] is True
    assert {p: e["sha256"] for p, e in record["files"].items()} == {
        p: hashlib.sha256(b).hexdigest() for p, b in expected_local(files).items()}

    listing = gsenv(env, "list")
    assert listing.returncode == 0
    assert f"where:    {target}" in listing.stdout and "present:  yes" in listing.stdout
    assert "verified: yes" in listing.stdout and downloaded.sha in listing.stdout
    verify = gsenv(env, "verify")
    assert verify.returncode == 0 and "checksums match the record: OK" in verify.stdout, verify.stdout

    with HubServer(MANIFEST.repo_id, files) as hub:  # a re-run fetches nothing already there
        again = gsenv(env, "download", endpoint=hub.endpoint)
        assert again.returncode == 0, again.stderr
        assert hub.seen("HEAD") == [] and hub.seen("GET", "/resolve/") == []


@pytest.mark.slow
def test_resume_after_interrupted_file(env, tmp_path):
    files = dataset_files()
    cut = "object/table/table_abs.ply"
    # huggingface_hub writes in 10 MiB chunks, and resumes from what it wrote: cut after the first chunk
    files[cut] = ply_bytes(160_000, seed=99)  # 16 MiB
    cut_at = 12 << 20
    with HubServer(MANIFEST.repo_id, files) as hub:
        hub.cut_once[cut] = cut_at
        out = gsenv(env, "download", "--dir", str(tmp_path / "ds"), endpoint=hub.endpoint)
        assert out.returncode == 0, out.stdout + out.stderr
        ranged = hub.seen("GET", cut, with_range=True)
        assert len(ranged) == 1, hub.seen("GET", cut)
        start = int(ranged[0][2].removeprefix("bytes=").rstrip("-"))
        assert 0 < start <= cut_at
    assert (tmp_path / "ds" / cut).read_bytes() == files[cut]
    assert local_files(tmp_path / "ds") == expected_local(files)


@pytest.mark.slow
def test_corrupt_file_from_hub_is_reported(env, tmp_path):
    files = dataset_files()
    bad = "object/cube/object_3dgs_abs.ply"
    files[bad] = ply_bytes(10, seed=5, drop="opacity")
    with HubServer(MANIFEST.repo_id, files) as hub:
        out = gsenv(env, "download", "--dir", str(tmp_path / "ds"), endpoint=hub.endpoint)
    no_traceback(out)
    assert out.returncode == 1, out.stdout
    assert "1 problem(s)" in out.stdout and f"{bad}: bad PLY: missing vertex fields ['opacity']" in out.stdout
    record = json.loads((tmp_path / "ds" / RECORD_NAME).read_text())
    assert record["last_verification"]["ok"] is False and bad in record["files"]


@pytest.mark.slow
def test_file_changed_after_download_is_corrupt_and_refetched(env, tmp_path, downloaded):
    target = copy_of(downloaded, tmp_path / "ds")
    files, sha = downloaded.files, downloaded.sha
    assert verify_dataset(target, MANIFEST).ok
    changed = "robot/my_franka/parts/fr3_hand_3dgs_abs.ply"
    st = (target / changed).stat()
    data = bytearray((target / changed).read_bytes())
    data[-8] ^= 0x01  # still a valid PLY: only the checksum can tell
    (target / changed).write_bytes(bytes(data))
    os.utime(target / changed, ns=(st.st_atime_ns, st.st_mtime_ns))  # bit rot: size and mtime unchanged
    report = verify_dataset(target, MANIFEST)
    assert [p.path for p in report.problems] == [changed]
    assert "corrupt: changed since it was recorded" in report.problems[0].message
    gone = "object/plate/mesh_w_vertex_color_abs.obj"
    (target / gone).unlink()
    report = verify_dataset(target, MANIFEST)
    assert sorted(p.path for p in report.problems) == sorted([changed, gone])
    assert not report.ok and "2 problem(s)" in report.summary()

    with HubServer(MANIFEST.repo_id, files) as hub:  # downloading again repairs both
        assert hub.sha == sha
        out = gsenv(env, "download", "--dir", str(target), endpoint=hub.endpoint)
        assert out.returncode == 0, out.stdout + out.stderr
        fetched = {r[1].split(f"/resolve/{sha}/", 1)[1] for r in hub.seen("GET", "/resolve/")}
    assert fetched == {changed, gone}
    assert local_files(target) == expected_local(files)


def test_hand_copied_dataset_verifies_and_is_recorded(env):
    target = default_dir(env)
    for rel, body in expected_local(dataset_files()).items():
        (target / rel).parent.mkdir(parents=True, exist_ok=True)
        (target / rel).write_bytes(body)
    assert "verified: no (never verified)" in gsenv(env, "list").stdout
    report = verify_dataset(target, MANIFEST)
    assert report.ok and report.record_state == "written" and report.plys_checked == 14, report.summary()
    record = json.loads((target / RECORD_NAME).read_text())
    assert record["source"] == "verify" and len(record["files"]) == len(expected_local(dataset_files()))
    listing = gsenv(env, "list").stdout
    assert "present:  yes" in listing and "verified: yes" in listing, listing
    (target / "robot/my_franka/parts/fr3_leftfinger_3dgs_abs.ply").rename(
        target / "robot/my_franka/parts/fr3_finger_left_3dgs_abs.ply")
    report = verify_dataset(target, MANIFEST)
    assert [str(p) for p in report.problems] == [
        "robot/my_franka/parts/fr3_leftfinger_3dgs_abs.ply: missing (link_ply); the folder has unlisted: "
        "fr3_finger_left_3dgs_abs.ply"]
    listing = gsenv(env, "list").stdout
    assert "present:  partial (18 of 18 files)" not in listing and "present:  partial (17 of 18 files)" in listing
    assert "verified: failed" in listing


@pytest.mark.slow
def test_hub_errors_are_one_clear_message(env, tmp_path):
    other = tmp_path / "other.json"
    other.write_text(json.dumps({**MANIFEST.raw, "hub": {"repo_id": "someone/else", "repo_type": "dataset"}}))
    with HubServer(MANIFEST.repo_id, dataset_files()) as hub:
        out = gsenv(env, "download", "--revision", "v9", endpoint=hub.endpoint)
        assert out.returncode == 3 and "revision 'v9' does not exist" in out.stderr and "--revision" in out.stderr
        no_traceback(out)
        out = gsenv(env, "download", str(other), endpoint=hub.endpoint)
        assert out.returncode == 3 and "dataset repo someone/else was not found at http://127.0.0.1" in out.stderr
        assert "HF_TOKEN" in out.stderr
        no_traceback(out)
        assert not hub.seen(path_part="/resolve/")


# --- unreachable hub -----------------------------------------------------------------------------
def test_unreachable_hub_without_local_copy(env, tmp_path):
    out = gsenv(env, "download", "--dir", str(tmp_path / "ds"), endpoint=dead_endpoint())
    no_traceback(out)
    assert out.returncode == 3
    err = out.stderr
    assert (err.startswith("gsenv assets download: error: the hub at http://127.0.0.1:")
            and "could not be reached" in err)
    assert "set HF_ENDPOINT" in err and f"gsenv assets verify {tmp_path / 'ds'}" in err
    assert "NOT updated" not in err
    assert not (tmp_path / "ds" / RECORD_NAME).exists()


@pytest.mark.slow
def test_unreachable_hub_with_older_local_copy(env, tmp_path, downloaded):
    target = copy_of(downloaded, tmp_path / "ds")
    files, old_sha = downloaded.files, downloaded.sha
    out = gsenv(env, "download", "--dir", str(target), endpoint=dead_endpoint())
    no_traceback(out)
    assert out.returncode == 3 and "could not be reached" in out.stderr and "NOT updated" in out.stderr
    assert "downloaded" not in out.stdout

    # The hub has a new commit and answers the revision call but not the tree listing: huggingface_hub
    # then quietly hands back the old local folder. That must not pass for a download.
    newer = dict(files, **{"object/cube/object_3dgs_abs.ply": ply_bytes(30, seed=1234)})
    with HubServer(MANIFEST.repo_id, newer) as hub:
        hub.fail_tree = 404
        out = gsenv(env, "download", "--dir", str(target), endpoint=hub.endpoint)
        assert hub.seen("GET", "/tree/")  # it got that far
    no_traceback(out)
    assert out.returncode == 3, out.stdout + out.stderr
    assert "stopped answering" in out.stderr and "NOT updated" in out.stderr, out.stderr
    assert "downloaded" not in out.stdout
    assert json.loads((target / RECORD_NAME).read_text())["hub"]["commit"] == old_sha
    assert local_files(target) == expected_local(files)  # the old copy is intact
