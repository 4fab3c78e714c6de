"""How ``git_clone`` talks to a remote: credentials as an environment-only header, retries, errors.

``Remote`` holds the URL (without user info) and the environment every git command of one clone
gets: no terminal prompts, the ``ext::`` transport disabled and, when there are credentials, one
``Authorization: Basic`` header scoped to the URL's scheme, host and port, passed through
``GIT_CONFIG_COUNT`` so it is never in argv or in ``.git/config``. ``Remote.run`` retries transient
network failures with exponential backoff and jitter, and turns git's stderr into a specific
``StepError`` (authentication, not found, unreachable, TLS, missing commit).
"""

from __future__ import annotations

import base64
import contextlib
import os
import random
import re
import shlex
import shutil
import time
import typing as t
import uuid
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

from stepengine.step_api import ProcessError, StepError, get_logger, home_directory, mask, run_process

__all__ = [
    "ATTEMPTS",
    "MARKER_VARIABLE",
    "PINNED_CONFIG",
    "RETRY_BASE_SECONDS",
    "Remote",
    "classify",
    "no_space_error",
    "split_credentials",
    "strip_userinfo",
    "userinfo",
]

#: environment variable that tags every git process of one clone (value: a fresh UUID)
MARKER_VARIABLE = "STEPENGINE_GIT_CLONE"
#: attempts for a network git command that fails with a transient error (auth errors never retry)
ATTEMPTS = 3
#: first backoff delay in seconds; doubled each retry, with ±50 % jitter
RETRY_BASE_SECONDS = 0.5


# --------------------------------------------------------------------------------------------------
# Credentials and the git environment


def split_credentials(
    repository: str, access_token: str | None, credentials: t.Mapping[str, t.Any] | None
) -> tuple[str, str | None]:
    """Return the URL without user info and the ``user:secret`` (or bare token) to send, if any."""
    parts = urlsplit(repository) if "://" in repository else None
    embedded: str | None = None
    if parts is not None and (parts.username or parts.password):
        # A URL with credentials in it would land in .git/config; move them to the header instead.
        # They are percent-decoded first, as git and curl do (``tok%5Fen`` is sent as ``tok_en``);
        # both spellings are masked.
        raw = parts.netloc.rsplit("@", 1)[0]
        mask(raw)
        user, has_password, password = raw.partition(":")
        embedded = unquote(user) + (":" + unquote(password) if has_password else "")
        mask(embedded)
        if password:
            mask(password)
            mask(unquote(password))
        elif not has_password:
            mask(unquote(user))  # a bare token as the user name (GitHub style)
        host = parts.hostname or ""
        if parts.port:
            host += f":{parts.port}"
        repository = urlunsplit(parts._replace(netloc=host))
        parts = urlsplit(repository)
    if credentials is not None and not isinstance(credentials, t.Mapping):
        raise StepError(
            "credentials must be a mapping", hint="e.g. {username: ..., access_token: ...} or a block"
        )
    secret: t.Any = access_token
    username: str | None = None
    if credentials:
        secret = credentials.get("access_token") or credentials.get("token") or credentials.get("password")
        username = credentials.get("username") or None
        if secret is None:
            raise StepError(
                "credentials has no access_token, token or password",
                hint=f"its keys are: {', '.join(sorted(map(str, credentials)))}",
            )
    if secret is None or secret == "":
        return repository, embedded
    if isinstance(secret, t.Mapping) and "value" in secret:  # a Secret block resolved to its fields
        secret = secret["value"]
    secret = str(mask(str(secret)))
    if embedded:
        raise StepError("the repository URL already contains credentials", hint="remove them from the URL")
    if parts is None or parts.scheme not in ("http", "https"):
        get_logger().warning("credentials are only sent to http(s) URLs; ignoring them for %s", repository)
        return repository, None
    return repository, userinfo(parts.netloc, secret, username)


def userinfo(netloc: str, token: str, username: str | None) -> str:
    """What Prefect puts before ``@`` in the URL: the user name it defaults to depends on the host."""
    if username:
        return f"{username}:{token}"
    if "bitbucketserver" in netloc:
        if ":" not in token:
            raise StepError(
                "Bitbucket Server needs a username with the token",
                hint="set credentials.username, or pass the token as 'username:token'",
            )
        return token
    if "bitbucket" in netloc:
        return token if ":" in token else f"x-token-auth:{token}"
    if "gitlab" in netloc:
        return token if token.startswith("oauth2:") else f"oauth2:{token}"
    return token  # GitHub and others: the token alone


