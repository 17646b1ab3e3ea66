"""Asset datasets: where they live (root), what they contain (manifest), how they are fetched
(download) and checked (verify), and the `gsenv assets` commands (cli).

Importing this package is cheap: huggingface_hub and the PLY reader load inside the functions that
need them. Nothing here touches the network unless `download_dataset` is called.
"""
from __future__ import annotations

from gsenv.assets.errors import AssetError, AssetRootError, HubError, HubUnreachableError, ManifestError
from gsenv.assets.manifest import DEFAULT_DATASET, Manifest, ManifestFile, known_datasets, load_manifest
from gsenv.assets.root import asset_root, dataset_dir

__all__ = [
    "AssetError", "AssetRootError", "HubError", "HubUnreachableError", "ManifestError",
    "DEFAULT_DATASET", "Manifest", "ManifestFile", "known_datasets", "load_manifest",
    "asset_root", "dataset_dir",
]
