"""Fetching a dataset from the hub with huggingface_hub, then recording and verifying it.

`download_dataset` resolves the revision to a commit with one API call first (so an unreachable hub is
reported before anything else happens), then runs ``huggingface_hub.snapshot_download`` into the
dataset directory with the manifest's allow-patterns. huggingface_hub provides the progress bars,
honours ``HF_ENDPOINT``, ``HF_TOKEN``, ``HF_HOME`` and ``HF_HUB_OFFLINE``, skips files already fetched
for that commit (a re-run after an interruption fetches only what is missing) and resumes a transfer
cut mid-file with an HTTP Range request. When the hub stops answering, huggingface_hub quietly
returns whatever older copy is on disk; this module detects that (each fetched file's download
metadata must name the resolved commit) and raises `HubUnreachableError` instead of reporting success.
"""
from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path

from gsenv.assets import record as rec
from gsenv.assets.errors import AssetError, HubError, HubUnreachableError
from gsenv.assets.manifest import Manifest
from gsenv.assets.root import dataset_dir
from gsenv.assets.verify import VerifyReport, verify_dataset

__all__ = ["DownloadResult", "download_dataset"]

log = logging.getLogger(__name__)


@dataclass
class DownloadResult:
    directory: Path
    endpoint: str
    revision: str  # as asked for (branch, tag or commit)
    commit: str  # what it resolved to
    fetched: list[str] = field(default_factory=list)  # files of the hub repo selected by the manifest
    missing_on_hub: list[str] = field(default_factory=list)  # required manifest files the repo lacks
    report: VerifyReport | None = None

    @property
    def ok(self) -> bool:
        return self.report is not None and self.report.ok


def download_dataset(manifest: Manifest, directory: str | Path | None = None, revision: str | None = None, *,
                     root: str | Path | None = None, max_workers: int = 8) -> DownloadResult:
    """Download `manifest`'s files into `directory` (default ``dataset_dir(manifest.name, root)``),
    record their sha256 and verify them. Verification problems are in ``result.report``; hub problems
    raise `HubError` / `HubUnreachableError` with a message saying what to do."""
    from huggingface_hub import HfApi, constants, snapshot_download

    directory = Path(directory).expanduser().resolve() if directory else dataset_dir(manifest.name, root)
    revision = revision or manifest.revision or "main"
    endpoint = constants.ENDPOINT
    had_copy = directory.is_dir() and bool(rec.dataset_files(directory))
    where = f"{manifest.repo_type} repo {manifest.repo_id} at {endpoint}"

    try:
        info = HfApi().repo_info(manifest.repo_id, repo_type=manifest.repo_type, revision=revision)
    except Exception as exc:  # classified below; anything unknown propagates unchanged
        _reraise(exc, manifest, revision, directory, had_copy, during=False)
    commit = info.sha
    if not commit:
        raise HubError(f"the {where} returned no commit for revision {revision!r}; try --revision with a commit hash")

    patterns = manifest.allow_patterns()
    result = DownloadResult(directory=directory, endpoint=endpoint, revision=revision, commit=commit)
    remote = [s.rfilename for s in (info.siblings or [])]
    if remote:
        from huggingface_hub.utils import filter_repo_objects

        result.fetched = sorted(filter_repo_objects(remote, allow_patterns=patterns))
        result.missing_on_hub = [f.path for f in manifest.files if f.required and f.path not in set(remote)]
        if result.missing_on_hub:
            log.warning("the %s lacks %d file(s) the manifest expects: %s", where, len(result.missing_on_hub),
                        ", ".join(result.missing_on_hub))

    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise AssetError(f"cannot create the dataset directory {directory} ({exc.strerror or exc}): pick another "
                       "with --dir, or set GSENV_ASSETS to a writable asset root") from exc
    previous = rec.read_record(directory)

    def fetch() -> None:
        try:
            snapshot_download(manifest.repo_id, repo_type=manifest.repo_type, revision=commit, local_dir=directory,
                              allow_patterns=patterns, max_workers=max_workers)
        except Exception as exc:
            _reraise(exc, manifest, revision, directory, had_copy, during=True)

    log.info("downloading %s (revision %s = commit %s) into %s", manifest.repo_id, revision, commit, directory)
    fetch()

    if not result.fetched:  # hub gave no file list: take what the patterns match on disk
        from huggingface_hub.utils import filter_repo_objects

        result.fetched = sorted(filter_repo_objects(rec.dataset_files(directory), allow_patterns=patterns))
    stale = _not_from_commit(directory, result.fetched, commit)
    if stale:
        raise HubUnreachableError(_unreachable_message(
            manifest, directory, had_copy, f"{len(stale)} file(s) were not fetched for commit {commit[:12]} "
            f"(e.g. {stale[0]}): the hub stopped answering and huggingface_hub fell back to the local copy",
            during=True))

    files = rec.sha256_files(directory, [p for p in result.fetched if (directory / p).is_file()],
                             desc="recording checksums")
    changed = _changed_since(previous, files, commit)
    if changed:  # corrupted in place (huggingface_hub trusts size/mtime): fetch those again
        log.warning("fetching again %d file(s) that changed since they were downloaded: %s", len(changed),
                    ", ".join(changed))
        for rel in changed:
            (directory / rel).unlink()
        fetch()
        files.update(rec.sha256_files(directory, changed, desc="recording checksums"))
    rec.write_record(directory, rec.new_record(
        manifest.name, "download", files, repo_id=manifest.repo_id, repo_type=manifest.repo_type,
        revision=revision, commit=commit, endpoint=endpoint))
    result.report = verify_dataset(directory, manifest, compare_record=False)
    return result