#: configuration that makes git run a program, pinned for every git command of a clone through
#: ``GIT_CONFIG_COUNT`` (the "command" scope, which wins over every config file). Keys that cannot be
#: pinned this way (``filter.<driver>.*``, ``include.path``, ``url.<base>.insteadOf``,
#: ``credential.<url>.helper``, ``core.worktree``, ``diff.external``, per-host ``core.gitProxy``) are
#: the reason git only ever runs in a checkout whose configuration stepengine wrote itself and puts
#: back before each update (``_git_checkouts``). ``uploadpack.packObjectsHook`` is read from protected
#: (system, global, command) config only, so a repository cannot set it.
PINNED_CONFIG: tuple[tuple[str, str], ...] = (
    ("core.fsmonitor", "false"),  # a command run by any command that reads the index
    ("core.hooksPath", "/dev/null"),  # no hook runs (post-checkout, reference-transaction, ...)
    ("core.askPass", ""),  # never ask anyone (GIT_TERMINAL_PROMPT=0 covers the terminal)
    ("remote.origin.uploadpack", "git-upload-pack"),  # the command run for file:// and ssh remotes
    ("protocol.ext.allow", "never"),  # ext:: runs any shell command
    ("protocol.file.allow", "user"),  # git's default since 2.38.1: no file:// submodules
    ("maintenance.auto", "false"),  # no gc left running in the background: see _git_cache.maintain
    ("gc.auto", "0"),
)
#: what the programs a clone may need (ssh, a git:// proxy) are, read from the user's own config only
_USER_LEVEL_KEYS = r"^(core\.sshcommand|core\.gitproxy)$"


class Remote:
    """The URL, its safe-to-show form, and the environment every git command of this clone gets."""

    def __init__(self, url: str, userinfo: str | None, *, submodules: bool = False) -> None:
        self.url = url
        # git's own rule: without "://", a colon before the first slash means ssh ("host:path")
        self.local = url.startswith("file://") or ("://" not in url and not re.match(r"^[^/]*:", url))
        #: what a "no space left" error names (set by git_clone to the checkout being made)
        self.target: Path | None = None
        #: directories git works in that stand for another in messages (a temporary sibling → the checkout)
        self.places: dict[Path | None, Path] = {}
        config = list(PINNED_CONFIG)
        env = dict(os.environ)
        # Never wait for a prompt: no terminal prompts, and run_process starts git in a new session
        # without a controlling terminal, so ssh cannot ask for a passphrase either.
        env["GIT_TERMINAL_PROMPT"] = "0"
        # every git this clone starts (and their children) can be found by this, see git._stop_stragglers
        self.marker = uuid.uuid4().hex
        env[MARKER_VARIABLE] = self.marker
        self.has_credentials = userinfo is not None
        _require_git_config_env()
        if userinfo is not None:
            parts = urlsplit(url)
            header_value = base64.b64encode(
                (userinfo if ":" in userinfo else userinfo + ":").encode()
            ).decode()
            mask(header_value)
            config.append(
                (f"http.{parts.scheme}://{parts.netloc}/.extraHeader", f"Authorization: Basic {header_value}")
            )
            # Our header is the only credential: no helper may be asked (or told to forget a password).
            config.append(("credential.helper", ""))
            env.pop("GIT_ASKPASS", None)
            env.pop("SSH_ASKPASS", None)
        if submodules or not (url.startswith(("http://", "https://")) or self.local):
            config += _program_settings(env)
        start = int(env.get("GIT_CONFIG_COUNT") or 0)
        for offset, (key, value) in enumerate(config):
            env[f"GIT_CONFIG_KEY_{start + offset}"] = key
            env[f"GIT_CONFIG_VALUE_{start + offset}"] = value
        env["GIT_CONFIG_COUNT"] = str(start + len(config))
        self.env = env

    def run(
        self, args: list[str], cwd: Path | None = None, *, network: bool = False, commit: str | None = None
    ) -> str:
        """Run one git command; a ``network`` one is retried on transient errors, all are classified."""
        for attempt in range(1, (ATTEMPTS if network else 1) + 1):
            try:
                return run_process(["git", *args], cwd=cwd, env=self.env, stream_output=False).stdout
            except ProcessError as exc:
                kind = classify(exc.stderr)
                if not network or kind not in ("transient", "unreachable") or attempt == ATTEMPTS:
                    raise _translate(exc, kind, self, attempts=attempt, commit=commit, cwd=cwd) from exc
                delay = RETRY_BASE_SECONDS * 2 ** (attempt - 1) * random.uniform(0.5, 1.5)
                get_logger().warning(
                    "git %s failed (%s), retrying in %.1f s (attempt %d of %d)",
                    args[0],
                    _main_line(exc.stderr),
                    delay,
                    attempt + 1,
                    ATTEMPTS,
                )
                time.sleep(delay)
        raise AssertionError("unreachable")

    def probe(self, args: list[str], cwd: Path | None = None) -> tuple[int, str]:
        """Run a git command that may fail (a question): ``(exit code, stdout)``."""
        result = run_process(["git", *args], cwd=cwd, env=self.env, check=False, stream_output=False)
        return result.returncode, result.stdout


