"""git_clone against a real git smart-HTTP server (HTTP and HTTPS, token auth) on 127.0.0.1 and file://."""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import traceback
import typing as t
from pathlib import Path

import pytest

from stepengine.builtin_steps import _git_cache as git_cache
from stepengine.builtin_steps import _git_remote as remote
from stepengine.builtin_steps import git as git_step
from stepengine.builtin_steps.git import git_clone
from stepengine.step_api import StepError
from tests.fixtures.git_server import (
    GitServer,
    RepoInfo,
    commit_files,
    create_bare_repo,
)

ROOT = Path(__file__).resolve().parents[2]


class Repos(t.NamedTuple):
    hello: RepoInfo  # public, branches main and feature/x
    feature_sha: str
    app: RepoInfo  # private, 20 files, 5 commits, branch dev
    sub: RepoInfo  # private, used as a submodule
    with_sub: RepoInfo  # private, has sub as submodule (relative URL)


@pytest.fixture(scope="module")
def repos(git_server: GitServer) -> Repos:
    root = git_server.root
    hello = create_bare_repo(root / "public" / "hello.git", files=3, commits=3)
    feature_sha = commit_files(hello.path, "feature/x", {"feature.txt": "on feature/x\n"}, start_from="main")
    app = create_bare_repo(root / "private" / "app.git", files=20, commits=5)
    commit_files(app.path, "dev", {"dev.txt": "dev\n"}, start_from="main")
    sub = create_bare_repo(root / "private" / "sub.git", files=0, extra_files={"lib/sub.py": "X = 1\n"})
    gitmodules = '[submodule "vendor/sub"]\n\tpath = vendor/sub\n\turl = ../sub.git\n'
    with_sub = create_bare_repo(root / "private" / "with-sub.git", files=1)
    with_sub.commits.append(
        commit_files(with_sub.path, "main", {".gitmodules": gitmodules}, gitlinks={"vendor/sub": sub.head})
    )
    return Repos(hello, feature_sha, app, sub, with_sub)


@pytest.fixture(autouse=True)
def _fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(remote, "RETRY_BASE_SECONDS", 0.01)


