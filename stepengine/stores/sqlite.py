"""The embedded store: blocks and variables in one SQLite file under ``$STEPENGINE_HOME``.

``$STEPENGINE_HOME/store.db`` (default ``~/.stepengine/store.db``), created on the first write with
mode 0600 in a 0700 directory; a read never creates it. The database runs in WAL mode with a busy
timeout, so any number of processes may read and write at once: each write is one short
``BEGIN IMMEDIATE`` transaction, so concurrent writers wait for each other instead of failing or
losing an update.

Block types: ``secret`` and ``string`` hold ``{"value": <text>}``, ``json`` holds ``{"value": <any
JSON>}``, any other type name (``github-credentials``, ``aws-credentials``, …) holds a JSON object.
A block or variable stored with ``secret=True`` (every ``secret`` block) is masked whole when a run
reads it; other blocks follow the field rule of ``stepengine.resolvers.block_secrets``.

This is the only place the engine writes a secret to disk.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import stat
import time
import typing as t
from pathlib import Path

from stepengine.errors import StoreError

if t.TYPE_CHECKING:
    import sqlite3

__all__ = [
    "BLOCK_NAME_RE",
    "BLOCK_TYPE_RE",
    "SQLiteStore",
    "StoredItem",
    "check_name",
    "default_path",
    "make_block_data",
]

#: bumped when the table layout changes; a newer file is refused rather than misread
SCHEMA_VERSION = 1
#: a block type is a slug: lowercase letters, digits and dashes (Prefect's block type slugs)
BLOCK_TYPE_RE = re.compile(r"[a-z0-9][a-z0-9_-]*")
#: block and variable names: letters, digits, ``_`` and ``-`` (what a ``{{ }}`` placeholder can name)
BLOCK_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*")
#: block types whose data is ``{"value": <text>}``
TEXT_TYPES = ("secret", "string")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS blocks (
    type TEXT NOT NULL,
    name TEXT NOT NULL,
    data TEXT NOT NULL,
    secret INTEGER NOT NULL DEFAULT 0,
    updated REAL NOT NULL,
    PRIMARY KEY (type, name)
);
CREATE TABLE IF NOT EXISTS variables (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    secret INTEGER NOT NULL DEFAULT 0,
    updated REAL NOT NULL
);
"""


def default_path(env: t.Mapping[str, str] | None = None) -> Path:
    """``$STEPENGINE_HOME/store.db``, with ``~/.stepengine`` as the default home."""
    from stepengine.paths import home_path

    return Path(home_path(env)) / "store.db"


class StoredItem(t.NamedTuple):
    """One row of ``block ls`` / ``variable ls`` (no value: listing never reads a secret out)."""

    kind: str
    name: str
    secret: bool
    updated: float


def make_block_data(block_type: str, value: t.Any) -> dict[str, t.Any]:
    """The document stored for ``value`` under ``block_type``; ``ValueError`` if it does not fit."""
    if block_type in TEXT_TYPES:
        if isinstance(value, t.Mapping) and set(value) == {"value"}:
            value = value["value"]
        if not isinstance(value, str):
            raise ValueError(f"a {block_type} block holds text, not {type(value).__name__}")
        return {"value": value}
    if block_type == "json":
        return {"value": value}
    if not isinstance(value, t.Mapping):
        raise ValueError(
            f"a {block_type} block holds a JSON object with its fields, not {type(value).__name__}"
        )
    return dict(value)


