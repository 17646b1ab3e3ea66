"""`gsenv assets download|verify|list`: fetch, check and list the asset datasets.

Exit codes: 0 success; 1 verification found problems; 2 bad input (unknown dataset, broken manifest,
no such directory, an asset root that cannot be written: uncreatable, a file, read-only, full); 3 the hub
could not be reached or refused the download.
Cheap to import: the work happens in the handlers.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gsenv.assets.errors import AssetError, ManifestError


def add_commands(sub) -> None:
    parser = sub.add_parser("assets", help="download, verify and list asset datasets",
                            description="Download, verify and list the asset datasets gsenv knows "
                                        "(asset root: $GSENV_ASSETS, else $XDG_CACHE_HOME/gsenv or ~/.cache/gsenv).")
    cmds = parser.add_subparsers(dest="assets_command", metavar="ACTION")
    cmds.required = True

    dl = cmds.add_parser("download", help="fetch a dataset from the hub, record checksums and verify it",
                         description="Fetch a dataset with huggingface_hub (honours HF_ENDPOINT, HF_TOKEN, HF_HOME), "
                                     "record the sha256 of every fetched file and verify the result. Re-running "
                                     "fetches only what is missing.")
    dl.add_argument("name", nargs="?", default=None,
                    help="dataset name (see `gsenv assets list`) or path to a .json manifest; "
                         "default: the default dataset")
    dl.add_argument("--dir", dest="directory", default=None,
                    help="directory the dataset's files go into (default: <asset root>/datasets/<name>)")
    dl.add_argument("--revision", default=None, help="branch, tag or commit (default: the manifest's, else main)")
    dl.set_defaults(func=_download)

    vf = cmds.add_parser("verify", help="check a dataset directory: files present, PLYs valid, checksums unchanged",
                         description="Check a dataset directory against its manifest: every expected file present, "
                                     "every PLY parses with the 3DGS fields, no file changed since its checksum was "
                                     "recorded. A copy made by hand gets its checksums recorded on first success.")
    vf.add_argument("path", nargs="?", default=None,
                    help="dataset directory (default: where the dataset lives under the asset root)")
    vf.add_argument("--name", default=None,
                    help="dataset name or manifest path (default: from the directory's checksum record, else the "
                         "default dataset)")
    vf.set_defaults(func=_verify)

    ls = cmds.add_parser("list", help="known datasets: where they are, present or not, verified or not")
    ls.set_defaults(func=_list)

    bd = cmds.add_parser("build-default", help="build the embedded default scene into the asset root",
                         description="Generate the embedded default scene (offline, deterministic: ManiSkill's "
                                     "Franka meshes + the recipe in assets_manifest/default_scene.json) into "
                                     "<asset root>/default-scene/<key>. Environments build it on first use; this "
                                     "command does it ahead of time. Reused until the recipe, the density or the "
                                     "builder changes.")
    bd.add_argument("--force", action="store_true", help="rebuild even when an up-to-date build exists")
    bd.add_argument("--density", type=float, default=1.0,
                    help="scale of every gaussian count (1.0: ~130k on robot + objects, ~340k background)")
    bd.add_argument("--root", default=None, help="asset root (default: $GSENV_ASSETS, else the user cache)")
    bd.set_defaults(func=lambda args: _run(_build_default, args))


def _run(handler, args: argparse.Namespace) -> int:
    try:
        return handler(args)
    except AssetError as exc:
        print(f"gsenv assets {args.assets_command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"gsenv assets {args.assets_command}: interrupted; run it again to resume", file=sys.stderr)
        return 130


def _download(args: argparse.Namespace) -> int:
    return _run(_download_impl, args)


def _verify(args: argparse.Namespace) -> int:
    return _run(_verify_impl, args)


def _list(args: argparse.Namespace) -> int:
    return _run(_list_impl, args)


def _download_impl(args: argparse.Namespace) -> int:
    from gsenv.assets.download import download_dataset
    from gsenv.assets.manifest import DEFAULT_DATASET, load_manifest

    manifest = load_manifest(args.name or DEFAULT_DATASET)
    result = download_dataset(manifest, args.directory, args.revision)
    print(f"downloaded {len(result.fetched)} file(s) of {manifest.repo_id} (revision {result.revision}, "
          f"commit {result.commit[:12]}) from {result.endpoint} into {result.directory}")
    if result.missing_on_hub:
        print(f"the hub repository lacks {len(result.missing_on_hub)} file(s) the manifest expects: "
              f"{', '.join(result.missing_on_hub)}")
    if result.report is not None:
        print(result.report.summary())
    return 0 if result.ok else 1


def _verify_impl(args: argparse.Namespace) -> int:
    from gsenv.assets import record as rec
    from gsenv.assets.manifest import DEFAULT_DATASET, load_manifest
    from gsenv.assets.root import dataset_dir
    from gsenv.assets.verify import verify_dataset

    if args.path is None:
        manifest = load_manifest(args.name or DEFAULT_DATASET)
        directory = dataset_dir(manifest.name)
    else:
        directory = Path(args.path).expanduser().resolve()
        recorded = (rec.read_record(directory) or {}).get("dataset") if directory.is_dir() else None
        manifest = load_manifest(args.name or recorded or DEFAULT_DATASET)
    if not directory.is_dir():
        raise ManifestError(f"no dataset directory at {directory}: run `gsenv assets download {manifest.name}`, "
                            "or copy the dataset's files there by hand, then verify again")
    report = verify_dataset(directory, manifest)
    print(report.summary())
    return 0 if report.ok else 1


def _list_impl(args: argparse.Namespace) -> int:
    from gsenv.assets.manifest import known_datasets, load_manifest
    from gsenv.assets.root import asset_root, dataset_dir
    from gsenv.assets.status import dataset_status

    print(f"asset root: {asset_root()}")
    for name in known_datasets():
        manifest = load_manifest(name)
        st = dataset_status(manifest, dataset_dir(name))
        rev = manifest.revision or "default branch (not pinned)"
        print(f"{name}\n  hub:      {manifest.repo_type} {manifest.repo_id} @ {rev}\n  where:    {st.directory}\n"
              f"  present:  {st.present}\n  verified: {st.verified}"
              + (f"\n  commit:   {st.commit}" if st.commit else ""))
    return 0


def _build_default(args: argparse.Namespace) -> int:
    import time

    from gsenv.assets.root import asset_root
    from gsenv.scene.format import MANIFEST
    from gsenv.scene_build.default import default_bundle_dir, ensure_default_bundle

    if not args.density > 0:
        print(f"gsenv assets build-default: error: --density must be > 0, got {args.density}", file=sys.stderr)
        return 2
    root = asset_root(args.root)
    existed = (default_bundle_dir(root, args.density) / MANIFEST).is_file()
    t0 = time.perf_counter()
    path = ensure_default_bundle(root, density=args.density, force=args.force, progress=True)
    if existed and not args.force:
        print(f"default scene (density {args.density}) is up to date: {path}")
    else:
        print(f"default scene (density {args.density}) built in {time.perf_counter() - t0:.1f} s: {path}")
    return 0
