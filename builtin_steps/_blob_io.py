"""The transfer engine behind the blob-storage steps: list, check, download/upload, swap in.

``pull`` lists everything under a URL, checks every key, enforces the caps, then downloads with
bounded concurrency into a temporary sibling (or a staging folder when merging into the working
directory) and swaps it in; a manifest of remote fingerprints and local stats lets a re-pull reuse
unchanged files. ``push`` walks a directory with gitignore-style exclusions and uploads concurrently.
An S3 pull whose options are the usual ones lists and downloads with botocore alone (``_blob_s3``:
no s3fs/aiobotocore import, a thread pool of GETs, big objects as byte ranges streamed to disk); a
``file://`` pull without options walks and copies without fsspec (``_blob_local``); every other
pull goes through fsspec. A merge's staging folder is locked by its pull, removed by the next pull
once nobody holds it, and never pushed.
Errors from fsspec backends are translated here into ``StepError``s that say what to check.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
import time
import typing as t
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from stepengine.step_api import StepError, atomic_directory, get_logger, home_directory, safe_join

__all__ = [
    "BACKENDS",
    "DEFAULT_CONCURRENCY",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_FILES",
    "DEFAULT_RETRIES",
    "STAGING_PREFIX",
    "is_own_temporary",
    "open_filesystem",
    "pull",
    "push",
    "url_scheme",
]

DEFAULT_CONCURRENCY = 32
DEFAULT_RETRIES = 3
DEFAULT_MAX_FILES = 100_000
DEFAULT_MAX_BYTES = 10 * 1024**3
#: first backoff delay in seconds; doubled on each further attempt
_BACKOFF = 0.2

#: protocol -> (module that implements it, stepengine extra that installs it)
BACKENDS: dict[str, tuple[str, str]] = {
    "s3": ("s3fs", "s3"),
    "s3a": ("s3fs", "s3"),
    "gs": ("gcsfs", "gcs"),
    "gcs": ("gcsfs", "gcs"),
    "az": ("adlfs", "azure"),
    "abfs": ("adlfs", "azure"),
    "abfss": ("adlfs", "azure"),
    "file": ("fsspec", "blob"),
    "local": ("fsspec", "blob"),
    "memory": ("fsspec", "blob"),
}
#: errors that retrying cannot fix (besides HTTP 4xx answers, see ``_kind``)
_PERMANENT = (IsADirectoryError, NotADirectoryError, ValueError, TypeError, StepError)


def _kind(exc: BaseException) -> str:
    """``denied``, ``missing``, ``permanent`` or ``transient``: what a backend's exception means.

    s3fs maps HTTP errors to ``PermissionError``/``FileNotFoundError``; adlfs and gcsfs raise their
    SDK's HTTP errors, which carry the status as ``status_code`` (Azure) or ``code`` (gcsfs).
    """
    if isinstance(exc, PermissionError):
        return "denied"
    if isinstance(exc, FileNotFoundError):
        return "missing"
    if isinstance(exc, _PERMANENT):
        return "permanent"
    for name in ("status_code", "code", "status"):
        status = getattr(exc, name, None)
        if isinstance(status, int) and 400 <= status < 600:
            if status in (401, 403):
                return "denied"
            if status == 404:
                return "missing"
            return "transient" if status in (408, 429) or status >= 500 else "permanent"
    return "transient"


def url_scheme(url: str) -> str:
    scheme = urlsplit(url).scheme.lower() if "://" in url else ""
    if not scheme:
        raise StepError(
            f"{url!r} is not a storage URL", hint="write it as protocol://bucket/folder, e.g. s3://b/f"
        )
    return scheme


def require_backend(scheme: str, *, load: bool) -> str:
    """Fail with the ``pip install`` to run if fsspec or the backend for ``scheme`` is missing.

    Returns the backend's module name. With ``load=False`` the modules are only looked up, not imported.
    """
    module, extra = BACKENDS.get(scheme, ("", ""))
    needed = [("fsspec", extra or "blob")]
    if module and module != "fsspec":
        needed.append((module, extra))
    for name, needs_extra in needed:
        if not _installed(name, load):
            raise StepError(
                f"{scheme}:// storage needs {name}, which is not installed",
                hint=f"pip install 'stepengine[{needs_extra}]'",
            )
    return module


def _installed(name: str, load: bool) -> bool:
    if load:
        try:
            __import__(name)
        except ImportError:
            return False
        return True
    import importlib.util

    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def open_filesystem(
    url: str, options: dict[str, t.Any], concurrency: int = DEFAULT_CONCURRENCY
) -> tuple[t.Any, str]:
    """The fsspec file system for ``url`` and the path of ``url`` inside it."""
    scheme = url_scheme(url)
    module = require_backend(scheme, load=True)
    import fsspec

    try:
        cls = fsspec.get_filesystem_class(scheme)
    except (ImportError, ValueError) as exc:
        raise StepError(f"no file system for {scheme}:// URLs: {exc}") from None
    if scheme in ("file", "local"):
        options = {"auto_mkdir": True, **options}  # a push creates the folders it writes into
    if module == "gcsfs" and (options.get("endpoint_url") or os.environ.get("STORAGE_EMULATOR_HOST")):
        # gcsfs's default class asks each bucket's layout of the gRPC control API, which emulators do
        # not serve: a minute of timeouts per bucket. The plain class is what an emulator supports.
        from gcsfs.core import GCSFileSystem

        cls = GCSFileSystem
    if module == "s3fs":
        # aiobotocore's pool holds 10 connections by default: let `concurrency` transfers really run
        config = options["config_kwargs"] = dict(options.get("config_kwargs") or {})
        config.setdefault("max_pool_connections", max(10, concurrency))
    try:
        fs = cls(skip_instance_cache=True, **options)
    except TypeError as exc:
        raise StepError(f"invalid option for {scheme}:// storage: {exc}") from None
    return fs, fs._strip_protocol(url).rstrip("/")


#: S3 pulls list and download with botocore alone when their options allow it (``_blob_s3``)
_S3_WITH_BOTOCORE = True
#: file:// pulls walk and copy without fsspec when they have no options (``_blob_local``)
_LOCAL_WITHOUT_FSSPEC = True


def _open_for_pull(url: str, options: dict[str, t.Any], concurrency: int) -> tuple[t.Any, str]:
    """What a pull lists and downloads with: botocore for plain S3 locations, a walk and copies for
    plain ``file://`` ones, else the fsspec file system."""
    scheme = url_scheme(url)
    if _S3_WITH_BOTOCORE and BACKENDS.get(scheme, ("", ""))[0] == "s3fs":
        require_backend(scheme, load=False)  # the same errors as without this path, nothing imported
        if _installed("botocore", load=False):
            from ._blob_s3 import open_s3_reader

            opened = open_s3_reader(url, options, concurrency)
            if opened is not None:
                return opened
    if _LOCAL_WITHOUT_FSSPEC and scheme in ("file", "local"):
        require_backend(scheme, load=False)  # fsspec stays a requirement of file:// steps
        from ._blob_local import open_local_reader

        local = open_local_reader(url, options, concurrency)
        if local is not None:
            return local
    if BACKENDS.get(scheme, ("", ""))[0] == "s3fs":
        # s3fs fetches an object above 50 MiB as ranges held in memory, ten at a time (~1 GB for a
        # 1 GiB object); one range at a time, it streams the body to disk in 64 KiB reads instead
        options = {"max_concurrency": 1, **options}
    return open_filesystem(url, options, concurrency)


