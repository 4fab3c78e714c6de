"""Code locations for ``flow.from_source(...)``, as Prefect's ``prefect.runner.storage`` names them.

Plain records: stepengine turns them into pull steps (``git_clone``, ``pull_from_remote_storage``)
when the deployment is rendered. Credentials may hold blocks (``Secret.load("name")``), which stay
``{{ prefect.blocks.secret.name }}`` placeholders in the pull steps, as in Prefect.
"""

from __future__ import annotations

import typing as t


class GitRepository:
    """A git repository: ``url``, and optionally ``credentials`` (a mapping, e.g.
    ``{"access_token": Secret.load("gh-token")}``, or a credentials block), ``branch``, ``commit_sha``,
    ``include_submodules``. ``name``, ``pull_interval`` and ``directories`` are accepted and unused."""

    def __init__(
        self,
        url: str,
        credentials: t.Any = None,
        name: str | None = None,
        branch: str | None = None,
        include_submodules: bool = False,
        pull_interval: int | None = 60,
        directories: t.Sequence[str] | None = None,
        commit_sha: str | None = None,
    ) -> None:
        self.url = url
        self.credentials = credentials
        self.name = name
        self.branch = branch
        self.include_submodules = include_submodules
        self.pull_interval = pull_interval
        self.directories = directories
        self.commit_sha = commit_sha

    def __repr__(self) -> str:
        return f"GitRepository(url={self.url!r}, branch={self.branch!r})"


class RemoteStorage:
    """An fsspec URL (``s3://bucket/path``, ``gs://…``, ``az://…``) and its fsspec options."""

    def __init__(self, url: str, pull_interval: int | None = 60, **settings: t.Any) -> None:
        self.url = url
        self.pull_interval = pull_interval
        self.settings = settings

    def __repr__(self) -> str:
        return f"RemoteStorage(url={self.url!r})"
