"""``file://`` pulls without fsspec: one directory walk and plain copies, at a fraction of the cost per file.

``_blob_io.pull`` uses this for ``file:///absolute/path`` URLs without storage options (anything else
goes through fsspec's ``LocalFileSystem`` as before). It describes each file exactly as
``LocalFileSystem.find(detail=True)`` does (``name``, ``size``, ``type``, ``mtime`` of the entry
itself, a symlink's size from its target), so both give the same files and the same manifest; it
differs only in cost: fsspec builds an info dict of ten fields with two ``stat`` calls per file and
its import takes ~0.3 s, where a pull of 10,000 small files should cost little more than ``cp -r``.
"""

from __future__ import annotations

import errno
import os
import stat
import typing as t

__all__ = ["LocalReader", "open_local_reader"]


def open_local_reader(
    url: str, options: dict[str, t.Any], concurrency: int
) -> tuple[LocalReader, str] | None:
    """A reader for ``url`` and its path, or ``None`` when fsspec should handle it."""
    if options or os.name != "posix":
        return None
    for prefix in ("file://", "local://"):
        if url.startswith(prefix):
            path = url[len(prefix) :]
            break
    else:
        return None
    root = path.rstrip("/")
    if not root.startswith("/") or any(part in ("", ".", "..") for part in root.split("/")[1:]):
        return None  # relative, or not in the one spelling fsspec keeps as it is
    return LocalReader(concurrency), root


class LocalReader:
    """The two file-system calls a pull makes (``find`` and ``get_file``) on the local disk."""

    async_impl = False

    def __init__(self, concurrency: int) -> None:
        #: copies in flight at once (``_blob_io`` caps its threads with this): one, in the calling
        #: thread. The kernel buffers the writes, so a local copy is CPU work, and threads only hand
        #: the GIL to each other (an ``strace`` of 16 threads copying 10,000 files counted 415,000
        #: futex calls). Measured here (10,000 × 4 KiB, ext4, in-process, medians of 5): 1 thread
        #: 0.61 s, 2: 0.69 s, 4: 0.80 s, 16: 1.02 s (issue 16: a ``file://`` pull at ``cp -r``'s pace).
        del concurrency
        self.max_threads = 1

    def find(self, root: str, detail: bool = True, withdirs: bool = False) -> dict[str, dict[str, t.Any]]:
        """Every file under ``root`` (or ``root`` itself if a file), keyed by path, as fsspec describes it."""
        found: dict[str, dict[str, t.Any]] = {}
        try:
            st = os.stat(root)
        except OSError:
            return found
        if not os.path.isdir(root):
            found[root] = {"name": root, "size": st.st_size, "type": "file", "mtime": st.st_mtime}
            return found
        folders = [root]
        while folders:
            folder = folders.pop()
            try:
                entries = os.scandir(folder)
            except (FileNotFoundError, NotADirectoryError):
                continue
            with entries:
                for entry in entries:
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            folders.append(entry.path)
                            continue
                        own = entry.stat(follow_symlinks=False)
                        size = own.st_size
                        if entry.is_symlink():
                            try:
                                size = entry.stat().st_size
                            except OSError:
                                size = 0
                    except FileNotFoundError:
                        continue  # removed while we walked
                    kind = "file" if entry.is_file(follow_symlinks=False) else "other"
                    found[entry.path] = {
                        "name": entry.path,
                        "size": size,
                        "type": kind,
                        "mtime": own.st_mtime,
                    }
        return found

    def get_file(self, rpath: str, lpath: str) -> int:
        """Copy one file: two opens and ``copy_file_range`` (``shutil.copyfile`` adds four ``stat`` calls).
        Returns the number of bytes written (the caller checks it against the listing's size)."""
        # O_NONBLOCK: a named pipe where the listing had a file is refused below instead of waited on
        source = os.open(rpath, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
        try:
            info = os.fstat(source)
            if not stat.S_ISREG(info.st_mode):
                raise IsADirectoryError(f"{rpath} is not a regular file")
            target = os.open(lpath, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
            try:
                return _copy(source, target, info.st_size)
            finally:
                os.close(target)
        finally:
            os.close(source)

    def release(self) -> None:
        pass


def _copy(source: int, target: int, size: int) -> int:
    """Copy ``size`` bytes between two descriptors, in the kernel where it can; the bytes written
    (fewer if the file shrank since it was listed: the size check will say so)."""
    done = 0
    if _COPY_FILE_RANGE is not None:
        try:
            while done < size:
                copied = _COPY_FILE_RANGE(source, target, size - done)
                if not copied:
                    return done  # the file shrank since it was listed
                done += copied
            return done
        except OSError as exc:
            if done or exc.errno not in (
                errno.EXDEV,
                errno.ENOSYS,
                errno.EINVAL,
                errno.EOPNOTSUPP,
                errno.EPERM,
            ):
                raise
    return _copy_rest(source, target)


def _copy_rest(source: int, target: int) -> int:
    """Copy from ``source``'s offset to its end with reads and writes; the bytes written."""
    done = 0
    while True:
        chunk = os.read(source, 1 << 20)
        if not chunk:
            return done
        done += len(chunk)
        view = memoryview(chunk)
        while view:
            view = view[os.write(target, view) :]


_COPY_FILE_RANGE = getattr(os, "copy_file_range", None)