# --------------------------------------------------------------------------- pull


class _Object(t.NamedTuple):
    path: str  # inside the file system
    size: int
    fingerprint: str  # size + ETag/generation/mtime: changes whenever the content may have


def pull(
    url: str,
    options: dict[str, t.Any],
    target: Path,
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    retries: int = DEFAULT_RETRIES,
    max_files: int = DEFAULT_MAX_FILES,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> dict[str, int]:
    log = get_logger()
    started = time.perf_counter()
    fs, root = _open_for_pull(url, options, concurrency)
    try:
        return _pull(
            fs,
            root,
            url,
            target,
            log,
            started,
            concurrency=concurrency,
            retries=retries,
            max_files=max_files,
            max_bytes=max_bytes,
        )
    finally:
        release = getattr(fs, "release", None)
        if release is not None:
            release()


def _pull(
    fs: t.Any,
    root: str,
    url: str,
    target: Path,
    log: t.Any,
    started: float,
    *,
    concurrency: int,
    retries: int,
    max_files: int,
    max_bytes: int,
) -> dict[str, int]:
    objects = _list(fs, root, url)
    total = sum(o.size for o in objects.values())
    if len(objects) > max_files:
        raise StepError(
            f"refusing to pull {url}: {len(objects)} objects exceed max_files={max_files}",
            hint="check the URL, or raise max_files",
        )
    if total > max_bytes:
        raise StepError(
            f"refusing to pull {url}: {total} bytes exceed max_bytes={max_bytes}",
            hint="check the URL, or raise max_bytes",
        )

    target = target.absolute()
    cwd = Path.cwd().absolute()
    merge = target == cwd or target in cwd.parents
    if merge:
        _remove_stale_staging(target)
    manifest_file = _manifest_path(target)
    previous = _load_manifest(manifest_file, url)
    unchanged = {rel for rel, obj in objects.items() if _is_unchanged(previous.get(rel), obj, target, rel)}

    changed = sorted(objects.keys() - unchanged)
    up_to_date = not changed and (merge or _holds_exactly(target, objects.keys()))
    if up_to_date:
        pass  # no download, no copy, no swap
    elif merge:
        # Into a folder holding nothing (a worker's fresh directory) no object can conflict with a
        # file, and each top-level entry of the pull moves in with one rename instead of one per file.
        empty = _holds_nothing(target)
        if not empty:
            _check_merge_conflicts(target, changed)
        with _staging_folder(target) as staging:
            jobs = _download_jobs(objects, staging, skip=unchanged)
            _transfer(fs, jobs, "get", concurrency, retries, url)
            # every object arrived: only now touch the working directory (renames, same file system)
            if empty and _holds_nothing(target, but=staging.name):
                for entry in os.scandir(staging):
                    os.rename(entry.path, target / entry.name)
            else:
                place = _Placer(target, create=True)
                for rel in changed:
                    os.replace(staging / rel, place(rel))
    else:
        with atomic_directory(target) as tmp:
            place = _Placer(tmp, create=True)
            for rel in unchanged:
                _link_or_copy(target / rel, place(rel))
            jobs = _download_jobs(objects, tmp, skip=unchanged)
            _transfer(fs, jobs, "get", concurrency, retries, url)
    if not (up_to_date and previous.keys() == objects.keys()):
        # (when nothing changed, every entry was just checked equal to what a save would write)
        _save_manifest(manifest_file, url, target, objects)
    transferred = len(changed)
    log.info(
        "pulled %s into %s: %d files, %d bytes, %d transferred, %d unchanged (%.2f s)",
        url,
        target,
        len(objects),
        total,
        transferred,
        len(unchanged),
        time.perf_counter() - started,
    )
    return {"files": len(objects), "bytes": total, "transferred": transferred}


# --------------------------------------------------------------------------- staging (merge pulls)
#
# A pull into the working directory downloads into a staging folder first. It lives inside the
# target: the one place sure to be writable and on the same file system (the moves into place are
# renames, so a failed pull leaves nothing half-done). A killed pull (SIGKILL, power loss) cannot
# remove it, so: its owner holds an ``flock`` on it, which the kernel drops when the owner dies;
# the next pull into the same directory removes every staging folder nobody holds (and no other);
# and a push never uploads one, whatever the ignore file says (``is_own_temporary``).

#: the name of every staging folder starts with this
STAGING_PREFIX = ".stepengine-pull."
#: names ``atomic_directory`` gives its temporary and previous directories: ``.<name>.<8 hex>.tmp|old``
_ATOMIC_TEMPORARY = re.compile(r"\..+\.[0-9a-f]{8}\.(?:tmp|old)")


def is_own_temporary(name: str) -> bool:
    """Whether a folder name is one of stepengine's staging or temporary folders (never pushed)."""
    return name.startswith(STAGING_PREFIX) or _ATOMIC_TEMPORARY.fullmatch(name) is not None


def _holds_nothing(folder: Path, but: str = "") -> bool:
    """Whether ``folder`` is empty (``but``: apart from that entry, this pull's staging folder)."""
    with os.scandir(folder) as entries:
        return all(entry.name == but for entry in entries)


@contextlib.contextmanager
def _staging_folder(target: Path) -> t.Iterator[Path]:
    """A new staging folder in ``target``, locked by this process until the block ends, then removed."""
    while True:
        path = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=target))
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            _lock(fd, wait=True)  # a concurrent pull may be removing it as stale: wait, then look again
            if os.path.samestat(os.stat(path, follow_symlinks=False), os.fstat(fd)):
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    try:
        yield path
    finally:
        try:
            shutil.rmtree(path, ignore_errors=True)
        finally:
            os.close(fd)  # (releases the lock)


