"""Scenarios of the engine itself: a cold process, a chain of steps, shell steps, validate at scale,
masked output."""

from __future__ import annotations

import contextlib
import shutil
import typing as t
from pathlib import Path

from benchmarks.measurement import Command, Scenario
from benchmarks.scenarios.context import HERE, Context, write


def scenario_cold(ctx: Context, stack: contextlib.ExitStack) -> list[Scenario]:
    work = ctx.fresh_dir("cold")
    yaml_file = write(
        work / "prefect.yaml",
        "pull:\n  - prefect.deployments.steps.set_working_directory:\n      directory: .\n",
    )
    home = work / "home"
    empty_home = work / "empty-home"

    def cold_cache() -> Command:
        command = ctx.stepengine(yaml_file, "pull", work, empty_home)
        command.before = lambda: shutil.rmtree(empty_home, ignore_errors=True)
        return command

    commands = ctx.pair(
        lambda: ctx.stepengine(yaml_file, "pull", work, home), lambda: ctx.prefect(yaml_file, "pull", work)
    )
    if "stepengine" in ctx.engines:
        commands["stepengine, empty cache"] = cold_cache
        commands["stepengine, caches off"] = lambda: ctx.stepengine(
            yaml_file, "pull", work, home, env={"STEPENGINE_NO_CACHE": "1"}
        )
    if "floor" in ctx.engines:
        python = str(ctx.stepengine_python)
        commands["python -c pass"] = lambda: Command([python, "-c", "pass"], work, ctx.base_env)
        commands["python -c 'import click, yaml'"] = lambda: Command(
            [python, "-c", "import click, yaml"], work, ctx.base_env
        )
    note = (
        "A new process runs a 1-step pull (`set_working_directory`): stepengine's CLI "
        "(`stepengine run --section pull -q`) against `run_steps` in a fresh Prefect process. "
        "`stepengine, empty cache` starts with an empty `STEPENGINE_HOME` every time (first run of a "
        "file on a machine); `caches off` sets `STEPENGINE_NO_CACHE=1` (the engine before the caches)."
    )
    return [
        Scenario("cold", "1. cold process, 1-step pull", commands, target=20.0, note=note, min_rounds=15),
        Scenario(
            "rss",
            "7. peak RSS, 1-step pull",
            dict(commands),
            target=3.0,
            rss=True,
            same_runs_as="cold",
            note="Peak resident set size of the same runs (from `wait4`).",
        ),
    ]


def scenario_chain(ctx: Context, stack: contextlib.ExitStack) -> list[Scenario]:
    steps = 5 if ctx.tiny else 1000
    work = ctx.fresh_dir("chain")
    lines = ["pull:", "  - benchsteps.chain:", "      id: s0", "      previous: 0"]
    for i in range(1, steps):
        lines += ["  - benchsteps.chain:", f"      id: s{i}", f"      previous: '{{{{ s{i - 1}.n }}}}'"]
    yaml_file = write(work / "prefect.yaml", "\n".join(lines) + "\n")
    env = {"PYTHONPATH": str(HERE)}
    home = work / "home"
    commands = ctx.pair(
        lambda: ctx.stepengine(yaml_file, "pull", work, home, env=env),
        lambda: ctx.prefect(yaml_file, "pull", work, env=env),
    )
    note = (
        f"{steps} steps `benchsteps.chain` (a module on `PYTHONPATH`), each templating the previous "
        "step's output (`'{{ s41.n }}'`); whole process, so startup is included."
    )
    return [
        Scenario("chain", f"2. {steps} chained trivial steps", commands, target=10.0, rounds=3, note=note)
    ]


def scenario_shell(ctx: Context, stack: contextlib.ExitStack) -> list[Scenario]:
    work = ctx.fresh_dir("shell")
    n = 3 if ctx.tiny else 20
    script = "\n".join(f"        echo line {i}" for i in range(n))
    yaml_file = write(
        work / "prefect.yaml",
        f"pull:\n  - prefect.deployments.steps.run_shell_script:\n      script: |\n{script}\n",
    )
    home = work / "home"
    commands = ctx.pair(
        lambda: ctx.stepengine(yaml_file, "pull", work, home), lambda: ctx.prefect(yaml_file, "pull", work)
    )
    return [
        Scenario(
            "shell", f"3. run_shell_script, {n} lines", commands, note="One process per line in both engines."
        )
    ]


def _deployments_file(path: Path, count: int) -> Path:
    """``count`` deployments, each overriding pull with a clone and a templated chdir (issue 16)."""
    lines = [
        "pull:",
        "  - prefect.deployments.steps.set_working_directory:",
        "      directory: .",
        "deployments:",
    ]
    for i in range(count):
        lines += [
            f"  - name: dep-{i}",
            f"    entrypoint: flows.py:flow_{i % 7}",
            "    work_pool: {name: pool}",
            "    pull:",
            "      - prefect.deployments.steps.git_clone:",
            "          id: clone",
            f"          repository: https://git.example/org/r{i}.git",
            "      - prefect.deployments.steps.set_working_directory:",
            "          directory: '{{ clone.directory }}'",
        ]
    return write(path, "\n".join(lines) + "\n")


