"""Rows for `gsenv doctor`: the asset root, the default scene's build and the known datasets."""
from __future__ import annotations

__all__ = ["asset_rows"]


def asset_rows() -> list[tuple[str, str, bool, str]]:
    """(name, value, ok, fix) rows. Nothing here downloads or builds anything."""
    from gsenv.assets.manifest import known_datasets, load_manifest
    from gsenv.assets.root import FIX, asset_root, dataset_dir, free_bytes, writability_problem
    from gsenv.assets.status import dataset_status
    from gsenv.scene.format import MANIFEST
    from gsenv.scene_build.default import default_bundle_dir

    root = asset_root()
    problem = writability_problem(root)  # creates and removes a small file: existing is not enough
    free = free_bytes(root)
    where = f"{root}{'' if root.is_dir() else ' (not created yet)'}" + (
        f", {_size(free)} free" if free is not None else "")
    rows = [("asset root", f"{where}: {problem}" if problem else f"{where}, writable", problem is None,
             FIX if problem else "")]
    built = (default_bundle_dir(root) / MANIFEST).is_file()
    rows.append(("default scene", "built" if built else "not built yet (built on first use, ~10-30 s)", True,
                 "" if built else "optional: gsenv assets build-default"))
    for name in known_datasets():
        status = dataset_status(load_manifest(name), dataset_dir(name, root))
        present = status.present == "yes"
        value = f"{status.present}, verified {status.verified}" if present else "not downloaded (optional)"
        fix = "" if present and status.verified == "yes" else (
            f"gsenv assets download {name}" if not present else f"gsenv assets verify {dataset_dir(name, root)}")
        rows.append((f"dataset {name}", value, True, fix))
    return rows


def _size(n: int) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"
