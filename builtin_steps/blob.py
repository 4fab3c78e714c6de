"""Blob-storage steps: pull and push project code through fsspec (S3, GCS, Azure, local, memory).

Two generic steps (``pull_from_blob_storage``, ``push_to_blob_storage``) and the Prefect-named ones
(``pull_from_remote_storage``, ``push_to_s3``/``pull_from_s3``, ``push_to_gcs``/``pull_from_gcs``,
``push_to_azure_blob_storage``/``pull_from_azure_blob_storage``), which keep Prefect's arguments and
outputs and share one engine:

- every object key is checked before anything is written (absolute, ``..``, ``.``, empty segments,
  backslash, NUL, drive letters, symlink escapes): one bad key fails the pull, naming it;
- a pull into its own directory builds a temporary sibling and swaps it in when complete; a pull into
  the working directory (Prefect's ``pull_from_s3`` & co.) stages every download first and only moves
  files into place once all of them arrived, so a failed pull writes nothing;
- transfers run concurrently (fsspec's async API, or a thread pool for sync file systems), each retried
  with backoff on transient errors; permission and not-found errors fail at once; an S3 pull with the
  usual options (keys, endpoint, client/config arguments, profile, anon) lists and downloads with
  botocore directly, without importing s3fs, and gives the same files, outputs and errors;
- downloads stream to disk in bounded memory, and files and folders get the modes the umask gives;
- a pull killed mid-way (SIGKILL) leaves its staging folder, which the next pull into the same
  directory removes and which a push never uploads;
- caps on file count and total bytes are checked against the listing before any download;
- a re-pull reuses files whose remote size + ETag/mtime and local size/mtime/inode are unchanged (a
  small manifest under ``$STEPENGINE_HOME/blob-manifests``), so it transfers nothing.

fsspec and the backends are optional extras, imported only inside the steps.
"""

from __future__ import annotations

import json
import os
import typing as t
from pathlib import Path
from urllib.parse import urlsplit

from stepengine.step_api import StepError, mask

from ._blob_io import (
    BACKENDS,
    DEFAULT_CONCURRENCY,
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_FILES,
    DEFAULT_RETRIES,
    pull,
    push,
    require_backend,
    url_scheme,
)

__all__ = [
    "pull_from_azure_blob_storage",
    "pull_from_blob_storage",
    "pull_from_gcs",
    "pull_from_remote_storage",
    "pull_from_s3",
    "push_to_azure_blob_storage",
    "push_to_blob_storage",
    "push_to_gcs",
    "push_to_s3",
]

#: storage-option names whose values are credentials (masked as soon as the step sees them)
_SECRET_OPTIONS = {
    "key",
    "secret",
    "token",
    "password",
    "account_key",
    "sas_token",
    "connection_string",
    "client_secret",
    "credential",
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
    "minio_root_user",
    "minio_root_password",
    "service_account_info",
    "private_key",
}

# --------------------------------------------------------------------------- generic steps


def pull_from_blob_storage(
    url: str | None = None,
    *,
    container: str | None = None,
    folder: str | None = None,
    protocol: str | None = None,
    directory: str | None = None,
    credentials: dict[str, t.Any] | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    retries: int = DEFAULT_RETRIES,
    max_files: int = DEFAULT_MAX_FILES,
    max_bytes: int = DEFAULT_MAX_BYTES,
    **storage_options: t.Any,
) -> dict[str, t.Any]:
    """Copy every object under ``url`` into ``directory``, atomically.

    :param url: e.g. ``s3://bucket/folder``, ``gs://…``, ``az://container/folder``, ``file:///…``,
        ``memory://…``. Or give ``container`` + ``folder`` (+ ``protocol``) instead.
    :param directory: where to put the files (default: ``<bucket>/<folder>`` under the working
        directory). If it is the working directory (or contains it), files are merged into it;
        otherwise it is replaced as a whole once every object has arrived.
    :param credentials: a credentials block (AWS, GCP or Azure fields), mapped to the backend's options.
    :param concurrency: transfers in flight at once.
    :param retries: further attempts per object after a transient error.
    :param max_files, max_bytes: refuse to pull more than this (checked before any download).
    :param storage_options: passed to the fsspec file system (e.g. ``endpoint_url``).

    Returns ``{"directory", "url", "files", "bytes", "transferred"}``.

    Example::

        pull:
          - pull_from_blob_storage:
              url: s3://my-bucket/my-project
              directory: code
    """
    url = _resolve_url(url, container, folder, protocol, credentials)
    scheme = url_scheme(url)
    if directory is None:
        directory = _default_directory(url)
    options = _storage_options(scheme, credentials, storage_options)
    target = Path(directory)
    stats = pull(
        url,
        options,
        target,
        concurrency=concurrency,
        retries=retries,
        max_files=max_files,
        max_bytes=max_bytes,
    )
    return {"directory": os.fspath(directory), "url": url, **stats}


