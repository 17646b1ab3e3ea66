"""The asset root: the one directory under which gsenv keeps downloaded datasets and built scenes.

Resolution order (first that is set wins):

1. an explicit argument (``asset_root("/data/gsenv")``);
2. the ``GSENV_ASSETS`` environment variable;
3. the user cache directory: ``$XDG_CACHE_HOME/gsenv`` if ``XDG_CACHE_HOME`` is set, else
   ``~/.cache/gsenv``.

Datasets live in ``<root>/datasets/<name>/`` with the hub repository's layout inside. Resolving the
root creates nothing; the directory is made when something is first written there, by
:func:`require_writable`, which also proves it writable (a file is created, written and removed). Any
failure of the root (cannot be created, not a directory, read-only, unwritable, full) is one
:class:`~gsenv.assets.errors.AssetRootError` naming the path and the fix.
"""
from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from gsenv.assets.errors import AssetRootError

__all__ = ["ENV_VAR", "FIX", "PROBE_BYTES", "asset_root", "dataset_dir", "require_writable", "writability_problem",
           "root_write_errors", "free_bytes"]

ENV_VAR = "GSENV_ASSETS"
FIX = f"Set {ENV_VAR} or pass asset_root= (CLI: --root) to a writable directory"
PROBE_BYTES = 4096  # one page: on a full filesystem creating an empty file can still succeed, writing cannot


def asset_root(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The asset root as an absolute path: `explicit` > ``$GSENV_ASSETS`` > user cache dir / ``gsenv``.

    Empty strings count as unset. ``~`` is expanded. The directory is not created.
    """
    if explicit is not None and str(explicit) != "":
        return _absolute(explicit)
    from_env = os.environ.get(ENV_VAR, "")
    if from_env:
        return _absolute(from_env)
    cache = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(cache) if cache else Path.home() / ".cache"
    return _absolute(base / "gsenv")


def dataset_dir(name: str, root: str | os.PathLike[str] | None = None) -> Path:
    """Where the dataset `name` lives (or would live): ``<asset_root(root)>/datasets/<name>``."""
    return asset_root(root) / "datasets" / name


def require_writable(directory: str | os.PathLike[str]) -> Path:
    """`directory` (the root or a folder under it), created if missing and proven writable by creating,
    writing and removing a small file. Raises AssetRootError with the cause and the fix."""
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise AssetRootError(directory, "exists but is not a directory (it is a file)", FIX)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise AssetRootError(directory, f"cannot be created ({_cause(exc)})", _fix(exc)) from exc
    problem = _probe(directory)
    if problem is not None:
        raise AssetRootError(directory, problem[0], problem[1])
    return directory


def writability_problem(directory: str | os.PathLike[str]) -> str | None:
    """Why gsenv could not write under `directory`, or None. Creates nothing that stays: a missing
    directory is judged by its nearest existing parent (where it would be created)."""
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        return f"{directory} exists but is not a directory (it is a file)"
    probe_at = directory
    while not probe_at.exists():
        probe_at = probe_at.parent
    if not probe_at.is_dir():
        return f"cannot be created: {probe_at} is a file, not a directory"
    problem = _probe(probe_at)
    if problem is None:
        return None
    return problem[0] if probe_at == directory else f"cannot be created under {probe_at}: {problem[0]}"


@contextlib.contextmanager
def root_write_errors(directory: str | os.PathLike[str]) -> Iterator[None]:
    """Turn an OSError from writing under `directory` that the root is to blame for (full, read-only,
    permission denied, quota) into an AssetRootError; other errors pass through unchanged."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in _ROOT_ERRNOS:
            raise
        raise AssetRootError(Path(directory), f"writing {exc.filename or 'under it'} failed ({_cause(exc)})",
                             _fix(exc)) from exc


_ROOT_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}


def _probe(directory: Path) -> tuple[str, str] | None:
    """(problem, fix) when a file cannot be created, written and removed in `directory`."""
    try:
        fd, name = tempfile.mkstemp(dir=directory, prefix=".gsenv-write-test-")
    except OSError as exc:
        return f"is not writable ({_cause(exc)})", _fix(exc)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(b"\0" * PROBE_BYTES)
            f.flush()
    except OSError as exc:
        return f"a file cannot be written there ({_cause(exc)})", _fix(exc)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(name)
    return None


def _cause(exc: OSError) -> str:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"{exc.strerror}: the filesystem is full"
    if exc.errno == errno.EROFS:
        return f"{exc.strerror}: the filesystem is mounted read-only"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return f"{exc.strerror}: this user may not write there"
    return exc.strerror or str(exc)


def _fix(exc: OSError) -> str:
    return "Free space there, or s" + FIX[1:] if exc.errno in (errno.ENOSPC, errno.EDQUOT) else FIX


def free_bytes(directory: str | os.PathLike[str]) -> int | None:
    """Free bytes on the filesystem holding `directory` (or its nearest existing parent)."""
    path = Path(directory)
    while not path.exists():
        path = path.parent
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return None


def _absolute(path: str | os.PathLike[str]) -> Path:
    return Path(os.path.abspath(Path(path).expanduser()))
