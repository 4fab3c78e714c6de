"""The ``git_clone`` pull step: Prefect's interface, without leaked tokens or repeated downloads.

How a clone runs (see ``git_clone``):

1. Credentials become one ``Authorization: Basic`` header that git reads from the environment
   (``GIT_CONFIG_COUNT`` / ``http.<scheme>://<host>/.extraHeader``): never in argv, never in the remote
   URL stored in ``.git/config``, masked (raw and base64) in everything git prints
   (``builtin_steps/_git_remote.py``, with the retries and the error messages). The same channel pins
   every setting that makes git run a program (``core.fsmonitor``, ``core.hooksPath``,
   ``core.sshCommand`` ...: ``_git_remote.PINNED_CONFIG``) for every git command of the clone.
2. ``git ls-remote`` names the wanted branch's tip (and the default branch) and fails early with a
   specific error: authentication, repository not found, branch not found, host unreachable.
3. Network sources go through a shared object cache, ``$STEPENGINE_HOME/git-cache/<name>-<hash>.git``
   (``_git_cache``): a shallow bare repository per URL, filled by one ``git clone --bare`` when cold
   (no ``ls-remote`` then: the server is asked what plain ``git clone`` asks), updated under a lock
   per repository, repacked and pruned so it stays bounded. A second clone of a commit the cache
   already holds never downloads it again: its objects are hard-linked into the new checkout.
4. The checkout is built in a temporary sibling (``git init``, objects from the cache or ``git fetch
   --depth 1``, checkout) and renamed into place only when complete. An existing checkout is
   updated in place (fetch + forced checkout of the wanted branch or commit) only if stepengine made
   it (``_git_checkouts``: a record under ``$STEPENGINE_HOME``, its config put back before git runs);
   any other ``.git`` is refused, as its config could run any program.
5. Nothing is left behind by a kill: git processes die with the process that started them (a
   watchdog, ``_watchdog``), and the next run into the same directory removes a killed clone's
   temporary sibling and repairs a checkout whose update was killed half-way (stale lock files).
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import signal
import threading
import time
import typing as t
from pathlib import Path
from urllib.parse import urlsplit

from stepengine.step_api import (
    StepError,
    atomic_directory,
    get_logger,
    safe_join,
)

from ._git_cache import (
    cache_path,
    cache_root,
    cached_source,
    destination_lock,
    files_refs,
    fill_cold,
    has_commit,
    link_objects,
    locked,
    maintain,
)
from ._git_checkouts import Checkout, claim, open_existing, refuse
from ._git_remote import (
    MARKER_VARIABLE,
    Remote,
    no_space_error,
    split_credentials,
    strip_userinfo,
)

if t.TYPE_CHECKING:
    import types

__all__ = ["agit_clone", "cache_path", "cache_root", "git_clone"]

_HEX = re.compile(r"[0-9a-fA-F]{4,64}")


def git_clone(
    repository: str,
    branch: str | None = None,
    commit_sha: str | None = None,
    include_submodules: bool = False,
    access_token: str | None = None,
    credentials: t.Mapping[str, t.Any] | None = None,
    directories: list[str] | None = None,
    clone_directory_name: str | None = None,
    cache: bool = True,
) -> dict[str, str]:
    """Clone ``repository`` (shallow) into the current directory and return ``{"directory": ...}``.

    :param repository: an ``https://``, ``http://``, ``git://``, ``ssh://``, ``user@host:path``,
        ``file://`` URL or a local path.
    :param branch: the branch to check out (default: the remote's default branch).
    :param commit_sha: a commit to check out (4–64 hex characters); excludes ``branch``.
    :param include_submodules: also clone submodules (recursively), with the same credentials.
    :param access_token: a token for ``http(s)`` URLs.
    :param credentials: a mapping (usually a block) with ``access_token``, ``token`` or ``password``
        and an optional ``username``; excludes ``access_token``.
    :param directories: check out only these paths (sparse, blob-less partial clone).
    :param clone_directory_name: the directory to create (default: the repository's name, plus
        ``-<branch>`` when a branch is given).
    :param cache: use the shared object cache (default ``True``).

    Example (``prefect.yaml``)::

        pull:
          - prefect.deployments.steps.git_clone:
              id: clone
              repository: https://github.com/org/repo.git
              branch: main
              access_token: "{{ prefect.blocks.secret.github-token }}"
    """
    if access_token and credentials:
        raise StepError(
            "pass either access_token or credentials, not both",
            hint="access_token is a shorthand for credentials: {access_token: ...}",
        )
    if branch and commit_sha:
        raise StepError(
            "pass either branch or commit_sha, not both", hint="a commit already fixes what is checked out"
        )
    if not isinstance(repository, str) or not repository.strip():
        raise StepError("repository must be a non-empty URL or path")
    if repository.startswith("-"):
        raise StepError(
            f"refusing repository {repository!r}: it starts with '-'", hint="git would read it as an option"
        )
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*::", repository):
        # "<transport>::<address>" runs a remote helper; ext:: runs any shell command
        raise StepError(
            f"refusing repository {repository!r}: remote-helper URLs (transport::address) are not allowed",
            hint="use an https://, http://, ssh://, git:// or file:// URL",
        )
    if branch is not None and (not isinstance(branch, str) or not branch or branch.startswith("-")):
        raise StepError(f"refusing branch {branch!r}: it must be a non-empty name not starting with '-'")
    if commit_sha is not None and (not isinstance(commit_sha, str) or not _HEX.fullmatch(commit_sha)):
        raise StepError(
            f"commit_sha {commit_sha!r} is not a commit SHA", hint="use 4 to 64 hexadecimal characters"
        )
    given: object = directories  # as written in the YAML, whatever the annotation says
    if directories is not None and (
        isinstance(given, str)
        or not all(isinstance(d, str) and d and not d.startswith("-") for d in directories)
    ):
        raise StepError("directories must be a list of paths (none empty or starting with '-')")
    commit_sha = commit_sha.lower() if commit_sha else None

    url, auth = split_credentials(repository, access_token, credentials)
    name = clone_directory_name or _default_directory_name(url, branch)
    if not name or name in (".", ".."):
        raise StepError(f"cannot derive a directory name from {url!r}", hint="set clone_directory_name")
    destination = safe_join(Path.cwd(), name)

    git = Remote(url, auth, submodules=include_submodules)
    git.target = destination
    building: list[Path] = []
    try:
        with _sigterm_as_interrupt(), _watchdog(git.marker):
            # Two runs cloning into the same directory take turns: the second one updates in place.
            with locked(destination_lock(destination), f"another clone into {name}"):
                _remove_leftovers(destination)
                if os.path.lexists(destination / ".git"):
                    checkout = open_existing(destination)
                    if checkout is None:
                        raise refuse(destination, name)
                    _update_in_place(
                        git, checkout, branch, commit_sha, directories, include_submodules, cache
                    )
                elif destination.exists() and (not destination.is_dir() or any(destination.iterdir())):
                    raise StepError(
                        f"{name} already exists and is not a git checkout",
                        hint="remove it, or set clone_directory_name to clone somewhere else",
                    )
                else:
                    with atomic_directory(destination) as tmp:
                        building.append(tmp)
                        git.places[tmp] = destination
                        # cwd, not a path argument: a git left behind by an interrupt cannot re-create tmp
                        git.run(["init", "--quiet"], tmp)
                        _checkout(
                            git, tmp, branch, commit_sha, directories, include_submodules, cache, new=True
                        )
                        claim(tmp, destination, git.url)
    except BaseException as exc:
        _stop_stragglers(git.marker)
        if building:
            shutil.rmtree(building[0], ignore_errors=True)
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise no_space_error(destination, "git_clone") from exc
        raise
    get_logger().info("Cloned repository %r into %r", url, name)
    return {"directory": name}


async def agit_clone(
    repository: str,
    branch: str | None = None,
    commit_sha: str | None = None,
    include_submodules: bool = False,
    access_token: str | None = None,
    credentials: t.Mapping[str, t.Any] | None = None,
    directories: list[str] | None = None,
    clone_directory_name: str | None = None,
    cache: bool = True,
) -> dict[str, str]:
    """The ``async`` twin of ``git_clone`` (Prefect 3's ``prefect.deployments.steps.pull.agit_clone``):
    same arguments, same result. The clone runs in the calling thread, so that an interrupt or a
    step timeout stops git and removes a half-built directory exactly as for ``git_clone``.
    """
    return git_clone(
        repository,
        branch=branch,
        commit_sha=commit_sha,
        include_submodules=include_submodules,
        access_token=access_token,
        credentials=credentials,
        directories=directories,
        clone_directory_name=clone_directory_name,
        cache=cache,
    )


# --------------------------------------------------------------------------------------------------
# Clone / update


def _default_directory_name(url: str, branch: str | None) -> str:
    # Prefect's rule, kept exactly (``.git`` removed wherever it appears) so paths in existing
    # prefect.yaml files that name the clone directory stay valid.
    path = urlsplit(url).path if "://" in url else url
    name = path.split("/")[-1].replace(".git", "")
    return f"{name}-{branch.replace('/', '-')}" if branch else name


def _remote_ref(git: Remote, branch: str | None) -> tuple[str, str]:
    """``(ref, sha)`` to check out: ``branch`` as a branch or else a tag (as ``git clone --branch``
    takes both), or the remote's default branch when ``branch`` is None."""
    patterns = [f"refs/heads/{branch}", f"refs/tags/{branch}"] if branch else ["HEAD"]
    out = git.run(["ls-remote", "--symref", "--", git.url, *patterns], network=True)
    found: dict[str, str] = {}
    for line in out.splitlines():
        left, _, ref = line.partition("\t")
        if left.startswith("ref: refs/heads/") and ref == "HEAD":
            found["default"] = left.removeprefix("ref: ")
        elif _HEX.fullmatch(left):
            found[ref] = left
    if branch is None and "default" in found and "HEAD" in found:
        return found["default"], found["HEAD"]
    for ref in patterns:
        if ref in found and ref != "HEAD":
            return ref, found[ref]
    if branch:
        heads = git.run(["ls-remote", "--heads", "--", git.url], network=True)
        names = [line.partition("\trefs/heads/")[2] for line in heads.splitlines()]
        shown = ", ".join(names[:10]) + (", …" if len(names) > 10 else "")
        raise StepError(
            f"branch {branch!r} not found in {git.url}", hint=f"its branches are: {shown or 'none'}"
        )
    raise StepError(f"{git.url} has no default branch (it may be empty)", hint="pass branch or commit_sha")


def _checkout(
    git: Remote,
    repo: Path,
    branch: str | None,
    commit_sha: str | None,
    directories: list[str] | None,
    include_submodules: bool,
    use_cache: bool,
    *,
    new: bool = False,
) -> None:
    """Bring ``repo`` to the wanted branch, tag or commit; a ``new`` one (just ``git init``-ed) gets
    its origin here, fetching only the wanted branch (as ``git clone --depth 1`` sets it up)."""
    source = git.url
    ref: str | None = None  # refs/heads/<branch> or refs/tags/<tag>; None for a commit
    if commit_sha is None:
        filled = None
        if (
            new
            and use_cache
            and not git.local
            and not directories
            and not (cache_path(git.url) / "HEAD").exists()
        ):
            filled = fill_cold(git, branch)  # one clone into the cache tells the tip too: no ls-remote
        ref, wanted = filled or _remote_ref(git, branch)
        branch = ref.removeprefix("refs/heads/") if ref.startswith("refs/heads/") else None
        local_ref = f"refs/remotes/origin/{branch}" if branch else ref
        refspec = f"+{ref}:{local_ref}"
    else:
        wanted = commit_sha
        refspec = commit_sha
    direct = new and files_refs(repo / ".git")  # refs and config written as plain files: no git process
    if new and direct:
        _write_origin(repo, git.url, branch)
    elif new:
        track = ["-t", branch] if branch else []
        git.run(["remote", "add", *track, "origin", git.url], repo)
    have = not new and (commit_sha is None or len(commit_sha) >= 40) and has_commit(git, repo, wanted)
    fetched = False
    with contextlib.ExitStack() as stack:
        fetch_options = ["--depth", "1"]
        if directories:
            fetch_options.append("--filter=blob:none")
        elif use_cache and not git.local and not have:
            source = str(stack.enter_context(cached_source(git, ref, commit_sha, wanted)))
        if commit_sha is not None and len(commit_sha) < 40:
            # An abbreviated SHA cannot be fetched by name: fetch the branches' history and resolve it.
            full = _resolve_short_sha(
                git, repo if source == git.url else Path(source), commit_sha, source == git.url
            )
            wanted = refspec = full
            have = has_commit(git, repo, wanted)
        if not have and source != git.url and new:
            have = link_objects(Path(source), repo)
        if not have:
            # by remote name when fetching from it, so a partial clone records origin as its promisor
            name = "origin" if source == git.url else source
            fetch = ["fetch", "--quiet", "--no-tags", *fetch_options, "--", name, refspec]
            git.run(fetch, repo, network=source == git.url, commit=commit_sha)
            fetched = True
    if ref is not None and not fetched and direct:
        (repo / ".git" / local_ref).parent.mkdir(parents=True, exist_ok=True)
        (repo / ".git" / local_ref).write_text(wanted + "\n", encoding="ascii")
    elif ref is not None and not fetched:
        git.run(["update-ref", local_ref, wanted], repo)
    if directories:
        git.run(["sparse-checkout", "set", "--", *directories], repo, network=True)
    elif (repo / ".git" / "info" / "sparse-checkout").exists():
        git.run(["sparse-checkout", "disable"], repo)
    if branch is not None:
        if not new:
            _track_branch(git, repo, branch)
        remote_branch = f"refs/remotes/origin/{branch}"
        git.run(
            ["checkout", "--quiet", "--force", "-B", branch, "--track", remote_branch], repo, network=True
        )
    else:  # a commit, or a tag (detached, as git clone --branch <tag> leaves it)
        target = wanted if ref is None else f"{ref}^{{commit}}"
        git.run(["checkout", "--quiet", "--force", "--detach", target], repo, network=True)
    if include_submodules:
        git.run(
            ["submodule", "update", "--init", "--recursive", "--depth", "1", "--quiet"], repo, network=True
        )


def _write_origin(repo: Path, url: str, branch: str | None) -> None:
    """What ``git remote add [-t branch] origin url`` writes into a new repository's config."""
    if "\n" in url or "\0" in url:
        raise StepError(f"refusing repository {url!r}: it contains a line break")
    ref = f"refs/heads/{branch}" if branch else "refs/heads/*"
    spec = f"+{ref}:refs/remotes/origin/{ref.removeprefix('refs/heads/')}"

    def quoted(value: str) -> str:
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'

    with open(repo / ".git" / "config", "a", encoding="utf-8") as config:
        config.write(f'[remote "origin"]\n\turl = {quoted(url)}\n\tfetch = {quoted(spec)}\n')


def _track_branch(git: Remote, repo: Path, branch: str) -> None:
    """Make an existing checkout's origin fetch ``branch`` too (``git pull`` then works on it)."""
    specs = git.probe(["config", "--get-all", "remote.origin.fetch"], repo)[1].split()
    if (
        f"+refs/heads/{branch}:refs/remotes/origin/{branch}" not in specs
        and "+refs/heads/*:refs/remotes/origin/*" not in specs
    ):
        git.run(["remote", "set-branches", "--add", "origin", branch], repo)


def _resolve_short_sha(git: Remote, repo: Path, short: str, from_origin: bool) -> str:
    shallow = git.run(["rev-parse", "--is-shallow-repository"], repo)
    args = ["fetch", "--quiet", "--no-tags"] + (["--unshallow"] if shallow.strip() == "true" else [])
    target = "refs/remotes/origin/*" if from_origin else "refs/heads/*"
    git.run([*args, "--", git.url, f"+refs/heads/*:{target}"], repo, network=True)
    code, out = git.probe(["rev-parse", "--verify", "--quiet", f"{short}^{{commit}}"], repo)
    if code != 0:
        raise StepError(
            f"commit {short!r} not found in {git.url}", hint="check the SHA, or give all 40 characters"
        )
    return out.strip()


def _update_in_place(
    git: Remote,
    checkout: Checkout,
    branch: str | None,
    commit_sha: str | None,
    directories: list[str] | None,
    include_submodules: bool,
    use_cache: bool,
) -> None:
    """Update a checkout stepengine made (``_git_checkouts``), repairing what a killed run left."""
    destination = checkout.destination
    if strip_userinfo(checkout.url).rstrip("/") != git.url.rstrip("/"):
        raise StepError(
            f"{destination.name} is a checkout of {strip_userinfo(checkout.url)}, not {git.url}",
            hint="remove that directory, or set clone_directory_name to clone somewhere else",
        )
    checkout.restore()  # before any git runs in it
    if checkout.interrupted:
        # We hold the checkout's lock: git's lock files in it belong to a git that was killed with us.
        removed = checkout.remove_stale_locks()
        get_logger().warning(
            "%s: a previous run was stopped while updating it; repairing it%s",
            destination.name,
            f" (removed {', '.join(removed)})" if removed else "",
        )
    checkout.save("updating")
    _checkout(git, destination, branch, commit_sha, directories, include_submodules, use_cache)
    maintain(git, destination, bare=False)  # each update adds objects: keep .git bounded
    checkout.save("ready")


def _remove_leftovers(destination: Path) -> None:
    """Remove the temporary siblings (``.<name>.<hex>.tmp``) of clones into ``destination`` that were
    killed before they could clean up. Called holding the destination's lock, so none is in use."""
    pattern = re.compile(rf"\.{re.escape(destination.name)}\.[0-9a-f]{{8}}\.tmp")
    with contextlib.suppress(OSError):
        for entry in os.scandir(destination.parent):
            if pattern.fullmatch(entry.name) and entry.is_dir(follow_symlinks=False):
                path = Path(entry.path)
                if os.path.lexists(path / ".git") or not any(path.iterdir()):
                    shutil.rmtree(path, ignore_errors=True)
                    get_logger().info("removed %s, left by an interrupted clone", path.name)


# --------------------------------------------------------------------------------------------------
# Interrupts


def _stop_stragglers(marker: str) -> None:
    """Stop every git process this clone started that is still running.

    ``run_process`` stops its child on an interrupt, but a signal that lands while it is *starting*
    one (between fork and its cleanup guard) leaves that child running, and it may keep writing into
    the half-built checkout. Every git of this clone carries ``marker`` in its environment (its
    children too), so they are found through ``/proc`` (Linux; elsewhere this does nothing).
    """
    needle = f"{MARKER_VARIABLE}={marker}".encode()

    def running() -> list[int]:
        pids = []
        for entry in Path("/proc").glob("[0-9]*"):
            try:
                if needle in (entry / "environ").read_bytes().split(b"\0"):
                    pids.append(int(entry.name))
            except OSError:
                continue
        return pids

    for sig, grace in ((signal.SIGTERM, 2.0), (signal.SIGKILL, 2.0)):  # SIGTERM lets git drop its lock files
        pids = running()
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, sig)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and running():
            time.sleep(0.02)


#: the watchdog: waits for a line on stdin; "done" ends it, end-of-file (the clone's process died,
#: even by SIGKILL, and the kernel closed its end of the pipe) makes it stop every process that
#: carries the clone's marker ($1) in its environment: git and whatever git started
_WATCHDOG_SCRIPT = """
read -r word
[ "$word" = done ] && exit 0
for sig in TERM KILL; do
  pids=$(grep -lzx -- "$1" /proc/[0-9]*/environ 2>/dev/null | cut -d/ -f3)
  [ -z "$pids" ] && exit 0
  kill -s "$sig" $pids 2>/dev/null
  sleep 1
done
"""


@contextlib.contextmanager
def _watchdog(marker: str) -> t.Iterator[None]:
    """Make this clone's git processes die with the process that started them.

    ``run_process`` stops them on any exception, but nothing runs in a process killed by SIGKILL
    (the OOM killer, ``kill -9``, a container runtime's timeout), and git, in a session of its own,
    would go on writing into the checkout. A small ``sh`` started here (its own session, so signals
    for our process group do not reach it) notices our death when its stdin pipe closes and stops
    them. Linux only (it finds them through ``/proc``); elsewhere nothing is started.
    """
    import subprocess

    if not os.path.isdir("/proc/self") or not shutil.which("grep"):
        yield
        return
    env = {k: v for k, v in os.environ.items() if k != MARKER_VARIABLE}
    guard = subprocess.Popen(
        ["/bin/sh", "-c", _WATCHDOG_SCRIPT, "stepengine-git-watchdog", f"{MARKER_VARIABLE}={marker}"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            assert guard.stdin is not None
            guard.stdin.write(b"done\n")
            guard.stdin.close()
        with contextlib.suppress(Exception):
            guard.wait(timeout=5)


@contextlib.contextmanager
def _sigterm_as_interrupt() -> t.Iterator[None]:
    """While cloning, let SIGTERM unwind like Ctrl-C (kill git, remove the half-built directory).

    Only when called in the main thread and nobody else handles SIGTERM (the default action would
    end the process without any cleanup).
    """
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGTERM) != signal.SIG_DFL
    ):
        yield
        return

    def interrupt(signum: int, frame: types.FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