def push_to_blob_storage(
    url: str,
    directory: str = ".",
    ignore_file: str | None = ".prefectignore",
    credentials: dict[str, t.Any] | None = None,
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    retries: int = DEFAULT_RETRIES,
    **storage_options: t.Any,
) -> dict[str, t.Any]:
    """Upload ``directory`` to ``url``, leaving out what ``ignore_file`` (gitignore syntax) matches.

    ``ignore_file`` is read relative to ``directory``. Symlinks that lead outside ``directory`` are
    never followed (so a link to ``~/.aws/credentials`` is not uploaded).

    Returns ``{"url", "files", "bytes"}``.

    Example::

        push:
          - push_to_blob_storage:
              url: s3://my-bucket/my-project
    """
    scheme = url_scheme(url)
    options = _storage_options(scheme, credentials, storage_options)
    files, total = push(url, options, Path(directory), ignore_file, concurrency=concurrency, retries=retries)
    return {"url": url, "files": files, "bytes": total}


# --------------------------------------------------------------------------- Prefect-named steps


def pull_from_remote_storage(url: str, **settings: t.Any) -> dict[str, str]:
    """Prefect's ``prefect.deployments.steps.pull_from_remote_storage``.

    Pulls ``url`` into ``<netloc>/<path>`` under the working directory (replacing it atomically);
    ``settings`` are fsspec storage options. Returns ``{"directory": "<netloc>/<path>"}``.
    """
    # Prefect's generated step carries `requires: s3fs`; its runner consumes that key, never fsspec.
    settings.pop("requires", None)
    directory = _default_directory(url)
    options = _storage_options(url_scheme(url), None, settings)
    pull(url, options, Path(directory))
    return {"directory": directory}


def push_to_s3(
    bucket: str,
    folder: str,
    credentials: dict[str, t.Any] | None = None,
    client_parameters: dict[str, t.Any] | None = None,
    ignore_file: str | None = ".prefectignore",
) -> dict[str, str]:
    """``prefect_aws.deployments.steps.push_to_s3``: upload the working directory to the bucket folder."""
    options = _s3_options(credentials, client_parameters)
    push(_join_url("s3", bucket, folder), options, Path.cwd(), ignore_file)
    return {"bucket": bucket, "folder": folder}


def pull_from_s3(
    bucket: str,
    folder: str,
    credentials: dict[str, t.Any] | None = None,
    client_parameters: dict[str, t.Any] | None = None,
) -> dict[str, str]:
    """``prefect_aws.deployments.steps.pull_from_s3``: pull the bucket folder into the working directory."""
    options = _s3_options(credentials, client_parameters)
    return {"bucket": bucket, "folder": folder, "directory": _pull_into_cwd("s3", bucket, folder, options)}


def push_to_gcs(
    bucket: str,
    folder: str,
    project: str | None = None,
    credentials: dict[str, t.Any] | None = None,
    ignore_file: str | None = ".prefectignore",
) -> dict[str, str]:
    """``prefect_gcp.deployments.steps.push_to_gcs``: upload the working directory to the bucket folder."""
    options = _gcs_options(credentials, {"project": project} if project else {})
    push(_join_url("gs", bucket, folder), options, Path.cwd(), ignore_file)
    return {"bucket": bucket, "folder": folder}


def pull_from_gcs(
    bucket: str,
    folder: str,
    project: str | None = None,
    credentials: dict[str, t.Any] | None = None,
) -> dict[str, str]:
    """``prefect_gcp.deployments.steps.pull_from_gcs``: pull the bucket folder into the working directory."""
    options = _gcs_options(credentials, {"project": project} if project else {})
    return {"bucket": bucket, "folder": folder, "directory": _pull_into_cwd("gs", bucket, folder, options)}


def push_to_azure_blob_storage(
    container: str,
    folder: str,
    credentials: dict[str, t.Any],
    ignore_file: str | None = ".prefectignore",
) -> dict[str, str]:
    """``prefect_azure.deployments.steps.push_to_azure_blob_storage``."""
    options = _azure_options(credentials, {}, required=True)
    push(_join_url("az", container, folder), options, Path.cwd(), ignore_file)
    return {"container": container, "folder": folder}


def pull_from_azure_blob_storage(
    container: str, folder: str, credentials: dict[str, t.Any]
) -> dict[str, str]:
    """``prefect_azure.deployments.steps.pull_from_azure_blob_storage``."""
    options = _azure_options(credentials, {}, required=True)
    return {
        "container": container,
        "folder": folder,
        "directory": _pull_into_cwd("az", container, folder, options),
    }


# --------------------------------------------------------------------------- URLs and credentials


