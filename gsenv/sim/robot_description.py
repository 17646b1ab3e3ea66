"""The FR3 robot description used by the simulator, derived from ManiSkill's bundled Panda.

ManiSkill ships the Panda (``panda_v2.urdf``) but no FR3; both share the kinematic chain (same DH
parameters). :func:`default_fr3_urdf` writes, once per content, a copy of the Panda URDF + SRDF
with every ``panda_`` name renamed to the canonical ``fr3_`` names (:mod:`gsenv.sim.names`), the
FR3's arm joint limits, and absolute mesh paths, into gsenv's cache directory
(``<asset root>/sim``, see gsenv.assets.root). Writes are atomic, so worker processes may race.
"""
from __future__ import annotations

import hashlib
import logging
import os
import xml.etree.ElementTree as ET
from pathlib import Path

from gsenv.atomic import write_text_atomic
from gsenv.sim import names

logger = logging.getLogger(__name__)

_SOURCE_NAME = "panda_v2"
_FORMAT_VERSION = "1"  # bump when the rewrite below changes


def cache_dir(root: str | os.PathLike | None = None) -> Path:
    """gsenv's cache directory for generated simulator files: ``<asset root>/sim``."""
    from gsenv.assets.root import asset_root

    return asset_root(root) / "sim"


def _maniskill_panda_dir() -> Path:
    from mani_skill import PACKAGE_ASSET_DIR

    return Path(PACKAGE_ASSET_DIR) / "robots" / "panda"


def _rename(value: str) -> str:
    return value.replace("panda_", names.ROBOT_LINK_PREFIX)


def rewrite_panda_urdf(urdf_text: str, mesh_root: Path) -> str:
    """Panda URDF text -> FR3-named URDF text (names, arm joint limits, absolute mesh paths)."""
    root = ET.fromstring(urdf_text)
    root.set("name", "fr3")
    for node in root.iter():
        for attr in ("name", "link", "joint"):
            if attr in node.attrib:
                node.set(attr, _rename(node.attrib[attr]))
        if node.tag == "mesh" and "filename" in node.attrib:
            path = Path(node.attrib["filename"])
            if not path.is_absolute():
                node.set("filename", str((mesh_root / path).resolve()))
    limits = dict(zip(names.ARM_JOINT_NAMES, names.FR3_JOINT_LIMITS))
    velocities = dict(zip(names.ARM_JOINT_NAMES, names.FR3_JOINT_VELOCITY_LIMITS))
    for joint in root.iter("joint"):
        jname = joint.get("name")
        if jname not in limits:
            continue
        lo, hi = limits[jname]
        limit = joint.find("limit")
        limit.set("lower", repr(lo))
        limit.set("upper", repr(hi))
        limit.set("velocity", repr(velocities[jname]))
        safety = joint.find("safety_controller")
        if safety is not None:
            safety.set("soft_lower_limit", repr(lo))
            safety.set("soft_upper_limit", repr(hi))
    return ET.tostring(root, encoding="unicode")


def rewrite_panda_srdf(srdf_text: str) -> str:
    """Panda SRDF text -> the same collision filters with FR3 names."""
    root = ET.fromstring(srdf_text)
    root.set("name", "fr3")
    for node in root.iter():
        for attr in ("name", "link", "link1", "link2", "joint", "parent_link", "group"):
            if attr in node.attrib:
                node.set(attr, _rename(node.attrib[attr]))
    return ET.tostring(root, encoding="unicode")


def default_fr3_urdf(root: str | os.PathLike | None = None) -> Path:
    """Path of the FR3-named URDF generated from ManiSkill's Panda (its .srdf lies beside it)."""
    src = _maniskill_panda_dir()
    urdf_src = (src / f"{_SOURCE_NAME}.urdf").read_text()
    srdf_src = (src / f"{_SOURCE_NAME}.srdf").read_text()
    urdf = rewrite_panda_urdf(urdf_src, src)
    srdf = rewrite_panda_srdf(srdf_src)
    digest = hashlib.sha256((_FORMAT_VERSION + urdf + srdf).encode()).hexdigest()[:16]
    out = cache_dir(root) / f"fr3_from_{_SOURCE_NAME}_{digest}"
    urdf_path = out / "fr3.urdf"
    srdf_path = out / "fr3.srdf"
    if not (urdf_path.is_file() and srdf_path.is_file()):
        from gsenv.assets.root import root_write_errors

        logger.info("writing FR3 robot description to %s", out)
        with root_write_errors(out):
            write_text_atomic(srdf_path, srdf)
            write_text_atomic(urdf_path, urdf)
    return urdf_path
