"""Many runs in one process (issue 16 item 2): runs take turns on the process-wide run lock, every run
works in its own directory, and the process working directory is put back when a run ends."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from pathlib import Path

import pytest

import stepengine
from stepengine.errors import StepExecutionError
from stepengine.runner import _RUN_LOCK, NestedRunError

N = 4


def _write_marker(name: str, text: str) -> dict[str, str]:
    """A Python step relying on the process working directory, as third-party steps do."""
    time.sleep(0.05)  # leave time for another run to change the directory under this one (old bug)
    with open(name, "w") as f:
        f.write(text)
    return {"written": os.path.abspath(name)}


def _pause(seconds: float) -> None:
    time.sleep(seconds)


STEPS = {"write_marker": _write_marker, "pause": _pause}


def _files(tmp_path: Path) -> list[tuple[Path, Path]]:
    """N prefect.yaml files, each going into its own directory, writing a file and recording pwd."""
    made = []
    for i in range(N):
        directory = tmp_path / f"run{i}"
        directory.mkdir()
        file = tmp_path / f"prefect{i}.yaml"
        file.write_text(
            "pull:\n"
            f"  - prefect.deployments.steps.set_working_directory:\n      directory: {directory}\n"
            "  - pause:\n      seconds: 0.05\n"
            "  - prefect.deployments.steps.run_shell_script:\n"
            "      id: where\n      script: pwd\n      stream_output: false\n"
            f"  - write_marker:\n      name: marker.txt\n      text: run{i}\n"
        )
        made.append((file, directory))
    return made


def _check(tmp_path: Path, made: list[tuple[Path, Path]], results: list[dict]) -> None:
    for i, ((_, directory), outputs) in enumerate(zip(made, results, strict=False)):
        assert outputs["where"]["stdout"].strip() == str(directory.resolve()), f"run {i}'s pwd"
        assert (directory / "marker.txt").read_text() == f"run{i}", f"run {i}'s file"
        assert sorted(p.name for p in directory.iterdir()) == ["marker.txt"], f"run {i}'s directory"
    # no file landed anywhere else
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == [f"prefect{i}.yaml" for i in range(N)]


def test_threads_each_run_in_their_own_directory(tmp_path: Path) -> None:
    made = _files(tmp_path)
    original = os.getcwd()
    results: list[dict] = [{}] * N
    errors: list[BaseException] = []

    def one(i: int) -> None:
        try:
            results[i] = stepengine.run(made[i][0], steps=STEPS)
        except BaseException as exc:  # reported below, with the others
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(N)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    _check(tmp_path, made, results)
    assert os.getcwd() == original


def test_asyncio_tasks_each_run_in_their_own_directory(tmp_path: Path) -> None:
    made = _files(tmp_path)
    original = os.getcwd()

    async def main() -> list[dict]:
        return list(await asyncio.gather(*(stepengine.run_async(file, steps=STEPS) for file, _ in made)))

    _check(tmp_path, made, asyncio.run(main()))
    assert os.getcwd() == original


def test_the_working_directory_is_restored_after_a_failure_and_kept_on_request(tmp_path: Path) -> None:
    original = os.getcwd()
    file = tmp_path / "prefect.yaml"
    file.write_text(
        f"pull:\n  - prefect.deployments.steps.set_working_directory:\n      directory: {tmp_path}\n"
        "  - prefect.deployments.steps.run_shell_script:\n      script: exit 3\n"
    )
    with pytest.raises(StepExecutionError):
        stepengine.run(file)
    assert os.getcwd() == original
    file.write_text(
        f"pull:\n  - prefect.deployments.steps.set_working_directory:\n      directory: {tmp_path}\n"
    )
    stepengine.run(file)
    assert os.getcwd() == original
    stepengine.run(file, keep_directory=True)
    assert os.getcwd() == str(tmp_path.resolve())


def test_a_run_inside_a_step_of_the_same_thread_goes_on(tmp_path: Path) -> None:
    inner = tmp_path / "inner"
    inner.mkdir()
    (tmp_path / "inner.yaml").write_text(
        f"pull:\n  - prefect.deployments.steps.set_working_directory:\n      directory: {inner}\n"
    )

    def nested() -> dict[str, str]:
        outputs = stepengine.run(tmp_path / "inner.yaml")
        return {"inner": outputs["directory"], "after": os.getcwd()}

    (tmp_path / "outer.yaml").write_text(
        f"pull:\n  - prefect.deployments.steps.set_working_directory:\n      directory: {tmp_path}\n"
        "  - nested:\n      id: n\n"
    )
    outputs = stepengine.run(tmp_path / "outer.yaml", steps={"nested": nested})
    assert outputs["n"] == {"inner": str(inner.resolve()), "after": str(tmp_path.resolve())}


def test_a_run_from_another_thread_inside_a_step_is_refused_not_a_deadlock(tmp_path: Path) -> None:
    (tmp_path / "inner.yaml").write_text("pull:\n  - pause:\n      seconds: 0\n")

    async def nested() -> None:
        await stepengine.run_async(tmp_path / "inner.yaml", steps=STEPS)

    (tmp_path / "outer.yaml").write_text("pull:\n  - nested:\n      id: n\n")
    with pytest.raises(StepExecutionError) as caught:
        stepengine.run(tmp_path / "outer.yaml", steps={"nested": nested})
    assert isinstance(caught.value.__cause__, NestedRunError)
    assert "wait forever" in str(caught.value.__cause__)


def test_run_async_waits_for_the_lock_without_blocking_the_event_loop(tmp_path: Path) -> None:
    (tmp_path / "prefect.yaml").write_text("pull:\n  - pause:\n      seconds: 0\n")
    held, release = threading.Event(), threading.Event()

    def holder() -> None:  # another run in progress in this process
        with _RUN_LOCK:
            held.set()
            release.wait(10)

    thread = threading.Thread(target=holder)
    thread.start()
    held.wait(10)

    async def main() -> None:
        task = asyncio.create_task(stepengine.run_async(tmp_path / "prefect.yaml", steps=STEPS))
        for _ in range(5):  # the loop keeps turning while the run waits
            await asyncio.sleep(0.01)
        assert not task.done()
        release.set()
        await task

    try:
        asyncio.run(main())
    finally:
        release.set()
        thread.join()
