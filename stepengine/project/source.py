"""``stepengine.from_source(source, entrypoint).deploy(...)``: the Python form of ``stepengine deploy``.

A code location becomes the pull steps a worker needs:

- a local directory (a path, ``file://…`` or ``local://…``, as Prefect's local storage) →
  ``set_working_directory`` to it;
- a git URL (``https://…``, ``git@host:path``, ``ssh://``, ``git://``, ``….git``, ``file://….git``), or a
  repository object with ``url`` (and ``branch``, ``credentials`` / ``access_token``) →
  ``git_clone`` + ``set_working_directory`` into the clone (entrypoints are relative to its root);
- an fsspec URL (``s3://``, ``gs://``, ``gcs://``, ``az://``, ``abfs://``…), or a storage object with
  ``url`` and ``settings`` (fsspec options; use block placeholders for keys) →
  ``pull_from_remote_storage`` + ``set_working_directory`` into what it pulled.

``.deploy`` builds the same in-memory configuration a prefect.yaml would give and hands it to the one
deploy implementation (``stepengine.project.deploy``), so the CLI and Python produce the same spec.
"""

from __future__ import annotations

import os
import typing as t

from stepengine.errors import ConfigError

if t.TYPE_CHECKING:
    from stepengine.events import EventHandler
    from stepengine.resolvers import Resolver

__all__ = ["FlowSource", "GitRepository", "build_from_flow", "from_source"]

_STORAGE_SCHEMES = ("s3", "gs", "gcs", "az", "abfs", "abfss", "adl", "memory")
_GIT_SCHEMES = ("http", "https", "ssh", "git", "git+ssh")
#: as Prefect: ``file://`` and ``local://`` name a local directory (a git repository when the path ends
#: in .git)
_LOCAL_SCHEMES = ("file", "local")


def _is_git_url(text: str) -> bool:
    """``….git`` or scp-like ``user@host:path`` (URLs with a scheme are decided by the scheme)."""
    if "://" in text:
        return False
    return text.endswith(".git") or ("@" in text and ":" in text.split("@", 1)[1])


class GitRepository(t.NamedTuple):
    """A git repository for ``from_source``, as Prefect's ``prefect.runner.storage.GitRepository``:
    ``credentials`` is a mapping (``{"access_token": "{{ prefect.blocks.secret.gh-token }}"}``) or a
    credentials-block placeholder; both stay placeholders in the pull steps and are resolved when the
    deployment runs. ``name``, ``pull_interval`` and ``directories`` are accepted and unused."""

    url: str
    credentials: t.Mapping[str, t.Any] | str | None = None
    name: str | None = None
    branch: str | None = None
    include_submodules: bool = False
    pull_interval: int | None = 60
    directories: t.Sequence[str] | None = None
    commit_sha: str | None = None


def _stored(value: t.Any) -> t.Any:
    """What a deployment stores for ``value``: a loaded block (Prefect's, or the stand-in's
    ``Secret.load("name")``) is its ``{{ prefect.blocks.<type>.<name> }}`` placeholder, as Prefect
    writes it; anything else as it is."""
    name = getattr(value, "_block_document_name", None)
    if not isinstance(name, str) or not name:
        return value
    slug = getattr(value, "_block_type_slug", None)
    if not slug and callable(getattr(value, "get_block_type_slug", None)):
        slug = value.get_block_type_slug()
    return f"{{{{ prefect.blocks.{slug}.{name} }}}}" if slug else value


