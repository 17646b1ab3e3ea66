"""The asset root: the one directory under which gsenv keeps downloaded datasets and built scenes.

Resolution order (first that is set wins):

1. an explicit argument (``asset_root("/data/gsenv")``);
2. the ``GSENV_ASSETS`` environment variable;
3. the user cache directory: ``$XDG_CACHE_HOME/gsenv`` if ``XDG_CACHE_HOME`` is set, else
   ``~/.cache/gsenv``.

Datasets live in ``<root>/datasets/<name>/`` with the hub repository's layout inside. Resolving the
root creates nothing; the directory is made when something is first written there.
"""
from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "GSENV_ASSETS"


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


def _absolute(path: str | os.PathLike[str]) -> Path:
    return Path(os.path.abspath(Path(path).expanduser()))
