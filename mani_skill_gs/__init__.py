"""gsenv under the import name RLinf looks for: `GSEnv-PutCubeOnPlate-v0` without a `gsenv:` prefix.

RLinf's `rlinf/envs/maniskill/__init__.py` runs `importlib.import_module("mani_skill_gs")` (ignoring
ImportError), the research package ManiSkill-GS's module, and its GSEnv config says
`id: "GSEnv-PutCubeOnPlate-v0"`. This module makes that id gsenv's `GSEnv/PutCubeOnPlate-v0`, the
same environment, and is as cheap as `import gsenv` (imports neither torch, SAPIEN nor ManiSkill).
Where the id is already someone else's, or the research package is installed as well, one log
line (logger `gsenv.registration`) says which implementation the id resolves to.
"""
from __future__ import annotations

from gsenv import __version__  # noqa: F401  (importing gsenv registers both ids)
from gsenv.registration import ENV_ID as GSENV_ENV_ID
from gsenv.registration import RLINF_ENV_ID as ENV_ID

__all__ = ["ENV_ID", "GSENV_ENV_ID"]