def _pull_steps(source: object) -> tuple[list[dict[str, t.Any]], str | None]:
    """The pull steps for ``source`` and, for a local directory, its path."""
    url = getattr(source, "url", None)
    settings = getattr(source, "settings", None)
    if url is not None and settings is not None and not isinstance(source, (str, os.PathLike)):
        # a storage object (Prefect's RemoteStorage has url + settings): fsspec options, which
        # should hold block placeholders rather than raw keys, since they land in the pull steps
        step = {"id": "pull_code", "url": str(url), **dict(settings)}
        return [
            {"prefect.deployments.steps.pull_from_remote_storage": step},
            {"prefect.deployments.steps.set_working_directory": {"directory": "{{ pull_code.directory }}"}},
        ], None
    if url is not None and not isinstance(source, (str, os.PathLike)):
        clone: dict[str, t.Any] = {"id": "clone", "repository": str(url)}
        branch = getattr(source, "branch", None)
        if branch:
            clone["branch"] = branch
        commit_sha = getattr(source, "commit_sha", None)
        if commit_sha:
            clone["commit_sha"] = commit_sha
        if getattr(source, "include_submodules", False):
            clone["include_submodules"] = True
        credentials = _stored(getattr(source, "credentials", None))
        access_token = _stored(getattr(source, "access_token", None))
        if isinstance(credentials, str):  # e.g. "{{ prefect.blocks.github-credentials.main }}"
            clone["credentials"] = credentials
        elif credentials is not None:
            clone["credentials"] = {key: _stored(value) for key, value in dict(credentials).items()}
        if access_token:
            clone["access_token"] = access_token
        return _clone_steps(clone), None
    if isinstance(source, os.PathLike):
        source = os.fspath(source)
    if not isinstance(source, str) or not source:
        raise ConfigError(f"from_source: cannot use {source!r} as a code location")
    scheme = source.split("://", 1)[0].lower() if "://" in source else ""
    if scheme in _STORAGE_SCHEMES:
        return [
            {"prefect.deployments.steps.pull_from_remote_storage": {"id": "pull_code", "url": source}},
            {"prefect.deployments.steps.set_working_directory": {"directory": "{{ pull_code.directory }}"}},
        ], None
    if scheme in _LOCAL_SCHEMES and not source.rstrip("/").endswith(".git"):
        source = _local_path(source)
    elif scheme in _GIT_SCHEMES or scheme in _LOCAL_SCHEMES or _is_git_url(source):
        return _clone_steps({"id": "clone", "repository": source}), None
    from pathlib import Path

    path = Path(source).expanduser()
    if not path.is_dir():
        raise ConfigError(
            f"from_source: {source!r} is not a directory, a git URL or a storage URL (s3://, gs://, az://)"
        )
    directory = str(path.resolve())
    return [{"prefect.deployments.steps.set_working_directory": {"directory": directory}}], directory


def _local_path(url: str) -> str:
    """``file:///srv/app`` → ``/srv/app`` (``file://localhost/…`` too; percent-escapes decoded)."""
    from urllib.parse import unquote, urlsplit

    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):  # file://relative/dir, as Prefect reads it: all after ://
        return unquote(url.split("://", 1)[1])
    return unquote(parts.path)


def _clone_steps(clone: dict[str, t.Any]) -> list[dict[str, t.Any]]:
    return [
        {"prefect.deployments.steps.git_clone": clone},
        {"prefect.deployments.steps.set_working_directory": {"directory": "{{ clone.directory }}"}},
    ]


def _entrypoint_of(function: t.Callable[..., t.Any], directory: str | None) -> str:
    """``path/file.py:name`` for a module-level function (or a Prefect flow: its ``.fn``) inside
    ``directory``; read from the function object, so the caller must have imported it already."""
    import inspect

    target = getattr(function, "fn", function)
    name = getattr(target, "__qualname__", "")
    try:
        file = inspect.getsourcefile(target)
    except TypeError:
        file = None
    if not file or not name or "." in name or "<" in name:
        raise ConfigError(
            f"from_source: {function!r} is not a module-level function; give the entrypoint as "
            f"path/file.py:function"
        )
    if directory is None:
        raise ConfigError("from_source: with a remote source, give the entrypoint as path/file.py:function")
    relative = os.path.relpath(os.path.realpath(file), os.path.realpath(directory))
    if relative.startswith(os.pardir):
        raise ConfigError(f"from_source: {file} is not inside {directory}")
    from pathlib import Path

    return f"{Path(relative).as_posix()}:{name}"