def _remove_stale_staging(target: Path) -> None:
    """Remove the staging folders in ``target`` that no live process holds (left by a killed pull)."""
    try:
        names = [entry.name for entry in os.scandir(target) if entry.name.startswith(STAGING_PREFIX)]
    except OSError:
        return
    for name in names:
        path = target / name
        try:
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            continue  # gone already, or not a folder (a symlink is never followed)
        try:
            if _lock(fd, wait=False):
                get_logger().info("removing %s, left by a pull that did not finish", path)
                shutil.rmtree(path, ignore_errors=True)
        finally:
            os.close(fd)


def _lock(fd: int, *, wait: bool) -> bool:
    """Take an exclusive ``flock`` on ``fd``; ``False`` if another process holds it (``wait=False``)."""
    try:
        import fcntl
    except ImportError:  # no flock (Windows): a staging folder is then never taken for stale
        return wait
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except BlockingIOError:
        return False
    return True


def _holds_exactly(target: Path, rels: t.Collection[str]) -> bool:
    """Whether ``target`` contains exactly these files (so a replace would change nothing)."""
    found = 0
    for dirpath, _dirnames, filenames in os.walk(target):
        prefix = os.path.relpath(dirpath, target).replace(os.sep, "/")
        for name in filenames:
            if (name if prefix == "." else f"{prefix}/{name}") not in rels:
                return False
            found += 1
    return found == len(rels)


