"""Small on-disk caches under ``$STEPENGINE_HOME/cache`` that let a cold run skip repeated work.

Only *positive* facts are cached, each under a key that changes whenever any input that decides the
fact changes, so a cache entry can save time but never change a result:

- "this exact document is valid against this exact schema, as judged by this exact jsonschema
  installation" (``is_known_valid`` / ``remember_valid``): the key hashes an injective encoding of
  the parsed data, the schema file's bytes and the jsonschema package's files (names, sizes, mtimes).
  A run of an unchanged prefect.yaml then never imports jsonschema; any change to the file (or to
  the schema, or to jsonschema) misses the cache and validates in full. Invalid documents are never
  recorded, so errors are always rendered by jsonschema itself.
- "this exact text parses to this data and these positions, with this exact loader and PyYAML"
  (``parsed_entry`` → ``load_parsed`` / ``store_parsed``): a worker that runs the same prefect.yaml again
  and again
  then does not even import PyYAML. Only successful parses whose data ``marshal`` can hold are
  stored (YAML timestamps, for instance, are not: such files are parsed every time).
- the entry points of a group (see ``stepengine._entry_points``).

``STEPENGINE_NO_CACHE=1`` turns every cache off. Any error reading or writing a cache (read-only
home, full disk) is ignored: the slow path runs instead.

The caches are private to their owner (``private_dir``, ``read_private``, ``write_private``): an
entry that someone else could have written is never read, and an entry of the wrong shape is
ignored, never trusted.
"""

from __future__ import annotations

import os
import stat
import typing as t

__all__ = [
    "cache_dir",
    "document_key",
    "is_known_valid",
    "load_parsed",
    "parsed_entry",
    "private_dir",
    "read_private",
    "remember_valid",
    "sha256",
    "store_parsed",
    "write_private",
]

#: bump when the encoding below or the meaning of an entry changes
_FORMAT = b"stepengine-validity-1\n"


def cache_dir(*parts: str) -> str | None:
    """``$STEPENGINE_HOME/cache/<parts>`` (default home ``~/.stepengine``), or ``None`` when disabled."""
    if os.environ.get("STEPENGINE_NO_CACHE", "").strip() not in ("", "0"):
        return None
    from stepengine.paths import home_path

    return os.path.join(home_path(), "cache", *parts)


# -- private files ----------------------------------------------------------------------------------
#
# A cache entry decides what runs (the entry-point listing maps a step name to ``module:function``)
# and what is skipped (a validity entry vouches for a document), so an entry someone else could have
# written is never read: every directory from ``cache/`` down is 0700 and owned by the user (one
# with a looser mode is tightened, one owned by someone else means no cache), every file is created
# 0600 and read only when it is a regular file owned by the user and writable by nobody else. A
# refused entry is ignored and written again (the directory is the user's, so the replace works).


def private_dir(*parts: str) -> str | None:
    """``cache_dir(*parts)``, created 0700, or ``None``: caching is off, or a directory on the way is
    not private to this user and cannot be made so."""
    directory = cache_dir(*parts)
    if directory is None:
        return None
    base = cache_dir()
    assert base is not None
    try:
        os.makedirs(os.path.dirname(base), mode=0o700, exist_ok=True)
        level = base
        for part in ("", *parts):
            level = os.path.join(level, part) if part else level
            try:
                os.mkdir(level, 0o700)
            except FileExistsError:
                pass
            info = os.stat(level)
            if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
                return None
            if info.st_mode & 0o077:
                os.chmod(level, 0o700)
    except OSError:
        return None
    return directory


def _trusted(info: os.stat_result) -> bool:
    return stat.S_ISREG(info.st_mode) and info.st_uid == os.getuid() and not info.st_mode & 0o022


def read_private(path: str) -> bytes | None:
    """The bytes of a cache file, or ``None``: absent, unreadable, or not trusted (see above)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    try:
        if not _trusted(os.fstat(fd)):
            return None
        with os.fdopen(fd, "rb", closefd=False) as handle:
            return handle.read()
    except OSError:
        return None
    finally:
        os.close(fd)


def exists_private(path: str) -> bool:
    """Whether a trusted cache file is at ``path`` (for entries whose presence is the fact)."""
    try:
        return _trusted(os.lstat(path))
    except OSError:
        return False


def write_private(path: str, data: bytes) -> None:
    """Write a cache file atomically, mode 0600 (errors ignored: the cache is only an optimisation)."""
    tmp = f"{path}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
        try:
            with os.fdopen(fd, "wb", closefd=False) as handle:
                handle.write(data)
        finally:
            os.close(fd)
        os.replace(tmp, path)  # readers see the whole entry or none
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass


class Digest(t.Protocol):
    """What the callers use of a hash object."""

    def update(self, data: bytes, /) -> None: ...
    def hexdigest(self) -> str: ...


def sha256(data: bytes = b"") -> Digest:
    """A SHA-256 hash object; the built-in module when present (``hashlib`` loads OpenSSL: ~6 ms)."""
    try:
        # typeshed does not describe CPython's private _sha2 / _sha256 modules
        from _sha2 import sha256 as new  # type: ignore[import-not-found]  # Python >= 3.12
    except ImportError:
        try:
            from _sha256 import sha256 as new  # type: ignore[import-not-found]  # Python <= 3.11
        except ImportError:
            from hashlib import sha256 as new
    digest: Digest = new(data)
    return digest


def _encode(value: t.Any, out: list[str]) -> None:
    """Append an unambiguous encoding of ``value``: two values encode alike only if they are equal
    and of the same types all the way down (``1``, ``1.0``, ``True`` and ``"1"`` all differ)."""
    kind = type(value)
    if value is None:
        out.append("n")
    elif kind is bool:
        out.append("t" if value else "f")
    elif kind is str:
        out.append(f"s{len(value)}:")
        out.append(value)
    elif kind is int:
        out.append(f"i{value};")
    elif kind is float:
        out.append(f"d{value!r};")
    elif kind is dict:
        out.append(f"{{{len(value)};")
        for key, item in value.items():
            _encode(key, out)
            _encode(item, out)
    elif kind is list:
        out.append(f"[{len(value)};")
        for item in value:
            _encode(item, out)
    else:  # dates, timestamps, bytes (YAML tags): tagged with the exact type and a length-prefixed repr
        text = repr(value)
        out.append(f"o{kind.__module__}.{kind.__qualname__}:{len(text)}:")
        out.append(text)


def _jsonschema_identity() -> bytes | None:
    return _package_identity("jsonschema")


def _package_identity(name: str, dist: str | None = None) -> bytes | None:
    """Names, sizes and mtimes of an installed package's modules (and its dist-info), without importing it."""
    import importlib.util

    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin:
        return None
    package = os.path.dirname(spec.origin)
    site = os.path.dirname(package)
    parts = [package]
    try:
        for entry in sorted(os.scandir(package), key=lambda e: e.name):
            if entry.name.endswith((".py", ".so", ".pyd")):
                stat = entry.stat()
                parts.append(f"{entry.name}:{stat.st_size}:{stat.st_mtime_ns}")
        prefix = f"{(dist or name).lower()}-"
        parts.extend(sorted(n for n in os.listdir(site) if n.lower().startswith(prefix)))
    except OSError:
        return None
    return "\n".join(parts).encode("utf-8", "surrogatepass")


