"""Deployment records: what ``deploy`` leaves in the project, and how ``execute -d NAME`` finds one.

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

__all__ = [
    "RECORDS_FILE",
    "Record",
    "how_to_run",
    "find_deployment",
    "find_records",
    "load_records",
    "record_deployments",
    "source_digest",
]

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
    if not isinstance(data, dict) or not all(
        isinstance(v, dict) and isinstance(v.get("spec"), dict) for v in data.values()
    ):
        raise ConfigError(
            f"{path}: not a deployments file (expected an object of records)",
            hint="delete it and deploy again",
        )
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


def record_deployments(
    root: str | os.PathLike[str], specs: t.Iterable[t.Mapping[str, t.Any]], digest: str | None
) -> Path:
    """Add or replace the records of ``specs`` in ``<root>/.prefect/deployments.json``; its path."""
    path = Path(root) / RECORDS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with _locked(path):
        records = {
            k: {"spec": r.spec, "source_sha256": r.source_digest} for k, r in load_records(root).items()
        }
        for spec in specs:
            records[f"{spec['flow_name']}/{spec['name']}"] = {"spec": dict(spec), "source_sha256": digest}
        staging = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        staging.write_text(
            json.dumps(dict(sorted(records.items())), indent=2, default=str) + "\n", encoding="utf-8"
        )
        os.replace(staging, path)
    return path


def find_deployment(
    file: str | os.PathLike[str], name: str | None
) -> tuple[dict[str, t.Any], str | None, t.Any]:
    """The spec ``execute -d NAME`` runs, a warning (or None), and where the spec was read from.

    A deployment that ``deploy`` recorded in the project (``.prefect/deployments.json``) is run as
    it was deployed (build outputs, command-line options), as a worker runs what the server holds;
    one only in ``prefect.yaml`` is rendered from the file (pull steps only). ``name`` may be
    ``FLOW/NAME``; without it, the project must have exactly one deployment.
    """
    from stepengine.project.execute import SpecSource
    from stepengine.project.layout import load_project

    path = Path(file)
    directory = (path if path.is_dir() else path.parent).resolve()
    records = load_records(directory)
    project = None
    if path.is_file() or (path / "prefect.yaml").is_file():
        try:
            project = load_project(path)
        except ConfigError:
            # a recorded deployment runs as it was deployed: a broken prefect.yaml does not stop it
            if name is None or not any(k == name or r.spec.get("name") == name for k, r in records.items()):
                raise
    in_file = {d.name: i for i, d in enumerate(project.config.deployments)} if project is not None else {}
    if name is None:
        names = sorted({r.spec.get("name") for r in records.values()} | set(in_file), key=str)
        if len(names) != 1:
            listing = ", ".join(map(str, names))
            raise ConfigError(
                "which deployment? give its name with -d NAME"
                + (f" (this project has: {listing})" if names else ""),
                hint=None
                if names
                else f"deploy one first: stepengine deploy path/to/file.py:function -n NAME "
                f"(nothing recorded in {directory / '.prefect' / 'deployments.json'}"
                + (f" and no deployments in {project.config.file})" if project is not None else ")"),
            )
        name = str(names[0])
    short = name.rpartition("/")[2]
    matches = [r for k, r in records.items() if k == name or r.spec.get("name") == name]
    if len(matches) > 1:
        raise ConfigError(
            f"{len(matches)} deployments are named {name!r}: {', '.join(r.key for r in matches)}",
            hint=f"name one as FLOW/NAME: stepengine execute -d {matches[0].key}",
        )
    if matches:
        record = matches[0]
        warning = None
        if project is not None and record.source_digest is not None:
            files = [Path(project.config.file) if project.config.file else None, project.deployment_file]
            if source_digest(files) != record.source_digest:
                warning = (
                    f"{project.config.file} changed since deployment {record.key!r} was deployed; "
                    "running it as "
                    f"deployed (run `stepengine deploy -n {short}` again to use the changes)"
                )
        return dict(record.spec), warning, SpecSource(str(record.path), (record.key, "spec"))
    if short in in_file and project is not None:
        from stepengine.project.deploy import DeployRequest, deploy_project

        index = in_file[short]
        if not project.config.deployments[index].data.get("entrypoint"):
            where = ":".join(str(x) for x in project.locate(index) if x is not None)
            raise ConfigError(
                f"deployment {short!r} ({where}) has no entrypoint and was never deployed",
                hint=f"deploy it first: stepengine deploy path/to/file.py:function -n {short}",
            )
        (spec,) = deploy_project(project, DeployRequest(name=short), run_build_push=False)
        return spec, None, None  # its pull steps were checked against prefect.yaml already
    from stepengine._suggest import did_you_mean

    # (a deployment without a name cannot be chosen by one)
    known = sorted(
        {str(r.spec.get("name")) for r in records.values()} | {n for n in in_file if n is not None}
    )
    raise ConfigError(
        f"no deployment named {name!r}" + did_you_mean(short, known),
        hint=(f"this project has: {', '.join(known)}" if known else "this project has none")
        + f" (deployed: {directory / '.prefect' / 'deployments.json'}"
        + (f"; in {project.config.file}" if project is not None else "")
        + "); deploy one with `stepengine deploy path/to/file.py:function -n NAME`",
    )


def how_to_run(spec: t.Mapping[str, t.Any], directory: str | os.PathLike[str]) -> str:
    """The line that tells a person how to run a recorded deployment (from the current directory)."""
    where = "" if os.path.samefile(directory, os.getcwd()) else f" {directory}"
    return (
        f"deployment {spec['flow_name']}/{spec['name']} recorded; run it with: "
        f"stepengine execute{where} -d {spec['name']}"
    )
