"""Dataset manifests: which hub repository holds a dataset, and which files it must contain.

A manifest is a JSON file ``<name>.dataset.json`` shipped in ``gsenv/assets_manifest/`` (read with
importlib.resources, so it works from a wheel). Schema version 1::

    {
      "schema": 1,
      "kind": "dataset",
      "name": "gsenv-assets-v0",
      "description": "...",
      "hub": {"repo_id": "owner/name", "repo_type": "dataset", "revision": null},
      "extra_patterns": ["robot/my_franka/*"],
      "files": [
        {"path": "robot/my_franka/fr3_wristcam.urdf", "role": "robot_urdf"},
        {"path": "robot/my_franka/parts/fr3_link0_3dgs_abs.ply", "role": "link_ply", "link": "fr3_link0"},
        {"path": "object/cube/object_3dgs_abs.ply", "role": "object_ply", "object": "cube",
         "sha256": null, "required": true},
        ...
      ]
    }

``revision`` null means the repository's default branch (not pinned). ``extra_patterns`` are
huggingface_hub allow-patterns (fnmatch, ``*`` crosses ``/``) for files fetched besides the listed
ones (the meshes a URDF references). ``sha256`` is the expected checksum where known, else null.
Every problem in a manifest is reported at once, each with its JSON path.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from gsenv.assets.errors import ManifestError

__all__ = ["SCHEMA_VERSION", "MANIFEST_PACKAGE", "MANIFEST_SUFFIX", "DEFAULT_DATASET", "ROLES", "REPO_TYPES",
           "ManifestFile", "Manifest", "known_datasets", "load_manifest", "parse_manifest"]

SCHEMA_VERSION = 1
MANIFEST_PACKAGE = "gsenv.assets_manifest"
MANIFEST_SUFFIX = ".dataset.json"
DEFAULT_DATASET = "gsenv-assets-v0"

# role -> the extra key it needs (None: no extra key)
ROLES: dict[str, str | None] = {
    "robot_urdf": None,
    "robot_srdf": None,
    "link_ply": "link",
    "object_ply": "object",
    "object_mesh": "object",
    "background_ply": None,
    "backdrop_image": None,
}
REPO_TYPES = ("dataset", "model", "space")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_REPO_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class ManifestFile:
    path: str  # relative, '/'-separated, as in the hub repository
    role: str
    required: bool = True
    sha256: str | None = None
    link: str | None = None
    object: str | None = None

    @property
    def is_ply(self) -> bool:
        return self.path.lower().endswith(".ply")


@dataclass(frozen=True)
class Manifest:
    name: str
    repo_id: str
    repo_type: str
    revision: str | None
    files: tuple[ManifestFile, ...]
    extra_patterns: tuple[str, ...] = ()
    description: str = ""
    source: str = ""  # where the manifest was read from (for messages)
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def allow_patterns(self) -> list[str]:
        """What to fetch: every listed file plus the extra patterns."""
        return [f.path for f in self.files] + list(self.extra_patterns)

    def by_role(self, role: str) -> list[ManifestFile]:
        return [f for f in self.files if f.role == role]

    def file(self, path: str) -> ManifestFile | None:
        return next((f for f in self.files if f.path == path), None)


def known_datasets() -> list[str]:
    """Names of the datasets whose manifests ship with gsenv, sorted."""
    names = [entry.name[: -len(MANIFEST_SUFFIX)] for entry in resources.files(MANIFEST_PACKAGE).iterdir()
             if entry.name.endswith(MANIFEST_SUFFIX)]
    return sorted(names)


def load_manifest(name_or_path: str | os.PathLike[str] = DEFAULT_DATASET) -> Manifest:
    """Load and validate a manifest: a known dataset name, or a path to a ``.json`` manifest file."""
    text = str(name_or_path)
    if text.endswith(".json") or os.sep in text or Path(text).is_file():
        path = Path(text).expanduser()
        if not path.is_file():
            raise ManifestError(f"manifest file {path} does not exist: give an existing .json manifest or "
                                f"one of the known dataset names ({', '.join(known_datasets())})")
        try:
            raw_text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ManifestError(f"cannot read manifest {path}: {exc}") from exc
        return parse_manifest(raw_text, source=str(path))
    known = known_datasets()
    if text not in known:
        raise ManifestError(f"unknown dataset {text!r}: known datasets are {', '.join(known) or '(none)'} "
                            "(see `gsenv assets list`), or give the path of a .json manifest")
    resource = resources.files(MANIFEST_PACKAGE) / f"{text}{MANIFEST_SUFFIX}"
    manifest = parse_manifest(resource.read_text(encoding="utf-8"), source=f"{MANIFEST_PACKAGE}/{resource.name}")
    if manifest.name != text:
        raise ManifestError(f"{manifest.source}: name {manifest.name!r} does not match its file name {text!r}")
    return manifest


def parse_manifest(text: str, source: str = "<manifest>") -> Manifest:
    """Parse and validate manifest JSON text; raises ManifestError listing every problem."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{source}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); "
                            "fix the file or reinstall gsenv") from exc
    problems: list[str] = []
    manifest = _validate(raw, problems)
    if problems or manifest is None:
        lines = "\n".join(f"  - {p}" for p in problems)
        raise ManifestError(f"{source}: invalid dataset manifest ({len(problems)} problem(s)):\n{lines}")
    return Manifest(**{**manifest.__dict__, "source": source})


