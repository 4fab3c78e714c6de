"""The benchmark harness starts and runs one scenario (1 round, tiny input) — not a benchmark.

It uses the interpreter running the tests (no ``.bench`` venvs, no Prefect) and checks that the run
is timed and reported, and that a rerun keeps the hand-written part of the results file; and that the
scenarios needing a server (dockerd, a Prefect server) skip cleanly when it cannot run, without
starting one.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _tiny_run(scenario: str, results: Path, tmp_path: Path) -> list[str]:
    """The harness on one scenario, stepengine only (this interpreter's), tiny inputs, one round."""
    return [
        sys.executable,
        "-m",
        "benchmarks",
        "--engines",
        "stepengine",
        "--stepengine-python",
        sys.executable,
        "--scenarios",
        scenario,
        "--size",
        "tiny",
        "--rounds",
        "1",
        "--results",
        str(results),
        "--no-plot",
        "--work",
        str(tmp_path / "work"),
    ]


def test_harness_runs_one_tiny_scenario(tmp_path: Path) -> None:
    results = tmp_path / "RESULTS.md"
    results.write_text("# Benchmarks\n\nFindings written by hand.\n", encoding="utf-8")
    done = subprocess.run(
        _tiny_run("chain", results, tmp_path),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    text = results.read_text(encoding="utf-8")
    assert text.startswith("# Benchmarks\n\nFindings written by hand.\n\n<!-- results:start")
    assert text.rstrip().endswith("<!-- results:end -->")
    row = re.search(
        r"^\| 2\. 5 chained trivial steps \| ([\d.]+) ms \(([\d.]+) ms–([\d.]+) ms, n=1\) \| – \| – \| – \|$",
        text,
        re.MULTILINE,
    )
    assert row, text
    assert float(row.group(1)) > 0 and row.group(1) == row.group(2) == row.group(3)  # one round: one sample
    # the chain really ran: the last step's module was imported from benchmarks/ and left no error
    assert "FAILED" not in text


def test_server_scenarios_skip_cleanly_without_their_prerequisites(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``deploy`` and ``worker`` without a Prefect venv and ``docker`` without dockerd are reported as
    skipped, with the reason, before anything is installed or started (no server runs in this test)."""
    results = tmp_path / "RESULTS.md"
    env = {**os.environ, "STEPENGINE_PREFECT_VENV": str(tmp_path / "no-such-venv")}
    done = subprocess.run(
        _tiny_run("deploy,worker", results, tmp_path),
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    text = results.read_text(encoding="utf-8")
    assert f"- **deploy**: skipped: no Prefect venv at {tmp_path / 'no-such-venv'}" in text
    assert f"- **worker**: skipped: no Prefect venv at {tmp_path / 'no-such-venv'}" in text

    from benchmarks.measurement import Skip
    from benchmarks.scenarios.context import Context
    from benchmarks.scenarios.tools import scenario_docker

    which = shutil.which
    monkeypatch.setattr(
        shutil, "which", lambda name, *a, **k: None if name == "dockerd" else which(name, *a, **k)
    )
    ctx = Context(
        tmp_path / "work", "tiny", ["stepengine"], Path(sys.executable), None, {}, stepengine_given=True
    )
    with contextlib.ExitStack() as stack, pytest.raises(Skip, match="dockerd"):
        scenario_docker(ctx, stack)


def test_validate_scenario_times_both_sizes_and_derives_the_growth(tmp_path: Path) -> None:
    results = tmp_path / "RESULTS.md"
    done = subprocess.run(
        _tiny_run("validate", results, tmp_path),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    text = results.read_text(encoding="utf-8")
    assert re.search(r"^\| 10\. validate, 20 deployments \| [\d.]+ ms ", text, re.MULTILINE), text
    assert re.search(
        r"^\| 10\. validate, 20 deployments \| stepengine, 2 deployments \| [\d.]+ ms ", text, re.MULTILINE
    ), text
    assert re.search(
        r"^- validate, 20 deployments ÷ 2 deployments: [\d.]+× wall, [\d.]+× CPU", text, re.MULTILINE
    ), text


def test_scale_scenarios_run_tiny(tmp_path: Path) -> None:
    """The issue-16 scale rows without servers (a file:// pull against cp -r; a list between steps) run and report."""
    results = tmp_path / "RESULTS.md"
    argv = _tiny_run("files,outputs", results, tmp_path)
    argv[argv.index("stepengine")] = "stepengine,floor"
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr
    text = results.read_text(encoding="utf-8")
    assert re.search(r"^\| 12\. file:// pull, 50 × 4 KiB \| cp -r \| [\d.]+ ms", text, re.MULTILINE), text
    assert re.search(r"^\| 15\. peak RSS, a 0\.1 MB list between steps \| [\d.]+ MB", text, re.MULTILINE), (
        text
    )
    assert "FAILED" not in text


def test_concurrent_runs_start_together_and_fail_if_one_fails(tmp_path: Path) -> None:
    """The concurrent scenarios' launcher: one process per folder, all at once, the exit status of all."""
    from benchmarks.measurement import Command, RunFailed, concurrently, measure

    runs = tmp_path / "runs"
    for n in range(4):
        (runs / str(n)).mkdir(parents=True)
    program = ["/bin/sh", "-c", "pwd > here; sleep 0.5"]
    sample = measure(Command(concurrently(runs, program), tmp_path, dict(os.environ)))
    assert [(runs / str(n) / "here").read_text().strip() for n in range(4)] == [
        str(runs / str(n)) for n in range(4)
    ]
    assert 0.5 <= sample.seconds < 1.9  # together, not one after the other (4 × 0.5 s)
    (runs / "2" / "fail").touch()
    with pytest.raises(RunFailed):
        measure(Command(concurrently(runs, ["/bin/sh", "-c", "test ! -e fail"]), tmp_path, dict(os.environ)))