class FlowSource:
    """A code location and an entrypoint in it; ``.deploy`` renders (and registers) a deployment."""

    def __init__(self, source: object, entrypoint: str | t.Callable[..., t.Any]) -> None:
        self.source = source
        self.pull_steps, self.local_directory = _pull_steps(source)
        self.entrypoint = (
            entrypoint if isinstance(entrypoint, str) else _entrypoint_of(entrypoint, self.local_directory)
        )

    def __repr__(self) -> str:
        return f"FlowSource({self.source!r}, {self.entrypoint!r})"

    def deploy(
        self,
        name: str,
        work_pool_name: str | None = None,
        job_variables: t.Mapping[str, t.Any] | None = None,
        parameters: t.Mapping[str, t.Any] | None = None,
        image: str | None = None,
        build: bool = False,
        push: bool = False,
        *,
        work_queue_name: str | None = None,
        description: str | None = None,
        tags: t.Sequence[str] | None = None,
        version: str | None = None,
        cron: str | None = None,
        interval: float | None = None,
        schedules: t.Sequence[t.Mapping[str, t.Any]] | None = None,
        enforce_parameter_schema: bool = True,
        paused: bool = False,
        dockerfile: str = "auto",
        push_credentials: t.Mapping[str, t.Any] | str | None = None,
        build_directory: str | os.PathLike[str] | None = None,
        prefect_api_url: str | None = None,
        register: bool = True,
        record: bool = True,
        print_next_steps: bool = True,
        resolver: Resolver | None = None,
        on_event: EventHandler | None = None,
        steps: t.Mapping[str, t.Callable[..., t.Any]] | None = None,
    ) -> dict[str, t.Any]:
        """Render the deployment spec (the same JSON as ``stepengine deploy``) and, when a Prefect
        API URL is given or ``PREFECT_API_URL`` is set (and ``register`` is true), create or update
        it on that server.

        With ``image`` and ``build=True`` the Docker build step runs first (``dockerfile="auto"``
        generates one that installs ``requirements.txt``), in ``build_directory`` (default: the
        local source directory, else the current one); ``push=True`` pushes the image (with
        ``push_credentials``: a mapping or a block placeholder). The image goes into
        ``job_variables.image``.

        ``record`` (default) leaves the spec in the project's ``.prefect/deployments.json`` (the
        local source directory, else ``build_directory``, else the current directory) for
        ``stepengine execute -d NAME``, as Prefect keeps it on its server; ``print_next_steps``
        (default, as in Prefect) says so on stderr, with the command that runs it.

        Example::

            spec = stepengine.from_source("https://github.com/org/repo.git", "flows/etl.py:etl").deploy(
                "nightly", work_pool_name="process", cron="0 3 * * *", parameters={"limit": 10}
            )
        """
        from stepengine.config import build_config
        from stepengine.loader import Document
        from stepengine.project.deploy import DeployRequest, deploy_project
        from stepengine.project.layout import Project

        job_variables = dict(job_variables or {})
        data: dict[str, t.Any] = {"pull": self.pull_steps}
        if image is not None:
            repository, _, tag = image.rpartition(":") if ":" in image.rsplit("/", 1)[-1] else (image, "", "")
            if build:
                data["build"] = [
                    {
                        "prefect_docker.deployments.steps.build_docker_image": {
                            "id": "build_image",
                            "image_name": repository,
                            "tag": tag or "latest",
                            "dockerfile": dockerfile,
                        }
                    }
                ]
                job_variables.setdefault("image", "{{ build_image.image }}")
            else:
                job_variables.setdefault("image", image)
            if push:
                push_step: dict[str, t.Any] = {"image_name": repository, "tag": tag or "latest"}
                if push_credentials is not None:
                    push_step["credentials"] = push_credentials
                data["push"] = [{"prefect_docker.deployments.steps.push_docker_image": push_step}]
        elif build or push:
            raise ConfigError("from_source(...).deploy: build/push need an image=")
        schedule_list = [dict(s) for s in schedules or ()]
        if cron:
            schedule_list.append({"cron": cron})
        if interval is not None:
            schedule_list.append({"interval": interval})
        data["deployments"] = [{"name": name}]
        config = build_config(Document(data, {(): (1, 1)}, "<from_source>"))
        from pathlib import Path

        directory = Path(build_directory or self.local_directory or os.getcwd()).resolve()
        project = Project(directory, config, None, (None,))
        request = DeployRequest(
            name=name,
            entrypoint=self.entrypoint,
            work_pool_name=work_pool_name,
            work_queue_name=work_queue_name,
            job_variables=job_variables,
            parameters=dict(parameters or {}),
            version=version,
            tags=tags,
            description=description,
            schedules=schedule_list or None,
            enforce_parameter_schema=enforce_parameter_schema,
            paused=paused,
        )
        self._resolver = resolver
        (spec,) = deploy_project(
            project,
            request,
            resolver=resolver,
            on_event=on_event,
            steps=steps,
            flow_source=None if self.local_directory else self._fetch_flow,
            record=record,
        )
        if record and print_next_steps:
            import sys

            from stepengine.project.records import how_to_run

            print(how_to_run(spec, directory), file=sys.stderr)
        url = prefect_api_url or os.environ.get("PREFECT_API_URL")
        if url and register:
            from stepengine.project.prefect_api import register_deployment

            ids = register_deployment(spec, url)
            spec["id"], spec["flow_id"] = ids["deployment_id"], ids["flow_id"]
        return spec

    def _fetch_flow(self, entrypoint: str) -> t.Any:
        """Run the pull steps in a temporary directory to read the flow (as a worker would get it)."""
        import tempfile

        import stepengine
        from stepengine.config import build_config
        from stepengine.loader import Document
        from stepengine.project.flows import flow_at

        config = build_config(Document({"pull": self.pull_steps}, {(): (1, 1)}, "<from_source>"))
        previous = os.getcwd()
        with tempfile.TemporaryDirectory(prefix="stepengine-source-") as scratch:
            os.chdir(scratch)
            try:
                stepengine.run(
                    config, sections=["pull"], resolver=getattr(self, "_resolver", None), keep_directory=True
                )
                return flow_at(entrypoint, root=os.getcwd())
            finally:
                os.chdir(previous)


