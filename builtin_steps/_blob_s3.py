"""S3 pulls through botocore alone: the listing and the downloads, without s3fs, aiobotocore or aiohttp.

``_blob_io.pull`` uses this for ``s3://`` URLs whose storage options it understands (the ones the
steps produce: key/secret/token, endpoint, client and config keyword arguments, profile, anon); any
other option, an access-point ARN or a ``?versionId=`` goes through s3fs as before. Importing s3fs
and its async stack costs ~200 ms, botocore alone ~100 ms, and a re-pull of unchanged objects needs
nothing but one listing.

What this mirrors from s3fs, so that both paths give the same files, outputs and manifest:

- the client: the same keyword arguments reach ``create_client`` (``key``/``username``,
  ``secret``/``password``, ``token``, ``endpoint_url``, ``use_ssl``, ``client_kwargs``,
  ``config_kwargs`` with s3fs's 5 s connect and 15 s read timeouts, ``anon`` as unsigned requests,
  ``profile`` for the session), and the same botocore defaults apply (credential chain, retries,
  response checksums);
- the listing: ``ListObjectsV2`` of ``<key>/`` with an empty delimiter, each object described as
  s3fs's ``find(detail=True)`` describes it (``name``, ``size``, ``type``, ``ETag``,
  ``LastModified``); a URL that names one object is found with ``HeadObject``;
- the errors: an S3 error answer goes through s3fs's own translation (imported on that path only).

Downloads are one ``GetObject`` each, run by ``_blob_io``'s bounded thread pool on one thread-safe
client whose connection pool is as large as the concurrency, and streamed to disk in reads of at
most 1 MiB. Objects above 64 MiB are fetched as parallel 64 MiB byte ranges (4 at a time across the
pull), each streamed to its offset in the file, so memory stays bounded whatever the object sizes
(s3fs holds each 50 MiB range in memory, ten at a time).
"""

from __future__ import annotations

import os
import typing as t

from stepengine.step_api import StepError

__all__ = ["S3Reader", "open_s3_reader"]

if t.TYPE_CHECKING:
    import concurrent.futures

#: s3fs's own defaults for these botocore settings (kept, so both paths give up alike)
_CONNECT_TIMEOUT = 5
_READ_TIMEOUT = 15
#: storage options this module maps exactly as s3fs does
_UNDERSTOOD = frozenset(
    {
        "key",
        "secret",
        "token",
        "username",
        "password",
        "endpoint_url",
        "use_ssl",
        "client_kwargs",
        "config_kwargs",
        "profile",
        "anon",
    }
)
#: s3fs options whose false value (their default) changes nothing for a pull
_DEFAULT_WHEN_FALSE = frozenset({"requester_pays", "version_aware", "cache_regions"})
#: config keys only aiobotocore's AioConfig knows
_AIO_ONLY_CONFIG = frozenset({"connector_args", "http_session_cls"})
#: bytes per read while streaming a body to its file: what one download holds in memory at a time
_CHUNK = 1 << 20
#: objects above this size are fetched in byte ranges of ``_PART`` bytes, at most ``_PARTS_IN_FLIGHT``
#: ranges at a time across the whole pull (``S3Reader._get_ranges``)
_RANGED_ABOVE = 64 << 20
_PART = 64 << 20
_PARTS_IN_FLIGHT = 4


