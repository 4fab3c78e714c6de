"""``pull_with_block``: pull a project with a storage block, as Prefect's step of that name does.

The block is read through the run's block store (``--values``, environment, local store, Prefect API)
and its type decides which of our steps does the work:

========================================  ==========================================================
block type                                pulled with
========================================  ==========================================================
``s3-bucket`` (``s3``: Prefect 2.x)       ``pull_from_blob_storage`` (``s3://bucket/folder``)
``gcs-bucket`` (``gcs``)                  ``pull_from_blob_storage`` (``gs://bucket/folder``)
``azure-blob-storage-container``          ``pull_from_blob_storage`` (``az://container/folder``)
(``azure``)
``remote-file-system``                    ``pull_from_blob_storage`` (its ``basepath``, ``settings``)
``local-file-system``                     a copy of its ``basepath`` (honouring its ``.prefectignore``)
``github-repository`` (``github``),       ``git_clone`` (``reference`` as the branch or tag, the
``gitlab-repository``,                    credentials block's token)
``bitbucket-repository``
========================================  ==========================================================

Like Prefect, the files land in ``<block type>-<block name>`` under the working directory (replaced
as a whole), which is returned as ``{"directory": ...}``.
"""

from __future__ import annotations

import os
import shutil
import typing as t
from pathlib import Path

from stepengine.step_api import StepError, atomic_directory, get_logger, load_block

__all__ = ["pull_with_block"]


def pull_with_block(block_document_name: str, block_type_slug: str) -> dict[str, str]:
    """Pull code with the storage block ``block_type_slug/block_document_name``.

    Returns ``{"directory": "<block_type_slug>-<block_document_name>"}`` (relative to the working
    directory, where the files now are).

    Example (``prefect.yaml``; Prefect writes this step for a deployment stored in a block)::

        pull:
          - prefect.deployments.steps.pull_with_block:
              block_type_slug: s3-bucket
              block_document_name: my-code
    """
    pull = _PULLERS.get(block_type_slug)
    if pull is None:
        raise StepError(
            (
                f"pull_with_block cannot pull with a {block_type_slug!r} block "
                f"({block_type_slug}/{block_document_name})"
            ),
            hint="supported block types: " + ", ".join(sorted(_PULLERS)),
        )
    data = load_block(block_type_slug, block_document_name)
    if not isinstance(data, dict):
        raise StepError(f"block {block_type_slug}/{block_document_name} is not a mapping of fields")
    directory = f"{block_type_slug}-{block_document_name}"
    pull(data, directory)
    get_logger().info("pulled code with block %s/%s into %s", block_type_slug, block_document_name, directory)
    return {"directory": directory}


# --------------------------------------------------------------------------- blob storage


def _blob(url: str, directory: str, credentials: t.Any = None, **options: t.Any) -> None:
    from .blob import pull_from_blob_storage

    if credentials is not None and not isinstance(credentials, dict):
        raise StepError("the block's credentials are not a mapping of fields")
    pull_from_blob_storage(url, directory=directory, credentials=credentials or None, **options)


def _join(scheme: str, bucket: t.Any, folder: t.Any) -> str:
    if not bucket:
        raise StepError("the block names no bucket or container")
    path = str(folder or "").strip("/")
    return f"{scheme}://{str(bucket).strip('/')}/{path}" if path else f"{scheme}://{str(bucket).strip('/')}"


def _s3_bucket(data: dict[str, t.Any], directory: str) -> None:
    _blob(_join("s3", data.get("bucket_name"), data.get("bucket_folder")), directory, data.get("credentials"))


def _gcs_bucket(data: dict[str, t.Any], directory: str) -> None:
    credentials = dict(data.get("gcp_credentials") or {})
    if data.get("project") and not credentials.get("project"):
        credentials["project"] = data["project"]
    _blob(_join("gs", data.get("bucket"), data.get("bucket_folder")), directory, credentials)


def _azure_container(data: dict[str, t.Any], directory: str) -> None:
    _blob(
        _join("az", data.get("container_name"), data.get("base_folder")), directory, data.get("credentials")
    )


def _remote_file_system(data: dict[str, t.Any], directory: str) -> None:
    basepath = data.get("basepath")
    if not basepath:
        raise StepError("the remote-file-system block has no basepath")
    settings = data.get("settings") or {}
    if not isinstance(settings, dict):
        raise StepError("the remote-file-system block's settings are not a mapping")
    _blob(str(basepath), directory, **settings)


def _legacy_s3(data: dict[str, t.Any], directory: str) -> None:
    """Prefect 2.x's ``S3`` file-system block: ``bucket_path`` plus the two keys."""
    keys = {k: data[k] for k in ("aws_access_key_id", "aws_secret_access_key") if data.get(k)}
    _blob(_join("s3", *_split_bucket_path(data)), directory, keys or None)


def _legacy_gcs(data: dict[str, t.Any], directory: str) -> None:
    """Prefect 2.x's ``GCS`` file-system block: ``bucket_path``, ``service_account_info``, ``project``."""
    credentials = {k: data[k] for k in ("service_account_info", "project") if data.get(k)}
    _blob(_join("gs", *_split_bucket_path(data)), directory, credentials or None)