def _list(fs: t.Any, root: str, url: str) -> dict[str, _Object]:
    """Every object under ``root`` by its key relative to ``root``; all keys checked before returning."""
    try:
        found = _retry_sync(lambda: fs.find(root, detail=True, withdirs=False), DEFAULT_RETRIES)
    except BaseException as exc:
        raise _translate(exc, url, "listing") from exc
    objects: dict[str, _Object] = {}
    for path, info in sorted(found.items()):
        if info.get("type") == "directory":
            continue
        if path == root:  # the URL names one object
            rel = PurePosixPath(path).name
        elif path.startswith(root + "/"):
            rel = path[len(root) + 1 :]
        else:
            rel = path
        if rel.endswith("/") and not info.get("size"):
            continue  # a zero-byte "folder" marker, as written by consoles and some tools
        problem = _unsafe_key(rel)
        if problem:
            raise StepError(
                f"refusing to pull {url}: object key {rel!r} {problem}; nothing was written",
                hint="rename or delete that object in the bucket",
            )
        size = int(info.get("size") or 0)
        objects[rel] = _Object(path, size, _fingerprint(info, size))
    if not objects:
        raise StepError(f"nothing to pull: no objects under {url}", hint="check the bucket and folder names")
    folders = {rel.rsplit("/", 1)[0] for rel in objects if "/" in rel}
    folders |= {f.rsplit("/", i)[0] for f in folders for i in range(1, f.count("/") + 1)}
    clash = sorted(folders & objects.keys())
    if clash:
        raise StepError(
            f"refusing to pull {url}: {clash[0]!r} is both an object and a folder of other objects; "
            "nothing was written",
            hint="rename or delete that object in the bucket",
        )
    return objects


def _unsafe_key(rel: str) -> str | None:
    if "\0" in rel:
        return "contains a NUL byte"
    if "\\" in rel:
        return "contains a backslash"
    if rel.startswith("/"):
        return "is an absolute path"
    if len(rel) > 1 and rel[1] == ":":
        return "starts with a drive letter"
    segments = rel.split("/")
    if ".." in segments:
        return "has a '..' segment"
    if "." in segments or "" in segments:
        return "has an empty or '.' segment"
    return None