def open_s3_reader(url: str, options: dict[str, t.Any], concurrency: int) -> tuple[S3Reader, str] | None:
    """A botocore-only reader for ``url`` and the URL's path (as s3fs strips it), or ``None`` for s3fs."""
    for prefix in ("s3://", "s3a://"):
        if url.startswith(prefix):
            root = url[len(prefix) :].rstrip("/")
            break
    else:
        return None  # e.g. an upper-case scheme, which s3fs does not strip either
    if "?" in root or root.lstrip("/").startswith("arn:"):
        return None  # versioned paths and access points: s3fs's own parsing applies
    for name, value in options.items():
        if name not in _UNDERSTOOD and not (name in _DEFAULT_WHEN_FALSE and not value):
            return None
    if (options.get("key") and options.get("username")) or (
        options.get("secret") and options.get("password")
    ):
        return None  # s3fs refuses these with its own error
    if not isinstance(options.get("config_kwargs") or {}, dict) or not isinstance(
        options.get("client_kwargs") or {}, dict
    ):
        return None
    if _AIO_ONLY_CONFIG & set(options.get("config_kwargs") or {}):
        return None
    bucket, _, key = root.lstrip("/").partition("/")
    if not bucket:
        return None  # s3fs: "Cannot traverse all of S3"
    return S3Reader(bucket, key, options, concurrency), root