def scenario_validate(ctx: Context, stack: contextlib.ExitStack) -> list[Scenario]:
    work = ctx.fresh_dir("validate")
    big, small = (20, 2) if ctx.tiny else (10_000, 1_000)
    files = {n: _deployments_file(work / f"{n}.yaml", n) for n in (big, small)}
    env = {**ctx.base_env, "STEPENGINE_HOME": str(work / "home")}

    def validate(n: int) -> t.Callable[[], Command]:
        return lambda: Command([*ctx.stepengine_program(), "validate", str(files[n])], work, env)

    commands = (
        {"stepengine": validate(big), f"stepengine, {small:,} deployments": validate(small)}
        if "stepengine" in ctx.engines
        else {}
    )
    note = (
        f"`stepengine validate` of a file with {big:,} deployments, each overriding pull with a git_clone "
        "and a templated set_working_directory (every step of every deployment checked), warm caches; "
        f"and of {small:,}. Prefect has no such verb."
    )
    return [Scenario("validate", f"10. validate, {big:,} deployments", commands, note=note)]


def scenario_masking(ctx: Context, stack: contextlib.ExitStack) -> list[Scenario]:
    """Issue 16: output at disk speed whatever the number of secrets the run must mask."""
    import random

    work = ctx.fresh_dir("masking")
    size = 100_000 if ctx.tiny else 10_000_000
    rng = random.Random(16)
    words = ["build", "step", "layer", "cache", "download", "GET", "200", "ok", "src/app.py", "wheel", "done"]
    lines, total = [], 0
    while total < size:
        line = (
            f"{total:09d} "
            + " ".join(rng.choice(words) for _ in range(10))
            + f" {rng.getrandbits(64):016x}\n"
        )
        lines.append(line)
        total += len(line)
    data = write(work / "data.txt", "".join(lines))
    yaml_file = write(
        work / "prefect.yaml",
        f"pull:\n  - prefect.deployments.steps.run_shell_script:\n      script: cat {data}\n",
    )
    home = work / "home"

    def with_secrets(n: int) -> t.Callable[[], Command]:
        # n secrets from the environment (STEPENGINE_SECRET_ENV): each masked raw, in base64 at every
        # alignment, URL- and JSON-escaped (about 14 forms each); none occurs in the output
        names = [f"BENCH_SECRET_{i}" for i in range(n)]
        # a slash, a space and a quote: the URL-, form- and JSON-escaped forms differ from the raw one
        secrets = {name: f'tok/{i:05d} "{rng.getrandbits(96):024x}' for i, name in enumerate(names)}
        env = {**secrets, "STEPENGINE_SECRET_ENV": ",".join(names)} if n else {}

        def make() -> Command:
            argv = [
                *ctx.stepengine_program(),
                "run",
                str(yaml_file),
                "--section",
                "pull",
            ]  # not -q: output printed
            return Command(argv, work, {**ctx.base_env, "STEPENGINE_HOME": str(home), **env})

        return make

    python = str(ctx.stepengine_python)
    copy_lines = "import sys\nfor line in sys.stdin: sys.stdout.write(line)"
    commands: dict[str, t.Callable[[], Command]] = {}
    if "stepengine" in ctx.engines:
        for n, label in ((0, "no secret"), (1, "1 secret"), (100, "100 secrets"), (1000, "1,000 secrets")):
            commands[f"stepengine, {label}"] = with_secrets(n)
    if "floor" in ctx.engines:
        commands["cat | python (line copy)"] = lambda: Command(
            ["/bin/sh", "-c", 'cat "$0" | "$1" -c "$2"', str(data), python, copy_lines], work, ctx.base_env
        )
        commands["python -c pass"] = lambda: Command([python, "-c", "pass"], work, ctx.base_env)
    note = (
        f"A shell step `cat`s a {size / 1e6:g} MB file of log lines (stepengine's CLI, output printed to "
        "/dev/null) while the run knows 0 to 1,000 secrets (environment variables named in "
        "`STEPENGINE_SECRET_ENV`, each masked in all its forms: raw, base64 at every alignment, URL-, form- and JSON-escaped, 8 for these values). The ratio is no secret ÷ 1,000 secrets "
        "(target ≥ 0.5: within 2×). Floor: the same file through `cat | python` copying line by line; "
        "subtract `python -c pass` and the engine's start-up for the throughput."
    )
    return [
        Scenario(
            "masking",
            f"11. masked output, {size / 1e6:g} MB",
            commands,
            pair=("stepengine, no secret", "stepengine, 1,000 secrets"),
            target=0.5,
            note=note,
            rounds=5,
        )
    ]