def _pull_into_cwd(protocol: str, bucket: str, folder: str, options: dict[str, t.Any]) -> str:
    """What Prefect's pull steps do: pull the bucket folder into the working directory (returned)."""
    cwd = Path.cwd()
    pull(_join_url(protocol, bucket, folder), options, cwd)
    return str(cwd)


def _join_url(protocol: str, bucket: str, folder: str | None) -> str:
    folder = (folder or "").strip("/")
    return f"{protocol}://{bucket}/{folder}" if folder else f"{protocol}://{bucket}"


def _resolve_url(
    url: str | None,
    container: str | None,
    folder: str | None,
    protocol: str | None,
    credentials: dict[str, t.Any] | None,
) -> str:
    if url and container:
        raise StepError("give either url or container (+ folder), not both")
    if url:
        return url
    if not container:
        raise StepError(
            "no storage location given", hint="pass url: s3://bucket/folder (or container + folder)"
        )
    if protocol is None:
        protocol = _protocol_for_credentials(credentials)
    if protocol is None:
        raise StepError(
            f"cannot tell which storage service holds container {container!r}",
            hint="add protocol: s3, gs or az (or use url: s3://bucket/folder)",
        )
    return _join_url(protocol.lower().removesuffix("://"), container, folder)


def _protocol_for_credentials(credentials: dict[str, t.Any] | None) -> str | None:
    keys = set(credentials or ())
    if keys & {"connection_string", "account_url", "account_name"}:
        return "az"
    if keys & {"service_account_info", "service_account_file"}:
        return "gs"
    if keys & {"aws_access_key_id", "minio_root_user", "profile_name"}:
        return "s3"
    return None


def _default_directory(url: str) -> str:
    """Prefect's destination for a URL: ``<netloc>/<path>`` relative to the working directory."""
    parts = urlsplit(url)
    return str(Path(parts.netloc) / Path(parts.path.lstrip("/")))


def _storage_options(
    scheme: str, credentials: dict[str, t.Any] | None, options: dict[str, t.Any]
) -> dict[str, t.Any]:
    backend = BACKENDS.get(scheme, ("", ""))[0]
    if backend == "s3fs":
        return _s3_options(credentials, None, options)
    if backend == "gcsfs":
        return _gcs_options(credentials, options)
    if backend == "adlfs":
        return _azure_options(credentials, options)
    if credentials:
        raise StepError(
            f"credentials are not used by {scheme}:// storage", hint="remove credentials from this step"
        )
    _mask_options(options)
    return dict(options)


_M = t.TypeVar("_M", bound=t.Mapping[str, t.Any])


def _mask_options(options: _M) -> _M:
    """Mark the credential values in ``options`` (nested too) as secrets; returns ``options``."""
    for name, value in options.items():
        if name in _SECRET_OPTIONS and value:
            mask(value)
        elif isinstance(value, dict):
            _mask_options(value)
    return options


def _s3_options(
    credentials: dict[str, t.Any] | None,
    client_parameters: dict[str, t.Any] | None,
    extra: dict[str, t.Any] | None = None,
) -> dict[str, t.Any]:
    """AWS / MinIO credentials block fields and boto3 client parameters -> s3fs options."""
    creds = dict(credentials or {})
    _mask_options(creds)
    options: dict[str, t.Any] = {}
    client_kwargs: dict[str, t.Any] = {}
    config_kwargs: dict[str, t.Any] = {}
    for src, dst in (
        ("aws_access_key_id", "key"),
        ("minio_root_user", "key"),
        ("aws_secret_access_key", "secret"),
        ("minio_root_password", "secret"),
        ("aws_session_token", "token"),
        ("profile_name", "profile"),
    ):
        if creds.get(src):
            options[dst] = creds[src]
    if creds.get("region_name"):
        client_kwargs["region_name"] = creds["region_name"]
    params = {**(creds.get("aws_client_parameters") or {}), **(client_parameters or {})}
    _mask_options(params)
    for name, value in params.items():
        if value is None:
            continue
        if name == "config":
            config_kwargs.update(value)
        elif name == "endpoint_url":
            options["endpoint_url"] = value
        elif name == "use_ssl":
            options["use_ssl"] = value
        elif name == "aws_access_key_id":
            options["key"] = value
        elif name == "aws_secret_access_key":
            options["secret"] = value
        elif name == "aws_session_token":
            options["token"] = value
        else:  # region_name, verify, api_version, ...
            client_kwargs[name] = value
    extra = dict(extra or {})
    _mask_options(extra)
    client_kwargs.update(extra.pop("client_kwargs", None) or {})
    config_kwargs.update(extra.pop("config_kwargs", None) or {})
    options.update(extra)
    if client_kwargs:
        options["client_kwargs"] = client_kwargs
    if config_kwargs:
        options["config_kwargs"] = config_kwargs
    return options