def document_key(data: t.Any, schema_bytes: bytes) -> str | None:
    """The validity-cache key of ``data`` checked against the schema ``schema_bytes`` (``None``: no cache)."""
    if cache_dir() is None:
        return None
    identity = _jsonschema_identity()
    if identity is None:
        return None
    out: list[str] = []
    _encode(data, out)
    digest = sha256(_FORMAT)
    for chunk in (schema_bytes, identity):
        digest.update(len(chunk).to_bytes(8, "big"))
        digest.update(chunk)
    digest.update("".join(out).encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def _entry_path(key: str) -> str | None:
    directory = private_dir("valid-documents")
    return os.path.join(directory, key) if directory else None


def is_known_valid(key: str | None) -> bool:
    """Whether a full validation already found the document with this key valid."""
    path = _entry_path(key) if key else None
    return path is not None and exists_private(path)


def remember_valid(key: str | None) -> None:
    """Record that the document with this key passed a full validation (errors ignored)."""
    path = _entry_path(key) if key else None
    if path is not None:
        write_private(path, b"")


# -- parsed documents -------------------------------------------------------------------------------

_PARSED_FORMAT = b"stepengine-parsed-1\n"


def parsed_entry(text: str) -> str | None:
    """Where the parse of ``text`` is cached (``None``: no cache); compute once, use to load and store."""
    directory = private_dir("parsed-documents")
    if directory is None:
        return None
    identity = _package_identity("yaml", dist="pyyaml")
    if identity is None:
        return None
    from stepengine import __version__, loader

    try:
        stat = os.stat(loader.__file__)
    except OSError:
        return None
    digest = sha256(_PARSED_FORMAT)
    for chunk in (
        f"{__version__}:{stat.st_size}:{stat.st_mtime_ns}".encode(),
        identity,
        text.encode("utf-8", "surrogatepass"),
    ):
        digest.update(len(chunk).to_bytes(8, "big"))
        digest.update(chunk)
    return os.path.join(directory, digest.hexdigest())


def load_parsed(path: str | None) -> tuple[t.Any, t.Any] | None:
    """``(data, positions)`` stored at ``path`` by an earlier parse, or ``None``."""
    if path is None:
        return None
    import marshal

    blob = read_private(path)
    if blob is None:
        return None
    try:
        entry = marshal.loads(blob)
    except (EOFError, ValueError, TypeError):  # damaged: parse again
        return None
    if not (isinstance(entry, tuple) and len(entry) == 2 and _is_plain(entry[0]) and _is_positions(entry[1])):
        return None  # not what store_parsed writes: parse again
    return entry[0], entry[1]


#: what a YAML scalar that marshal can hold is built into
_SCALARS = (str, int, float, bool, type(None))


def _is_plain(value: t.Any) -> bool:
    """Whether ``value`` is made of what the loader builds: dicts (scalar keys), lists and scalars."""
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is dict:
            if not all(type(key) in _SCALARS for key in item):
                return False
            stack.extend(item.values())
        elif kind is list:
            stack.extend(item)
        elif kind not in _SCALARS:
            return False
    return True


def _is_positions(value: t.Any) -> bool:
    """Whether ``value`` has the shape of ``Document.positions``: paths → (line, column)."""
    if type(value) is not dict or () not in value:
        return False
    for path, position in value.items():
        if not (type(path) is tuple and all(type(part) in _SCALARS for part in path)):
            return False
        if not (isinstance(position, tuple) and len(position) == 2 and all(type(n) is int for n in position)):
            return False
    return True


def store_parsed(path: str | None, data: t.Any, positions: t.Any) -> None:
    """Remember a successful parse (errors ignored; values marshal cannot hold are not stored)."""
    if path is None:
        return
    import marshal

    try:
        blob = marshal.dumps((data, positions))
    except ValueError:  # e.g. a YAML timestamp (datetime): parse this file every time
        return
    write_private(path, blob)
