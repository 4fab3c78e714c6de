"""A real ``prefect server start`` on 127.0.0.1, from Prefect's own venv (``.bench/prefect-venv``).

Prefect is never installed next to stepengine: it lives in its own venv (see ``.ci/install.d/
60-prefect-venv.sh`` and ``../shared/README.md``), found through ``STEPENGINE_PREFECT_VENV`` or
``<repo>/.bench/prefect-venv``. The server keeps its database in a temporary ``PREFECT_HOME``, has its
UI and analytics off, and is stopped by PID when the session ends. Tests use ``prefect_server.run()``
to drive Prefect's own CLI and Python client against it (pytest fixture: tests/fixtures/prefect_server.py).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import subprocess
import time
import typing as t
import urllib.request
from pathlib import Path

from testkit.processes import free_port, stop

ROOT = Path(__file__).resolve().parents[1]


def prefect_venv() -> Path:
    return Path(os.environ.get("STEPENGINE_PREFECT_VENV") or ROOT / ".bench" / "prefect-venv")


@dataclasses.dataclass
class PrefectServer:
    api_url: str
    home: Path
    venv: Path

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            PREFECT_HOME=str(self.home),
            PREFECT_API_URL=self.api_url,
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
            PREFECT_CLI_PROMPT="false",
        )
        env.pop("PREFECT_API_KEY", None)
        return env

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run a program of Prefect's venv (``prefect``, ``python``) against this server; fail loudly."""
        program, *rest = args
        result = subprocess.run(
            [str(self.venv / "bin" / program), *rest],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"{' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
            )
        return result


class PrefectMissing(RuntimeError):
    """Prefect's venv is not where the tests and benchmarks look for it (the message says how to make it)."""


@contextlib.contextmanager
def start_prefect_server(home: Path, venv: Path | None = None) -> t.Iterator[PrefectServer]:
    """``prefect server start --no-ui --no-services`` on 127.0.0.1 (a free port), its database under ``home``.

    Waits until ``/health`` answers; stops the server (its process group) by PID on exit. Raises
    ``PrefectMissing`` when there is no Prefect venv.
    """
    venv = venv or prefect_venv()
    if not (venv / "bin" / "prefect").exists():
        raise PrefectMissing(f"no Prefect venv at {venv} (.ci/install.d/60-prefect-venv.sh makes it)")
    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    server = PrefectServer(f"http://127.0.0.1:{port}/api", home, venv)
    env = server.env()
    env.update(PREFECT_UI_ENABLED="false", PREFECT_SERVER_API_HOST="127.0.0.1")
    with open(home / "server.log", "wb") as log:
        proc = subprocess.Popen(
            [
                str(venv / "bin" / "prefect"),
                "server",
                "start",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--no-ui",
                "--no-services",
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        wait_healthy(server.api_url, proc, home / "server.log")
        yield server
    finally:
        stop(proc)


def wait_healthy(api_url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"prefect server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(api_url + "/health", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"prefect server not healthy within {timeout:g} s:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)