class SQLiteStore:
    """Blocks and variables in a local SQLite file; a resolver (``get_block`` / ``get_variable``).

    Every call opens its own short connection, so one store object is safe to share between
    threads, and a run that references no block never opens the file.

    Example::

        store = SQLiteStore()                     # $STEPENGINE_HOME/store.db
        store.set_block("secret", "gh-token", {"value": "ghp_…"})
        store.get_block("secret", "gh-token")    # {"value": "ghp_…"} (and masked for the run)
    """

    name = "local"

    def __init__(self, path: str | os.PathLike[str] | None = None, *, timeout: float = 30.0) -> None:
        self.path = Path(path) if path is not None else default_path()
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self.path)!r})"

    # -- resolver protocol -----------------------------------------------------------------------

    def get_block(self, block_type: str, name: str) -> dict[str, t.Any]:
        row = self._read_one(
            "SELECT data, secret FROM blocks WHERE type = ? AND name = ?", (block_type, name)
        )
        if row is None:
            raise LookupError(f"{block_type}/{name}")
        # set_block stores a mapping
        data: dict[str, t.Any] = self._decode(row[0], f"block {block_type}/{name}")
        if row[1]:
            _mark_secret(data)
        return data

    def get_variable(self, name: str) -> t.Any:
        row = self._read_one("SELECT value, secret FROM variables WHERE name = ?", (name,))
        if row is None:
            raise LookupError(name)
        value = self._decode(row[0], f"variable {name}")
        if row[1]:
            _mark_secret(value)
        return value

    def describe_missing(self, kind: str, block_type: str | None, name: str) -> str:
        return f"local store {self.path}" + ("" if self.path.exists() else " (not created yet)")

    # -- management (the CLI's block and variable verbs) ---------------------------------------

    def set_block(
        self, block_type: str, name: str, data: t.Mapping[str, t.Any], *, secret: bool = False
    ) -> None:
        """Create or replace a block document. ``secret`` blocks are always stored as secret."""
        check_name("block type", block_type, BLOCK_TYPE_RE)
        check_name("block name", name, BLOCK_NAME_RE)
        secret = secret or "secret" in block_type
        self._write(
            "INSERT OR REPLACE INTO blocks (type, name, data, secret, updated) VALUES (?, ?, ?, ?, ?)",
            (block_type, name, json.dumps(dict(data)), int(secret), time.time()),
        )

    def set_variable(self, name: str, value: t.Any, *, secret: bool = False) -> None:
        check_name("variable name", name, BLOCK_NAME_RE)
        self._write(
            "INSERT OR REPLACE INTO variables (name, value, secret, updated) VALUES (?, ?, ?, ?)",
            (name, json.dumps(value), int(secret), time.time()),
        )

    def delete_block(self, block_type: str, name: str) -> bool:
        """Remove a block; ``False`` if there was none."""
        if not self.path.exists():
            return False
        return self._write("DELETE FROM blocks WHERE type = ? AND name = ?", (block_type, name)) > 0

    def delete_variable(self, name: str) -> bool:
        if not self.path.exists():
            return False
        return self._write("DELETE FROM variables WHERE name = ?", (name,)) > 0

    def is_secret_block(self, block_type: str, name: str) -> bool:
        row = self._read_one("SELECT secret FROM blocks WHERE type = ? AND name = ?", (block_type, name))
        return bool(row and row[0])

    def is_secret_variable(self, name: str) -> bool:
        row = self._read_one("SELECT secret FROM variables WHERE name = ?", (name,))
        return bool(row and row[0])

    def list_blocks(self, block_type: str | None = None) -> list[StoredItem]:
        query = "SELECT type || '/' || name, secret, updated FROM blocks"
        params: tuple[t.Any, ...] = ()
        if block_type:
            query += " WHERE type = ?"
            params = (block_type,)
        return [
            StoredItem("block", n, bool(s), u) for n, s, u in self._read_all(query + " ORDER BY 1", params)
        ]

    def list_variables(self) -> list[StoredItem]:
        rows = self._read_all("SELECT name, secret, updated FROM variables ORDER BY name", ())
        return [StoredItem("variable", n, bool(s), u) for n, s, u in rows]

    # -- the database --------------------------------------------------------------------------

    def _read_one(self, query: str, params: tuple[t.Any, ...]) -> t.Any:
        rows = self._read_all(query, params)
        return rows[0] if rows else None

    def _read_all(self, query: str, params: tuple[t.Any, ...]) -> list[t.Any]:
        if not self.path.exists():
            return []
        with self._connection(create=False) as conn:
            return self._execute(conn, query, params).fetchall()

    def _write(self, query: str, params: tuple[t.Any, ...]) -> int:
        with self._connection(create=True) as conn:
            self._execute(conn, "BEGIN IMMEDIATE", ())
            try:
                count = self._execute(conn, query, params).rowcount
                self._execute(conn, "COMMIT", ())
            except BaseException:
                conn.rollback()
                raise
            return count

    def _execute(self, conn: sqlite3.Connection, query: str, params: tuple[t.Any, ...]) -> sqlite3.Cursor:
        import sqlite3

        try:
            return conn.execute(query, params)
        except sqlite3.DatabaseError as exc:
            raise self._error(exc) from None

    def _error(self, exc: Exception) -> StoreError:
        """A SQLite error as a ``StoreError`` that says what is wrong: only a damaged file is worth
        moving away (advice that, given for a full disk, would lose every block and variable)."""
        reason = str(exc)
        code = _sqlite_code(exc)
        if code in (_BUSY, _LOCKED) or "locked" in reason or "busy" in reason:
            return StoreError(
                f"{self.path}: the store stayed locked for {self.timeout:g} s ({reason})",
                store=str(self.path),
                hint="another process holds a long write lock on it; try again",
            )
        if code == _FULL or (code == _IOERR and self._disk_is_full()):
            return self._full_disk(reason)
        if code in (_READONLY, _PERM, _CANTOPEN):
            return StoreError(
                f"{self.path}: cannot open or write the store ({reason})",
                store=str(self.path),
                hint=f"check that {self.path.parent} is writable by you and not on a read-only file system "
                "(or point STEPENGINE_HOME elsewhere)",
            )
        if code == _IOERR:
            return StoreError(
                f"{self.path}: the disk failed while the store was in use ({reason})",
                store=str(self.path),
                hint="check the disk; the store file is not necessarily damaged: keep it",
            )
        if code in (_NOTADB, _CORRUPT):
            return StoreError(
                f"{self.path}: not a usable stepengine store ({reason})",
                store=str(self.path),
                hint="the file is damaged or is not a store: move it away, and set the blocks and variables "
                "again",
            )
        return StoreError(f"{self.path}: cannot use the store ({reason})", store=str(self.path))

    def _full_disk(self, reason: str) -> StoreError:
        return StoreError(
            f"{self.path}: the disk holding the store is full ({reason})",
            store=str(self.path),
            hint="free some space and try again; the store is intact (an unfinished write is rolled back)",
        )

    def _disk_is_full(self) -> bool:
        """Whether the store's file system has (almost) no space left: SQLite reports a failed write
        to its WAL or shared-memory file as a plain I/O error."""
        try:
            info = os.statvfs(self.path.parent)
        except OSError:
            return False
        return info.f_bavail * info.f_frsize < 64 * 1024

    def _os_error(self, exc: OSError, doing: str) -> StoreError:
        import errno

        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return self._full_disk(exc.strerror or str(exc))
        if exc.errno == errno.EISDIR or self.path.is_dir():
            return StoreError(
                f"{self.path}: is a directory, not a store file",
                store=str(self.path),
                hint="move it away, or point STEPENGINE_HOME elsewhere",
            )
        where = exc.filename or self.path
        hint = None
        if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            hint = f"{self.path.parent} must be writable by you (or point STEPENGINE_HOME elsewhere)"
        return StoreError(
            f"{self.path}: cannot {doing} the store: {where}: {exc.strerror or exc}",
            store=str(self.path),
            hint=hint,
        )

    def _decode(self, text: str, what: str) -> t.Any:
        try:
            return json.loads(text)
        except ValueError:
            raise StoreError(
                f"{self.path}: {what} is not valid JSON (the store is damaged)", store=str(self.path)
            ) from None

    @contextlib.contextmanager
    def _connection(self, *, create: bool) -> t.Iterator[sqlite3.Connection]:
        import sqlite3

        self._check_owner()
        if create:
            try:
                self._create_file()
            except OSError as exc:
                raise self._os_error(exc, "create") from None
        elif self.path.is_dir():
            raise self._os_error(IsADirectoryError(21, "Is a directory", str(self.path)), "read")
        try:
            conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
        except sqlite3.Error as exc:
            raise self._error(exc) from None
        try:
            self._prepare(conn)
            yield conn
        finally:
            conn.close()

    def _check_owner(self) -> None:
        """Refuse a store someone else could have written: its blocks and variables decide what a
        run does (a repository URL, a token sent where it points), like a cache entry decides which
        function a step name runs (issue 14)."""
        try:
            info = os.stat(self.path)
        except OSError:
            return  # not there yet (or unreadable: SQLite says why)
        if info.st_uid != os.getuid():
            raise StoreError(
                f"{self.path}: the store belongs to another user (uid {info.st_uid}): not used, since its "
                "blocks and variables decide what a run does",
                store=str(self.path),
                hint="if you trust it, copy it so that the copy is yours, or point STEPENGINE_HOME elsewhere",
            )
        if info.st_mode & 0o022:
            raise StoreError(
                f"{self.path}: the store is writable by others (mode {stat.S_IMODE(info.st_mode):o}): "
                "not used, "
                "since its blocks and variables decide what a run does",
                store=str(self.path),
                hint=f"if you trust its content: chmod 600 {self.path}",
            )

    def _create_file(self) -> None:
        directory = self.path.parent
        if not directory.is_dir():
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Created 0600 before SQLite opens it: its WAL and shared-memory files copy this mode.
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if os.fstat(fd).st_mode & 0o077:
                os.fchmod(fd, 0o600)
        finally:
            os.close(fd)

    def _prepare(self, conn: sqlite3.Connection) -> None:
        version = self._execute(conn, "PRAGMA user_version", ()).fetchone()[0]
        if version == SCHEMA_VERSION:
            return
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path}: this store was written by a newer stepengine (layout {version}, "
                f"this version reads {SCHEMA_VERSION})",
                store=str(self.path),
                hint="upgrade stepengine",
            )
        # A new (or empty) file: set it up once, under the write lock, whoever gets there first.
        self._execute(conn, "PRAGMA journal_mode=WAL", ())
        self._execute(conn, "BEGIN IMMEDIATE", ())
        try:
            if self._execute(conn, "PRAGMA user_version", ()).fetchone()[0] == 0:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        self._execute(conn, statement, ())
                self._execute(conn, f"PRAGMA user_version = {SCHEMA_VERSION}", ())
            self._execute(conn, "COMMIT", ())
        except BaseException:
            conn.rollback()
            raise


