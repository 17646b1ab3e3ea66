"""Datasets are never lost: opening one changes nothing in it, one that is not whole is refused with the
repair command, one writer at a time (a killed writer leaves no lock behind), a full disk during a
metadata append leaves no torn line, and `gsenv dataset repair` makes a dataset whole by moving, never
deleting, what it cannot account for. Real files, real ffmpeg videos, real processes."""
from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from gsenv.lerobot_v21 import DatasetBusyError, Episode, LeRobotV21Writer, VectorFeature, VideoFeature, verify
from gsenv.tools.cli import main as cli

FEATURES = {"observation.image": VideoFeature(16, 16), "observation.state": VectorFeature(9)}
COLLECT = ["collect", "--episodes", "1", "--num-envs", "1", "--image-size", "16", "--device", "cpu",
           "--scene-density", "0.05", "--num-workers", "1", "--no-progress"]


def _episode(seed: int, frames: int = 3) -> Episode:
    rng = np.random.default_rng(seed)
    return Episode({"observation.image": rng.integers(0, 255, (frames, 16, 16, 3), dtype=np.uint8),
                    "observation.state": rng.normal(size=(frames, 9))}, task="put the cube on the plate",
                   extra={"seed": seed})


def _make(root: Path, episodes: int, features=FEATURES) -> Path:
    writer = LeRobotV21Writer(root, fps=10, features=features)
    try:
        for seed in range(episodes):
            writer.add_episode(_episode(seed))
    finally:
        writer.close()
    return root


def _snapshot(root: Path) -> dict[str, str]:
    """Every file under root (but the lock) -> the hash of its bytes."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.name != ".gsenv-lock"}


def _quarantine(root: Path) -> Path:
    (folder,) = (root / ".gsenv-quarantine").iterdir()
    return folder


def test_a_dataset_without_episodes_jsonl_is_refused_and_nothing_is_deleted(tmp_path, capsys):
    """The reproduction: `rm DS/meta/episodes.jsonl; gsenv collect --device bogus --out DS` emptied data/
    and videos/ and reset info.json."""
    ds = _make(tmp_path / "ds", 3)
    (ds / "meta" / "episodes.jsonl").unlink()
    before = _snapshot(ds)
    assert cli([*COLLECT, "--out", str(ds)]) == 2
    err = capsys.readouterr().err
    assert "meta/episodes.jsonl is missing (info.json counts 3 episodes)" in err
    assert f"gsenv dataset repair {ds}" in err and "nothing was changed" in err
    assert _snapshot(ds) == before  # not a byte deleted or rewritten

    assert cli(["dataset", "verify", str(ds)]) == 1
    assert "data/chunk-000/episode_000002.parquet: not part of the dataset" in capsys.readouterr().err
    assert cli(["dataset", "repair", str(ds)]) == 0
    out = capsys.readouterr().out
    assert "holds 0 episodes" in out and "moved 6 files" in out
    moved = _snapshot(_quarantine(ds))
    for rel in ("data/chunk-000/episode_000000.parquet", "videos/chunk-000/observation.image/episode_000002.mp4"):
        assert moved[rel] == before[rel]  # moved whole, not deleted
    assert verify(ds)["total_episodes"] == 0
    assert cli(["dataset", "verify", str(ds)]) == 0
    assert cli(["dataset", "repair", str(ds)]) == 0 and "nothing to repair" in capsys.readouterr().out


def test_a_second_writer_is_refused_at_once_naming_the_first(tmp_path):
    ds = _make(tmp_path / "ds", 1)
    writer = LeRobotV21Writer(ds, fps=10, features=FEATURES)  # this process writes it now
    try:
        before = _snapshot(ds)
        proc = subprocess.run([sys.executable, "-m", "gsenv.tools.cli", *COLLECT, "--out", str(ds)],
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 2, proc.stderr
        assert f"is being written by another writer (pid {os.getpid()})" in proc.stderr
        assert _snapshot(ds) == before
        with pytest.raises(DatasetBusyError):
            LeRobotV21Writer(ds, fps=10, features=FEATURES)
        writer.add_episode(_episode(7))
    finally:
        writer.close()
    assert verify(ds)["total_episodes"] == 2


def test_a_killed_writer_leaves_no_lock_behind(tmp_path):
    ds = _make(tmp_path / "ds", 1)
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from gsenv.lerobot_v21 import LeRobotV21Writer, VectorFeature, VideoFeature
        w = LeRobotV21Writer({str(ds)!r}, fps=10, features={{"observation.image": VideoFeature(16, 16),
                                                             "observation.state": VectorFeature(9)}})
        print("held", flush=True)
        time.sleep(600)
        """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(DatasetBusyError, match=f"pid {holder.pid}"):
            LeRobotV21Writer(ds, fps=10, features=FEATURES)
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
    LeRobotV21Writer(ds, fps=10, features=FEATURES).close()  # the kernel dropped the dead writer's lock


