"""Environments of the benchmarks: the venvs each engine runs from, all with bytecode compiled.

``.bench/`` (ignored by git) holds them: ``stepengine-venv`` gets this checkout installed (not
editable) on every harness run; ``prefect-venv`` (``prefect prefect-docker s3fs 'fastapi<0.151'``) is
created once, under a lock file, unless someone already made it; ``stepengine-docker-venv`` is this
checkout plus the ``docker`` extra (see ``ensure_stepengine_docker_venv`` for why it is separate).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
import typing as t
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
BENCH = ROOT / ".bench"
PREFECT_REQUIREMENTS = ["prefect", "prefect-docker", "s3fs", "fastapi<0.151"]
STEPENGINE_EXTRAS = ["s3fs"]  # for the blob scenario (fsspec backends are optional extras)
#: the docker scenario's venv has these on top (its own venv: see ensure_stepengine_docker_venv)
STEPENGINE_DOCKER_EXTRAS = ["docker"]


@contextlib.contextmanager
def locked(path: Path) -> t.Iterator[None]:
    """An exclusive ``flock`` on ``path`` (waits for whoever holds it)."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def works(python: Path, code: str) -> bool:
    if not python.exists():
        return False
    return subprocess.run([str(python), "-c", code], capture_output=True, check=False).returncode == 0


def uv_command() -> list[str]:
    uv = shutil.which("uv")
    if uv:
        return [uv]
    if (
        subprocess.run([sys.executable, "-m", "uv", "--version"], capture_output=True, check=False).returncode
        != 0
    ):
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "uv"], check=True)
    return [sys.executable, "-m", "uv"]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def ensure_prefect_venv() -> Path:
    """The Prefect venv (created once; another engineer may be creating it: we wait for the lock)."""
    venv = BENCH / "prefect-venv"
    python = venv_python(venv)
    probe = "import prefect.deployments.steps.core, s3fs, yaml"
    if works(python, probe):
        return python
    with locked(BENCH / "prefect-venv.lock"):
        if works(python, probe):
            return python
        deadline = time.monotonic() + 600
        while _pip_running_in(venv) and time.monotonic() < deadline:  # someone without the lock
            log("waiting for another install into .bench/prefect-venv ...")
            time.sleep(5)
        if works(python, probe):
            return python
        log("creating .bench/prefect-venv (once; ~15 s with uv) ...")
        uv = uv_command()
        if not python.exists():
            subprocess.run([*uv, "venv", "-q", "--seed", "--python", sys.executable, str(venv)], check=True)
        subprocess.run(
            [
                *uv,
                "pip",
                "install",
                "-q",
                "--compile-bytecode",
                "--python",
                str(python),
                *PREFECT_REQUIREMENTS,
            ],
            check=True,
        )
    _compile(python)
    return python


def _pip_running_in(venv: Path) -> bool:
    marker = str(venv)
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in cmdline and ("pip" in cmdline or "install" in cmdline) and proc.name != str(os.getpid()):
            return True
    return False


def _compile(python: Path) -> None:
    """Make sure every module of the venv has bytecode (``PYTHONDONTWRITEBYTECODE`` is set here)."""
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    subprocess.run([str(python), "-m", "compileall", "-q", "-j", "0", site], capture_output=True, check=False)


def ensure_stepengine_venv() -> Path:
    """``.bench/stepengine-venv`` with this checkout installed (reinstalled each time: it measures the code)."""
    return _checkout_venv("stepengine-venv", [str(ROOT), *STEPENGINE_EXTRAS])


def ensure_stepengine_docker_venv() -> Path:
    """``.bench/stepengine-docker-venv``: this checkout with the ``docker`` extra (reinstalled each time).

    A venv of its own rather than ``docker`` in ``STEPENGINE_EXTRAS``: the extra adds four
    distributions (docker, requests, certifi, charset-normalizer) to the venv, and a run that lists the
    entry points (first run of a file, ``STEPENGINE_NO_CACHE``) reads every distribution's metadata.
    Measured on this machine (cold scenario, two alternating runs each, 15 rounds): the steady-state
    cold run is unchanged (43.0/42.9 ms without, 43.1/43.4 ms with; docker itself is never imported,
    tests/test_cold_start.py), but ``empty cache`` went 151/150 → 153/160 ms and ``caches off``
    148/148 → 154/154 ms. The cold scenario keeps measuring the venv it always did.
    """
    return _checkout_venv("stepengine-docker-venv", [f"{ROOT}[{','.join(STEPENGINE_DOCKER_EXTRAS)}]"])


def _checkout_venv(name: str, requirements: list[str]) -> Path:
    """``.bench/<name>`` with ``requirements`` (this checkout, with any extras) installed, bytecode compiled."""
    venv = BENCH / name
    python = venv_python(venv)
    with locked(BENCH / f"{name}.lock"):
        uv = uv_command()
        if not python.exists():
            subprocess.run([*uv, "venv", "-q", "--python", sys.executable, str(venv)], check=True)
        log(f"installing this checkout into .bench/{name} ...")
        subprocess.run(
            [
                *uv,
                "pip",
                "install",
                "-q",
                "--compile-bytecode",
                "--python",
                str(python),
                "--reinstall-package",
                "stepengine",
                *requirements,
            ],
            check=True,
        )
    # entry-point listings are not cached while site-packages changed in the last 2 s
    time.sleep(2.1)
    return python


def versions(python: Path | None, names: list[str]) -> str:
    if python is None:
        return "not used"
    code = (
        "import importlib.metadata as m, sys; print(', '.join(f'{n} {m.version(n)}' for n in sys.argv[1:]))"
    )
    out = subprocess.run([str(python), "-c", code, *names], capture_output=True, text=True, check=False)
    return out.stdout.strip() or out.stderr.strip()[-200:]