def _fingerprint(info: dict[str, t.Any], size: int) -> str:
    for name in (
        "ETag",
        "etag",
        "md5Hash",
        "generation",
        "mtime",
        "LastModified",
        "last_modified",
        "created",
    ):
        value = info.get(name)
        if value:
            return f"{size}:{name}:{value}"
    return ""  # unknown: never reused


class _Placer:
    """Maps checked keys to paths under ``root``: ``safe_join`` resolves each *folder* once.

    Keys were checked by ``_unsafe_key``, so a file name cannot leave its folder; resolving the folder
    (symlinks included) is what ``safe_join`` adds, and 1,000 files usually share ~10 folders.
    """

    def __init__(self, root: Path, *, create: bool) -> None:
        self.root = root
        self.create = create
        self._folders: dict[str, Path] = {}
        self._texts: dict[str, str] = {}

    def __call__(self, rel: str) -> Path:
        parent, _, name = rel.rpartition("/")
        return self._folder(parent) / name

    def text(self, rel: str) -> str:
        """``str(self(rel))``, without a ``Path`` per file."""
        parent, _, name = rel.rpartition("/")
        self._folder(parent)
        return f"{self._texts[parent]}{os.sep}{name}"

    def _folder(self, parent: str) -> Path:
        folder = self._folders.get(parent)
        if folder is None:
            folder = safe_join(self.root, parent) if parent else self.root.resolve()
            if self.create:
                folder.mkdir(parents=True, exist_ok=True)
            self._folders[parent] = folder
            self._texts[parent] = str(folder).rstrip(os.sep)
        return folder


def _download_jobs(
    objects: dict[str, _Object], into: Path, *, skip: t.Container[str]
) -> list[tuple[str, str, int]]:
    """(remote, local, size) for each object to fetch; the local folders are made here."""
    place = _Placer(into, create=True)
    return [(obj.path, place.text(rel), obj.size) for rel, obj in objects.items() if rel not in skip]


def _check_merge_conflicts(target: Path, rels: t.Iterable[str]) -> None:
    place = _Placer(target, create=False)
    for rel in rels:
        final = place(rel)
        if final.is_dir() and not final.is_symlink():
            raise StepError(f"cannot pull object {rel!r}: {final} is a directory; nothing was written")
        parent = final.parent
        while parent != target and not parent.exists():
            parent = parent.parent
        if not parent.is_dir():
            raise StepError(f"cannot pull object {rel!r}: {parent} is not a directory; nothing was written")


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


# --------------------------------------------------------------------------- manifest (re-pull skips)


def _manifest_path(target: Path) -> Path:
    home = home_directory()
    digest = hashlib.sha256(os.fsencode(target)).hexdigest()[:32]
    return home / "blob-manifests" / f"{digest}.json"


def _load_manifest(path: Path, url: str) -> dict[str, t.Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data.get("files", {}) if data.get("url") == url else {}


def _is_unchanged(entry: dict[str, t.Any] | None, obj: _Object, target: Path, rel: str) -> bool:
    if not entry or not obj.fingerprint or entry.get("remote") != obj.fingerprint:
        return False
    try:
        st = os.lstat(os.path.join(target, rel))
    except OSError:
        return False
    return (st.st_size, st.st_mtime_ns, st.st_ino) == (obj.size, entry.get("mtime_ns"), entry.get("ino"))


def _save_manifest(path: Path, url: str, target: Path, objects: dict[str, _Object]) -> None:
    files = {}
    for rel, obj in objects.items():
        try:
            st = os.lstat(os.path.join(target, rel))
        except OSError:
            continue
        files[rel] = {"remote": obj.fingerprint, "mtime_ns": st.st_mtime_ns, "ino": st.st_ino}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"url": url, "directory": str(target), "files": files}))
        os.replace(tmp, path)
    except OSError as exc:  # a cache: losing it only costs a full download next time
        get_logger().warning("could not save the pull manifest %s: %s", path, exc)


# --------------------------------------------------------------------------- push