def test_a_full_disk_during_a_metadata_append_is_taken_back(tmp_path):
    """A file-size limit (RLIMIT_FSIZE: writes past it fail, as on a full disk) that lets the parquet file
    through but stops the episodes_stats.jsonl append halfway: the commit fails, and the dataset is left
    whole, without half a line (before, every later open failed)."""
    ds = tmp_path / "ds"
    script = textwrap.dedent(f"""
        import resource, signal
        import numpy as np
        from gsenv.lerobot_v21 import Episode, LeRobotV21Writer, VectorFeature
        w = LeRobotV21Writer({str(ds)!r}, fps=10, features={{"observation.state": VectorFeature(9)}})
        ep = lambda: Episode({{"observation.state": np.ones((3, 9))}}, task="t")
        for _ in range(10):
            w.add_episode(ep())
        stats = ({str(ds)!r} + "/meta/episodes_stats.jsonl")
        lines = open(stats, "rb").read().splitlines()
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a failed write, not a killed process
        limit = sum(len(x) + 1 for x in lines) + len(lines[-1]) // 2
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
        try:
            w.add_episode(ep())
        except OSError as exc:
            print("failed:", exc.errno)
        w.close()
        """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.startswith("failed: 27"), proc.stdout + proc.stderr  # EFBIG
    info = verify(ds)
    assert info["total_episodes"] == 10
    assert (ds / "meta" / "episodes_stats.jsonl").read_bytes().endswith(b"\n")
    assert not (ds / "data" / "chunk-000" / "episode_000010.parquet").exists()
    _make_more(ds, 1)
    assert verify(ds)["total_episodes"] == 11


def _make_more(ds: Path, n: int) -> None:
    writer = LeRobotV21Writer(ds, fps=10, features={"observation.state": VectorFeature(9)})
    try:
        for _ in range(n):
            writer.add_episode(Episode({"observation.state": np.ones((3, 9))}, task="t"))
    finally:
        writer.close()


def test_a_torn_metadata_line_is_reported_and_repaired(tmp_path, capsys):
    """Half a JSON line at the end of episodes_stats.jsonl (a writer that died mid-write, e.g. an older
    gsenv on a full disk): open names the file, repair moves the half line into quarantine."""
    ds = _make(tmp_path / "ds", 2)
    stats = ds / "meta" / "episodes_stats.jsonl"
    torn = b'{"episode_index": 2, "stats": {"observation.st'
    with open(stats, "ab") as f:
        f.write(torn)
    assert cli([*COLLECT, "--out", str(ds)]) == 2
    err = capsys.readouterr().err
    assert "meta/episodes_stats.jsonl ends in an unfinished line" in err and "gsenv dataset repair" in err
    assert cli(["dataset", "repair", str(ds)]) == 0
    assert (_quarantine(ds) / "meta" / "episodes_stats.jsonl").read_bytes() == torn + b"\n"
    assert len(stats.read_text().splitlines()) == 2 and verify(ds)["total_episodes"] == 2


def test_a_cut_short_info_json_is_an_error_naming_it(tmp_path, capsys):
    ds = _make(tmp_path / "ds", 1)
    info = ds / "meta" / "info.json"
    info.write_bytes(info.read_bytes()[:100])
    assert cli([*COLLECT, "--out", str(ds)]) == 2
    err = capsys.readouterr().err
    assert f"{info} is not valid JSON" in err and "cut short" in err and "Traceback" not in err
    assert cli(["dataset", "verify", str(ds)]) == 1
    assert f"{info} is not valid JSON" in capsys.readouterr().err
    assert cli(["dataset", "repair", str(ds)]) == 2  # nothing to rebuild it from
    assert "restore it from a copy" in capsys.readouterr().err


def test_a_stray_copy_of_an_episode_is_named_and_quarantined(tmp_path, capsys):
    ds = _make(tmp_path / "ds", 2)
    data = ds / "data" / "chunk-000"
    (data / "episode_000001 (copy).parquet").write_bytes((data / "episode_000001.parquet").read_bytes())
    assert cli([*COLLECT, "--out", str(ds)]) == 2
    assert "data/chunk-000/episode_000001 (copy).parquet: not part of the dataset" in capsys.readouterr().err
    assert cli(["dataset", "repair", str(ds)]) == 0
    assert (_quarantine(ds) / "data" / "chunk-000" / "episode_000001 (copy).parquet").is_file()
    assert verify(ds)["total_episodes"] == 2  # both episodes kept


@pytest.mark.parametrize("damage", ["truncated parquet", "deleted video"])
def test_a_broken_episode_is_refused_then_repaired(tmp_path, capsys, damage):
    """Before, collect appended with exit 0 onto a dataset that stayed unloadable."""
    ds = _make(tmp_path / "ds", 3)
    parquet = ds / "data" / "chunk-000" / "episode_000001.parquet"
    video = ds / "videos" / "chunk-000" / "observation.image" / "episode_000001.mp4"
    if damage == "truncated parquet":
        parquet.write_bytes(parquet.read_bytes()[:200])
        named = "data/chunk-000/episode_000001.parquet cannot be read"
    else:
        video.unlink()
        named = "videos/chunk-000/observation.image/episode_000001.mp4 is missing"
    before = _snapshot(ds)
    assert cli([*COLLECT, "--out", str(ds)]) == 2
    err = capsys.readouterr().err
    assert f"episode 1: {named}" in err and f"gsenv dataset repair {ds}" in err
    assert _snapshot(ds) == before
    assert cli(["dataset", "repair", str(ds)]) == 0
    assert "episodes [1, 2] moved out" in capsys.readouterr().out
    assert verify(ds)["total_episodes"] == 1
    q = _quarantine(ds)
    assert (q / "data" / "chunk-000" / "episode_000002.parquet").is_file()  # the whole one after it, kept aside
    lines = [json.loads(x) for x in (q / "meta" / "episodes.jsonl").read_text().splitlines()]
    assert [e["episode_index"] for e in lines] == [1, 2]


def test_leftovers_of_a_stopped_writer_do_not_make_a_dataset_unwhole(tmp_path, capsys):
    ds = _make(tmp_path / "ds", 1)
    staging = ds / ".staging" / "123-abcd"
    staging.mkdir(parents=True)
    (staging / "observation.image-x.mp4").write_bytes(b"half a video")
    assert verify(ds)["total_episodes"] == 1
    _make(ds, 1)  # appends
    assert (staging / "observation.image-x.mp4").is_file()  # not this writer's to delete
    assert cli(["dataset", "repair", str(ds)]) == 0
    assert (_quarantine(ds) / ".staging" / "123-abcd" / "observation.image-x.mp4").read_bytes() == b"half a video"
    assert verify(ds)["total_episodes"] == 2
