"""Errors of the asset layer. Each message says what went wrong and what to do about it."""
from __future__ import annotations

from pathlib import Path

__all__ = ["AssetError", "ManifestError", "HubError", "HubUnreachableError", "AssetRootError"]


class AssetError(Exception):
    """Base class: a problem with a dataset, its manifest or its download. `exit_code` is what the CLI
    returns for it."""

    exit_code = 1


class ManifestError(AssetError, ValueError):
    """A manifest is missing, unknown or invalid (bad input: exit code 2)."""

    exit_code = 2


class HubError(AssetError):
    """The hub answered, but not with the dataset (not found, no access, bad revision, server error)."""

    exit_code = 3


class HubUnreachableError(HubError):
    """The hub could not be reached, or stopped answering during the download."""

    exit_code = 3


class AssetRootError(AssetError):
    """The asset root cannot hold what gsenv writes there: it cannot be created, is not a directory, is
    read-only or unwritable, or its filesystem is full. `path` is the directory at fault, `problem` the
    one-line cause (exit code 2: the root is the user's setting)."""

    exit_code = 2

    def __init__(self, path: Path, problem: str, fix: str):
        self.path, self.problem, self.fix = Path(path), problem, fix
        super().__init__(f"asset root {path}: {problem}. {fix}")
