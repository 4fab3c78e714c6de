"""The scenarios of ``python -m benchmarks``, by key (the order of ``--scenarios``' default).

Each is a function ``(ctx, stack) -> list[Scenario]``: it prepares its inputs (untimed), starts any
server it needs inside ``stack`` (closed once its scenarios have run), and returns the rows to time.
It raises ``Skip`` (with the reason, shown in RESULTS.md) when a prerequisite is missing here.
"""

from __future__ import annotations

import contextlib
import typing as t

from benchmarks.measurement import Scenario
from benchmarks.scenarios import engine, git, storage, tools, worker
from benchmarks.scenarios.context import Context

ScenarioFactory = t.Callable[[Context, contextlib.ExitStack], list[Scenario]]

SCENARIOS: dict[str, ScenarioFactory] = {
    "cold": engine.scenario_cold,
    "chain": engine.scenario_chain,
    "shell": engine.scenario_shell,
    "s3": storage.scenario_s3,
    "git": git.scenario_git,
    "git-concurrent": git.scenario_git_concurrent,
    "pip": tools.scenario_pip,
    "docker": tools.scenario_docker,
    "deploy": tools.scenario_deploy,
    "validate": engine.scenario_validate,
    "masking": engine.scenario_masking,
    "files": storage.scenario_files,
    "s3-many": storage.scenario_s3_many,
    "s3-gib": storage.scenario_s3_gib,
    "outputs": storage.scenario_outputs,
    "s3-concurrent": storage.scenario_s3_concurrent,
    "worker": worker.scenario_worker,
}
