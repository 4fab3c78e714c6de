"""Which checkouts stepengine made: the only directories ``git_clone`` updates in place.

A ``.git`` directory found in the working directory may have come from anywhere (a blob pull, an
archive, another tool), and its ``config`` can make git run any program (``core.fsmonitor``, filters,
``include.path`` ...). So ``git_clone`` runs git only in checkouts it made itself, and knows them by a
record kept *outside* the tree, under ``$STEPENGINE_HOME/git-cache/checkouts/`` (0700 directory,
0600 files), one per checkout path:

- the device and inode of the checkout's ``.git`` directory, and a random token also written to
  ``.git/stepengine-checkout``: a ``.git`` put there by anyone else (or re-created after ours was
  deleted) matches neither, and is refused;
- the origin URL (without credentials);
- the text of every config file git reads in it (``config``, ``config.worktree``, and those of
  submodules under ``modules/``) as stepengine left them: before any git command runs in the
  checkout they are put back, files stepengine never writes there (``commondir``,
  ``objects/info/alternates``) are removed, so content pulled over ours cannot change what runs;
- the state: ``updating`` while an update runs, ``ready`` after it. A run that finds ``updating``
  knows that one was killed mid-way, and repairs the checkout (git's stale lock files removed; the
  forced checkout that follows rewrites the half-updated tree).

The files hold no secret: the origin URL is stored without user info, and credentials never reach
a checkout's config.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
import stat
import time
import typing as t
from pathlib import Path

from stepengine.step_api import StepError, get_logger, home_directory

__all__ = ["TOKEN_FILE", "Checkout", "claim", "open_existing", "records_root", "refuse"]

#: the in-tree half of the ownership check (the other half is the record under $STEPENGINE_HOME)
TOKEN_FILE = "stepengine-checkout"
#: files inside ``.git`` that stepengine never writes and that would make git read another config or
#: object store (and run its ``core.alternateRefsCommand``)
_FOREIGN = ("commondir", "objects/info/alternates", "objects/info/http-alternates")
#: records kept before old ones whose checkout is gone are dropped
_PRUNE_ABOVE = 256


def records_root() -> Path:
    return home_directory() / "git-cache" / "checkouts"


def _record_path(destination: Path) -> Path:
    digest = hashlib.sha256(os.fsencode(destination)).hexdigest()[:32]
    return records_root() / f"{digest}.json"


def _config_files(git_dir: Path) -> dict[str, str]:
    """Every config file git may read in this checkout, relative to ``.git``, with its text."""
    found = {}
    candidates = [git_dir / "config", git_dir / "config.worktree"]
    if (git_dir / "modules").is_dir():
        candidates += [
            p for p in (git_dir / "modules").rglob("config*") if p.name in ("config", "config.worktree")
        ]
    for path in candidates:
        with contextlib.suppress(FileNotFoundError):
            found[path.relative_to(git_dir).as_posix()] = path.read_text(
                encoding="utf-8", errors="surrogateescape"
            )
    return found


def _write_private(path: Path, text: str) -> None:
    """Write ``path`` atomically, readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _replace_file(path: Path, text: str) -> None:
    """Put ``text`` at ``path`` (replacing a symlink or a directory there, never following one)."""
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644)
    with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape") as handle:
        handle.write(text)