# SQLite's primary result codes (sqlite3.SQLITE_* from Python 3.11)
_PERM, _BUSY, _LOCKED, _READONLY, _IOERR, _CORRUPT, _FULL, _CANTOPEN, _NOTADB = 3, 5, 6, 8, 10, 11, 13, 14, 26
#: the code of an error from Python 3.10 (no ``sqlite_errorcode``), by SQLite's own message
_CODES_BY_MESSAGE = {
    "database or disk is full": _FULL,
    "attempt to write a readonly database": _READONLY,
    "unable to open database file": _CANTOPEN,
    "disk I/O error": _IOERR,
    "file is not a database": _NOTADB,
    "database disk image is malformed": _CORRUPT,
}


def _sqlite_code(exc: Exception) -> int | None:
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF  # the primary code of an extended one (SQLITE_IOERR_WRITE → SQLITE_IOERR)
    return _CODES_BY_MESSAGE.get(str(exc))


def check_name(what: str, name: str, pattern: re.Pattern[str]) -> None:
    if not isinstance(name, str) or not pattern.fullmatch(name):
        allowed = (
            "lowercase letters, digits, '-' and '_'"
            if pattern is BLOCK_TYPE_RE
            else "letters, digits, '-' and '_'"
        )
        raise ValueError(f"{what} {name!r} is not valid: use {allowed}")


def _mark_secret(value: t.Any) -> None:
    from stepengine.masking import mask

    if isinstance(value, t.Mapping) and set(value) == {"value"}:
        value = value["value"]
    mask(value)
