"""Cheap status of a dataset directory for `gsenv assets list` (no hashing, no network)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gsenv.assets import record as rec
from gsenv.assets.manifest import Manifest

__all__ = ["DatasetStatus", "dataset_status"]


@dataclass(frozen=True)
class DatasetStatus:
    name: str
    directory: Path
    present: str  # "yes", "partial (k of n files)", "no"
    verified: str  # "yes", "no (never verified)", "failed (run gsenv assets verify)", "changed since verification"
    commit: str | None  # commit it was downloaded at, if downloaded

    @property
    def is_present(self) -> bool:
        return self.present == "yes"

    @property
    def is_verified(self) -> bool:
        return self.verified == "yes"


def dataset_status(manifest: Manifest, directory: Path) -> DatasetStatus:
    required = [f.path for f in manifest.files if f.required]
    have = sum((directory / p).is_file() for p in required)
    present = "yes" if have == len(required) else ("no" if have == 0 else f"partial ({have} of {len(required)} files)")
    record = rec.read_record(directory) if directory.is_dir() else None
    if record is None:
        verified = "no (never verified)"
    else:
        last = record.get("last_verification") or {}
        if not last.get("ok"):
            verified = "failed (run gsenv assets verify)"
        elif not rec.unchanged_on_disk(directory, record):
            verified = "changed since verification (run gsenv assets verify)"
        else:
            verified = "yes"
    commit = (record or {}).get("hub", {}).get("commit") if record else None
    return DatasetStatus(manifest.name, directory, present, verified, commit)
