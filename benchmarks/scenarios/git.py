"""git scenarios: a first and a second clone through the shared object cache, and 1/2/4/8 processes
cloning the same repository at once."""

from __future__ import annotations

import contextlib
import shutil
import typing as t

from benchmarks.measurement import CONCURRENCY, Command, Scenario, concurrently
from benchmarks.scenarios.context import Context, write
from testkit.git_server import create_bare_repo, start_git_server


def scenario_git(ctx: Context, stack: contextlib.ExitStack) -> list[Scenario]:
    files = 20 if ctx.tiny else 2000
    root = ctx.fresh_dir("git-root")
    create_bare_repo(root / "public" / "app.git", files=files, commits=1 if ctx.tiny else 20)
    server = stack.enter_context(start_git_server(root))
    url = server.url("public/app.git")
    work = ctx.work / "git"
    yaml_file = write(
        work / "prefect.yaml", f"pull:\n  - prefect.deployments.steps.git_clone:\n      repository: {url}\n"
    )
    no_cache_file = write(work / "no-cache.yaml", yaml_file.read_text() + "      cache: false\n")
    env = {"GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_NOSYSTEM": "1"}

    def make(engine: str, warm: bool) -> t.Callable[[], Command]:
        slug = "-".join(engine.replace(":", "").replace(",", "").split())

        def factory() -> Command:
            if engine == "stepengine, re-run":  # the same directory every time (the warm-up clones)
                cwd = work / slug
                cwd.mkdir(parents=True, exist_ok=True)
            else:
                cwd = ctx.fresh_dir(f"git/{slug}-{'warm' if warm else 'cold'}")
            home = work / f"home-{slug}"
            if not warm:
                shutil.rmtree(home, ignore_errors=True)
            if engine in ("stepengine", "stepengine, re-run"):
                return ctx.stepengine(yaml_file, "pull", cwd, home, env=env)
            if engine == "stepengine, cache: false":
                return ctx.stepengine(no_cache_file, "pull", cwd, home, env=env)
            if engine == "floor":
                return Command(["git", "clone", "-q", "--depth", "1", url], cwd, {**ctx.base_env, **env})
            return ctx.prefect(yaml_file, "pull", cwd, env=env)

        return factory

    first = ctx.pair(make("stepengine", False), make("prefect", False))
    second = ctx.pair(make("stepengine", True), make("prefect", True))
    if "stepengine" in ctx.engines:
        first["stepengine, cache: false"] = make("stepengine, cache: false", False)
        second["stepengine, re-run into the same directory"] = make("stepengine, re-run", True)
    if "floor" in ctx.engines:
        first["git clone --depth 1"] = make("floor", False)
        second["git clone --depth 1"] = make("floor", False)
    note = (
        f"`git_clone` of a {files}-file repository from the loopback smart-HTTP server into an empty "
        "directory, with an empty `STEPENGINE_HOME` (no object cache). `stepengine, cache: false` is "
        "the same file plus `cache: false` (a stepengine-only argument: no shared object cache, the objects "
        "are fetched straight into the checkout)."
    )
    note2 = (
        "A second clone into another empty directory on the same machine (a worker's next run): "
        "stepengine's object cache under `STEPENGINE_HOME` is warm; Prefect clones again. "
        "`stepengine, re-run into the same directory` runs the file again where its previous run "
        "left the checkout (nothing new upstream), with the cache warm."
    )
    return [
        Scenario("git", f"5a. git clone, {files} files, first", first, note=note),
        Scenario("git-again", "5b. git clone, second", second, target=5.0, note=note2),
    ]


def scenario_git_concurrent(ctx: Context, stack: contextlib.ExitStack) -> list[Scenario]:
    # 2,000 files as in scenario 5 (10,000 made one round of 8 take minutes of untimed directory
    # removal on a shared disk)
    files = 20 if ctx.tiny else 2000
    root = ctx.fresh_dir("git-concurrent-root")
    create_bare_repo(root / "public" / "big.git", files=files, commits=1 if ctx.tiny else 20)
    server = stack.enter_context(start_git_server(root))
    url = server.url("public/big.git")
    work = ctx.work / "git-concurrent"
    yaml_file = write(
        work / "prefect.yaml", f"pull:\n  - prefect.deployments.steps.git_clone:\n      repository: {url}\n"
    )
    env = {**ctx.base_env, "GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_NOSYSTEM": "1"}

    def make(engine: str, count: int) -> t.Callable[[], Command]:
        slug = "-".join(engine.replace(":", "").replace(",", "").split())
        home = work / f"home-{slug}"

        def prepare() -> None:
            runs = ctx.fresh_dir(f"git-concurrent/{slug}-{count}")
            for n in range(count):
                (runs / str(n)).mkdir()
            if engine == "stepengine, cold cache":
                shutil.rmtree(home, ignore_errors=True)

        def factory() -> Command:
            runs = work / f"{slug}-{count}"
            if engine == "git clone --depth 1":
                program = ["git", "clone", "-q", "--depth", "1", url]
            else:
                program = [*ctx.stepengine_program(), "run", str(yaml_file), "--section", "pull", "-q"]
            return Command(
                concurrently(runs, program), work, {**env, "STEPENGINE_HOME": str(home)}, before=prepare
            )

        return factory

    scenarios = []
    for count in CONCURRENCY:
        commands: dict[str, t.Callable[[], Command]] = {}
        if "stepengine" in ctx.engines:
            commands["stepengine"] = make("stepengine", count)
            commands["stepengine, cold cache"] = make("stepengine, cold cache", count)
        if "floor" in ctx.engines:
            commands["git clone --depth 1"] = make("git clone --depth 1", count)
        note = (
            f"{count} processes started at once, each cloning the same {files}-file repository from the "
            "loopback smart-HTTP server into its own empty directory (wall time until the last one ends; "
            "runs/s under Derived). `stepengine`: one `STEPENGINE_HOME` shared by all, its object cache warm "
            "(the warm-up run fills it); `stepengine, cold cache`: that home emptied before each run, so "
            "the processes race to fill it; `git clone --depth 1`: plain git, no cache."
        )
        scenarios.append(
            Scenario(
                f"git-concurrent-{count}",
                f"16. {count} concurrent git clones, {files} files",
                commands,
                rounds=3,
                note=note,
            )
        )
    return scenarios
