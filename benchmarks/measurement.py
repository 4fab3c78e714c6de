"""Measurement: one timed process (wall time from spawn to exit, peak RSS, CPU time), and rounds of a
scenario's commands with the engines taking turns (A B A B ...) after one untimed warm-up each."""

from __future__ import annotations

import dataclasses
import os
import tempfile
import time
import typing as t
from pathlib import Path

GNU_TIME = "/usr/bin/time"  # Debian package "time"; without it peak RSS includes the harness's size


@dataclasses.dataclass
class Command:
    argv: list[str]
    cwd: Path
    env: dict[str, str]
    #: run (untimed) before the timed run, e.g. to empty the target directory
    before: t.Callable[[], None] | None = None
    #: measures the run itself instead of timing a process (e.g. timestamps a server recorded);
    #: ``argv`` is then not run
    probe: t.Callable[[], Sample] | None = None


@dataclasses.dataclass
class Sample:
    seconds: float
    max_rss_kb: int
    #: user + system CPU time (less disturbed than wall time by other work on a shared machine)
    cpu_seconds: float = 0.0


class RunFailed(RuntimeError):
    pass


#: process counts of the concurrent scenarios (issue 16: many runs on one host)
CONCURRENCY = (1, 2, 4, 8)
#: start ``$@`` once in every folder under ``$1``, all at once; wait for all; fail if any failed
_CONCURRENTLY = """\
work=$1; shift; pids=""
for dir in "$work"/*/; do (cd "$dir" && exec "$@") & pids="$pids $!"; done
rc=0; for pid in $pids; do wait "$pid" || rc=1; done; exit $rc
"""


def concurrently(runs: Path, program: list[str]) -> list[str]:
    """The command line that starts ``program`` in every folder of ``runs`` at once and waits for all
    (timed as one process: until the last one ends)."""
    return ["/bin/sh", "-c", _CONCURRENTLY, "concurrently", str(runs), *program]


def measure(command: Command) -> Sample:
    """Run ``command`` once: wall time from spawn to exit and the process's peak RSS."""
    if command.before:
        command.before()
    if command.probe is not None:
        try:
            return command.probe()
        except Exception as exc:  # a failed run fails its scenario, as a non-zero exit does
            raise RunFailed(f"{type(exc).__name__}: {exc}") from exc
    # The peak RSS of a child started by this harness would start at the harness's own size (Linux
    # keeps the high-water mark of the memory a child had before exec), so GNU time, a small C
    # program, starts the command and reports its peak RSS. A tiny sh changes directory and execs the
    # command. Both add ~1 ms to every run alike.
    argv = ["/bin/sh", "-c", 'cd "$0" && exec "$@"', str(command.cwd), *command.argv]
    with tempfile.TemporaryFile() as errors, tempfile.NamedTemporaryFile("r") as rss:
        if os.path.exists(GNU_TIME):
            argv = [GNU_TIME, "-q", "-f", "%M", "-o", rss.name, *argv]
        actions = [
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
            (os.POSIX_SPAWN_DUP2, errors.fileno(), 2),
        ]
        started = time.perf_counter()
        pid = os.posix_spawn(argv[0], argv, command.env, file_actions=actions)
        _, status, usage = os.wait4(pid, 0)
        elapsed = time.perf_counter() - started
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            errors.seek(0)
            tail = errors.read().decode(errors="replace")[-3000:]
            raise RunFailed(f"{' '.join(command.argv[:4])} ... exited {code}:\n{tail}")
        measured = rss.read().strip().splitlines()
    peak = int(measured[-1]) if measured and measured[-1].isdigit() else int(usage.ru_maxrss)
    return Sample(elapsed, peak, usage.ru_utime + usage.ru_stime)


@dataclasses.dataclass
class Scenario:
    key: str
    title: str
    #: engine label -> Command factory (called once per run)
    commands: dict[str, t.Callable[[], Command]]
    #: the pair whose ratio is the result (Prefect ÷ stepengine), and the issue's target
    pair: tuple[str, str] = ("prefect", "stepengine")
    target: float | None = None
    #: at most this many rounds (slow scenarios)
    rounds: int | None = None
    #: at least this many rounds (fast, noisy scenarios), unless fewer are asked for with --size tiny
    min_rounds: int | None = None
    note: str = ""
    #: report peak RSS instead of time
    rss: bool = False
    #: report the runs of this earlier scenario (by key) instead of running again
    same_runs_as: str | None = None


@dataclasses.dataclass
class Result:
    scenario: Scenario
    samples: dict[str, list[Sample]]
    error: str | None = None
    #: the 1-minute load average when the scenario started and when it ended (the machine is shared)
    load: tuple[float, float] | None = None


def run_scenario(scenario: Scenario, rounds: int, tiny: bool = False) -> Result:
    rounds = min(rounds, scenario.rounds) if scenario.rounds else rounds
    if scenario.min_rounds and not tiny:
        rounds = max(rounds, scenario.min_rounds)
    samples: dict[str, list[Sample]] = {label: [] for label in scenario.commands}
    try:
        for _label, factory in scenario.commands.items():
            measure(factory())  # warm-up, untimed
        for _ in range(rounds):
            for label, factory in scenario.commands.items():  # A B A B ...
                samples[label].append(measure(factory()))
    except RunFailed as exc:
        return Result(scenario, samples, str(exc))
    return Result(scenario, samples)


class Skip(Exception):
    """A scenario that cannot run here (say why in RESULTS.md)."""
