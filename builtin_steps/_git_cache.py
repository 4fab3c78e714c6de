"""The shared git object cache: one shallow bare repository per URL under ``$STEPENGINE_HOME/git-cache``.

A clone takes what it needs from here instead of the network: when the cache already holds the
wanted commit, its objects are hard-linked into the new checkout (no pack is made, sent or
indexed). Concurrency, per repository (``<cache>.git.lock``, a ``flock``):

- a clone that finds the commit there links it under a *shared* lock: any number at once;
- one that must fetch takes the *exclusive* lock, looks again (another process may have fetched
  it meanwhile: a cold cache is filled once, however many processes wait for it), fetches, and
  links before letting go;
- a cold cache is filled with one ``git clone --bare --depth 1`` (no ``ls-remote`` first: that
  clone learns the default branch and its tip itself).

The cache stays bounded (``maintain``): small fetches leave loose objects, and old tips become
unreachable as branches move; once there are more than ``LOOSE_LIMIT`` loose objects or
``PACK_LIMIT`` packs, everything reachable is repacked into one pack and the rest pruned, under the
exclusive lock (nothing can be linking then; a checkout owns its links, never the cache's files).
The same runs in a checkout after an in-place update, under that checkout's lock.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import typing as t
from pathlib import Path

from stepengine.step_api import ProcessError, StepError, get_logger, home_directory

from ._git_remote import Remote, classify, strip_userinfo

__all__ = [
    "LOOSE_LIMIT",
    "PACK_LIMIT",
    "cache_path",
    "cache_root",
    "cached_source",
    "destination_lock",
    "fill_cold",
    "files_refs",
    "has_commit",
    "link_objects",
    "locked",
    "maintain",
    "read_ref",
]

#: loose objects (``git gc --auto`` waits for 6,700) and packs past which a repository is repacked
LOOSE_LIMIT = 256
PACK_LIMIT = 8
#: ``refs/commits/<sha>`` kept for clones of a fixed commit (the oldest go first)
COMMIT_REFS_KEPT = 32


def cache_root() -> Path:
    """Where cached repositories live: ``$STEPENGINE_HOME/git-cache`` (default ``~/.stepengine``)."""
    return home_directory() / "git-cache"


def cache_path(url: str) -> Path:
    """The bare repository that caches ``url`` (credentials never take part in the name)."""
    clean = strip_userinfo(url).rstrip("/")
    digest = hashlib.sha256(clean.encode()).hexdigest()[:16]
    name = re.sub(r"[^\w.-]", "_", clean.rsplit("/", 1)[-1].removesuffix(".git"))[:40] or "repo"
    return cache_root() / f"{name}-{digest}.git"


def destination_lock(destination: Path) -> Path:
    """One lock per checkout directory, kept beside the cache (not in the user's directory)."""
    digest = hashlib.sha256(os.fsencode(destination)).hexdigest()[:24]
    return cache_root() / "locks" / f"{digest}.lock"


@contextlib.contextmanager
def locked(lock_path: Path, waiting_for: str, *, shared: bool = False) -> t.Iterator[None]:
    """Hold a ``flock`` on ``lock_path`` (released even if the process dies), logging any wait."""
    import fcntl

    mode = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+") as lock:
        try:
            fcntl.flock(lock, mode | fcntl.LOCK_NB)
        except BlockingIOError:
            get_logger().info("waiting for %s", waiting_for)
            fcntl.flock(lock, mode)
        yield


def has_commit(git: Remote, repo: Path, sha: str) -> bool:
    if not (repo / ".git").exists() and not (repo / "objects").exists():
        return False
    return git.probe(["cat-file", "-e", f"{sha}^{{commit}}"], repo)[0] == 0


def _fetch_args(git: Remote, refspec: str) -> list[str]:
    return ["fetch", "--quiet", "--no-tags", "--depth", "1", "--", git.url, refspec]


def fill_cold(git: Remote, branch: str | None) -> tuple[str, str] | None:
    """Fill an empty cache with one ``git clone --bare --depth 1`` and return ``(ref, tip)``.

    ``None`` when there is nothing to do here: another process filled the cache meanwhile, the
    branch does not exist, or the repository is empty (the caller's ``ls-remote`` then says why).
    """
    path = cache_path(git.url)
    with locked(Path(f"{path}.lock"), f"another clone of {git.url} to fill the git cache"):
        if (path / "HEAD").exists():
            return None
        # what a killed fill left (we hold the exclusive lock: nobody else is filling)
        for leftover in (path, *path.parent.glob(f".{path.name}.*.tmp")):
            shutil.rmtree(leftover, ignore_errors=True)
        tmp = path.with_name(f".{path.name}.{os.urandom(4).hex()}.tmp")
        try:
            args = ["clone", "--bare", "--quiet", "--depth", "1", "--single-branch", "--no-tags"]
            if branch:
                args += ["--branch", branch]
            try:
                git.run([*args, "--", git.url, str(tmp)], network=True)
            except StepError as exc:
                if isinstance(exc.__cause__, ProcessError) and classify(exc.__cause__.stderr) == "ref":
                    return None
                raise
            # what the clone got, read from its files (three git processes fewer on every cold clone)
            head = (tmp / "HEAD").read_text(encoding="utf-8").strip()
            if head.startswith("ref: "):
                ref, tip = head[5:], read_ref(tmp, head[5:])
            else:  # a tag: git clone --branch <tag> leaves HEAD detached on its commit
                ref, tip = f"refs/tags/{branch}", head
            if (not branch and not ref.startswith("refs/heads/")) or not tip or not _SHA.fullmatch(tip):
                return None  # an empty repository (or a ref store we do not read): the caller asks ls-remote
            # (the clone's remote.origin stays in its config, unused: the cache fetches by URL)
            os.rename(tmp, path)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return ref, tip


_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


def read_ref(git_dir: Path, name: str) -> str | None:
    """The object ``name`` (``refs/...``) points at, read from git's ref files (a loose ref, else
    ``packed-refs``), or None: absent, or a repository whose refs are not plain files (reftable)."""
    if not files_refs(git_dir):
        return None
    with contextlib.suppress(OSError, UnicodeDecodeError):
        text = (git_dir / name).read_text(encoding="ascii").strip()
        return text if _SHA.fullmatch(text) else None
    with contextlib.suppress(OSError, UnicodeDecodeError):
        for line in (git_dir / "packed-refs").read_text(encoding="utf-8").splitlines():
            sha, _, refname = line.partition(" ")
            if refname == name and _SHA.fullmatch(sha):
                return sha
    return None


def files_refs(git_dir: Path) -> bool:
    """Whether refs are plain files here (git's default; not with ``extensions.refStorage``)."""
    return "refstorage" not in _config_text(git_dir).lower()


def _config_text(git_dir: Path) -> str:
    try:
        return (git_dir / "config").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


@contextlib.contextmanager
def cached_source(git: Remote, ref: str | None, commit_sha: str | None, tip: str) -> t.Iterator[Path]:
    """Yield the cache holding the wanted commit, under its lock (shared when it had it already)."""
    path = cache_path(git.url)
    lock = Path(f"{path}.lock")
    wanted = tip if ref is not None else commit_sha
    if (path / "HEAD").exists() and wanted and len(wanted) >= 40:
        with locked(lock, f"another clone of {git.url} to finish updating the git cache", shared=True):
            # the cache's ref naming the commit proves it is there (refs move only after a complete fetch)
            known = read_ref(path, ref if ref is not None else f"refs/commits/{wanted}") == wanted
            if known or has_commit(git, path, wanted):
                yield path
                return
    with locked(lock, f"another clone of {git.url} to finish with the git cache"):
        # We hold the exclusive lock, so a git lock file left in the cache belongs to a git that was killed.
        for stale in (*path.glob("*.lock"), *path.glob("refs/**/*.lock")):
            stale.unlink(missing_ok=True)
        if not (path / "HEAD").exists():
            git.run(["init", "--quiet", "--bare", str(path)])
        fetched = False
        if ref is not None:
            if not has_commit(git, path, tip):
                git.run(_fetch_args(git, f"+{ref}:{ref}"), path, network=True)
                fetched = True
        elif commit_sha and len(commit_sha) >= 40 and not has_commit(git, path, commit_sha):
            git.run(
                _fetch_args(git, f"{commit_sha}:refs/commits/{commit_sha}"),
                path,
                network=True,
                commit=commit_sha,
            )
            fetched = True
        if fetched:
            _drop_old_commit_refs(path)
            maintain(git, path)
        yield path


def _drop_old_commit_refs(path: Path) -> None:
    refs = sorted((path / "refs" / "commits").glob("*"), key=lambda p: p.stat().st_mtime)
    for old in refs[:-COMMIT_REFS_KEPT]:
        old.unlink(missing_ok=True)


def _counts(objects: Path) -> tuple[int, int]:
    """Loose objects and packs in an ``objects`` directory."""
    loose = 0
    with contextlib.suppress(OSError):
        for entry in os.scandir(objects):
            if len(entry.name) == 2 and entry.is_dir():
                loose += len(os.listdir(entry.path))
    packs = len(list((objects / "pack").glob("*.pack")))
    return loose, packs


def maintain(git: Remote, repo: Path, *, bare: bool = True) -> bool:
    """Repack ``repo`` into one pack and prune what is unreachable, once it has more than
    ``LOOSE_LIMIT`` loose objects or ``PACK_LIMIT`` packs. The caller holds the repository's lock.
    Returns whether it did."""
    objects = repo / "objects" if bare else repo / ".git" / "objects"
    loose, packs = _counts(objects)
    if loose <= LOOSE_LIMIT and packs <= PACK_LIMIT:
        return False
    if not bare:
        # a checkout's reflog keeps the tips it was at; once the shallow history moved on, they are gone
        # upstream
        git.run(["reflog", "expire", "--expire-unreachable=now", "--all"], repo)
    git.run(["repack", "-a", "-d", "-q", "--no-write-bitmap-index"], repo)
    git.run(["prune", "--expire=now"], repo)
    get_logger().info("packed %s (%d loose objects, %d packs before)", repo.name, loose, packs)
    return True


def link_objects(cache: Path, repo: Path) -> bool:
    """Give a new checkout every object of the cache as hard links (no copy, no pack transfer).

    Pack files and loose objects never change once written, so sharing their inodes is safe; the
    checkout does not depend on the cache afterwards (unlike ``--reference``), and the cache's
    maintenance deleting its own names leaves the checkout's intact. Returns ``False`` when links
    are impossible (another file system), and the caller fetches instead.
    """
    objects = repo / ".git" / "objects"
    try:
        for source in (cache / "objects").glob("*/*"):
            if (
                source.parent.name == "info"
                or source.suffix in (".keep", ".lock")
                or source.name.startswith("tmp_")
            ):
                continue
            target = objects / source.parent.name / source.name
            target.parent.mkdir(exist_ok=True)
            if not target.exists():
                os.link(source, target)
        if (cache / "shallow").exists():
            # the cache is shallow: so is the checkout, at the same boundaries
            (repo / ".git" / "shallow").write_bytes((cache / "shallow").read_bytes())
    except OSError:
        return False
    return True