class Checkout:
    """A checkout stepengine made, at ``destination`` (resolved), with its record."""

    def __init__(self, destination: Path, record: dict[str, t.Any]) -> None:
        self.destination = destination
        self.record = record

    @property
    def url(self) -> str:
        return str(self.record["url"])

    @property
    def interrupted(self) -> bool:
        """A run was killed while it updated this checkout."""
        return self.record.get("state") == "updating"

    def save(self, state: str, *, url: str | None = None, git_dir: Path | None = None) -> None:
        """Record the checkout's config as it is now (stepengine just wrote it) and ``state``."""
        self.record.update(state=state, configs=_config_files(git_dir or self.destination / ".git"))
        if url is not None:
            self.record["url"] = url
        _write_private(_record_path(self.destination), json.dumps(self.record, sort_keys=True))

    def restore(self) -> None:
        """Put back the config files as stepengine left them; remove what it never writes."""
        git_dir = self.destination / ".git"
        wanted: dict[str, str] = self.record.get("configs", {})
        changed = []
        for name in _config_files(git_dir):
            if name not in wanted:
                (git_dir / name).unlink()
                changed.append(name)
        for name, text in wanted.items():
            path = git_dir / name
            try:
                same = (
                    not path.is_symlink()
                    and path.read_text(encoding="utf-8", errors="surrogateescape") == text
                )
            except OSError:
                same = False
            if not same:
                _replace_file(path, text)
                changed.append(name)
        for name in _FOREIGN:
            path = git_dir / name
            if path.is_symlink() or path.is_file():
                path.unlink()
                changed.append(name)
            elif path.exists():
                shutil.rmtree(path)
                changed.append(name)
        if changed:
            get_logger().warning(
                "%s: put back what stepengine wrote in .git (%s had been changed by something else)",
                self.destination.name,
                ", ".join(sorted(changed)),
            )

    def remove_stale_locks(self) -> list[str]:
        """Delete git's lock and temporary files left by a killed git (the caller holds the checkout's
        lock, and only stepengine runs git in its checkouts)."""
        git_dir = self.destination / ".git"
        removed = []
        for path in git_dir.rglob("*"):
            relative = path.relative_to(git_dir)
            if path.name.endswith(".lock") or (
                relative.parts[0] == "objects" and path.name.startswith("tmp_")
            ):
                with contextlib.suppress(OSError):
                    path.unlink()
                    removed.append(relative.as_posix())
        return sorted(removed)


def open_existing(destination: Path) -> Checkout | None:
    """The checkout at ``destination`` if stepengine made it (record, inode and token match), else None."""
    git_dir = destination / ".git"
    try:
        info = os.lstat(git_dir)
        record = json.loads(_record_path(destination).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not stat.S_ISDIR(info.st_mode) or not isinstance(record, dict):
        return None
    if record.get("path") != str(destination) or [record.get("device"), record.get("inode")] != [
        info.st_dev,
        info.st_ino,
    ]:
        return None
    token_path = git_dir / TOKEN_FILE
    try:
        token_info = os.lstat(token_path)
        token = token_path.read_text(encoding="ascii").strip() if stat.S_ISREG(token_info.st_mode) else ""
    except (OSError, UnicodeDecodeError):
        return None
    if not token or not secrets.compare_digest(token, str(record.get("token", ""))):
        return None
    return Checkout(destination, record)


def claim(building: Path, destination: Path, url: str) -> Checkout:
    """Record the checkout being built in ``building`` as stepengine's, for when it is at ``destination``.

    Called before the rename into place: a run killed between the two leaves a record without a
    checkout (harmless), never a checkout without a record (which every later run would refuse).
    """
    git_dir = building / ".git"
    token = secrets.token_hex(16)
    (git_dir / TOKEN_FILE).write_text(token + "\n", encoding="ascii")
    info = os.lstat(git_dir)
    record = {
        "path": str(destination),
        "device": info.st_dev,
        "inode": info.st_ino,
        "token": token,
        "url": url,
    }
    checkout = Checkout(destination, record)
    checkout.save("ready", git_dir=git_dir)
    _prune()
    return checkout


def _prune() -> None:
    """Drop the records of checkouts that are gone, once there are many (a worker clones into a new
    directory for every flow run)."""
    root = records_root()
    try:
        names = os.listdir(root)
    except OSError:
        return
    if len(names) <= _PRUNE_ABOVE:
        return
    young = time.time() - 3600  # a checkout being built has its record before it is in place
    for name in names:
        path = root / name
        with contextlib.suppress(OSError, ValueError, KeyError):
            if path.stat().st_mtime > young:
                continue
            record = json.loads(path.read_text(encoding="utf-8"))
            info = os.lstat(Path(record["path"]) / ".git")
            if [record.get("device"), record.get("inode")] == [info.st_dev, info.st_ino]:
                continue
        with contextlib.suppress(OSError):
            path.unlink()


def refuse(destination: Path, name: str) -> StepError:
    """The error for a ``.git`` directory stepengine did not make."""
    return StepError(
        f"{name} is a git checkout that stepengine did not make (or it was replaced or moved since): "
        "refusing to run git in it, as its .git/config could run any program",
        hint=(
            f"remove {name} (the next run clones it afresh), or set clone_directory_name to clone somewhere "
            f"else"
        ),
    )