def push(
    url: str,
    options: dict[str, t.Any],
    directory: Path,
    ignore_file: str | None,
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    retries: int = DEFAULT_RETRIES,
) -> tuple[int, int]:
    started = time.perf_counter()
    root_dir = directory.resolve()
    if not root_dir.is_dir():
        raise StepError(f"cannot push {directory}: not a directory")
    spec = ignore_spec(root_dir, ignore_file)
    fs, root = open_filesystem(url, options, concurrency)
    jobs: list[tuple[str, str, int]] = []
    total = 0
    for dirpath, dirnames, filenames in os.walk(root_dir):
        here = Path(dirpath)
        rel_dir = here.relative_to(root_dir).as_posix()
        prefix = "" if rel_dir == "." else rel_dir + "/"
        _skip_own_temporaries(dirnames, prefix)
        if spec is not None and not _negates(spec):
            # a folder no pattern can re-include is not walked at all
            dirnames[:] = [d for d in dirnames if not spec.match_file(prefix + d + "/")]
        for name in sorted(filenames):
            rel = prefix + name
            if spec is not None and spec.match_file(rel):
                continue
            local = here / name
            if local.is_symlink():
                resolved = local.resolve()
                if root_dir not in resolved.parents or not resolved.is_file():
                    get_logger().warning(
                        "not pushing %s: it is a symlink to %s, outside %s", rel, resolved, root_dir
                    )
                    continue
            size = local.stat().st_size
            total += size
            jobs.append((str(local), f"{root}/{rel}" if root else rel, size))
    _transfer(fs, jobs, "put", concurrency, retries, url)
    get_logger().info(
        "pushed %d files (%d bytes) from %s to %s (%.2f s)",
        len(jobs),
        total,
        directory,
        url,
        time.perf_counter() - started,
    )
    return len(jobs), total


def _skip_own_temporaries(dirnames: list[str], prefix: str) -> None:
    """Leave stepengine's own staging and temporary folders out of a push (a killed pull's leftovers)."""
    for name in [d for d in dirnames if is_own_temporary(d)]:
        get_logger().warning("not pushing %s%s/: a stepengine staging or temporary folder", prefix, name)
        dirnames.remove(name)


def ignore_spec(root_dir: Path, ignore_file: str | None) -> t.Any:
    if not ignore_file:
        return None
    path = root_dir / ignore_file
    if not path.is_file():
        return None
    try:
        import pathspec
    except ImportError:
        raise StepError(
            f"reading {ignore_file} needs pathspec, which is not installed",
            hint="pip install 'stepengine[blob]'",
        ) from None
    # Parsed as Prefect and its integrations parse it (prefect-aws's push_to_s3, filter_files): every
    # line stripped, blank lines and '#' comments skipped, the rest gitignore patterns where the last
    # match wins, so '!build/keep.txt' re-includes a file of an ignored folder.
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    try:
        return pathspec.PathSpec.from_lines("gitignore", lines)
    except LookupError:  # pathspec < 1.0 names the same patterns 'gitwildmatch'
        return pathspec.PathSpec.from_lines("gitwildmatch", lines)


def _negates(spec: t.Any) -> bool:
    return any(pattern.include is False for pattern in spec.patterns)


# --------------------------------------------------------------------------- concurrent transfers


def _transfer(
    fs: t.Any, jobs: list[tuple[str, str, int]], direction: str, concurrency: int, retries: int, url: str
) -> None:
    """Run ``jobs`` (get: remote, local, size / put: local, remote, size) with bounded concurrency.

    On any error or interrupt the transfers still in flight are cancelled and awaited (briefly)
    before this returns, so nothing writes into a folder the caller is about to remove.
    """
    if not jobs:
        return
    concurrency = max(1, int(concurrency))
    try:
        if getattr(fs, "async_impl", False):
            _run_on_loop(fs, _transfer_async(fs, jobs, direction, concurrency, retries))
        else:
            _transfer_threads(fs, jobs, direction, concurrency, retries)
    except BaseException as exc:
        raise _translate(exc, url, "pulling" if direction == "get" else "pushing") from exc


