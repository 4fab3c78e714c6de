"""A real git smart-HTTP server on 127.0.0.1 with token auth (HTTP or HTTPS), and repositories to serve.

Used by the tests (the ``git_server`` / ``git_tls_server`` fixtures in tests/fixtures/git_server.py)
and by the benchmarks::

    from testkit.git_server import create_bare_repo, start_git_server

    with start_git_server(root, token="s3cret") as server:
        create_bare_repo(root / "private" / "app.git", files=2000, commits=200)
        url = server.url("private/app.git")       # http://127.0.0.1:PORT/private/app.git

The server is a separate Python process (this file run as a script) that runs ``git http-backend`` as a
CGI for every request. It is stopped by PID when the context manager exits. Repositories under
``public/`` need no credentials; everything else needs HTTP Basic auth whose password is the token (or,
as GitHub accepts, the token as user name with an empty password). A wrong token gets 401, so git
reports ``Authentication failed``.

Test knobs, through ``GitServer`` methods (a ``/_control`` endpoint of the server process):
``fail_next(n)`` answers the next ``n`` git requests with 503 (a transient outage), ``set_delay(s)``
holds every git response for ``s`` seconds (a slow network), ``requests()`` lists what was asked.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import json
import os
import random
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import typing as t
import urllib.request
from pathlib import Path

__all__ = [
    "GitServer",
    "RepoInfo",
    "commit_files",
    "create_bare_repo",
    "http_backend",
    "make_certificate",
    "start_git_server",
]

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Fixture",
    "GIT_AUTHOR_EMAIL": "fixture@example.invalid",
    "GIT_COMMITTER_NAME": "Fixture",
    "GIT_COMMITTER_EMAIL": "fixture@example.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_TERMINAL_PROMPT": "0",
}


# --------------------------------------------------------------------------------------------------
# Repositories


@dataclasses.dataclass
class RepoInfo:
    """A bare repository made by ``create_bare_repo``: where it is and what it holds."""

    path: Path
    branch: str
    #: commit SHAs on ``branch``, oldest first
    commits: list[str]

    @property
    def head(self) -> str:
        return self.commits[-1]


def _git(*args: str, cwd: Path | None = None, input: bytes | None = None) -> str:
    env = {**os.environ, **GIT_ENV, "HOME": os.environ.get("HOME", "/nonexistent")}
    result = subprocess.run(["git", *args], cwd=cwd, input=input, env=env, check=True, capture_output=True)
    return result.stdout.decode().strip()


def commit_files(
    repo: str | os.PathLike[str],
    branch: str,
    files: t.Mapping[str, str | bytes | None],
    *,
    message: str = "update",
    start_from: str | None = None,
    gitlinks: t.Mapping[str, str] | None = None,
) -> str:
    """Add one commit to ``branch`` of the bare repository ``repo`` and return its SHA.

    ``files`` maps paths to new contents (``None`` deletes the path); ``gitlinks`` maps paths to
    submodule commit SHAs. The commit's parent is ``branch``'s tip, or ``start_from`` (a branch or
    SHA) when given, or none for a new branch.
    """
    return _fast_import(Path(repo), branch, [(message, dict(files), dict(gitlinks or {}))], start_from)[-1]


def _fast_import(
    repo: Path,
    branch: str,
    commits: list[tuple[str, dict[str, str | bytes | None], dict[str, str]]],
    start_from: str | None,
) -> list[str]:
    """Write ``commits`` onto ``branch`` with one ``git fast-import`` run (fast even for 2,000 files)."""
    if start_from is None:
        with contextlib.suppress(subprocess.CalledProcessError):
            start_from = _git("rev-parse", "--verify", "--quiet", f"refs/heads/{branch}", cwd=repo)
    chunks: list[bytes] = []
    when = 1_700_000_000
    for number, (message, files, gitlinks) in enumerate(commits, start=1):
        msg = message.encode()
        chunks.append(f"commit refs/heads/{branch}\nmark :{number}\n".encode())
        chunks.append(f"committer Fixture <fixture@example.invalid> {when + number} +0000\n".encode())
        chunks.append(b"data %d\n%s\n" % (len(msg), msg))
        if number == 1 and start_from:
            chunks.append(f"from {start_from}\n".encode())
        for path, content in files.items():
            if content is None:
                chunks.append(f"D {path}\n".encode())
                continue
            data = content.encode() if isinstance(content, str) else content
            chunks.append(f"M 100644 inline {path}\n".encode())
            chunks.append(b"data %d\n%s\n" % (len(data), data))
        for path, sha in gitlinks.items():
            chunks.append(f"M 160000 {sha} {path}\n".encode())
        chunks.append(b"\n")
    with tempfile.TemporaryDirectory() as tmp:
        marks = Path(tmp) / "marks"
        _git("fast-import", "--quiet", f"--export-marks={marks}", cwd=repo, input=b"".join(chunks))
        by_mark = dict(line.split() for line in marks.read_text().splitlines())
    return [by_mark[f":{n}"] for n in range(1, len(commits) + 1)]


def create_bare_repo(
    path: str | os.PathLike[str],
    *,
    files: int = 3,
    commits: int = 1,
    branch: str = "main",
    extra_files: t.Mapping[str, str | bytes] | None = None,
    file_size: int = 200,
) -> RepoInfo:
    """Create a bare repository at ``path`` with ``files`` files and ``commits`` commits on ``branch``.

    The first commit adds ``README.md``, ``extra_files`` and ``files`` generated files spread over ten
    directories (``d00/`` … ``d09/``, each file about ``file_size`` bytes); every later commit changes
    a few of them (so history has real deltas). Contents are deterministic. HEAD points at ``branch``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _git("init", "--quiet", "--bare", f"--initial-branch={branch}", str(path))
    # as GitHub and GitLab do: serve blob-less partial clones (``--filter=blob:none``)
    _git("config", "uploadpack.allowFilter", "true", cwd=path)
    words = [
        "def",
        "return",
        "value",
        "import",
        "class",
        "self",
        "data",
        "path",
        "config",
        "step",
        "run",
        "for",
        "in",
        "if",
        "else",
        "None",
        "True",
        "result",
        "name",
        "items",
        "error",
        "with",
        "open",
    ]

    def filler(seed: str) -> str:
        # text that compresses like source code (not like one repeated phrase), deterministic per file
        rng = random.Random(seed)
        return " ".join(rng.choice(words) for _ in range(file_size // 5))[:file_size]

    names = [f"d{i % 10:02d}/f{i:05d}.txt" for i in range(files)]
    first: dict[str, str | bytes | None] = {"README.md": f"# {path.stem}\n"}
    first.update(extra_files or {})
    first.update({name: f"{name}\n{filler(name)}\n" for name in names})
    plan: list[tuple[str, dict[str, str | bytes | None], dict[str, str]]] = [("initial", first, {})]
    for number in range(1, commits):
        touched = {}
        for k in range(3 if names else 0):
            name = names[(number * 7 + k) % len(names)]
            touched[name] = f"{name} v{number}\n{filler(f'{name} v{number}')}\n"
        touched["CHANGES.txt"] = f"change {number}\n"
        plan.append((f"change {number}", touched, {}))
    shas = _fast_import(path, branch, plan, None)
    return RepoInfo(path=path, branch=branch, commits=shas)


def http_backend() -> str | None:
    """The path of ``git-http-backend`` (the CGI the server runs), or None when git or it is missing."""
    if shutil.which("git") is None:
        return None
    exec_path = subprocess.run(
        ["git", "--exec-path"], capture_output=True, text=True, check=False
    ).stdout.strip()
    path = Path(exec_path) / "git-http-backend"
    return str(path) if exec_path and path.exists() else None


def make_certificate(directory: str | os.PathLike[str]) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1/localhost: returns ``(cert.pem, key.pem)``."""
    directory = Path(directory)
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return cert, key


# --------------------------------------------------------------------------------------------------
# The client side: start, control, stop


@dataclasses.dataclass
class GitServer:
    """A running server. ``base_url`` has no trailing slash; ``cafile`` is set for HTTPS."""

    root: Path
    token: str
    base_url: str
    pid: int
    cafile: Path | None = None

    def url(self, repo: str) -> str:
        return f"{self.base_url}/{repo}"

    @property
    def netloc(self) -> str:
        return self.base_url.split("://", 1)[1]

    def _control(self, payload: dict[str, t.Any] | None) -> t.Any:
        data = json.dumps(payload).encode() if payload is not None else None
        request = urllib.request.Request(
            f"{self.base_url}/_control", data=data, method="POST" if data else "GET"
        )
        context = ssl.create_default_context(cafile=str(self.cafile)) if self.cafile else None
        with urllib.request.urlopen(request, timeout=10, context=context) as response:
            return json.loads(response.read())

    def fail_next(self, count: int, status: int = 503) -> None:
        """Answer the next ``count`` git requests with ``status`` (a transient outage)."""
        self._control({"fail_next": count, "fail_status": status})

    def set_delay(self, seconds: float) -> None:
        """Hold every git response for ``seconds`` before answering."""
        self._control({"delay": seconds})

    def requests(self) -> list[dict[str, t.Any]]:
        """Every git request so far: ``{"method", "path", "status", "user"}`` (``user`` = Basic user)."""
        return t.cast(list, self._control(None)["requests"])

    def reset(self) -> None:
        """Forget the request log and clear ``fail_next`` / ``delay``."""
        self._control({"reset": True})


@contextlib.contextmanager
def start_git_server(
    root: str | os.PathLike[str],
    *,
    token: str = "test-token-7f3a9c",
    tls: bool = False,
    cert_dir: str | os.PathLike[str] | None = None,
) -> t.Iterator[GitServer]:
    """Serve the bare repositories under ``root`` on 127.0.0.1 (a free port) until the block ends.

    With ``tls`` a self-signed certificate is made in ``cert_dir`` (default: a new temporary
    directory); point git at it with ``GIT_SSL_CAINFO=server.cafile``.
    """
    root = Path(root).absolute()
    root.mkdir(parents=True, exist_ok=True)
    owned_tmp = None
    argv = [sys.executable, os.path.abspath(__file__), "--root", str(root)]
    cafile = None
    if tls:
        if cert_dir is None:
            owned_tmp = tempfile.TemporaryDirectory(prefix="git-server-cert-")
            cert_dir = owned_tmp.name
        cafile, key = make_certificate(cert_dir)
        argv += ["--cert", str(cafile), "--key", str(key)]
    env = {**os.environ, "GIT_SERVER_TOKEN": token}  # not in argv: ps shows argv to every user
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        line = _readline_with_timeout(proc, 15)
        port = int(line.split()[-1])
        scheme = "https" if tls else "http"
        server = GitServer(
            root=root, token=token, base_url=f"{scheme}://127.0.0.1:{port}", pid=proc.pid, cafile=cafile
        )
        _wait_ready(server)
        yield server
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        if proc.stdout:
            proc.stdout.close()
        if owned_tmp is not None:
            owned_tmp.cleanup()


def _readline_with_timeout(proc: subprocess.Popen[str], timeout: float) -> str:
    result: list[str] = []
    reader = threading.Thread(target=lambda: result.append(proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    reader.join(timeout)
    if not result or not result[0].startswith("listening"):
        raise RuntimeError(f"git server did not start (exit code {proc.poll()})")
    return result[0]


def _wait_ready(server: GitServer, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            server._control(None)
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


# --------------------------------------------------------------------------------------------------
# The server process (this file run as a script)


def _serve(root: Path, token: str, cert: str | None, key: str | None) -> None:
    import http.server

    state: dict[str, t.Any] = {"fail_next": 0, "fail_status": 503, "delay": 0.0, "requests": []}
    lock = threading.Lock()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive; CGI output is streamed with chunked encoding

        def log_message(self, format: str, *args: t.Any) -> None:
            pass

        def do_GET(self) -> None:
            self._handle()

        def do_POST(self) -> None:
            self._handle()

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                parts = []
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass
                        return b"".join(parts)
                    parts.append(self.rfile.read(size))
                    self.rfile.readline()
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _reply(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _user(self) -> tuple[str | None, bool]:
            header = self.headers.get("Authorization", "")
            if not header.startswith("Basic "):
                return None, False
            try:
                user, _, password = base64.b64decode(header[6:]).decode().partition(":")
            except ValueError:
                return None, False
            ok = password == token or (user == token and password in ("", "x-oauth-basic"))
            return user, ok

        def _handle(self) -> None:
            path, _, query = self.path.partition("?")
            body = self._body() if self.command == "POST" else b""
            if path == "/_control":
                with lock:
                    if body:
                        change = json.loads(body)
                        if change.pop("reset", False):
                            state.update(fail_next=0, fail_status=503, delay=0.0, requests=[])
                        state.update(change)
                    reply = json.dumps(state).encode()
                self._reply(200, reply, {"Content-Type": "application/json"})
                return
            user, authorized = self._user()
            with lock:
                delay = state["delay"]
                failing = state["fail_next"] > 0
                if failing:
                    state["fail_next"] -= 1
            if delay:
                time.sleep(delay)
            status = 200
            if failing:
                status = state["fail_status"]
            elif not path.startswith("/public/") and not authorized:
                status = 401
            with lock:
                state["requests"].append(
                    {"method": self.command, "path": path, "status": status, "user": user}
                )
            if status == 401:
                self._reply(401, b"authentication required\n", {"WWW-Authenticate": 'Basic realm="git"'})
                return
            if status != 200:
                self._reply(status, b"temporarily unavailable\n")
                return
            self._cgi(path, query, body)

        def _cgi(self, path: str, query: str, body: bytes) -> None:
            env = {
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "GIT_PROJECT_ROOT": str(root),
                "GIT_HTTP_EXPORT_ALL": "1",
                "GIT_CONFIG_NOSYSTEM": "1",
                "HOME": str(root),
                "REQUEST_METHOD": self.command,
                "PATH_INFO": path,
                "QUERY_STRING": query,
                "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                "CONTENT_LENGTH": str(len(body)),
                "REMOTE_ADDR": "127.0.0.1",
                "REMOTE_USER": "git",
            }
            if self.headers.get("Git-Protocol"):
                env["GIT_PROTOCOL"] = self.headers["Git-Protocol"]
            if self.headers.get("Content-Encoding"):
                env["HTTP_CONTENT_ENCODING"] = self.headers["Content-Encoding"]
            proc = subprocess.Popen(
                ["git", "http-backend"],
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )
            assert proc.stdin is not None and proc.stdout is not None
            writer = threading.Thread(target=_feed, args=(proc.stdin, body), daemon=True)
            writer.start()
            status, headers = 200, []
            while True:
                line = proc.stdout.readline().rstrip(b"\r\n")
                if not line:
                    break
                name, _, value = line.decode("latin-1").partition(":")
                if name.lower() == "status":
                    status = int(value.strip().split()[0])
                else:
                    headers.append((name, value.strip()))
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            try:
                while chunk := proc.stdout.read1(65536):
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.write(b"0\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
                proc.kill()
                self.close_connection = True
            proc.wait()
            writer.join()

    def _feed(stdin: t.IO[bytes], body: bytes) -> None:
        with contextlib.suppress(BrokenPipeError):
            stdin.write(body)
        with contextlib.suppress(BrokenPipeError):
            stdin.close()

    class Server(http.server.ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 64

    httpd = Server(("127.0.0.1", 0), Handler)
    if cert and key:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    print(f"listening on 127.0.0.1 port {httpd.server_address[1]}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        httpd.serve_forever(poll_interval=0.1)
    httpd.server_close()


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="git smart-HTTP server on 127.0.0.1 (test fixture)")
    parser.add_argument("--root", required=True)
    parser.add_argument("--cert")
    parser.add_argument("--key")
    options = parser.parse_args()
    _serve(Path(options.root), os.environ.get("GIT_SERVER_TOKEN", ""), options.cert, options.key)
