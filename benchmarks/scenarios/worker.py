"""Worker pick-up to flow start: stepengine's pull stage against Prefect's, same deployment (issue 16).

A real ``prefect server`` and two real ``prefect worker start --type process`` (Prefect's venv), all
on 127.0.0.1, and the loopback git server. Two work pools differ only in their job command: Prefect's
default (``python -m prefect.engine``: Prefect's step runner pulls), and ``python -m stepengine
prefect-pull-and-run --python <Prefect's python>`` (stepengine pulls, then ``execve``s Prefect's
engine). One deployment per pool, the same pull step: ``git_clone`` of a public repository on the
loopback server (plain HTTP: Prefect's ``git_clone`` puts an ``access_token`` into https URLs only).

A row's number is not a process's wall time but the time between two state timestamps the server
recorded for one flow run: **Pending** (the worker picked the run up and starts its process) to
**Running** (Prefect's engine starts the flow): process start, the pull, loading the flow, the
engine's set-up. Not timed: the worker's polling interval and the flow itself. The engines take
turns; the warm-up run leaves stepengine's git cache holding the repository (a worker host's steady
state).
"""

from __future__ import annotations

import contextlib
import datetime
import json
import shlex
import subprocess
import time
import typing as t

from benchmarks.environments import log
from benchmarks.measurement import Command, Sample, Scenario, Skip
from benchmarks.scenarios.context import ROOT, Context
from testkit.git_server import create_bare_repo, start_git_server
from testkit.prefect_server import prefect_venv, start_prefect_server
from testkit.processes import stop

FLOW = "from prefect import flow\n\n\n@flow\ndef hello():\n    return 42\n"


def _api(api_url: str, method: str, path: str, payload: t.Any = None) -> t.Any:
    """One REST call through stepengine's own Prefect client (it retries a busy server's 429/502/503)."""
    from stepengine.project.prefect_api import api_request

    return api_request(api_url, method, path, payload)


def _stamp(text: str) -> float:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def pickup_to_start(api_url: str, flow_run_id: str) -> float:
    """Seconds from the run's PENDING state to its RUNNING state, as the server recorded them."""
    states = _api(api_url, "GET", f"/flow_run_states/?flow_run_id={flow_run_id}")
    times = {s["type"]: _stamp(s["timestamp"]) for s in sorted(states, key=lambda s: s["timestamp"])}
    return times["RUNNING"] - times["PENDING"]


def run_once(api_url: str, deployment_id: str, timeout: float = 300) -> float:
    """Create a flow run of ``deployment_id``, wait until it completes; its pick-up to flow start."""
    run_id = _api(api_url, "POST", f"/deployments/{deployment_id}/create_flow_run", {})["id"]
    deadline = time.monotonic() + timeout
    while True:
        state = (_api(api_url, "GET", f"/flow_runs/{run_id}").get("state") or {}).get("type")
        if state in ("FAILED", "CRASHED", "CANCELLED"):
            raise RuntimeError(f"flow run {run_id} ended {state}")
        if state == "COMPLETED":
            return pickup_to_start(api_url, run_id)
        if time.monotonic() > deadline:
            raise RuntimeError(f"flow run {run_id} still {state} after {timeout:g} s")
        time.sleep(0.3)


def scenario_worker(ctx: Context, stack: contextlib.ExitStack) -> list[Scenario]:
    from stepengine.project.prefect_api import register_deployment

    venv = prefect_venv()
    if not (venv / "bin" / "prefect").exists():
        raise Skip(
            f"no Prefect venv at {venv} to run the server and workers (.ci/install.d/60-prefect-venv.sh)"
        )
    engines = [e for e in ("stepengine", "prefect") if e in ctx.engines]
    if not engines:
        raise Skip("neither stepengine nor prefect is among the engines")
    files = 20 if ctx.tiny else 1000
    work = ctx.fresh_dir("worker")
    log("  starting a Prefect server, a git server and a worker per engine on 127.0.0.1 (untimed) ...")
    server = stack.enter_context(start_prefect_server(work / "prefect-home", venv))
    git = stack.enter_context(start_git_server(work / "git"))
    create_bare_repo(git.root / "public" / "app.git", files=files, extra_files={"flows/hello.py": FLOW})
    step = {"prefect.deployments.steps.git_clone": {"repository": git.url("public/app.git")}}
    stepengine_command = [str(ctx.stepengine_python), "-m", "stepengine", "prefect-pull-and-run"]
    worker_env = {
        **server.env(),
        "PREFECT_WORKER_QUERY_SECONDS": "1",
        "GIT_TERMINAL_PROMPT": "0",
        "STEPENGINE_HOME": str(work / "stepengine-home"),
    }
    worker_env.pop("PYTHONPATH", None)
    if ctx.stepengine_given:  # an interpreter of the caller's: this checkout's stepengine on its path
        worker_env["PYTHONPATH"] = str(ROOT)
    deployments: dict[str, str] = {}
    for engine in engines:
        template = json.loads(
            server.run("prefect", "work-pool", "get-default-base-job-template", "--type", "process").stdout
        )
        if engine == "stepengine":
            command = shlex.join([*stepengine_command, "--python", str(venv / "bin" / "python")])
            template["variables"]["properties"]["command"]["default"] = command
        (work / f"{engine}.json").write_text(json.dumps(template))
        pool = f"pool-{engine}"
        server.run(
            "prefect",
            "work-pool",
            "create",
            pool,
            "--type",
            "process",
            "--base-job-template",
            str(work / f"{engine}.json"),
        )
        spec = {
            "name": engine,
            "flow_name": "hello",
            "entrypoint": "flows/hello.py:hello",
            "pull_steps": [step],
            "work_pool_name": pool,
        }
        deployments[engine] = register_deployment(spec, server.api_url)["deployment_id"]
        with open(work / f"worker-{engine}.log", "wb") as worker_log:
            worker = subprocess.Popen(
                [str(venv / "bin" / "prefect"), "worker", "start", "--pool", pool, "--type", "process"],
                env=worker_env,
                cwd=work,
                stdout=worker_log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        stack.callback(stop, worker)

    def probe(engine: str) -> t.Callable[[], Command]:
        def measure() -> Sample:
            seconds = run_once(server.api_url, deployments[engine])
            return Sample(seconds, 0)

        return lambda: Command([], work, {}, probe=measure)

    commands = {engine: probe(engine) for engine in engines}
    note = (
        f"A real `prefect server` and one `prefect worker start --type process` per engine (Prefect's venv) on "
        "127.0.0.1; the two work pools differ only in their job command: Prefect's default (`python -m "
        "prefect.engine`: Prefect's step runner pulls) and `python -m stepengine prefect-pull-and-run --python "
        f"<Prefect's python>`. The same deployment in each: `git_clone` of a {files}-file repository on the "
        "loopback git server, then a flow that returns. The number is the time between the flow run's "
        "**Pending** state (the worker picked it up) and **Running** (Prefect's engine starts the flow), as "
        "the server recorded them: process start, the pull, loading the flow, the engine's set-up; both rows "
        "include starting Prefect's engine, which stepengine does not replace. One untimed warm-up run each "
        "(stepengine's git cache then holds the repository)."
    )
    return [
        Scenario(
            "worker",
            f"18. worker pick-up to flow start, git_clone of {files} files",
            commands,
            rounds=5,
            note=note,
        )
    ]
