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
from stepengine.loader import Document

__all__ = ["Project", "empty_project", "load_project"]


@dataclasses.dataclass(frozen=True)
class Project:
    """A loaded project: its directory and its configuration."""

    directory: Path
    config: Config
    #: ``deployment.yaml`` when the project uses the two-file layout
    deployment_file: Path | None = None
    #: the document each deployment was read from (by position in ``config.deployments``)
    documents: tuple[Document | None, ...] = ()

    def locate(self, index: int, *path: str | int) -> tuple[str | None, int | None, int | None]:
        """``(file, line, col)`` of a key of the ``index``-th deployment, for error messages."""
        deployment = self.config.deployments[index]
        document = self.documents[index] if index < len(self.documents) else self.config.document
        if document is None:
            return (self.config.file, None, None)
        line, col = document.position(("deployments", deployment.index, *path)) or (None, None)
        return (document.file, line, col)


def load_project(path: str | os.PathLike[str] = ".", *, strict: bool = False) -> Project:
    """Load ``path`` (a prefect.yaml, or a directory holding one) and any ``deployment.yaml`` beside it.

    Problems the files were loaded with stay in ``config.problems``: ``deploy_project`` reports them
    with every step problem before anything runs (``stepengine.checks``).
    """
    from stepengine.checks import load_layout

    target = Path(path)
    file = target / "prefect.yaml" if target.is_dir() else target
    if not file.is_file():
        raise ConfigError(f"{file}: no such file", hint="create one with `stepengine init`")
    layout = load_layout(file, strict=strict)
    second = Path(layout.deployment_file) if layout.deployment_file else None
    return Project(file.parent.resolve(), layout.config, second, layout.documents)


def empty_project(directory: str | os.PathLike[str] = ".") -> Project:
    """A directory without prefect.yaml, as ``prefect deploy`` takes it: no steps, no deployments
    (the deployment comes from the command line; its pull is the directory itself)."""
    from stepengine.config import build_config

    path = Path(directory).resolve()
    return Project(path, build_config(Document({}, {(): (1, 1)}, str(path / "prefect.yaml"))), None, ())
