"""Asset root failures are one clear message (CLI and gym.make); doctor tests writability; killed builds'
staging folders are swept; built scenes get the umask's permissions. Real filesystems: a plain file,
/proc, read-only and full tmpfs mounts (these need root and skip cleanly without it), real processes."""
from __future__ import annotations

import contextlib
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import gymnasium as gym
import pytest

import gsenv
from gsenv.assets.errors import AssetRootError
from gsenv.assets.root import ENV_VAR, require_writable, writability_problem
from gsenv.scene.format import MANIFEST
from gsenv.scene_build import staging
from gsenv.scene_build.default import default_bundle_dir, ensure_default_bundle

DENSITY = 0.005  # the lightest default scene: a build takes a few seconds


@contextlib.contextmanager
def tmpfs(path: Path, options: str):
    """A real tmpfs mounted at `path` with `options` (skips the test where mounting is not permitted)."""
    path.mkdir()
    try:
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True,
                           text=True, timeout=30)
    except FileNotFoundError:
        pytest.skip("no mount command here")
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {r.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], capture_output=True, timeout=30)


@pytest.fixture
def read_only(tmp_path):
    with tmpfs(tmp_path / "ro", "ro,size=1m") as path:
        yield path


@pytest.fixture
def full(tmp_path):
    with tmpfs(tmp_path / "full", "size=64k") as path:
        yield path


@pytest.fixture
def plain_file(tmp_path):
    path = tmp_path / "not-a-dir"
    path.write_text("a file where the root should be")
    return path


def build_default_cli(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gsenv.tools.cli", "assets", "build-default", "--density",
                           str(DENSITY), "--root", str(root)], capture_output=True, text=True, timeout=300)


def assert_clear_cli_error(out: subprocess.CompletedProcess, root: Path, cause: str) -> None:
    assert out.returncode == 2, out.stdout + out.stderr
    assert "Traceback" not in out.stderr, out.stderr
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("gsenv assets build-default: error: asset root ") and str(root) in last, last
    assert cause in last and f"{ENV_VAR} or pass asset_root= (CLI: --root) to a writable directory" in last, last


# ----------------------------------------------------------------------------------------- the cases
@pytest.mark.slow
def test_plain_file_as_root(plain_file):
    with pytest.raises(AssetRootError, match="exists but is not a directory") as info:
        require_writable(plain_file)
    assert info.value.path == plain_file and info.value.exit_code == 2
    assert_clear_cli_error(build_default_cli(plain_file), plain_file, "is not a directory")
    # a root below a file cannot be created either
    below = plain_file / "gsenv"
    assert_clear_cli_error(build_default_cli(below), below, "cannot be created (Not a directory)")
    assert plain_file.read_text() == "a file where the root should be"


@pytest.mark.slow
def test_root_under_proc():
    root = Path("/proc/gsenv-assets-test")
    with pytest.raises(AssetRootError, match="cannot be created"):
        require_writable(root)
    assert_clear_cli_error(build_default_cli(root), root, "cannot be created")


@pytest.mark.slow
def test_read_only_root(read_only):
    # root may write to a chmod-0555 directory; a read-only mount stops everyone: only a real write tells
    with pytest.raises(AssetRootError, match="Read-only file system"):
        require_writable(read_only)
    with pytest.raises(AssetRootError, match="Read-only file system"):
        require_writable(read_only / "sub")  # missing, and cannot be created there
    assert_clear_cli_error(build_default_cli(read_only), read_only, "mounted read-only")


@pytest.mark.slow
def test_full_root(full):
    (full / "filler").write_bytes(b"\1" * (64 * 1024))  # fills the 64 KiB filesystem
    with pytest.raises(AssetRootError, match="the filesystem is full") as info:
        require_writable(full)
    assert info.value.fix.startswith("Free space there, or set")
    assert_clear_cli_error(build_default_cli(full), full, "No space left on device")


@pytest.mark.slow
def test_root_that_fills_up_during_the_build(full):
    """64 KiB passes the probe; the build's PLYs do not fit: the same message, and no staging folder left."""
    assert require_writable(full) == full
    out = build_default_cli(full)
    assert_clear_cli_error(out, full, "the filesystem is full")
    assert "Free space there" in out.stderr
    assert not list((full / "default-scene").iterdir())


def test_gym_make_with_a_bad_root_is_one_clear_error(plain_file, read_only):
    for root, cause in ((plain_file, "is not a directory"), (read_only, "mounted read-only")):
        with pytest.raises(AssetRootError, match=cause) as info:
            gym.make(gsenv.registration.ENV_ID, num_envs=1, obs_mode="state", scene_density=DENSITY,
                     asset_root=str(root), num_workers=1)
        assert str(root) in str(info.value) and "asset_root=" in str(info.value)