@pytest.fixture(autouse=True)
def _reset_server(git_server: GitServer) -> t.Iterator[None]:
    git_server.reset()
    yield
    git_server.reset()


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def secret_forms(token: str) -> list[str]:
    """The token, and the part of its base64 form that any ``<prefix>token`` encoding contains."""
    forms = [token]
    for pad in range(3):
        raw = b"\0" * pad + token.encode()
        encoded = base64.b64encode(raw).decode()
        forms.append(encoded[-(-pad // 3) * 4 : len(raw) // 3 * 4])
    return forms


def assert_absent(token: str, *texts: str) -> None:
    for text in texts:
        for form in secret_forms(token):
            assert form not in text


def all_text_under(path: Path) -> str:
    chunks = []
    for file in path.rglob("*"):
        if file.is_file():
            chunks.append(file.read_bytes().decode("latin-1"))
    return "\n".join(chunks)


# --------------------------------------------------------------------------------------------------
# Clones that work


def test_public_clone_over_http(git_server: GitServer, repos: Repos, workdir: Path) -> None:
    """No credentials: the default branch, shallow, tracking origin, output relative to the cwd."""
    result = git_clone(git_server.url("public/hello.git"))
    assert result == {"directory": "hello"}
    checkout = workdir / "hello"
    assert git("rev-parse", "HEAD", cwd=checkout) == repos.hello.head
    assert git("rev-parse", "--abbrev-ref", "HEAD", cwd=checkout) == "main"
    assert git("rev-parse", "--abbrev-ref", "main@{upstream}", cwd=checkout) == "origin/main"
    assert git("rev-list", "--count", "HEAD", cwd=checkout) == "1"  # --depth 1
    assert (
        git("config", "--get-all", "remote.origin.fetch", cwd=checkout)
        == "+refs/heads/main:refs/remotes/origin/main"
    )
    assert (checkout / "README.md").read_text() == "# hello\n"
    assert sorted(p.name for p in workdir.iterdir()) == ["hello"]  # no temporary directory left


def test_token_clone_over_http_keeps_token_out_of_everything(
    git_server: GitServer,
    repos: Repos,
    workdir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """The token reaches the server (plain http too) but not argv, .git, the cache, logs or output."""
    argv_log = tmp_path / "argv.log"
    bindir = tmp_path / "bin"
    bindir.mkdir()
    real_git = subprocess.run(["which", "git"], capture_output=True, text=True, check=True).stdout.strip()
    (bindir / "git").write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> {argv_log}\nexec {real_git} "$@"\n')
    (bindir / "git").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    caplog.set_level(logging.DEBUG)

    result = git_clone(git_server.url("private/app.git"), access_token=git_server.token)

    checkout = workdir / result["directory"]
    assert git("rev-parse", "HEAD", cwd=checkout) == repos.app.head
    assert git("config", "--get", "remote.origin.url", cwd=checkout) == git_server.url("private/app.git")
    served = [r for r in git_server.requests() if r["path"].startswith("/private/app.git")]
    assert served and all(r["status"] == 200 for r in served)
    argv = argv_log.read_text()
    assert (
        "clone --bare" in argv and "checkout" in argv
    )  # the wrapper saw every git command (cold cache: a clone)
    out, err = capfd.readouterr()
    home = Path(os.environ["STEPENGINE_HOME"])
    assert_absent(
        git_server.token, argv, all_text_under(checkout / ".git"), all_text_under(home), out, err, caplog.text
    )


def test_token_clone_over_https(
    git_tls_server: GitServer, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HTTPS with a self-signed certificate trusted through GIT_SSL_CAINFO."""
    info = create_bare_repo(git_tls_server.root / "private" / "tls.git", files=2)
    monkeypatch.setenv("GIT_SSL_CAINFO", str(git_tls_server.cafile))
    result = git_clone(git_tls_server.url("private/tls.git"), access_token=git_tls_server.token)
    assert result == {"directory": "tls"}
    assert git("rev-parse", "HEAD", cwd=workdir / "tls") == info.head


def test_untrusted_certificate_is_a_clear_error(git_tls_server: GitServer, workdir: Path) -> None:
    create_bare_repo(git_tls_server.root / "public" / "tls-public.git", files=1)
    url = git_tls_server.url("public/tls-public.git")
    with pytest.raises(StepError) as caught:
        git_clone(url)
    assert str(caught.value) == (
        f"the TLS certificate of {git_tls_server.netloc} is not trusted: {url}\n"
        "hint: point GIT_SSL_CAINFO at the CA certificate that signed it"
    )
    assert list(workdir.iterdir()) == []


@pytest.mark.parametrize(
    "credentials",
    [
        pytest.param(lambda token: {"username": "deploy-bot", "password": token}, id="username+password"),
        pytest.param(lambda token: {"token": token}, id="token-alone"),
        pytest.param(
            lambda token: {"access_token": token, "username": "someone"}, id="access_token+username"
        ),
    ],
)
def test_credentials_mapping(
    git_server: GitServer, repos: Repos, workdir: Path, credentials: t.Callable[[str], dict[str, str]]
) -> None:
    result = git_clone(git_server.url("private/app.git"), credentials=credentials(git_server.token))
    assert git("rev-parse", "HEAD", cwd=workdir / result["directory"]) == repos.app.head


def test_credentials_in_the_url_are_moved_out_of_it(
    git_server: GitServer, repos: Repos, workdir: Path
) -> None:
    url = git_server.url("private/app.git")
    with_auth = url.replace("://", f"://user:{git_server.token}@")
    git_clone(with_auth)
    assert git("config", "--get", "remote.origin.url", cwd=workdir / "app") == url
    assert_absent(git_server.token, all_text_under(workdir / "app" / ".git"))


@pytest.mark.parametrize("form", ["user:password", "token-as-user"])
def test_percent_encoded_credentials_in_the_url_are_decoded_and_masked(
    git_server: GitServer, repos: Repos, workdir: Path, form: str
) -> None:
    """``user:tok%2Den@host`` authenticates as plain git does (decoded), and the decoded token is masked."""
    from stepengine.masking import Masker, using_masker

    token = git_server.token
    encoded = token.replace("-", "%2D")
    assert encoded != token
    userinfo = f"deploy%2Dbot:{encoded}" if form == "user:password" else encoded
    url = git_server.url("private/app.git")
    plain = subprocess.run(
        ["git", "ls-remote", url.replace("://", f"://{userinfo}@")], capture_output=True, check=False
    )
    assert plain.returncode == 0  # what plain git does with the same URL
    with using_masker(Masker()) as masker:
        assert git_clone(url.replace("://", f"://{userinfo}@")) == {"directory": "app"}
        assert masker.mask(f"token {token} and {encoded}") == "token *** and ***"
    users = {r["user"] for r in git_server.requests() if r["status"] == 200}
    assert users == {"deploy-bot" if form == "user:password" else token}
    assert git("config", "--get", "remote.origin.url", cwd=workdir / "app") == url


@pytest.mark.parametrize(
    ("netloc", "username", "expected"),
    [
        ("github.com", None, "tok"),
        ("gitlab.com", None, "oauth2:tok"),
        ("gitlab.example.com", None, "oauth2:tok"),
        ("bitbucket.org", None, "x-token-auth:tok"),
        ("bitbucket.org", "me", "me:tok"),
        ("git.example.com", "me", "me:tok"),
        ("git.example.com", None, "tok"),
    ],
)
def test_username_defaults_by_host_like_prefect(netloc: str, username: str | None, expected: str) -> None:
    assert remote.userinfo(netloc, "tok", username) == expected


def test_branch_names_the_directory(git_server: GitServer, repos: Repos, workdir: Path) -> None:
    result = git_clone(git_server.url("public/hello.git"), branch="feature/x")
    assert result == {"directory": "hello-feature-x"}
    checkout = workdir / "hello-feature-x"
    assert git("rev-parse", "HEAD", cwd=checkout) == repos.feature_sha
    assert git("rev-parse", "--abbrev-ref", "HEAD", cwd=checkout) == "feature/x"
    assert (checkout / "feature.txt").read_text() == "on feature/x\n"


@pytest.mark.parametrize("annotated", [False, True], ids=["lightweight", "annotated"])
def test_a_tag_as_branch_checks_it_out_detached(
    git_server: GitServer, workdir: Path, annotated: bool
) -> None:
    """As with ``git clone --branch v1.0`` (which Prefect runs), a tag name works as ``branch``."""
    info = create_bare_repo(git_server.root / "public" / f"tagged-{annotated}.git", files=2, commits=3)
    tag_args = ["-a", "-m", "release"] if annotated else []
    subprocess.run(
        ["git", "tag", *tag_args, "v1.0", info.commits[0]],
        cwd=info.path,
        check=True,
        env={**os.environ, "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid"},
    )
    url = git_server.url(f"public/tagged-{annotated}.git")
    assert git_clone(url, branch="v1.0") == {"directory": f"tagged-{annotated}-v1.0"}
    checkout = workdir / f"tagged-{annotated}-v1.0"
    assert git("rev-parse", "HEAD", cwd=checkout) == info.commits[0]
    assert git("rev-parse", "--abbrev-ref", "HEAD", cwd=checkout) == "HEAD"  # detached
    assert git_clone(url, branch="v1.0", clone_directory_name="again") == {
        "directory": "again"
    }  # from the cache
    assert git("rev-parse", "HEAD", cwd=workdir / "again") == info.commits[0]


def test_clone_directory_name_overrides(git_server: GitServer, repos: Repos, workdir: Path) -> None:
    assert git_clone(git_server.url("public/hello.git"), branch="main", clone_directory_name="src/code") == {
        "directory": "src/code"
    }
    assert (workdir / "src" / "code" / "README.md").exists()


@pytest.mark.parametrize("use_cache", [True, False], ids=["cache", "no-cache"])
def test_commit_sha_full_and_abbreviated(
    git_server: GitServer, repos: Repos, workdir: Path, use_cache: bool
) -> None:
    url = git_server.url("private/app.git")
    old = repos.app.commits[1]
    git_clone(
        url, commit_sha=old, access_token=git_server.token, clone_directory_name="full", cache=use_cache
    )
    assert git("rev-parse", "HEAD", cwd=workdir / "full") == old
    assert git("rev-list", "--count", "HEAD", cwd=workdir / "full") == "1"  # fetched directly, shallow
    older = repos.app.commits[2]
    git_clone(
        url,
        commit_sha=older[:7].upper(),
        access_token=git_server.token,
        clone_directory_name="short",
        cache=use_cache,
    )
    assert git("rev-parse", "HEAD", cwd=workdir / "short") == older


def test_file_url_and_plain_path(repos: Repos, workdir: Path) -> None:
    """Local sources work (and skip the cache: nothing to save)."""
    assert git_clone(f"file://{repos.hello.path}", clone_directory_name="via-url") == {"directory": "via-url"}
    assert git("rev-parse", "HEAD", cwd=workdir / "via-url") == repos.hello.head
    assert git("rev-list", "--count", "HEAD", cwd=workdir / "via-url") == "1"
    assert git_clone(str(repos.hello.path), branch="feature/x") == {"directory": "hello-feature-x"}
    assert git("rev-parse", "HEAD", cwd=workdir / "hello-feature-x") == repos.feature_sha
    assert not list((Path(os.environ["STEPENGINE_HOME"]) / "git-cache").glob("*.git"))


def test_submodules_get_the_same_token(git_server: GitServer, repos: Repos, workdir: Path) -> None:
    result = git_clone(
        git_server.url("private/with-sub.git"), access_token=git_server.token, include_submodules=True
    )
    checkout = workdir / result["directory"]
    assert (checkout / "vendor" / "sub" / "lib" / "sub.py").read_text() == "X = 1\n"
    assert git("rev-parse", "HEAD", cwd=checkout / "vendor" / "sub") == repos.sub.head
    sub_requests = [r for r in git_server.requests() if r["path"].startswith("/private/sub.git/")]
    assert sub_requests and all(r["status"] == 200 for r in sub_requests)
    assert_absent(git_server.token, all_text_under(checkout / ".git"))


def test_without_include_submodules_the_submodule_stays_empty(
    git_server: GitServer, repos: Repos, workdir: Path
) -> None:
    result = git_clone(git_server.url("private/with-sub.git"), access_token=git_server.token)
    assert list((workdir / result["directory"] / "vendor" / "sub").iterdir()) == []


def test_sparse_directories_are_a_blobless_partial_clone(
    git_server: GitServer, repos: Repos, workdir: Path
) -> None:
    result = git_clone(
        git_server.url("private/app.git"), access_token=git_server.token, directories=["d01", "d02"]
    )
    checkout = workdir / result["directory"]
    assert sorted(p.name for p in checkout.iterdir()) == [".git", "CHANGES.txt", "README.md", "d01", "d02"]
    assert git("config", "remote.origin.promisor", cwd=checkout) == "true"
    listing = git("rev-list", "--objects", "--missing=print", "HEAD", cwd=checkout).splitlines()
    missing = {line[1:] for line in listing if line.startswith("?")}
    tree = [line.split() for line in git("ls-tree", "-r", "HEAD", cwd=repos.app.path).splitlines()]
    outside = {blob for _, _, blob, path in tree if not path.startswith(("d01/", "d02/")) and "/" in path}
    assert missing == outside and len(missing) == 16  # the other eight directories' blobs never came


# --------------------------------------------------------------------------------------------------
# Re-runs and the cache


def test_rerun_updates_in_place(git_server: GitServer, workdir: Path) -> None:
    info = create_bare_repo(git_server.root / "private" / "moving.git", files=2)
    url = git_server.url("private/moving.git")
    git_clone(url, access_token=git_server.token)
    checkout = workdir / "moving"
    (checkout / "untracked.txt").write_text("mine\n")
    (checkout / "README.md").write_text("local edit\n")
    new = commit_files(info.path, "main", {"NEW.txt": "new\n"})

    assert git_clone(url, access_token=git_server.token) == {"directory": "moving"}

    assert git("rev-parse", "HEAD", cwd=checkout) == new
    assert (checkout / "NEW.txt").read_text() == "new\n"
    assert (checkout / "README.md").read_text() == "# moving\n"  # reset to the wanted commit
    assert (checkout / "untracked.txt").read_text() == "mine\n"  # user files are never deleted
    assert git_clone(url, access_token=git_server.token, commit_sha=info.head) == {"directory": "moving"}
    assert git("rev-parse", "HEAD", cwd=checkout) == info.head


def _plant_programs(git_dir: Path, marker: Path) -> None:
    """Config and a hook that each run a program leaving ``marker`` (as a pulled ``.git`` could)."""
    with open(git_dir / "config", "a") as config:
        config.write(f'[core]\n\tfsmonitor = "touch {marker}.fsmonitor; false"\n')
        config.write(f"[core]\n\thooksPath = {git_dir / 'evil-hooks'}\n")
    for hooks in (git_dir / "evil-hooks", git_dir / "hooks"):
        hooks.mkdir(exist_ok=True)
        for name in ("post-checkout", "reference-transaction", "post-index-change"):
            (hooks / name).write_text(f"#!/bin/sh\ntouch {marker}.{hooks.name}.{name}\n")
            (hooks / name).chmod(0o755)


def test_a_checkout_stepengine_did_not_make_is_refused_and_nothing_in_it_runs(
    git_server: GitServer, repos: Repos, workdir: Path, tmp_path: Path
) -> None:
    """A ``.git`` from elsewhere (a pulled bucket, Prefect, plain git) with the same origin and config
    that runs programs: refused before any git command runs in it (Prefect's ``git clone`` refuses a
    non-empty directory too)."""
    url = git_server.url("private/app.git")
    leaky = url.replace("://", f"://{git_server.token}@")
    subprocess.run(["git", "clone", "-q", "--depth", "1", leaky, str(workdir / "app")], check=True)
    git("remote", "set-url", "origin", url, cwd=workdir / "app")
    marker = tmp_path / "ran"
    _plant_programs(workdir / "app" / ".git", marker)
    before = all_text_under(workdir / "app")

    with pytest.raises(StepError) as caught:
        git_clone(url, access_token=git_server.token)

    assert str(caught.value) == (
        "app is a git checkout that stepengine did not make (or it was replaced or moved since): refusing to "
        "run git in it, as its .git/config could run any program\n"
        "hint: remove app (the next run clones it afresh), or set clone_directory_name to clone somewhere else"
    )
    assert list(tmp_path.glob("ran*")) == []
    assert all_text_under(workdir / "app") == before  # untouched
    shutil.rmtree(workdir / "app")
    assert git_clone(url, access_token=git_server.token) == {"directory": "app"}  # as the hint says


@pytest.mark.parametrize("how", ["replaced", "copied"])
def test_a_checkout_replaced_by_a_copy_of_ours_is_refused(
    git_server: GitServer, repos: Repos, workdir: Path, tmp_path: Path, how: str
) -> None:
    """The record of our checkout lives in STEPENGINE_HOME: another ``.git`` at the same path, even a
    byte-for-byte copy of ours (token file included), is not ours."""
    url = git_server.url("public/hello.git")
    git_clone(url)
    if how == "copied":
        shutil.copytree(workdir / "hello", tmp_path / "copy", symlinks=True)
        shutil.rmtree(workdir / "hello")
        (tmp_path / "copy").rename(workdir / "hello")
    else:
        shutil.rmtree(workdir / "hello")
        subprocess.run(["git", "clone", "-q", "--depth", "1", url, str(workdir / "hello")], check=True)
    marker = tmp_path / "ran"
    _plant_programs(workdir / "hello" / ".git", marker)
    with pytest.raises(StepError, match="stepengine did not make"):
        git_clone(url)
    assert list(tmp_path.glob("ran*")) == []


def test_our_checkout_with_config_pulled_over_it_runs_nothing_and_is_put_back(
    git_server: GitServer, repos: Repos, workdir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Content pulled over our own checkout (its ``.git/config``, hooks, an alternates file): the update
    puts the config back as stepengine wrote it, and no hook or fsmonitor runs."""
    info = create_bare_repo(git_server.root / "public" / "overwritten.git", files=2)
    url = git_server.url("public/overwritten.git")
    git_clone(url)
    git_dir = workdir / "overwritten" / ".git"
    ours = (git_dir / "config").read_text()
    marker = tmp_path / "ran"
    _plant_programs(git_dir, marker)
    (git_dir / "objects" / "info" / "alternates").write_text(f"{tmp_path}\n")
    new = commit_files(info.path, "main", {"NEW.txt": "new\n"})

    assert git_clone(url) == {"directory": "overwritten"}

    assert git("rev-parse", "HEAD", cwd=workdir / "overwritten") == new
    assert list(tmp_path.glob("ran*")) == []
    assert (git_dir / "config").read_text() == ours
    assert not (git_dir / "objects" / "info" / "alternates").exists()
    assert "put back what stepengine wrote in .git (config, objects/info/alternates" in caplog.text


def test_every_git_command_runs_with_the_programs_pinned(
    git_server: GitServer, repos: Repos, workdir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each git the step starts (clone, update, submodules) sees fsmonitor off and no hooks directory."""
    log = tmp_path / "seen.log"
    bindir = tmp_path / "bin"
    bindir.mkdir()
    real_git = shutil.which("git")
    (bindir / "git").write_text(
        f'#!/bin/sh\nprintf "%s %s %s|%s %s\\n" "$({real_git} config core.fsmonitor)" "$({real_git} config core.hooksPath)" '
        f'"$({real_git} config protocol.ext.allow)" "$GIT_DIR" "$1" >> {log}\nexec {real_git} "$@"\n'
    )
    (bindir / "git").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    url = git_server.url("private/with-sub.git")
    git_clone(url, access_token=git_server.token, include_submodules=True)
    git_clone(url, access_token=git_server.token, include_submodules=True)
    # not in a repository: `git --version`, and reading the user's ssh settings with GIT_DIR=/dev/null
    seen = [
        line
        for line in log.read_text().splitlines()
        if not line.endswith(("| --version", "|/dev/null config"))
    ]
    assert len(seen) >= 8
    assert {line.partition("|")[0] for line in seen} == {"false /dev/null never"}, seen


def test_existing_checkout_of_another_origin_is_an_error(
    git_server: GitServer, repos: Repos, workdir: Path
) -> None:
    git_clone(f"file://{repos.hello.path}", clone_directory_name="hello")
    (workdir / "hello" / "keep.txt").write_text("keep\n")
    url = git_server.url("public/hello.git")
    with pytest.raises(StepError) as caught:
        git_clone(url)
    assert str(caught.value) == (
        f"hello is a checkout of file://{repos.hello.path}, not {url}\n"
        "hint: remove that directory, or set clone_directory_name to clone somewhere else"
    )
    assert (workdir / "hello" / "keep.txt").read_text() == "keep\n"


def test_existing_non_git_directory_is_an_error(git_server: GitServer, repos: Repos, workdir: Path) -> None:
    (workdir / "hello").mkdir()
    (workdir / "hello" / "notes.txt").write_text("mine\n")
    with pytest.raises(StepError) as caught:
        git_clone(git_server.url("public/hello.git"))
    assert str(caught.value) == (
        "hello already exists and is not a git checkout\n"
        "hint: remove it, or set clone_directory_name to clone somewhere else"
    )
    assert [p.name for p in (workdir / "hello").iterdir()] == ["notes.txt"]


def _clone_requests(server: GitServer, url: str, directory: Path) -> list[tuple[str, str]]:
    server.reset()
    subprocess.run(
        ["git", "clone", "-q", "--depth", "1", url, str(directory)], check=True, capture_output=True
    )
    return [(r["method"], r["path"]) for r in server.requests()]


def _ls_remote_requests(server: GitServer, url: str) -> int:
    server.reset()
    subprocess.run(["git", "ls-remote", url], check=True, capture_output=True)
    return len(server.requests())


def test_second_clone_uses_the_cache(git_server: GitServer, workdir: Path) -> None:
    """The first clone asks the server what ``git clone`` asks; the second, into a new directory, only
    where the branch is."""
    info = create_bare_repo(git_server.root / "public" / "cached.git", files=50)
    url = git_server.url("public/cached.git")
    git_clone(url, clone_directory_name="first")
    first = git_server.requests()
    git_server.reset()
    git_clone(url, clone_directory_name="second")
    second = git_server.requests()
    plain = _clone_requests(git_server, url, workdir / "plain")
    assert [(r["method"], r["path"]) for r in first] == plain  # no ls-remote before filling the cache
    assert git("rev-parse", "HEAD", cwd=workdir / "second") == info.head
    assert git("config", "--get", "remote.origin.url", cwd=workdir / "second") == url
    assert len(second) == _ls_remote_requests(git_server, url) < len(first)
    cache = git_step.cache_path(url)
    assert git("rev-parse", "refs/heads/main", cwd=cache) == info.head
    objects = [p for p in (workdir / "second" / ".git" / "objects").glob("*/*") if p.parent.name != "info"]
    assert objects and all(p.stat().st_nlink > 1 for p in objects)  # hard links to the cache, not copies
    # ... yet the checkout does not depend on the cache
    assert not (workdir / "second" / ".git" / "objects" / "info" / "alternates").exists()
    shutil.rmtree(cache)
    git("fsck", "--no-progress", cwd=workdir / "second")
    assert git("log", "--format=%H", cwd=workdir / "second") == info.head

    git_server.reset()
    git_clone(url, clone_directory_name="third", cache=False)
    assert len(git_server.requests()) == len(second) + len(first)  # ls-remote, then the fetch


def _objects(repo: Path) -> tuple[int, int]:
    """``(loose, in packs)`` objects of a repository."""
    stats = dict(line.split(": ") for line in git("count-objects", "-v", cwd=repo).splitlines())
    return int(stats["count"]), int(stats["in-pack"])


def test_the_cache_and_an_updated_checkout_stay_packed_and_pruned(
    git_server: GitServer, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 16: each upstream update left its objects loose in the cache forever (995 after 200), and
    every new checkout linked them all. Past the limit both are repacked and the old tips pruned."""
    monkeypatch.setattr(git_cache, "LOOSE_LIMIT", 10)
    info = create_bare_repo(git_server.root / "public" / "moving-often.git", files=30)
    url = git_server.url("public/moving-often.git")
    git_clone(url, clone_directory_name="fresh-before")
    first = sum(_objects(workdir / "fresh-before"))
    for n in range(16):  # ~6 new objects each (commit, trees, two blobs): 96 without pruning
        commit_files(info.path, "main", {f"d0{n % 10}/changed.txt": f"{n}\n" * 50, "CHANGES.txt": f"{n}\n"})
        git_clone(url, clone_directory_name="kept")
    cache = git_step.cache_path(url)
    for repo in (cache, workdir / "kept"):
        loose, packed = _objects(repo)
        assert loose <= 10 + 6 and loose + packed <= first + 6 + 16, (repo, loose, packed)
        git("fsck", "--no-progress", "--no-dangling", cwd=repo)
    assert git("rev-parse", "HEAD", cwd=workdir / "kept") == git("rev-parse", "main", cwd=info.path)
    git_clone(url, clone_directory_name="fresh-after")
    assert sum(_objects(workdir / "fresh-after")) <= first + 6 + 16
    git("fsck", "--no-progress", cwd=workdir / "fresh-after")


def test_concurrent_clones_share_the_cache_safely(git_server: GitServer, workdir: Path) -> None:
    info = create_bare_repo(git_server.root / "private" / "busy.git", files=200, commits=3)
    url = git_server.url("private/busy.git")
    script = "import sys; from stepengine.builtin_steps.git import git_clone; git_clone(sys.argv[1], access_token=sys.argv[2], clone_directory_name=sys.argv[3])"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GIT_SERVER_TOKEN": git_server.token}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, url, git_server.token, f"c{n}"],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(4)
    ]
    errors = [p.communicate(timeout=60)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], errors
    for n in range(4):
        assert git("rev-parse", "HEAD", cwd=workdir / f"c{n}") == info.head
        git("fsck", "--no-progress", cwd=workdir / f"c{n}")
    git("fsck", "--no-progress", cwd=git_step.cache_path(url))
    # every git command over HTTP starts with one GET of info/refs: one `clone --bare` into the cold
    # cache by whichever process got its lock first; the other three found it filled and only asked
    # where the branch is (ls-remote)
    commands = [r for r in git_server.requests() if r["method"] == "GET"]
    assert len(commands) == 1 + 3
    assert (
        len([r for r in git_server.requests() if r["method"] == "POST" and r["path"].endswith("upload-pack")])
        == 1 + 3 + 1
    )


def test_concurrent_clones_into_the_same_directory_take_turns(git_server: GitServer, workdir: Path) -> None:
    """The second run waits for the first, then finds a checkout and updates it in place."""
    info = create_bare_repo(git_server.root / "private" / "same.git", files=200)
    url = git_server.url("private/same.git")
    script = "import sys; from stepengine.builtin_steps.git import git_clone; print(git_clone(sys.argv[1], access_token=sys.argv[2]))"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, url, git_server.token],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    results = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], results
    assert [out for out, _ in results] == ["{'directory': 'same'}\n"] * 3
    assert sorted(p.name for p in workdir.iterdir()) == ["same"]
    assert git("rev-parse", "HEAD", cwd=workdir / "same") == info.head
    git("fsck", "--no-progress", cwd=workdir / "same")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupted_clone_leaves_nothing(
    git_server: GitServer, repos: Repos, workdir: Path, sig: signal.Signals
) -> None:
    create_bare_repo(git_server.root / "public" / f"slow-{sig.name}.git", files=1)
    url = git_server.url(f"public/slow-{sig.name}.git")  # unique in the process list
    git_server.set_delay(30)
    script = "import sys; from stepengine.builtin_steps.git import git_clone; git_clone(sys.argv[1], clone_directory_name='slow')"
    child = subprocess.Popen(
        [sys.executable, "-c", script, url],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while not set(_pids_with(url)) - {child.pid}:  # until git is waiting on the server
            assert time.monotonic() < deadline and child.poll() is None
            time.sleep(0.05)
        child.send_signal(sig)
        _, err = child.communicate(timeout=15)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode != 0
    assert "KeyboardInterrupt" in err, err
    assert list(workdir.iterdir()) == [], err
    assert not _pids_with(url), "git still running after the interrupt"


def test_interrupt_right_at_the_start_leaves_nothing(
    git_server: GitServer, repos: Repos, workdir: Path
) -> None:
    """A signal that lands while git processes are being started (not only while one runs)."""
    url = git_server.url("public/hello.git")
    script = "import sys; from stepengine.builtin_steps.git import git_clone; git_clone(sys.argv[1], clone_directory_name='early')"
    for attempt in range(5):
        child = subprocess.Popen(
            [sys.executable, "-c", script, url],
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 20
        # from the moment `git init` has run (earlier, the temporary directory is atomic_directory's)
        while not list(workdir.glob(".early.*.tmp/.git")) and child.poll() is None:
            assert time.monotonic() < deadline
            time.sleep(0.001)
        time.sleep(attempt * 0.003)
        child.send_signal(signal.SIGINT)
        _, err = child.communicate(timeout=15)
        if child.returncode == 0:  # finished before the signal: start again
            shutil.rmtree(workdir / "early")
            continue
        assert list(workdir.iterdir()) == [], err.decode()


def test_sigkill_mid_clone_stops_git_and_the_next_run_cleans_up(
    git_server: GitServer, repos: Repos, workdir: Path
) -> None:
    """SIGKILL (no handler runs): git dies with the process that started it, and the next run removes
    the temporary directory the killed one left."""
    info = create_bare_repo(git_server.root / "public" / "killed-mid-clone.git", files=3)
    url = git_server.url("public/killed-mid-clone.git")  # unique in the process list
    git_server.set_delay(30)
    script = "import sys; from stepengine.builtin_steps.git import git_clone; git_clone(sys.argv[1], clone_directory_name='slow')"
    child = subprocess.Popen([sys.executable, "-c", script, url], env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        deadline = time.monotonic() + 20
        while not set(_pids_with(url)) - {child.pid}:  # until git is waiting on the server
            assert time.monotonic() < deadline and child.poll() is None
            time.sleep(0.05)
        child.kill()
        child.wait()
        deadline = time.monotonic() + 5
        while _pids_with(url) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _pids_with(url), "git outlived the process that started it"
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    left = sorted(p.name for p in workdir.iterdir())
    assert [name for name in left if name.startswith(".slow.")], (
        left,
        child.returncode,
    )  # what SIGKILL leaves
    git_server.set_delay(0)
    assert git_clone(url, clone_directory_name="slow") == {"directory": "slow"}
    assert sorted(p.name for p in workdir.iterdir()) == ["slow"]
    assert git("rev-parse", "HEAD", cwd=workdir / "slow") == info.head


def _pids_in(directory: Path) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if Path(os.readlink(entry / "cwd")) == directory:
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


def test_sigkill_mid_update_in_place_is_repaired_by_the_next_run(
    git_server: GitServer, workdir: Path
) -> None:
    """Killed (SIGKILL, stepengine and its git alike) while git checkout rewrites the tree: the next run
    finds the half-updated tree and git's index.lock, and repairs both instead of failing."""
    info = create_bare_repo(git_server.root / "public" / "big-update.git", files=4000, file_size=100)
    url = git_server.url("public/big-update.git")
    checkout = workdir / "big-update"
    git_clone(url)
    script = "import sys; from stepengine.builtin_steps.git import git_clone; git_clone(sys.argv[1])"
    for attempt in range(6):
        names = [f"d{i % 10:02d}/f{i:05d}.txt" for i in range(4000)]
        tip = commit_files(info.path, "main", {name: f"{name} round {attempt}\n" for name in names})
        child = subprocess.Popen(
            [sys.executable, "-c", script, url], env={**os.environ, "PYTHONPATH": str(ROOT)}
        )
        try:
            while child.poll() is None and not (checkout / ".git" / "index.lock").exists():
                time.sleep(0.0005)
            gits = _pids_in(checkout)
            child.kill()
            for pid in gits:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            child.wait()
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
        if child.returncode == -signal.SIGKILL and (checkout / ".git" / "index.lock").exists():
            break
    else:
        pytest.skip("never caught git checkout at work (machine too fast for this repository size)")
    assert git("rev-parse", "HEAD", cwd=checkout) != tip or git("status", "--porcelain", cwd=checkout) != ""

    assert git_clone(url) == {"directory": "big-update"}

    assert not (checkout / ".git" / "index.lock").exists()
    assert git("rev-parse", "HEAD", cwd=checkout) == tip
    assert git("status", "--porcelain", "--untracked-files=no", cwd=checkout) == ""
    assert (checkout / names[-1]).read_text() == f"{names[-1]} round {attempt}\n"


def _pids_with(text: str) -> list[int]:
    """The git processes (git, git-remote-http…) whose command line holds ``text``. Only git's: a
    fork of the Python process that runs the clone carries its command line (the URL included) until
    it execs, and counting one made the interrupt tests signal before the clone had begun (the SIGKILL
    test then found no temporary directory: 1 run in 4 under load)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if os.path.basename(argv[0]).startswith(b"git") and any(text.encode() in arg for arg in argv):
                found.append(int(entry.name))
    return found


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o002])
def test_a_checkout_honours_the_umask(git_server: GitServer, repos: Repos, workdir: Path, umask: int) -> None:
    """Like ``git clone``: the checkout directory gets 0777 minus the umask (it was always 0700)."""
    old = os.umask(umask)
    try:
        git_clone(git_server.url("public/hello.git"))
    finally:
        os.umask(old)
    assert (workdir / "hello").stat().st_mode & 0o777 == 0o777 & ~umask
    assert (workdir / "hello" / "README.md").stat().st_mode & 0o777 == 0o666 & ~umask


@pytest.fixture
def small_disk(tmp_path: Path) -> t.Iterator[Path]:
    """A 1 MiB tmpfs (needs root; skipped elsewhere), unmounted afterwards."""
    mountpoint = tmp_path / "small-disk"
    mountpoint.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mountpoint)], capture_output=True, check=False
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=False)


@pytest.mark.parametrize(
    ("use_cache", "files"),
    [(False, 2000), (True, 2000), (False, 600)],
    ids=["pack-no-cache", "pack-from-cache-on-another-disk", "checkout"],
)
def test_a_full_disk_is_named_as_such(
    git_server: GitServer, small_disk: Path, monkeypatch: pytest.MonkeyPatch, use_cache: bool, files: int
) -> None:
    """ENOSPC while git writes the objects (git itself says "invalid index-pack output") or the files:
    the error says the disk is full and names the checkout, and nothing is left on the small disk."""
    create_bare_repo(git_server.root / "public" / f"too-big-{files}.git", files=files, file_size=4000)
    monkeypatch.chdir(small_disk)
    with pytest.raises(StepError) as caught:
        git_clone(git_server.url(f"public/too-big-{files}.git"), cache=use_cache)
    message = str(caught.value)
    assert message.startswith(f"no space left on the device holding {small_disk / f'too-big-{files}'} ("), (
        message
    )
    assert message.endswith(
        "hint: free some space on that file system (or clone somewhere else) and run again"
    )
    assert list(small_disk.iterdir()) == []


# --------------------------------------------------------------------------------------------------
# Errors


def test_wrong_token_is_not_retried_and_not_shown(
    git_server: GitServer,
    repos: Repos,
    workdir: Path,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "wrong-token-91c2e7d4"
    url = git_server.url("private/app.git")
    with pytest.raises(StepError) as caught:
        git_clone(url, access_token=wrong)
    assert str(caught.value) == (
        f"authentication failed for {url}\n"
        "hint: check that the access token (or the credentials block) is valid and can read this repository"
    )
    assert [r["status"] for r in git_server.requests()] == [401]  # one attempt, no retry
    assert git_server.requests()[0]["user"] == wrong  # it was sent (as the user name, GitHub style)
    out, err = capfd.readouterr()
    trace = "".join(traceback.format_exception(caught.value))
    assert_absent(wrong, str(caught.value), trace, out, err, caplog.text)
    assert list(workdir.iterdir()) == []


def test_private_repository_without_credentials(git_server: GitServer, repos: Repos, workdir: Path) -> None:
    url = git_server.url("private/app.git")
    with pytest.raises(StepError) as caught:
        git_clone(url)
    assert str(caught.value) == (
        f"authentication failed for {url}\nhint: this repository needs credentials: pass access_token, "
        "or credentials with a token"
    )


def test_repository_not_found(git_server: GitServer, workdir: Path) -> None:
    url = git_server.url("public/nothing-here.git")
    with pytest.raises(StepError) as caught:
        git_clone(url)
    assert str(caught.value) == (
        f"repository not found: {url}\n"
        "hint: check the URL; a private repository also looks missing to a token that cannot read it"
    )
    assert list(workdir.iterdir()) == []


def test_branch_not_found(git_server: GitServer, repos: Repos, workdir: Path) -> None:
    url = git_server.url("public/hello.git")
    with pytest.raises(StepError) as caught:
        git_clone(url, branch="nope")
    assert str(caught.value) == f"branch 'nope' not found in {url}\nhint: its branches are: feature/x, main"
    assert list(workdir.iterdir()) == []


def test_commit_not_found(git_server: GitServer, repos: Repos, workdir: Path) -> None:
    url = git_server.url("public/hello.git")
    missing = "0123456789abcdef0123456789abcdef01234567"
    with pytest.raises(StepError) as caught:
        git_clone(url, commit_sha=missing)
    assert (
        str(caught.value)
        == f"commit {missing!r} not found in {url}\nhint: check the SHA and that it was pushed"
    )
    with pytest.raises(StepError) as caught:
        git_clone(url, commit_sha="abcdef1")
    assert (
        str(caught.value)
        == f"commit 'abcdef1' not found in {url}\nhint: check the SHA, or give all 40 characters"
    )
    assert list(workdir.iterdir()) == []


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_host_is_retried_then_reported(workdir: Path, caplog: pytest.LogCaptureFixture) -> None:
    url = f"http://127.0.0.1:{_closed_port()}/repo.git"
    with pytest.raises(StepError) as caught:
        git_clone(url)
    assert str(caught.value) == (
        f"cannot reach {url}: connection refused (tried 3 times)\n"
        "hint: check the host name and port, and your network or proxy settings"
    )
    assert len([r for r in caplog.records if "retrying" in r.getMessage()]) == 2
    assert list(workdir.iterdir()) == []


def test_transient_server_errors_are_retried(git_server: GitServer, repos: Repos, workdir: Path) -> None:
    git_server.fail_next(2)
    assert git_clone(git_server.url("public/hello.git")) == {"directory": "hello"}
    assert [r["status"] for r in git_server.requests()][:3] == [503, 503, 200]


def test_persistent_server_errors_give_up_after_three_attempts(
    git_server: GitServer, repos: Repos, workdir: Path
) -> None:
    git_server.fail_next(10)
    url = git_server.url("public/hello.git")
    with pytest.raises(StepError) as caught:
        git_clone(url)
    assert str(caught.value) == (
        f"git could not fetch from {url} after 3 attempts: unable to access '{url}/': "
        "The requested URL returned error: 503\nhint: the server or the network failed repeatedly; try again later"
    )
    # three attempts, no more (a straggling request of an earlier test may show up as a 200)
    assert [r["status"] for r in git_server.requests() if r["status"] != 200] == [503, 503, 503]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"access_token": "abcd1234", "credentials": {"token": "abcd1234"}},
            (
                "pass either access_token or credentials, not both\n"
                "hint: access_token is a shorthand for credentials: {access_token: ...}"
            ),
        ),
        (
            {"branch": "main", "commit_sha": "abcdef12"},
            "pass either branch or commit_sha, not both\nhint: a commit already fixes what is checked out",
        ),
        (
            {"branch": "--upload-pack=touch x"},
            "refusing branch '--upload-pack=touch x': it must be a non-empty name not starting with '-'",
        ),
        (
            {"commit_sha": "abc"},
            "commit_sha 'abc' is not a commit SHA\nhint: use 4 to 64 hexadecimal characters",
        ),
        (
            {"commit_sha": "not-hex!"},
            "commit_sha 'not-hex!' is not a commit SHA\nhint: use 4 to 64 hexadecimal characters",
        ),
        (
            {"credentials": {"username": "me"}},
            "credentials has no access_token, token or password\nhint: its keys are: username",
        ),
        ({"clone_directory_name": "../outside"}, None),
    ],
)
def test_argument_errors(workdir: Path, kwargs: dict[str, t.Any], message: str | None) -> None:
    with pytest.raises(StepError) as caught:
        git_clone("http://127.0.0.1:9/repo.git", **kwargs)
    if message is not None:
        assert str(caught.value) == message
    else:
        assert str(caught.value).startswith("refusing unsafe path '../outside'")
    assert list(workdir.iterdir()) == []


@pytest.mark.parametrize(
    ("repository", "message"),
    [
        (
            "--upload-pack=touch /tmp/x",
            "refusing repository '--upload-pack=touch /tmp/x': it starts with '-'\nhint: git would read it as an option",
        ),
        (
            "ext::sh -c touch% /tmp/pwned",
            (
                "refusing repository 'ext::sh -c touch% /tmp/pwned': remote-helper URLs (transport::address) "
                "are not allowed\nhint: use an https://, http://, ssh://, git:// or file:// URL"
            ),
        ),
    ],
)
def test_dangerous_repositories_are_refused(workdir: Path, repository: str, message: str) -> None:
    with pytest.raises(StepError) as caught:
        git_clone(repository)
    assert str(caught.value) == message


def test_ext_transport_is_disabled_for_git_itself(workdir: Path, tmp_path: Path) -> None:
    """Even a submodule pointing at ext:: cannot run a command (protocol.ext.allow=never)."""
    marker = tmp_path / "pwned"
    env = remote.Remote("file:///nowhere", None).env
    result = subprocess.run(
        ["git", "ls-remote", f"ext::sh -c touch% {marker}"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0 and "transport 'ext' not allowed" in result.stderr
    assert not marker.exists()


@pytest.mark.parametrize(
    ("stderr", "kind"),
    [
        ("fatal: Authentication failed for 'https://h/r.git/'", "auth"),
        ("fatal: could not read Username for 'https://h': terminal prompts disabled", "auth"),
        ("fatal: unable to access 'https://h/r.git/': The requested URL returned error: 403", "auth"),
        ("git@h: Permission denied (publickey).\nfatal: Could not read from remote repository.", "auth"),
        ("fatal: repository 'https://h/r.git/' not found", "missing"),
        ("fatal: '/x/r.git' does not appear to be a git repository", "missing"),
        (
            "fatal: unable to access 'https://nohost.invalid/r.git/': Could not resolve host: nohost.invalid",
            "unreachable",
        ),
        (
            "fatal: unable to access 'http://h:9/r.git/': Failed to connect to h port 9: Connection refused",
            "unreachable",
        ),
        ("fatal: unable to access 'https://h/r.git/': The requested URL returned error: 502", "transient"),
        ("error: RPC failed; curl 18 transfer closed with outstanding read data remaining", "transient"),
        ("fatal: the remote end hung up unexpectedly\nfatal: early EOF", "transient"),
        (
            "fatal: unable to access 'https://h/r.git/': server certificate verification failed. CAfile: none",
            "tls",
        ),
        ("fatal: remote error: upload-pack: not our ref 0123456789abcdef0123456789abcdef01234567", "ref"),
        ("fatal: something new", "other"),
    ],
)
def test_git_errors_are_classified(stderr: str, kind: str) -> None:
    """What git prints for each failure (as seen from git 2.39 and curl), and which error it becomes."""
    assert remote.classify(stderr) == kind


def test_a_git_error_is_shown_by_its_fatal_line_not_its_last() -> None:
    """git explains a lock file in five lines after the one naming it; the error shows that one."""
    stderr = (
        "fatal: Unable to create '/w/app/.git/index.lock': File exists.\n\n"
        "Another git process seems to be running in this repository, e.g.\n"
        "an editor opened by 'git commit'. Please make sure all processes\n"
        "are terminated then try again. If it still fails, a git process\n"
        "may have crashed in this repository earlier:\nremove the file manually to continue.\n"
    )
    assert remote._main_line(stderr) == "Unable to create '/w/app/.git/index.lock': File exists."
    assert remote._main_line("warning: x\nsomething odd\n") == "something odd"


@pytest.mark.parametrize(
    ("url", "branch", "expected"),
    [
        ("https://github.com/org/repo.git", None, "repo"),
        ("https://github.com/org/repo", "feature/a/b", "repo-feature-a-b"),
        ("git@github.com:org/repo.git", None, "repo"),
        ("https://example.com/org/my.github.io.git", None, "myhub.io"),  # Prefect's rule, kept
    ],
)
def test_default_directory_name_matches_prefect(url: str, branch: str | None, expected: str) -> None:
    assert git_step._default_directory_name(url, branch) == expected


# --------------------------------------------------------------------------------------------------
# Through the engine


PREFECT_YAML = """\
name: demo
prefect-version: 3.0.0
pull:
  - prefect.deployments.steps.git_clone:
      id: clone
      repository: {url}
      branch: dev
      access_token: "{{{{ prefect.blocks.secret.git-token }}}}"
  - prefect.deployments.steps.set_working_directory:
      directory: "{{{{ clone.directory }}}}"
"""


def test_end_to_end_through_stepengine_run(git_server: GitServer, repos: Repos, workdir: Path) -> None:
    import stepengine

    (workdir / "prefect.yaml").write_text(PREFECT_YAML.format(url=git_server.url("private/app.git")))
    events: list[t.Any] = []
    outputs = stepengine.run(
        "prefect.yaml",
        sections=["pull"],
        resolver=stepengine.InMemoryResolver(blocks={"secret/git-token": git_server.token}),
        on_event=events.append,
    )
    assert outputs["clone"] == {"directory": "app-dev"}
    assert outputs["directory"] == str(workdir / "app-dev")  # where set_working_directory went
    assert Path.cwd() == workdir  # the run puts the process back where it started (issue 16)
    assert (workdir / "app-dev" / "dev.txt").read_text() == "dev\n"
    assert_absent(git_server.token, repr([e.to_dict() for e in events]))


def test_end_to_end_through_the_cli(git_server: GitServer, repos: Repos, workdir: Path) -> None:
    (workdir / "prefect.yaml").write_text(PREFECT_YAML.format(url=git_server.url("private/app.git")))
    (workdir / "values.yaml").write_text(f"blocks:\n  secret:\n    git-token: {git_server.token}\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    ok = subprocess.run(
        [
            sys.executable,
            "-c",
            "from stepengine.cli import main; main()",
            "run",
            "prefect.yaml",
            "--section",
            "pull",
            "--values",
            "values.yaml",
            "--output",
            "json",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    assert '"directory": "app-dev"' in ok.stdout
    assert (workdir / "app-dev" / "dev.txt").exists()
    assert_absent(git_server.token, ok.stdout, ok.stderr)

    (workdir / "values.yaml").write_text("blocks:\n  secret:\n    git-token: not-the-token-5d1e\n")
    (workdir / "prefect.yaml").write_text(
        PREFECT_YAML.format(url=git_server.url("private/app.git")).replace(
            "branch: dev", "clone_directory_name: other"
        )
    )
    failed = subprocess.run(
        [
            sys.executable,
            "-c",
            "from stepengine.cli import main; main()",
            "run",
            "prefect.yaml",
            "--section",
            "pull",
            "--values",
            "values.yaml",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert failed.returncode == 1
    assert f"authentication failed for {git_server.url('private/app.git')}" in failed.stderr
    assert_absent("not-the-token-5d1e", failed.stdout, failed.stderr)
    assert not (workdir / "other").exists()