def _changed_since(previous: dict | None, files: dict[str, dict], commit: str) -> list[str]:
    """Files whose sha256 differs from the one recorded when the same commit was downloaded before."""
    if not previous or (previous.get("hub") or {}).get("commit") != commit:
        return []
    before = previous.get("files", {})
    return sorted(p for p, e in files.items() if p in before and before[p].get("sha256") != e["sha256"])


def _not_from_commit(directory: Path, fetched: list[str], commit: str) -> list[str]:
    """Files whose huggingface_hub download metadata does not name `commit` (or that are absent)."""
    from huggingface_hub._local_folder import read_download_metadata

    stale = []
    for rel in fetched:
        meta = read_download_metadata(directory, rel)
        if not (directory / rel).is_file() or meta is None or meta.commit_hash != commit:
            stale.append(rel)
    return stale


def _connection_error_types() -> tuple[type[BaseException], ...]:
    """Transport-level errors of whichever HTTP library huggingface_hub uses (already imported by it)."""
    from huggingface_hub.errors import OfflineModeIsEnabled

    types: list[type[BaseException]] = [OfflineModeIsEnabled, ConnectionError, TimeoutError]
    for module, names in (("httpx2", ("TransportError",)), ("httpx", ("TransportError",)),
                          ("requests", ("ConnectionError", "Timeout"))):
        lib = sys.modules.get(module)
        for name in names:
            exc_type = getattr(getattr(lib, "exceptions", lib), name, None) if lib else None
            if isinstance(exc_type, type) and issubclass(exc_type, BaseException):
                types.append(exc_type)
    return tuple(types)


def _reraise(exc: Exception, *args, **kwargs) -> None:
    classified = _classify(exc, *args, **kwargs)
    if classified is exc:
        raise exc
    raise classified from exc


def _classify(exc: Exception, manifest: Manifest, revision: str, directory: Path, had_copy: bool,
              during: bool) -> Exception:
    """Turn a huggingface_hub / transport exception into one clear `HubError`."""
    from huggingface_hub import constants
    from huggingface_hub.errors import (
        HfHubHTTPError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    endpoint = constants.ENDPOINT
    if isinstance(exc, OfflineModeIsEnabled) or (constants.HF_HUB_OFFLINE and isinstance(exc, LocalEntryNotFoundError)):
        return HubUnreachableError(_unreachable_message(
            manifest, directory, had_copy, "HF_HUB_OFFLINE is set, so huggingface_hub makes no requests "
            "(unset it to download)", during))
    if isinstance(exc, RevisionNotFoundError):
        return HubError(f"revision {revision!r} does not exist in {manifest.repo_type} repo {manifest.repo_id} at "
                        f"{endpoint}: pass --revision with an existing branch, tag or commit")
    if isinstance(exc, RepositoryNotFoundError):
        return HubError(f"{manifest.repo_type} repo {manifest.repo_id} was not found at {endpoint}, or it is private "
                        "or gated and no valid token was sent: set HF_TOKEN to a token with access, or check "
                        "HF_ENDPOINT and the manifest's repo_id")
    if isinstance(exc, HfHubHTTPError):
        status = getattr(getattr(exc, "response", None), "status_code", None)
        if status in (401, 403):
            return HubError(f"the hub at {endpoint} refused access to {manifest.repo_id} (HTTP {status}): set HF_TOKEN "
                            "to a token that can read it")
        if status is None or status >= 500:
            return HubUnreachableError(_unreachable_message(
                manifest, directory, had_copy, f"the hub answered with a server error (HTTP {status})", during))
        return HubError(f"the hub at {endpoint} answered HTTP {status} for {manifest.repo_id}: {_first_line(exc)}")
    if isinstance(exc, _connection_error_types()) or isinstance(exc, LocalEntryNotFoundError):
        return HubUnreachableError(_unreachable_message(
            manifest, directory, had_copy, f"{type(exc).__name__}: {_first_line(exc)}", during))
    if isinstance(exc, OSError):  # size mismatch after a transfer, disk full, permissions
        return HubError(f"downloading {manifest.repo_id} into {directory} failed: {_first_line(exc)}. Files completed "
                        "so far are kept: run the same command again to resume")
    return exc


def _unreachable_message(manifest: Manifest, directory: Path, had_copy: bool, reason: str, during: bool) -> str:
    from huggingface_hub import constants

    what = "stopped answering during the download of" if during else "could not be reached for"
    copy = (f" The older local copy in {directory} was NOT updated: this is not a successful download."
            if had_copy else "")
    resume = " Files completed so far are kept; running the command again resumes." if during else ""
    return (f"the hub at {constants.ENDPOINT} {what} {manifest.repo_id} ({reason}).{copy}{resume}\n"
            f"To fix: check the network, or set HF_ENDPOINT to a reachable hub or mirror; or copy the dataset's "
            f"files into {directory} by hand and run `gsenv assets verify {directory}`.")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
