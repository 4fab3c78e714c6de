"""The live progress display (rich) on a real pseudo-terminal: it never hangs, and Ctrl-C ends a run.

Issue 14: on a terminal, ``stepengine run`` of a build printing ``seq 1 300`` and then 30 slow lines
froze for good in about a third of runs (rich's refresh thread and the output thread took two locks
in opposite orders; Ctrl-C was ignored). Each run here gets a pty of its own, output races the
display's refresh, and a run that does not end within its bound fails the test instead of hanging.
"""

from __future__ import annotations

import concurrent.futures
import fcntl
import os
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

pytest.importorskip("rich")

RUNS = 50
PARALLEL = 4
#: a run takes about a second; one that has not ended after this is stuck (the old deadlock)
HANG_BOUND = 45.0

BUILD = """\
build:
  - prefect.deployments.steps.run_shell_script:
      script: seq 1 300
  - prefect.deployments.steps.run_shell_script:
      script: sh -c 'for i in $(seq 1 30); do echo slow line $i; sleep 0.005; done'
  - racing_steps.chatter: {}
"""

#: a Python step writing straight to the terminal while the display redraws
STEPS = """\
import sys


def chatter():
    for i in range(200):
        print("direct", i, flush=(i % 7 == 0))
        sys.stderr.write(f"err {i}\\n")
    return {"done": True}
"""


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("GITHUB_ACTIONS", "NO_COLOR", "COLUMNS")}
    env.update(
        TERM="xterm-256color",
        PYTHONPATH=os.pathsep.join(filter(None, [str(tmp_path), env.get("PYTHONPATH")])),
    )
    return env


def _spawn(args: list[str], cwd: Path, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], int]:
    """Start ``args`` as the foreground of a new pty (its controlling terminal: ^C reaches it)."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))

    def take_terminal() -> None:
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen(
        args,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        cwd=cwd,
        env=env,
        start_new_session=True,
        preexec_fn=take_terminal,
    )
    os.close(slave)
    return proc, master


def _read_until(
    master: int, proc: subprocess.Popen[bytes], deadline: float, until: bytes | None = None
) -> bytes:
    """Read the pty until the process closes it (or ``until`` appears); past ``deadline`` kill it
    and fail: a hang is a failure, never a stuck test."""
    chunks: list[bytes] = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            os.close(master)
            tail = b"".join(chunks)[-1500:].decode("utf-8", "replace")
            pytest.fail(f"the run did not end within its bound (hung); last output:\n{tail}")
        ready, _, _ = select.select([master], [], [], min(left, 0.5))
        if not ready:
            continue
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: every process holding the pty has ended
            chunk = b""
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        if until is not None and until in b"".join(chunks[-3:]):
            return b"".join(chunks)


def _one_run(tmp_path: Path, env: dict[str, str]) -> tuple[int, str]:
    proc, master = _spawn([sys.executable, "-m", "stepengine", "run"], tmp_path, env)
    output = _read_until(master, proc, time.monotonic() + HANG_BOUND)
    os.close(master)
    return proc.wait(timeout=HANG_BOUND), output.decode("utf-8", "replace")


def test_the_live_display_never_hangs_while_output_races_its_refresh(tmp_path: Path) -> None:
    (tmp_path / "prefect.yaml").write_text(BUILD)
    (tmp_path / "racing_steps.py").write_text(STEPS)
    env = _env(tmp_path)
    with concurrent.futures.ThreadPoolExecutor(PARALLEL) as pool:
        results = list(pool.map(lambda _: _one_run(tmp_path, env), range(RUNS)))
    for code, text in results:
        assert code == 0, text[-2000:]
        assert "✓ success" in text and "(chatter)" in text  # the live display's final table
        for line in ("300", "slow line 30", "direct 199", "err 199"):
            assert line in text


def test_ctrl_c_on_the_terminal_ends_the_run_with_130(tmp_path: Path) -> None:
    (tmp_path / "prefect.yaml").write_text(
        "build:\n"
        "  - prefect.deployments.steps.run_shell_script:\n      script: seq 1 300\n"
        "  - prefect.deployments.steps.run_shell_script:\n      script: sh -c 'echo waiting; sleep 60'\n"
    )
    proc, master = _spawn([sys.executable, "-m", "stepengine", "run"], tmp_path, _env(tmp_path))
    started = _read_until(master, proc, time.monotonic() + HANG_BOUND, until=b"waiting")
    assert b"waiting" in started
    os.write(master, b"\x03")  # Ctrl-C, through the terminal's line discipline
    rest = _read_until(master, proc, time.monotonic() + 20)
    os.close(master)
    assert proc.wait(timeout=20) == 130, rest.decode("utf-8", "replace")
    assert b"interrupted" in rest