def _legacy_azure(data: dict[str, t.Any], directory: str) -> None:
    """Prefect 2.x's ``Azure`` file-system block: ``bucket_path`` and ``azure_storage_*`` fields."""
    options: dict[str, t.Any] = {}
    for field, option in (
        ("azure_storage_connection_string", "connection_string"),
        ("azure_storage_account_name", "account_name"),
        ("azure_storage_account_key", "account_key"),
        ("azure_storage_tenant_id", "tenant_id"),
        ("azure_storage_client_id", "client_id"),
        ("azure_storage_client_secret", "client_secret"),
    ):
        if data.get(field):
            options[option] = data[field]
    if data.get("azure_storage_anon") is False:
        options["anon"] = False
    _blob(_join("az", *_split_bucket_path(data)), directory, **options)


def _split_bucket_path(data: dict[str, t.Any]) -> tuple[str, str]:
    bucket, _, folder = str(data.get("bucket_path") or "").strip("/").partition("/")
    return bucket, folder


# --------------------------------------------------------------------------- local files


def _local_file_system(data: dict[str, t.Any], directory: str) -> None:
    """Copy ``basepath`` (leaving out what its ``.prefectignore`` matches), atomically."""
    from ._blob_io import ignore_spec

    basepath = data.get("basepath")
    if not basepath:
        raise StepError("the local-file-system block has no basepath")
    source = Path(os.path.expanduser(str(basepath))).resolve()
    if not source.is_dir():
        raise StepError(f"the local-file-system block's basepath {str(source)!r} is not a directory")
    spec = ignore_spec(source, ".prefectignore")
    target = (Path.cwd() / directory).resolve()
    if target == source:
        return  # already there (Prefect skips the copy too)
    building: list[Path] = []

    def ignored(folder: str, names: list[str]) -> set[str]:
        here = Path(folder)
        # a basepath that contains the working directory must not copy the copy into itself
        skip = {n for n in names if here / n == target or (building and here / n == building[0])}
        if spec is not None:
            rel = here.relative_to(source).as_posix()
            prefix = "" if rel == "." else rel + "/"
            skip |= {n for n in names if spec.match_file(prefix + n + ("/" if (here / n).is_dir() else ""))}
        return skip

    with atomic_directory(target) as tmp:
        building.append(tmp.resolve())
        shutil.copytree(source, tmp, dirs_exist_ok=True, ignore=ignored, symlinks=True)


# --------------------------------------------------------------------------- git repositories


def _clone(url: t.Any, reference: t.Any, credentials: dict[str, t.Any] | None, directory: str) -> None:
    from .git import git_clone

    if not url:
        raise StepError("the repository block names no repository")
    git_clone(str(url), branch=reference or None, credentials=credentials, clone_directory_name=directory)


def _token_credentials(block: t.Any, username: str | None) -> dict[str, t.Any] | None:
    """A credentials block's token (a string, or a Secret block's ``{"value": …}``) for git_clone."""
    if not isinstance(block, dict):
        return None
    token = block.get("token")
    if isinstance(token, dict) and "value" in token:
        token = token["value"]
    if not token:
        return None
    return {"token": token, **({"username": username} if username else {})}


def _github_repository(data: dict[str, t.Any], directory: str) -> None:
    _clone(
        data.get("repository_url"),
        data.get("reference"),
        _token_credentials(data.get("credentials"), None),
        directory,
    )


def _gitlab_repository(data: dict[str, t.Any], directory: str) -> None:
    # prefect-gitlab sends the token as oauth2:<token>
    _clone(
        data.get("repository"),
        data.get("reference"),
        _token_credentials(data.get("credentials"), "oauth2"),
        directory,
    )


def _bitbucket_repository(data: dict[str, t.Any], directory: str) -> None:
    block = data.get("bitbucket_credentials")
    username = (block.get("username") if isinstance(block, dict) else None) or "x-token-auth"
    _clone(data.get("repository"), data.get("reference"), _token_credentials(block, username), directory)


def _legacy_github(data: dict[str, t.Any], directory: str) -> None:
    """Prefect 2.x's ``GitHub`` file-system block: ``repository``, ``reference``, ``access_token``."""
    token = data.get("access_token")
    _clone(data.get("repository"), data.get("reference"), {"token": token} if token else None, directory)


_PULLERS: dict[str, t.Callable[[dict[str, t.Any], str], None]] = {
    "s3-bucket": _s3_bucket,
    "gcs-bucket": _gcs_bucket,
    "azure-blob-storage-container": _azure_container,
    "remote-file-system": _remote_file_system,
    "local-file-system": _local_file_system,
    "github-repository": _github_repository,
    "gitlab-repository": _gitlab_repository,
    "bitbucket-repository": _bitbucket_repository,
    # Prefect 2.x's own file-system blocks (gone in 3.0)
    "s3": _legacy_s3,
    "gcs": _legacy_gcs,
    "azure": _legacy_azure,
    "github": _legacy_github,
}