def _program_settings(env: dict[str, str]) -> list[tuple[str, str]]:
    """Pin ``core.sshCommand`` (and a git:// proxy) to what the *user* configured, never the repository.

    Read with ``GIT_DIR`` pointing nowhere, so only system, global and command-line config count.
    """
    result = run_process(
        ["git", "config", "-z", "--show-scope", "--get-regexp", _USER_LEVEL_KEYS],
        env={**env, "GIT_DIR": os.devnull},
        check=False,
        stream_output=False,
    )
    found = dict(_records(result.stdout))  # the last value wins, as in git
    pinned = []
    if "GIT_SSH_COMMAND" not in env:
        if "core.sshcommand" in found:
            pinned.append(("core.sshCommand", found["core.sshcommand"]))
        elif env.get("GIT_SSH"):  # git reads GIT_SSH only when core.sshCommand is unset
            env["GIT_SSH_COMMAND"] = shlex.quote(env["GIT_SSH"])
        else:
            pinned.append(("core.sshCommand", "ssh"))
    if "GIT_PROXY_COMMAND" not in env and "core.gitproxy" not in found:
        env["GIT_PROXY_COMMAND"] = ""  # set, so no core.gitProxy is read; empty, so none runs
    return pinned


def _records(output: str) -> list[tuple[str, str]]:
    """``git config -z --show-scope --get-regexp`` output as ``(key, value)`` pairs."""
    fields = output.split("\0")
    pairs = []
    for scope, entry in zip(fields[0::2], fields[1::2], strict=False):
        key, _, value = entry.partition("\n")
        if scope in ("system", "global", "command"):
            pairs.append((key, value))
    return pairs


_GIT_CHECKED: set[str] = set()


def _require_git_config_env() -> None:
    """``GIT_CONFIG_COUNT`` needs git 2.31: an older git would ignore the pinned settings (and clone
    without the token). Checked once per ``git`` executable: the answer is kept in memory and, keyed
    by the executable's inode, size and mtime, in ``$STEPENGINE_HOME/git-cache/git-version-ok`` (a
    new CLI process would otherwise start one more git for every clone)."""
    path = os.environ.get("PATH", "")
    if path in _GIT_CHECKED:
        return
    key = ""
    with contextlib.suppress(OSError, TypeError):
        executable = os.path.realpath(shutil.which("git", path=path) or "")
        info = os.stat(executable)
        key = f"{executable} {info.st_ino} {info.st_size} {info.st_mtime_ns}\n"
    stamp = home_directory() / "git-cache" / "git-version-ok"
    with contextlib.suppress(OSError, UnicodeDecodeError):
        if key and stamp.read_text(encoding="utf-8") == key:
            _GIT_CHECKED.add(path)
            return
    out = run_process(["git", "--version"], stream_output=False, hint="install git").stdout
    match = re.search(r"(\d+)\.(\d+)", out)
    if match and (int(match[1]), int(match[2])) < (2, 31):
        raise StepError(
            f"{out.strip()} cannot take settings from the environment (credentials, and the repository "
            "settings that run programs, which stepengine overrides)",
            hint="install git 2.31 or newer",
        )
    _GIT_CHECKED.add(path)
    if key:
        with contextlib.suppress(OSError):
            stamp.parent.mkdir(parents=True, exist_ok=True)
            tmp = stamp.with_name(f".{stamp.name}.{os.getpid()}.tmp")
            tmp.write_text(key, encoding="utf-8")
            os.replace(tmp, stamp)


