"""Where a project's configuration lives: ``prefect.yaml``, or the older two-file layout.

Prefect 2.10's projects kept their deployments in ``deployment.yaml`` beside ``prefect.yaml`` (which
then held only name, build, push and pull). Both layouts load into one ``Config``: steps from
``prefect.yaml``, deployments from both files (``deployment.yaml``'s first), each deployment still
pointing at its own file and line for error messages.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from stepengine.config import Config
from stepengine.errors import ConfigError
from stepengine.loader import Document, load_document

__all__ = ["Project", "load_project"]

DEPLOYMENT_FILE = "deployment.yaml"


@dataclasses.dataclass(frozen=True)
class Project:
    """A loaded project: its directory and its configuration."""

    directory: Path
    config: Config
    #: ``deployment.yaml`` when the project uses the two-file layout
    deployment_file: Path | None = None
    #: the document each deployment was read from (by position in ``config.deployments``)
    documents: tuple[Document | None, ...] = ()

    def locate(self, index: int, *path: object) -> tuple[str | None, int | None, int | None]:
        """``(file, line, col)`` of a key of the ``index``-th deployment, for error messages."""
        deployment = self.config.deployments[index]
        document = self.documents[index] if index < len(self.documents) else self.config.document
        if document is None:
            return (self.config.file, None, None)
        line, col = document.position(("deployments", deployment.index, *path)) or (None, None)
        return (document.file, line, col)


def _wrap_deployments(document: Document) -> Document:
    """A ``deployment.yaml`` may be ``{deployments: [...]}``, a list, or one deployment mapping."""
    data = document.data
    if isinstance(data, list):
        prefix: tuple[object, ...] = ("deployments",)
    elif isinstance(data, dict) and "deployments" not in data and "name" in data:
        prefix = ("deployments", 0)
        data = [data]
    else:
        return document
    positions = {prefix + path: position for path, position in document.positions.items()}
    positions[()] = (1, 1)
    return Document({"deployments": data}, positions, document.file)


def load_project(path: str | os.PathLike[str] = ".", *, strict: bool = False) -> Project:
    """Load ``path`` (a prefect.yaml, or a directory holding one) and any ``deployment.yaml`` beside it."""
    from stepengine.api import _from_document

    target = Path(path)
    file = target / "prefect.yaml" if target.is_dir() else target
    if not file.is_file():
        raise ConfigError(f"{file}: no such file", hint="create one with `stepengine init`")
    config = _from_document(load_document(file), strict=strict)
    second = file.parent / DEPLOYMENT_FILE
    if file.name == DEPLOYMENT_FILE or not second.is_file():
        return Project(file.parent.resolve(), config, None, tuple(config.document for _ in config.deployments))
    extra = _from_document(_wrap_deployments(load_document(second)), strict=strict)
    unexpected = [s for s in extra.sections if s]
    if unexpected:
        raise ConfigError(
            f"{second}: top-level {', '.join(unexpected)} belong in prefect.yaml; "
            "deployment.yaml holds only deployments",
        )
    deployments = (*extra.deployments, *config.deployments)
    documents = (*(extra.document for _ in extra.deployments), *(config.document for _ in config.deployments))
    merged = config.replace(
        data={**config.data, "deployments": [d.data for d in deployments]},
        deployments=deployments,
        warnings=config.warnings + extra.warnings,
    )
    return Project(file.parent.resolve(), merged, second, documents)
