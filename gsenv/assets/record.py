"""The checksum record: ``gsenv-checksums.json`` in a dataset directory.

It holds the sha256, size and modification time of every file fetched (or, for a copy made by hand,
of every file present when it was first verified), plus the outcome of the last verification.
`gsenv assets verify` re-hashes the files and reports any that changed as corrupt; `gsenv assets list`
compares sizes and modification times only (cheap).
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from gsenv.atomic import write_text_atomic

log = logging.getLogger(__name__)

RECORD_NAME = "gsenv-checksums.json"
RECORD_SCHEMA = 1
_CHUNK = 1 << 20


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def dataset_files(directory: Path) -> list[str]:
    """Every regular file under `directory` as a '/'-separated relative path, skipping huggingface_hub's
    ``.cache/`` and the record itself; sorted."""
    out = []
    for path in directory.rglob("*"):
        rel = path.relative_to(directory).as_posix()
        if rel.startswith(".cache/") or rel == RECORD_NAME or not path.is_file():
            continue
        out.append(rel)
    return sorted(out)


def sha256_files(directory: Path, rel_paths: Iterable[str], desc: str = "checksums") -> dict[str, dict[str, Any]]:
    """sha256, size and mtime_ns of each file, with one progress bar over all bytes (shown on a terminal)."""
    from tqdm.auto import tqdm

    rel_paths = list(rel_paths)
    total = sum((directory / p).stat().st_size for p in rel_paths)
    out: dict[str, dict[str, Any]] = {}
    with tqdm(total=total, unit="B", unit_scale=True, desc=desc, disable=None, leave=False) as bar:
        for rel in rel_paths:
            path = directory / rel
            digest = hashlib.sha256()
            with path.open("rb") as fh:
                while chunk := fh.read(_CHUNK):
                    digest.update(chunk)
                    bar.update(len(chunk))
            st = path.stat()
            out[rel] = {"sha256": digest.hexdigest(), "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    return out


def read_record(directory: Path) -> dict[str, Any] | None:
    """The record in `directory`, or None if there is none. An unreadable record counts as none (logged)."""
    path = directory / RECORD_NAME
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        log.warning("ignoring unreadable checksum record %s: %s", path, exc)
        return None
    if not isinstance(data, dict) or not isinstance(data.get("files"), dict):
        log.warning("ignoring malformed checksum record %s", path)
        return None
    return data


def write_record(directory: Path, record: dict[str, Any]) -> Path:
    """Write the record atomically (temporary file + rename)."""
    path = directory / RECORD_NAME
    write_text_atomic(path, json.dumps({"schema": RECORD_SCHEMA, **record}, indent=2, sort_keys=True) + "\n")
    return path


def new_record(dataset: str, source: str, files: dict[str, dict[str, Any]], **hub: Any) -> dict[str, Any]:
    """A fresh record. `source` is "download" or "verify"; `hub` holds repo_id, commit, endpoint, ..."""
    return {"dataset": dataset, "source": source, "recorded_at": now_iso(), "hub": hub, "files": files}


def unchanged_on_disk(directory: Path, record: dict[str, Any]) -> bool:
    """Cheap check: every recorded file still exists with the recorded size and modification time."""
    for rel, entry in record.get("files", {}).items():
        try:
            st = (directory / rel).stat()
        except OSError:
            return False
        if st.st_size != entry.get("size") or st.st_mtime_ns != entry.get("mtime_ns"):
            return False
    return True