def _run_on_loop(fs: t.Any, coro: t.Coroutine[t.Any, t.Any, None]) -> None:
    """Run ``coro`` on the file system's own event loop (fsspec's I/O thread) and wait for it."""
    import asyncio
    import concurrent.futures

    future = asyncio.run_coroutine_threadsafe(coro, fs.loop)
    try:
        future.result()
    except BaseException:
        future.cancel()  # cancels the task on the loop: every worker stops at its next await
        concurrent.futures.wait([future], timeout=10)
        raise


async def _transfer_async(
    fs: t.Any, jobs: list[tuple[str, str, int]], direction: str, concurrency: int, retries: int
) -> None:
    import asyncio

    pending = iter(jobs)

    async def worker() -> None:
        for src, dst, size in pending:
            for attempt in range(retries + 1):
                try:
                    if direction == "get":
                        await fs._get_file(src, dst)
                        _check_size(dst, size)
                    else:
                        await fs._put_file(src, dst)
                    break
                except Exception as exc:
                    if attempt == retries or _kind(exc) != "transient":
                        raise
                    await asyncio.sleep(_BACKOFF * 2**attempt)

    workers = [asyncio.ensure_future(worker()) for _ in range(min(concurrency, len(jobs)))]
    try:
        # the first failure ends the transfer: the other workers are cancelled, not left running
        done, _ = await asyncio.wait(workers, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            error = task.exception()
            if error is not None:
                raise error
    finally:
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)


def _transfer_threads(
    fs: t.Any, jobs: list[tuple[str, str, int]], direction: str, concurrency: int, retries: int
) -> None:
    def one(job: tuple[str, str, int]) -> None:
        src, dst, size = job

        def attempt() -> None:
            if direction == "get":
                copied = fs.get_file(src, dst)
                # a reader that counts what it wrote (the local one) saves a stat of every file
                _check_size(dst, size, copied if isinstance(copied, int) else None)
            else:
                fs.put_file(src, dst)

        _retry_sync(attempt, retries)

    import threading

    workers = min(concurrency, len(jobs), getattr(fs, "max_threads", 16))
    if workers <= 1:
        for job in jobs:
            one(job)
        return
    # Worker threads take the next job from one shared iterator (a future per job costs more than
    # copying a small local file). The first error stops the others after their current job.
    pending = iter(jobs)  # (next() on a list iterator is atomic)
    stop = threading.Event()
    errors: list[BaseException] = []

    def work() -> None:
        for job in pending:
            if stop.is_set():
                return
            try:
                one(job)
            except BaseException as exc:
                errors.append(exc)
                stop.set()
                return

    threads = [
        threading.Thread(target=work, name=f"blob-{direction}-{i}", daemon=True) for i in range(workers)
    ]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            thread.join()
    finally:
        # on an error or interrupt, no new job starts; running ones finish before we return
        stop.set()
        for thread in threads:
            thread.join()
    if errors:
        raise errors[0]


def _retry_sync(call: t.Callable[[], t.Any], retries: int) -> t.Any:
    for attempt in range(retries + 1):
        try:
            return call()
        except Exception as exc:
            if attempt == retries or _kind(exc) != "transient":
                raise
            time.sleep(_BACKOFF * 2**attempt)
    raise AssertionError("unreachable")


def _check_size(path: str, expected: int, written: int | None = None) -> None:
    actual = os.path.getsize(path) if written is None else written
    if actual != expected:
        # raised as a transient error: the object may have been replaced while we listed it
        raise OSError(f"{path}: got {actual} bytes, the listing said {expected}")


def _translate(exc: BaseException, url: str, action: str) -> BaseException:
    """A backend's exception -> a ``StepError`` that explains it (the original stays as ``__cause__``)."""
    if isinstance(exc, StepError) or not isinstance(exc, Exception):
        return exc
    kind = _kind(exc)
    if kind == "denied":
        return StepError(
            f"access denied while {action} {url}: {_reason(exc)}",
            hint="check the credentials and that they may read/write this location",
        )
    if kind == "missing":
        return StepError(
            f"not found while {action} {url}: {_reason(exc)}", hint="check the bucket and folder names"
        )
    return StepError(f"{action} {url} failed: {type(exc).__name__}: {_reason(exc)}")


def _reason(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]