def _validate(raw: Any, problems: list[str]) -> Manifest | None:
    if not isinstance(raw, dict):
        problems.append(f"top level: expected a JSON object, got {type(raw).__name__}")
        return None
    known_keys = {"schema", "kind", "name", "description", "hub", "extra_patterns", "files"}
    for key in sorted(set(raw) - known_keys):
        problems.append(f"{key}: unknown key (known: {', '.join(sorted(known_keys))})")
    if raw.get("schema") != SCHEMA_VERSION:
        problems.append(f"schema: expected {SCHEMA_VERSION}, got {raw.get('schema')!r} "
                        "(a manifest written for another gsenv version?)")
    if raw.get("kind", "dataset") != "dataset":
        problems.append(f"kind: expected 'dataset', got {raw.get('kind')!r}")
    name = raw.get("name")
    if not isinstance(name, str) or not _NAME_RE.match(name):
        problems.append(f"name: expected a name of letters, digits, '.', '_' or '-', got {name!r}")
    description = raw.get("description", "")
    if not isinstance(description, str):
        problems.append("description: expected a string")
        description = ""

    hub = raw.get("hub")
    repo_id = repo_type = revision = None
    if not isinstance(hub, dict):
        problems.append("hub: expected an object with repo_id, repo_type and revision")
    else:
        for key in sorted(set(hub) - {"repo_id", "repo_type", "revision"}):
            problems.append(f"hub.{key}: unknown key (known: repo_id, repo_type, revision)")
        repo_id = hub.get("repo_id")
        if not isinstance(repo_id, str) or not _REPO_ID_RE.match(repo_id):
            problems.append(f"hub.repo_id: expected 'owner/name', got {repo_id!r}")
        repo_type = hub.get("repo_type", "dataset")
        if repo_type not in REPO_TYPES:
            problems.append(f"hub.repo_type: expected one of {', '.join(REPO_TYPES)}, got {repo_type!r}")
        revision = hub.get("revision")
        if revision is not None and (not isinstance(revision, str) or not revision.strip()):
            problems.append("hub.revision: expected null (default branch) or a branch, tag or commit, "
                            f"got {revision!r}")

    extra = raw.get("extra_patterns", [])
    if not isinstance(extra, list) or not all(isinstance(p, str) and p and not p.startswith("/") for p in extra):
        problems.append("extra_patterns: expected a list of relative allow-patterns (strings)")
        extra = []

    files_raw = raw.get("files")
    files: list[ManifestFile] = []
    if not isinstance(files_raw, list) or not files_raw:
        problems.append("files: expected a non-empty list of {path, role, ...} objects")
        files_raw = []
    seen: set[str] = set()
    for i, entry in enumerate(files_raw):
        where, before = f"files[{i}]", len(problems)
        if not isinstance(entry, dict):
            problems.append(f"{where}: expected an object, got {type(entry).__name__}")
            continue
        allowed = {"path", "role", "required", "sha256", "link", "object", "note"}
        for key in sorted(set(entry) - allowed):
            problems.append(f"{where}.{key}: unknown key (known: {', '.join(sorted(allowed))})")
        path = entry.get("path")
        path_problem = _path_problem(path)
        if path_problem:
            problems.append(f"{where}.path: {path_problem}")
        elif path in seen:
            problems.append(f"{where}.path: {path!r} is listed twice")
        else:
            seen.add(path)
            where = f"{where} ({path})"
        role = entry.get("role")
        if role not in ROLES:
            problems.append(f"{where}.role: unknown role {role!r} (known: {', '.join(ROLES)})")
        else:
            needed = ROLES[role]
            if needed is not None and not (isinstance(entry.get(needed), str) and entry.get(needed)):
                problems.append(f"{where}.{needed}: role {role!r} needs the {needed} name")
        required = entry.get("required", True)
        if not isinstance(required, bool):
            problems.append(f"{where}.required: expected true or false, got {required!r}")
        sha = entry.get("sha256")
        if sha is not None and (not isinstance(sha, str) or not _SHA256_RE.match(sha)):
            problems.append(f"{where}.sha256: expected null or 64 lower-case hex digits, got {sha!r}")
        if len(problems) == before:
            files.append(ManifestFile(path=path, role=role, required=required, sha256=sha,
                                      link=entry.get("link"), object=entry.get("object")))
    if problems:
        return None
    return Manifest(name=name, repo_id=repo_id, repo_type=repo_type, revision=revision, files=tuple(files),
                    extra_patterns=tuple(extra), description=description, raw=raw)


def _path_problem(path: Any) -> str | None:
    if not isinstance(path, str) or not path:
        return f"expected a relative path string, got {path!r}"
    if path.startswith("/") or "\\" in path:
        return f"{path!r} must be relative and use '/' separators"
    parts = path.split("/")
    if any(part in ("", ".", "..") for part in parts):
        return f"{path!r} must not contain empty, '.' or '..' parts"
    if parts[0] == ".cache":
        return f"{path!r} is inside .cache/, which huggingface_hub uses for its own metadata"
    return None