class S3Reader:
    """The two file-system calls a pull makes (``find`` and ``get_file``), answered with botocore."""

    async_impl = False

    def __init__(self, bucket: str, key: str, options: dict[str, t.Any], concurrency: int) -> None:
        import threading

        self.bucket = bucket
        self.key = key
        self.options = options
        self.concurrency = concurrency
        #: downloads in flight at once (``_blob_io`` caps its thread pool with this)
        self.max_threads = max(1, concurrency)
        self._client: t.Any = None
        self._lock = threading.Lock()
        #: the threads that fetch byte ranges of big objects (made on first use)
        self._parts: concurrent.futures.ThreadPoolExecutor | None = None
        #: object path -> (size, ETag), from the listing
        self._objects: dict[str, tuple[int, str | None]] = {}

    # ------------------------------------------------------------------ client

    @property
    def client(self) -> t.Any:
        if self._client is None:
            self._client = self._create_client()
        return self._client

    def _create_client(self) -> t.Any:
        import botocore.config
        import botocore.session

        opts = self.options
        client_kwargs = dict(opts.get("client_kwargs") or {})
        key, secret = opts.get("key"), opts.get("secret")
        if opts.get("username"):
            key = opts["username"]
        if opts.get("password"):
            secret = opts["password"]
        init = {
            "aws_access_key_id": key,
            "aws_secret_access_key": secret,
            "aws_session_token": opts.get("token"),
            "endpoint_url": opts.get("endpoint_url"),
        }
        init = {
            name: value
            for name, value in init.items()
            if value is not None and value != client_kwargs.get(name)
        }
        if "use_ssl" not in client_kwargs:
            init["use_ssl"] = opts.get("use_ssl", True)
        config = dict(opts.get("config_kwargs") or {})
        config.setdefault("connect_timeout", _CONNECT_TIMEOUT)
        config.setdefault("read_timeout", _READ_TIMEOUT)
        config.setdefault("max_pool_connections", max(10, self.concurrency))
        if opts.get("anon"):
            from botocore import UNSIGNED

            secrets = {"aws_access_key_id", "aws_secret_access_key", "aws_session_token"}
            init = {name: value for name, value in init.items() if name not in secrets}
            client_kwargs = {name: value for name, value in client_kwargs.items() if name not in secrets}
            config["signature_version"] = UNSIGNED
        session = botocore.session.Session(profile=opts.get("profile"))
        session.register_component("data_loader", _s3_loader(session))
        if not self.bucket.endswith("--x-s3"):
            # Timestamps stay text: parsing 1,000 LastModified values costs ~50 ms and only a listing
            # without ETags needs them (``_info`` parses those). Directory buckets ("--x-s3") are
            # left alone: their session credentials carry an expiry botocore compares as a date.
            session.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=_keep_text)
        return session.create_client("s3", config=botocore.config.Config(**config), **init, **client_kwargs)

    def release(self) -> None:
        if self._parts is not None:
            self._parts.shutdown(wait=True, cancel_futures=True)
            self._parts = None
        if self._client is not None:
            self._client.close()
            self._client = None

    # ------------------------------------------------------------------ listing

    def find(self, root: str, detail: bool = True, withdirs: bool = False) -> dict[str, dict[str, t.Any]]:
        """Every object under the URL, keyed like s3fs's ``find``: ``bucket/key`` -> info."""
        client = self.client
        prefix = self.key.lstrip("/") + "/" if self.key else ""
        request: dict[str, t.Any] = {"Bucket": self.bucket, "Prefix": prefix, "Delimiter": ""}
        found: dict[str, dict[str, t.Any]] = {}
        while True:
            page = _call(client.list_objects_v2, **request)
            for item in page.get("Contents", ()):
                name = f"{self.bucket}/{item['Key']}"
                found[name] = self._info(name, item.get("ETag"), item.get("LastModified"), item["Size"])
            if not page.get("IsTruncated"):
                break
            request["ContinuationToken"] = page["NextContinuationToken"]
        if not found and self.key:  # the URL may name one object
            try:
                head = _call(client.head_object, Bucket=self.bucket, Key=self.key)
            except FileNotFoundError:
                return {}
            name = f"{self.bucket}/{self.key}"
            found[name] = self._info(
                name, head.get("ETag", ""), head.get("LastModified", ""), head["ContentLength"]
            )
        self._objects = {name: (info["size"], info["ETag"] or None) for name, info in found.items()}
        return found

    @staticmethod
    def _info(name: str, etag: str | None, modified: t.Any, size: int) -> dict[str, t.Any]:
        if not etag and isinstance(modified, str) and modified:
            from botocore.utils import parse_timestamp

            modified = parse_timestamp(modified)  # the fingerprint then falls back to it, as with s3fs
        return {
            "name": name,
            "Key": name,
            "type": "file",
            "size": size,
            "Size": size,
            "ETag": etag,
            "LastModified": modified,
        }

    # ------------------------------------------------------------------ download

    def get_file(self, rpath: str, lpath: str) -> None:
        """Stream ``bucket/key`` into ``lpath`` in reads of at most ``_CHUNK`` bytes.

        botocore validates a whole object's response checksum as its body ends; an object above
        ``_RANGED_ABOVE`` is fetched in byte ranges instead (``_get_ranges``).
        """
        bucket, _, key = rpath.partition("/")
        size, etag = self._objects.get(rpath, (None, None))
        if size is not None and size > _RANGED_ABOVE:
            self._get_ranges(bucket, key, etag, lpath, size)
            return
        body = _call(self.client.get_object, Bucket=bucket, Key=key)["Body"]
        try:
            with open(lpath, "wb") as out:
                if size is not None and size <= _CHUNK:
                    out.write(body.read())  # a small object in one read (the checks run at its end too)
                    return
                while True:
                    chunk = body.read(_CHUNK)
                    if not chunk:
                        break
                    out.write(chunk)
        finally:
            body.close()

    def _get_ranges(self, bucket: str, key: str, etag: str | None, lpath: str, size: int) -> None:
        """Fetch one big object as byte ranges of ``_PART`` bytes, each streamed to its offset of ``lpath``.

        The ranges of every object of the pull share one pool of ``_PARTS_IN_FLIGHT`` threads, so
        the memory a pull holds is bounded whatever the objects' sizes: at most one ``_CHUNK`` per
        download in flight. Each range asks for the ETag the listing gave (``IfMatch``), so an object
        replaced meanwhile fails the download (and its retry starts over) instead of mixing versions.
        On any error or interrupt the other ranges stop at their next read and are awaited.
        """
        import concurrent.futures
        import threading

        with self._lock:
            if self._parts is None:
                self._parts = concurrent.futures.ThreadPoolExecutor(
                    max_workers=min(_PARTS_IN_FLIGHT, self.max_threads), thread_name_prefix="s3-range"
                )
        stop = threading.Event()
        fd = os.open(lpath, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
        try:
            os.ftruncate(fd, size)
            futures = [
                self._parts.submit(
                    self._get_range, bucket, key, etag, fd, start, min(start + _PART, size) - 1, stop
                )
                for start in range(0, size, _PART)
            ]
            try:
                for future in futures:
                    future.result()
            except BaseException:
                stop.set()
                for future in futures:
                    future.cancel()
                concurrent.futures.wait(futures)
                raise
        finally:
            os.close(fd)

    def _get_range(
        self, bucket: str, key: str, etag: str | None, fd: int, first: int, last: int, stop: t.Any
    ) -> None:
        if stop.is_set():
            return
        from botocore.exceptions import ClientError

        try:
            answer = self.client.get_object(
                Bucket=bucket, Key=key, Range=f"bytes={first}-{last}", **({"IfMatch": etag} if etag else {})
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "PreconditionFailed":
                raise StepError(
                    f"{bucket}/{key} changed while it was being pulled (its ETag is no longer the "
                    "listing's); nothing was written",
                    hint="run the pull again",
                ) from None
            from s3fs.errors import translate_boto_error

            raise translate_boto_error(exc) from exc
        body = answer["Body"]
        offset = first
        try:
            while offset <= last and not stop.is_set():
                chunk = body.read(min(_CHUNK, last + 1 - offset))
                if not chunk:
                    break
                view = memoryview(chunk)
                while view:
                    written = os.pwrite(fd, view, offset)
                    view, offset = view[written:], offset + written
        finally:
            body.close()
        if offset != last + 1 and not stop.is_set():
            # raised as a transient error: the connection ended early
            raise OSError(f"{bucket}/{key}: byte range {first}-{last} ended after {offset - first} bytes")


def _keep_text(value: t.Any) -> t.Any:
    return value


def _s3_loader(session: t.Any) -> t.Any:
    """botocore's data loader for this session, made cheaper for a client that only ever talks S3.

    The same search paths as botocore's own (``AWS_DATA_PATH`` / ``data_path``, ``~/.aws/models``,
    the bundled data), with two differences that cost nothing in behaviour:

    - the JSON models are read into plain dicts (ordered, like the ``OrderedDict``s botocore asks
      for): decoding ``endpoints.json`` and the S3 model takes half the time, and plain dicts of
      strings are not tracked by the cycle collector, which otherwise walks them at exit (~15 ms);
    - asked which services exist, it looks for S3 alone instead of listing ~400 service folders.
    """
    import gzip
    import json
    import os

    import botocore.loaders

    class PlainJSONFileLoader(botocore.loaders.JSONFileLoader):
        def load_file(self, file_path: str) -> t.Any:
            for suffix, opener in ((".json", open), (".json.gz", gzip.open)):
                try:
                    with opener(file_path + suffix, "rb") as handle:
                        payload = handle.read()
                except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
                    continue
                return json.loads(payload.decode("utf-8"))
            return None

    class S3OnlyLoader(botocore.loaders.Loader):
        def list_available_services(self, type_name: str) -> list[str]:
            return ["s3"] if self.list_api_versions("s3", type_name) else []

    data_path = session.get_config_variable("data_path")
    extra = (
        [os.path.expanduser(os.path.expandvars(p)) for p in data_path.split(os.pathsep)]
        if data_path
        else None
    )
    return S3OnlyLoader(extra_search_paths=extra, file_loader=PlainJSONFileLoader())


def _call(method: t.Callable[..., dict[str, t.Any]], **kwargs: t.Any) -> dict[str, t.Any]:
    """Call a client method; an S3 error answer becomes the exception s3fs raises for it.

    s3fs's own translation is used (imported only on this error path), so both paths classify and
    word errors alike: ``PermissionError`` for access, ``FileNotFoundError`` for absence, an
    ``OSError`` with the service's message otherwise.
    """
    from botocore.exceptions import ClientError

    try:
        return method(**kwargs)
    except ClientError as exc:
        from s3fs.errors import translate_boto_error

        raise translate_boto_error(exc) from exc