def test_a_built_read_only_cache_is_still_used(tmp_path):
    """An up-to-date build needs no writing: a shared, read-only cache works (bind-mounted read-only)."""
    src = tmp_path / "src"
    built = ensure_default_bundle(src, density=DENSITY, progress=False)
    ro = tmp_path / "ro"
    ro.mkdir()
    r = subprocess.run(["mount", "--bind", "-o", "ro", str(src), str(ro)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot bind-mount here (needs root): {r.stderr.strip()}")
    try:
        assert writability_problem(ro) is not None
        assert ensure_default_bundle(ro, density=DENSITY, progress=False) == ro / built.relative_to(src)
    finally:
        subprocess.run(["umount", str(ro)], capture_output=True)


# ----------------------------------------------------------------------------------------- doctor
def test_doctor_rows_test_writability(tmp_path, monkeypatch, read_only, plain_file):
    from gsenv.scene_build.doctor import asset_rows

    def root_row():
        (row,) = [r for r in asset_rows() if r[0] == "asset root"]
        return row

    monkeypatch.setenv(ENV_VAR, str(tmp_path / "fresh"))
    name, value, ok, fix = root_row()
    assert ok and "not created yet" in value and "writable" in value and fix == ""
    assert not (tmp_path / "fresh").exists(), "doctor must not create the root"
    monkeypatch.setenv(ENV_VAR, str(read_only))
    name, value, ok, fix = root_row()
    assert not ok and "Read-only file system" in value and fix.startswith(f"Set {ENV_VAR}")
    monkeypatch.setenv(ENV_VAR, str(plain_file))
    name, value, ok, fix = root_row()
    assert not ok and "not a directory" in value
    assert list(read_only.iterdir()) == [] and [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.mark.slow
def test_doctor_command_fails_on_a_read_only_root(read_only, tmp_path):
    env = {**os.environ, ENV_VAR: str(read_only)}
    out = subprocess.run([sys.executable, "-m", "gsenv.tools.cli", "doctor"], capture_output=True, text=True,
                         cwd=tmp_path, timeout=300, env=env)
    assert out.returncode == 1, out.stdout + out.stderr
    (line,) = [ln for ln in out.stdout.splitlines() if "asset root" in ln and str(read_only) in ln]
    assert line.startswith("FIX") and "Read-only file system" in line
    assert "problem(s): asset root" in out.stdout


# ----------------------------------------------------------------------------------------- staging
def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()  # exited and reaped
    return proc.pid


def test_stale_staging_folders_are_removed_at_the_next_build(tmp_path):
    parent = default_bundle_dir(tmp_path, DENSITY).parent
    parent.mkdir(parents=True)
    host = staging.host_tag()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        while zombie.poll() is None and Path(f"/proc/{zombie.pid}").exists() and \
                Path(f"/proc/{zombie.pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z":
            time.sleep(0.02)
        folders = {
            "dead": parent / f".k.building-{host}-{_dead_pid()}-0badc0de",
            "zombie": parent / f".k.building-{host}-{zombie.pid}-0badc0df",
            "dead_old": parent / f".k.old-{host}-{_dead_pid()}-00000001",
            "live": parent / f".k.building-{host}-{sleeper.pid}-11111111",
            "me": parent / f".k.building-{host}-{os.getpid()}-22222222",
            "other_host": parent / f".k.building-elsewhere-{sleeper.pid}-33333333",
            "legacy_fresh": parent / ".k.building-ab12cd34",
            "legacy_aged": parent / ".k.building-ef56ab78",
            "live_but_ancient": parent / f".k.building-{host}-{sleeper.pid}-44444444",
            "unrelated": parent / ".something-else",
        }
        for path in folders.values():
            path.mkdir()
            (path / "robot.ply").write_bytes(b"partial")
        ancient = time.time() - staging.STALE_AFTER_S - 60
        for name in ("legacy_aged", "live_but_ancient"):
            os.utime(folders[name], (ancient, ancient))
        assert ensure_default_bundle(tmp_path, density=DENSITY, progress=False).joinpath(MANIFEST).is_file()
        gone = {name for name, path in folders.items() if not path.exists()}
        assert gone == {"dead", "zombie", "dead_old", "legacy_aged", "live_but_ancient"}
        # the build's own staging folder was renamed into place: nothing else is left
        assert sorted(p.name for p in parent.iterdir() if p.name.startswith(".")) == sorted(
            folders[n].name for n in folders if n not in gone)
    finally:
        sleeper.kill()
        sleeper.wait()
        zombie.wait()


def test_staging_folder_names_carry_the_owner(tmp_path):
    path = staging.new_staging_dir(tmp_path, "key")
    assert path.name.startswith(f".key.building-{staging.host_tag()}-{os.getpid()}-")
    assert not staging.is_stale(path)
    with pytest.raises(ValueError, match="kind must be one of"):
        staging.new_staging_dir(tmp_path, "key", kind="tmp")


# ----------------------------------------------------------------------------------------- permissions
@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_built_scene_gets_the_umask_permissions(tmp_path, umask):
    old = os.umask(umask)
    try:
        final = ensure_default_bundle(tmp_path, density=DENSITY, progress=False)
    finally:
        os.umask(old)
    want_dir, want_file = 0o777 & ~umask, 0o666 & ~umask
    assert stat.S_IMODE(final.stat().st_mode) == want_dir
    modes = {stat.S_IMODE(p.stat().st_mode) for p in final.rglob("*") if p.is_file()}
    dirs = {stat.S_IMODE(p.stat().st_mode) for p in final.rglob("*") if p.is_dir()}
    assert modes == {want_file} and dirs <= {want_dir}
