"""Verification of a dataset directory against its manifest.

Checks, reporting every problem with its file:
- structure: every required file of the manifest is present;
- content: every PLY parses with the 3DGS fields (``gsenv.splat.ply.load_ply``), the URDF/SRDF are XML
  with the right root element, the backdrop is a JPEG, each OBJ has vertices;
- checksums: files match the manifest's sha256 where known, and the sha256 recorded at download (or
  first verification); a file that changed since is reported as corrupt.
The outcome is stored in the directory's checksum record (see `gsenv.assets.record`).
"""
from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from gsenv.assets import record as rec
from gsenv.assets.manifest import Manifest

__all__ = ["Problem", "VerifyReport", "verify_dataset"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Problem:
    path: str  # relative to the dataset directory
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


@dataclass
class VerifyReport:
    directory: Path
    dataset: str
    problems: list[Problem] = field(default_factory=list)
    files_checked: int = 0
    plys_checked: int = 0
    record_state: str = "none"  # "compared", "written" (no record before: now recorded) or "none"

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        head = (f"{self.dataset} at {self.directory}: {self.files_checked} file(s) checked, "
                f"{self.plys_checked} PLY(s) parsed")
        if self.ok:
            extra = {"compared": "checksums match the record", "written": "checksums recorded",
                     "none": "no checksum record"}[self.record_state]
            return f"{head}, {extra}: OK"
        lines = [f"{head}: {len(self.problems)} problem(s)"] + [f"  - {p}" for p in self.problems]
        return "\n".join(lines)


def verify_dataset(directory: str | Path, manifest: Manifest, *, compare_record: bool = True,
                   write_record_if_missing: bool = True) -> VerifyReport:
    """Verify `directory` against `manifest` and store the outcome in its checksum record.

    compare_record: re-hash files and compare with the record (skip right after the record was written).
    write_record_if_missing: with no record and no problems, record the checksums of what is there now
    (a copy made by hand becomes a verified copy).
    """
    directory = Path(directory)
    report = VerifyReport(directory=directory, dataset=manifest.name)
    if not directory.is_dir():
        report.problems.append(Problem(".", f"no dataset directory at {directory}"))
        return report

    present = rec.dataset_files(directory)
    present_set = set(present)
    for f in manifest.files:
        if f.path not in present_set and f.required:
            report.problems.append(Problem(f.path, f"missing ({f.role}){_siblings_hint(directory, f.path, manifest)}"))

    for rel in present:
        problem = _content_problem(directory / rel, rel)
        report.files_checked += 1
        if rel.lower().endswith(".ply"):
            report.plys_checked += 1
        if problem:
            report.problems.append(Problem(rel, problem))

    record = rec.read_record(directory)
    known = {f.path: f.sha256 for f in manifest.files if f.sha256 and f.path in present_set}
    if known or (record is not None and compare_record):
        to_hash = sorted(set(known) | (set(record["files"]) & present_set if record else set()))
        hashes = rec.sha256_files(directory, to_hash, desc="verifying checksums")
        for rel, expected in sorted(known.items()):
            if hashes[rel]["sha256"] != expected:
                report.problems.append(Problem(rel, f"corrupt: sha256 {hashes[rel]['sha256'][:12]}... differs from "
                                                    f"the manifest's {expected[:12]}...; download it again"))
        if record is not None:
            report.record_state = "compared"
            when = record.get("recorded_at", "?")
            for rel, entry in sorted(record["files"].items()):
                if rel not in present_set:
                    listed = manifest.file(rel)
                    if listed is None or not listed.required:  # required files were reported above
                        report.problems.append(Problem(rel, f"missing (recorded on {when})"))
                    continue
                if hashes[rel]["sha256"] != entry.get("sha256"):
                    report.problems.append(Problem(
                        rel, f"corrupt: changed since it was recorded on {when} (sha256 now "
                             f"{hashes[rel]['sha256'][:12]}..., recorded {str(entry.get('sha256'))[:12]}...); "
                             "run `gsenv assets download` again to re-fetch it"))
    elif record is not None:
        report.record_state = "compared"

    if record is None and write_record_if_missing and report.ok:
        files = rec.sha256_files(directory, present, desc="recording checksums")
        record = rec.new_record(manifest.name, "verify", files, repo_id=manifest.repo_id)
        report.record_state = "written"
    if record is not None:
        record["last_verification"] = {"ok": report.ok, "at": rec.now_iso(), "problems": len(report.problems)}
        try:
            rec.write_record(directory, record)
        except OSError as exc:
            log.warning("could not write the checksum record in %s: %s", directory, exc)
    return report


def _siblings_hint(directory: Path, rel: str, manifest: Manifest) -> str:
    """For a missing file, name the same-type files in its folder that the manifest does not list (helps
    where the manifest's file names are unverified, e.g. the finger PLYs)."""
    folder = (directory / rel).parent
    if not folder.is_dir():
        return ""
    suffix = Path(rel).suffix.lower()
    listed = {f.path for f in manifest.files}
    others = sorted(p.name for p in folder.iterdir() if p.is_file() and p.suffix.lower() == suffix
                    and p.relative_to(directory).as_posix() not in listed)
    if not others:
        return ""
    shown = ", ".join(others[:6]) + (f", ... ({len(others) - 6} more)" if len(others) > 6 else "")
    return f"; the folder has unlisted: {shown}"


def _content_problem(path: Path, rel: str) -> str | None:
    suffix = path.suffix.lower()
    try:
        if path.stat().st_size == 0:
            return "empty file"
        if suffix == ".ply":
            return _ply_problem(path)
        if suffix in (".urdf", ".srdf"):
            return _xml_problem(path, "robot")
        if suffix in (".jpg", ".jpeg"):
            with path.open("rb") as fh:
                return None if fh.read(3) == b"\xff\xd8\xff" else "not a JPEG image (bad magic bytes)"
        if suffix == ".obj":
            return _obj_problem(path)
    except OSError as exc:
        return f"cannot read: {exc}"
    return None


def _ply_problem(path: Path) -> str | None:
    from gsenv.splat.ply import PlyError, load_ply  # lazy: the splat package may import torch

    try:
        load_ply(path)
    except PlyError as exc:
        return f"bad PLY: {exc.problem}"
    except (ValueError, OSError) as exc:
        return f"bad PLY: {exc}"
    return None


def _xml_problem(path: Path, root_tag: str) -> str | None:
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        return f"not valid XML: {exc}"
    return None if root.tag == root_tag else f"root element is <{root.tag}>, expected <{root_tag}>"


def _obj_problem(path: Path) -> str | None:
    with path.open("r", encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if line.startswith("v "):
                return None
    return "OBJ mesh without vertices ('v' lines)"


