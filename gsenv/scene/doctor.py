"""Rows for `gsenv doctor`: the asset root, the default scene's build and the known datasets."""
from __future__ import annotations


def asset_rows() -> list[tuple[str, str, bool, str]]:
    """(name, value, ok, fix) rows. Nothing here downloads or builds anything."""
    from gsenv.assets.manifest import known_datasets, load_manifest
    from gsenv.assets.root import asset_root, dataset_dir
    from gsenv.assets.status import dataset_status
    from gsenv.scene.default import default_bundle_dir
    from gsenv.scene.format import MANIFEST

    root = asset_root()
    rows = [("asset root", str(root), True, "")]
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