# --------------------------------------------------------------------------------------------------
# Errors


def classify(stderr: str) -> str:
    text = stderr.lower()
    if (
        "could not read username" in text
        or "could not read password" in text
        or "authentication failed" in text
    ):
        return "auth"
    if re.search(r"returned error: 40[13]\b|access denied|permission denied \(publickey", text):
        return "auth"
    if re.search(r"ssl certificate problem|certificate verif|server certificate", text):
        return "tls"
    if re.search(r"no space left on device|disk quota exceeded|out of diskspace", text):
        return "nospace"
    if re.search(
        (
            r"not our ref|couldn't find remote ref|no such remote ref|unadvertised object|remote branch .* "
            r"not found"
        ),
        text,
    ):
        return "ref"
    if re.search(r"could not resolve host|failed to connect|couldn't connect|connection refused", text):
        return "unreachable"
    if re.search(
        r"repository '.*' not found|returned error: 404|does not appear to be a git repository", text
    ):
        return "missing"
    if re.search(
        r"returned error: 5\d\d|rpc failed|early eof|hung up unexpectedly|connection reset|timed out|"
        r"recv error|ssl_error_syscall|transfer closed|empty reply|gnutls",
        text,
    ):
        return "transient"
    return "other"


def _reason_unreachable(stderr: str) -> str:
    text = stderr.lower()
    if "could not resolve host" in text:
        return "host name not found"
    if "connection refused" in text or "couldn't connect" in text:
        return "connection refused"
    if "timed out" in text:
        return "connection timed out"
    return "connection failed"


def _translate(
    exc: ProcessError, kind: str, git: Remote, *, attempts: int, commit: str | None, cwd: Path | None
) -> StepError:
    url = git.url
    if kind == "nospace":
        return no_space_error(
            git.places.get(cwd, cwd) if cwd is not None else git.target, f"git {exc.argv[1]}"
        )
    if kind == "auth":
        return StepError(
            f"authentication failed for {url}",
            hint=(
                "check that the access token (or the credentials block) is valid and can read this repository"
            )
            if git.has_credentials
            else "this repository needs credentials: pass access_token, or credentials with a token",
        )
    if kind == "ref" and commit:
        return StepError(f"commit {commit!r} not found in {url}", hint="check the SHA and that it was pushed")
    if kind == "missing":
        return StepError(
            f"repository not found: {url}",
            hint="check the URL; a private repository also looks missing to a token that cannot read it",
        )
    if kind == "unreachable":
        return StepError(
            f"cannot reach {url}: {_reason_unreachable(exc.stderr)} (tried {attempts} times)",
            hint="check the host name and port, and your network or proxy settings",
        )
    if kind == "tls":
        return StepError(
            f"the TLS certificate of {urlsplit(url).netloc} is not trusted: {url}",
            hint="point GIT_SSL_CAINFO at the CA certificate that signed it",
        )
    if kind == "transient":
        return StepError(
            f"git could not fetch from {url} after {attempts} attempts: {_main_line(exc.stderr)}",
            hint="the server or the network failed repeatedly; try again later",
        )
    return StepError(
        f"git {exc.argv[1]} failed for {url} (exit code {exc.returncode}): {_main_line(exc.stderr)}"
    )


def no_space_error(where: Path | None, what: str) -> StepError:
    """The error for a full disk (ENOSPC, or a quota), naming the directory that could not be written."""
    free = ""
    probe = where
    while probe is not None and not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if probe is not None:
        with contextlib.suppress(OSError):
            free = f"; {shutil.disk_usage(probe).free // 1024} KiB free"
    return StepError(
        f"no space left on the device holding {where or 'the checkout'} ({what} could not write{free})",
        hint="free some space on that file system (or clone somewhere else) and run again",
    )


def _main_line(stderr: str) -> str:
    """What git's error says: its last ``fatal:``/``error:`` line (the lines after it explain it, as
    "remove the file manually to continue" does for the lock file the fatal line names), else the last."""
    lines = [line.strip() for line in stderr.strip().splitlines() if line.strip()]
    flagged = [line for line in lines if line.startswith(("fatal: ", "error: "))]
    text = (flagged or lines or ["no output"])[-1]
    return text.removeprefix("fatal: ").removeprefix("error: ")


def strip_userinfo(url: str) -> str:
    if "://" not in url:
        return url
    parts = urlsplit(url)
    host = (parts.hostname or "") + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=host))