def _gcs_options(credentials: dict[str, t.Any] | None, extra: dict[str, t.Any]) -> dict[str, t.Any]:
    """GCP credentials block fields (service account info or file, project) -> gcsfs options."""
    creds = dict(credentials or {})
    options: dict[str, t.Any] = {}
    info = creds.get("service_account_info")
    if isinstance(info, str):
        try:
            info = json.loads(info)
        except ValueError:
            raise StepError("credentials.service_account_info is not valid JSON") from None
    if not info and creds.get("service_account_file"):
        path = os.fspath(creds["service_account_file"])
        try:
            with open(path, encoding="utf-8") as handle:
                info = json.load(handle)
        except (OSError, ValueError) as exc:
            raise StepError(f"cannot read credentials.service_account_file {path}: {exc}") from None
    if info:
        mask(info.get("private_key"))
        mask(info.get("private_key_id"))
        options["token"] = _signed_in(info)
    if creds.get("project"):
        options["project"] = creds["project"]
    _mask_options(extra)
    options.update(extra)
    return options


def _signed_in(info: dict[str, t.Any]) -> t.Any:
    """google-auth credentials for a service account, signed in once here: a refused account then
    fails at once (gcsfs would retry the refusal for ~30 s, taking it for an expired token)."""
    require_backend("gs", load=True)
    import google.auth.exceptions
    import google.auth.transport.requests
    from google.oauth2 import service_account

    try:
        credentials = service_account.Credentials.from_service_account_info(info, scopes=[_GCS_SCOPE])
    except (ValueError, KeyError) as exc:
        raise StepError(f"credentials.service_account_info is not a service account: {exc}") from None
    try:
        credentials.refresh(google.auth.transport.requests.Request())
    except google.auth.exceptions.RefreshError as exc:
        if getattr(exc, "retryable", False):
            return credentials  # a passing failure: gcsfs signs in again, with its retries
        raise StepError(
            f"the service account {info.get('client_email')} could not sign in: {exc}",
            hint="check that the key is current and that the account exists",
        ) from None
    except google.auth.exceptions.TransportError:
        return credentials  # the token endpoint is unreachable now: gcsfs retries
    return credentials


#: the scope gcsfs asks for by default (``access="full_control"``)
_GCS_SCOPE = "https://www.googleapis.com/auth/devstorage.full_control"


def _azure_options(
    credentials: dict[str, t.Any] | None, extra: dict[str, t.Any], *, required: bool = False
) -> dict[str, t.Any]:
    """Azure credentials block fields (connection string, or account URL + identity) -> adlfs options."""
    creds = dict(credentials or {})
    _mask_options(creds)
    options: dict[str, t.Any] = {}
    if creds.get("connection_string"):
        options["connection_string"] = creds["connection_string"]
    elif creds.get("account_url"):
        parts = urlsplit(creds["account_url"])
        account = parts.path.strip("/").split("/", 1)[0]
        if account:  # path-style (Azurite, Azure Stack): https://host:port/<account>
            return {**_path_style_azure(parts.geturl().rstrip("/"), account, creds), **_mask_options(extra)}
        host = parts.netloc
        options["account_name"] = host.split(".", 1)[0]
        if not host.endswith(".blob.core.windows.net"):
            options["account_host"] = host
        for name in ("tenant_id", "client_id", "client_secret", "account_key", "sas_token"):
            if creds.get(name):
                options[name] = creds[name]
        if not {"client_secret", "account_key", "sas_token"} & set(options):
            options["anon"] = False  # adlfs then uses DefaultAzureCredential, as Prefect does
    elif required and not extra:
        raise StepError("Azure credentials must contain either connection_string or account_url")
    options.update(_mask_options(extra))
    return options


def _path_style_azure(url: str, account: str, creds: dict[str, t.Any]) -> dict[str, t.Any]:
    """A path-style account URL as a connection string: adlfs builds ``https://<host>`` from an
    account host and so cannot reach ``http://127.0.0.1:10000/devstoreaccount1``; the Azure SDK reads
    the endpoint, account and key from a connection string as they are."""
    scheme = url.split(":", 1)[0]
    if creds.get("account_key"):
        secret = f"AccountKey={creds['account_key']}"
    elif creds.get("sas_token"):
        secret = f"SharedAccessSignature={str(creds['sas_token']).lstrip('?')}"
    else:
        raise StepError(
            f"the path-style account URL {url} needs account_key or sas_token in the credentials",
            hint=(
                "an emulator or Azure Stack endpoint cannot use a service principal here; or give "
                "connection_string"
            ),
        )
    connection = f"DefaultEndpointsProtocol={scheme};AccountName={account};{secret};BlobEndpoint={url};"
    mask(connection)
    return {"connection_string": connection}
