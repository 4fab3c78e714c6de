"""File-system helpers for steps: nothing half-done, nothing outside its target."""

from __future__ import annotations

import contextlib
import os
import typing as t

from stepengine.errors import StepError

if t.TYPE_CHECKING:  # pathlib costs a few ms of every cold run: imported where used
    from pathlib import Path

__all__ = ["atomic_directory", "safe_join"]


@contextlib.contextmanager
def atomic_directory(target: str | os.PathLike[str], *, replace: bool = True) -> t.Iterator[Path]:
    """Build a directory in a temporary sibling and move it to ``target`` only if the block succeeds.

    On any exception (interrupts included) the temporary directory is removed and ``target`` is left
    exactly as it was. With ``replace`` an existing ``target`` is swapped out only after the new one is
    complete; without it an existing ``target`` is an error.

    Example::

        with atomic_directory("checkout") as tmp:
            download_everything_into(tmp)
    """
    import shutil  # here, not at module level: step_api imports this module on every run
    from pathlib import Path

    target = Path(target).absolute()
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists() and not replace:
        raise StepError(f"{target} already exists")
    # The name is chosen before the directory exists, so an interrupt at any moment from here on
    # (even inside mkdir) is cleaned up: tempfile.mkdtemp would not tell us the name in that case.
    tmp = target.parent / f".{target.name}.{os.urandom(4).hex()}.tmp"
    try:
        os.mkdir(tmp)  # the mode the umask gives, like any folder the user makes (not 0700)
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old: Path | None = None
    try:
        if target.exists() or target.is_symlink():
            old = target.parent / f".{target.name}.{os.urandom(4).hex()}.old"
            os.replace(target, old)
        os.replace(tmp, target)
    except BaseException:
        # put the previous content back: a failed swap must leave the target as it was
        if old is not None and old.exists() and not target.exists():
            os.replace(old, target)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def safe_join(root: str | os.PathLike[str], relative: str) -> Path:
    """Join an untrusted relative path (e.g. an object key) under ``root``, or raise ``StepError``.

    Rejects absolute paths, ``..`` segments, backslashes, NUL bytes, drive letters and anything that
    resolves (through symlinks) outside ``root``.
    """
    from pathlib import Path, PurePosixPath

    bad = (
        not relative
        or "\0" in relative
        or "\\" in relative
        or relative.startswith("/")
        or (len(relative) > 1 and relative[1] == ":")
        or any(part in ("..",) for part in PurePosixPath(relative).parts)
    )
    if bad:
        raise StepError(f"refusing unsafe path {relative!r}: it would land outside {os.fspath(root)}")
    root_path = Path(root).resolve()
    joined = (root_path / relative).resolve()
    if joined != root_path and root_path not in joined.parents:
        raise StepError(f"refusing unsafe path {relative!r}: it resolves outside {root_path}")
    return joined
