"""A full disk, or an outputs file that cannot be written, is said plainly with exit 2 (issue 14).

They crashed with exit 3 and a traceback. The disk is a real, filled tmpfs (tests/fixtures/disks.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.fixtures.disks import fill, tiny_disk

ROOT = Path(__file__).resolve().parents[2]
PULL = "pull:\n  - set_working_directory:\n      id: here\n      directory: .\n"


def _stepengine(
    cwd: Path, *args: str, stdout: int | None = subprocess.PIPE, **kwargs: object
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "stepengine", *args],
        cwd=cwd,
        env=env,
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        timeout=60,
        **kwargs,
    )  # type: ignore[call-overload]


def test_outputs_saved_onto_a_full_disk(tmp_path: Path) -> None:
    (tmp_path / "prefect.yaml").write_text(PULL)
    with tiny_disk(tmp_path / "disk") as disk:
        fill(disk)
        done = _stepengine(tmp_path, "run", "--save-outputs", str(disk / "out.json"))
        assert done.returncode == 2, done.stderr
        assert (
            f"error: cannot write the outputs file {disk / 'out.json'}: the disk is full\n"
            "hint: free some space and run again"
        ) in done.stderr
        assert "Traceback" not in done.stderr
        assert sorted(p.name for p in disk.iterdir()) == ["filler"]  # no temporary file left


def test_outputs_saved_into_a_missing_directory_after_a_failed_step(tmp_path: Path) -> None:
    """The step's failure stays the error (exit 1); the outputs file's problem is said too."""
    (tmp_path / "prefect.yaml").write_text("pull:\n  - run_shell_script:\n      script: 'false'\n")
    done = _stepengine(tmp_path, "run", "--save-outputs", str(tmp_path / "missing" / "out.json"))
    assert done.returncode == 1, done.stderr
    assert (
        f"error: cannot write the outputs file {tmp_path / 'missing' / 'out.json'}: No such file or directory"
        in done.stderr
    )
    assert done.stderr.rstrip().endswith("failed: command `false` exited with code 1")


def test_output_redirected_onto_a_full_disk(tmp_path: Path) -> None:
    (tmp_path / "prefect.yaml").write_text(PULL)
    with tiny_disk(tmp_path / "disk") as disk:
        fill(disk)
        for args in (("schema",), ("run", "--output", "json", "-q")):
            with open(disk / "out", "w") as handle:
                done = _stepengine(tmp_path, *args, stdout=handle)
            assert done.returncode == 2, (args, done.stderr)
            assert done.stderr.endswith(
                "error: the disk is full: No space left on device\nhint: free some space and run again\n"
            )