def from_source(source: object, entrypoint: str | t.Callable[..., t.Any]) -> FlowSource:
    """A flow at ``entrypoint`` (``path/file.py:function``, relative to the source's root) in ``source``:
    a local directory, a git URL or repository object, or an fsspec URL. See ``FlowSource.deploy``.

    For a local directory the entrypoint may also be the function itself (a plain function or a
    Prefect flow), already imported from a file inside that directory.
    """
    return FlowSource(source, entrypoint)


def build_from_flow(
    flow: t.Callable[..., t.Any],
    name: str,
    *,
    work_pool_name: str | None = None,
    work_queue_name: str | None = None,
    parameters: t.Mapping[str, t.Any] | None = None,
    job_variables: t.Mapping[str, t.Any] | None = None,
    infra_overrides: t.Mapping[str, t.Any] | None = None,
    path: str | os.PathLike[str] | None = None,
    entrypoint: str | None = None,
    storage: object = None,
    apply: bool = False,
    **options: t.Any,
) -> dict[str, t.Any]:
    """The older ``Deployment.build_from_flow(...)`` (and ``.apply()``) in one call.

    The code location is ``storage`` (a URL or a storage/repository object), else ``path``, else the
    current directory; the entrypoint is given or read from ``flow``. ``infra_overrides`` (the older
    name) are merged into ``job_variables``. With ``apply=True`` the deployment is registered on the
    Prefect server (``prefect_api_url=`` or ``PREFECT_API_URL``). Other ``options`` go to
    ``FlowSource.deploy`` (``cron``, ``tags``, ``description``, ``image``...). Returns the spec.
    """
    source = FlowSource(
        storage if storage is not None else os.fspath(path or os.getcwd()), entrypoint or flow
    )
    variables = {**(job_variables or {}), **(infra_overrides or {})}
    return source.deploy(
        name,
        work_pool_name,
        job_variables=variables,
        parameters=parameters,
        work_queue_name=work_queue_name,
        register=apply,
        **options,
    )
