"""Deployment records: what ``deploy`` leaves in the project for ``execute -d NAME`` to run.

Prefect keeps a deployment on its server; stepengine keeps the rendered spec in the project's
``.prefect/deployments.json`` (beside ``flows.json``; ``.prefectignore`` keeps both out of pushes),
keyed ``flow_name/name``, with the SHA-256 of the project files it came from, so ``execute`` can say
when prefect.yaml changed since. prefect.yaml itself is never written. A spec holds no secret value
(``deploy`` keeps them as placeholders), so the file is plain JSON, written atomically under a lock.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import typing as t
from pathlib import Path

from stepengine.errors import ConfigError

__all__ = ["RECORDS_FILE", "Record", "find_records", "load_records", "record_deployments", "source_digest"]

RECORDS_FILE = Path(".prefect") / "deployments.json"


class Record(t.NamedTuple):
    """One recorded deployment."""

    key: str
    spec: dict[str, t.Any]
    #: SHA-256 of the project files (prefect.yaml, deployment.yaml) when it was deployed; None without
    source_digest: str | None
    path: Path


def source_digest(files: t.Iterable[Path | None]) -> str | None:
    """One SHA-256 over the project files that exist (None when there are none)."""
    digest = hashlib.sha256()
    found = False
    for file in files:
        if file is not None and file.is_file():
            digest.update(file.name.encode() + b"\0" + file.read_bytes() + b"\0")
            found = True
    return digest.hexdigest() if found else None


def load_records(root: str | os.PathLike[str]) -> dict[str, Record]:
    """``flow_name/name`` → record, from ``<root>/.prefect/deployments.json`` (empty when absent)."""
    path = Path(root) / RECORDS_FILE
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}", hint="delete it and deploy again") from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) and isinstance(v.get("spec"), dict) for v in data.values()):
        raise ConfigError(f"{path}: not a deployments file (expected an object of records)", hint="delete it and deploy again")
    return {str(k): Record(str(k), v["spec"], v.get("source_sha256"), path) for k, v in data.items()}


def find_records(root: str | os.PathLike[str], name: str) -> list[Record]:
    """The records named ``name`` (a deployment name, or ``flow_name/name``)."""
    records = load_records(root)
    if "/" in name:
        return [records[name]] if name in records else []
    return [r for r in records.values() if r.spec.get("name") == name]


@contextlib.contextmanager
def _locked(path: Path) -> t.Iterator[None]:
    """An exclusive lock on ``path``'s directory (two deploys at once must not lose each other's record)."""
    import fcntl

    fd = os.open(path.parent, os.O_RDONLY)  # the .prefect directory itself: no lock file left behind
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def record_deployments(root: str | os.PathLike[str], specs: t.Iterable[t.Mapping[str, t.Any]], digest: str | None) -> Path:
    """Add or replace the records of ``specs`` in ``<root>/.prefect/deployments.json``; its path."""
    path = Path(root) / RECORDS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with _locked(path):
        records = {k: {"spec": r.spec, "source_sha256": r.source_digest} for k, r in load_records(root).items()}
        for spec in specs:
            records[f"{spec['flow_name']}/{spec['name']}"] = {"spec": dict(spec), "source_sha256": digest}
        staging = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        staging.write_text(json.dumps(dict(sorted(records.items())), indent=2, default=str) + "\n", encoding="utf-8")
        os.replace(staging, path)
    return path
