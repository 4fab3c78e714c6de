"""Worker pick-up to flow start: stepengine's pull stage against Prefect's, same deployment (issue 16).

    python -m benchmarks.worker_pickup                 # 5 rounds per engine
    python -m benchmarks.worker_pickup --rounds 3 --files 2000

A real ``prefect server`` and two real ``prefect worker start --type process`` (Prefect's venv,
``.bench/prefect-venv``), all on 127.0.0.1, and the loopback git server (token auth). Two work pools
differ only in their job command: Prefect's default (``python -m prefect.engine``: Prefect's step
runner pulls), and ``python -m stepengine prefect-pull-and-run --python <Prefect's python>``
(stepengine pulls, then ``execve``s Prefect's engine). One deployment per pool, the same pull step:
``git_clone`` of a public repository of ``--files`` files on the loopback server (plain HTTP: Prefect's
``git_clone`` puts an ``access_token`` into https URLs only, so a token would fail Prefect's pull here).

The engines take turns (A B A B ...). Each round creates a flow run and waits for it to complete;
the number is the time between two state timestamps the server recorded: **Pending** (the worker
picked the run up and is about to start its process) to **Running** (Prefect's engine starts the
flow), i.e. process start, the pull, loading the flow and the engine's set-up. Not timed: the
worker's polling interval, and the flow itself. One untimed warm-up run per engine first
(stepengine's git cache then holds the repository: the steady state of a worker host).
"""

from __future__ import annotations

import argparse
import datetime
import json
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import typing as t
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

FLOW = "from prefect import flow\n\n\n@flow\ndef hello():\n    return 42\n"


def _api(api_url: str, method: str, path: str, payload: t.Any = None) -> t.Any:
    """One REST call through stepengine's own Prefect client (it retries a busy server's 429/502/503)."""
    from stepengine.project.prefect_api import api_request

    return api_request(api_url, method, path, payload)


def _stamp(text: str) -> float:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def pickup_to_start(api_url: str, flow_run_id: str) -> float:
    states = _api(api_url, "GET", f"/flow_run_states/?flow_run_id={flow_run_id}")
    times = {s["type"]: _stamp(s["timestamp"]) for s in sorted(states, key=lambda s: s["timestamp"])}
    return times["RUNNING"] - times["PENDING"]


def run_once(api_url: str, deployment_id: str, timeout: float = 300) -> float:
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


def main(argv: t.Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--files", type=int, default=1000, help="files in the cloned repository")
    args = parser.parse_args(argv)

    from stepengine.project.prefect_api import register_deployment
    from testkit.git_server import create_bare_repo, start_git_server
    from testkit.prefect_server import PrefectServer, prefect_venv, wait_healthy
    from testkit.processes import free_port, stop

    venv = prefect_venv()
    work = Path(tempfile.mkdtemp(prefix="stepengine-bench-worker-"))
    server = PrefectServer(f"http://127.0.0.1:{free_port()}/api", work / "prefect-home", venv)
    server.home.mkdir()
    env = server.env()
    env.update(PREFECT_UI_ENABLED="false", PREFECT_SERVER_API_HOST="127.0.0.1")
    port = server.api_url.rsplit(":", 1)[1].split("/")[0]
    processes: list[subprocess.Popen[bytes]] = []
    with open(work / "server.log", "wb") as log:
        processes.append(
            subprocess.Popen(
                [
                    str(venv / "bin" / "prefect"),
                    "server",
                    "start",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    port,
                    "--no-ui",
                    "--no-services",
                ],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
    try:
        wait_healthy(server.api_url, processes[0], work / "server.log")
        with start_git_server(work / "git") as git:
            create_bare_repo(
                git.root / "public" / "app.git", files=args.files, extra_files={"flows/hello.py": FLOW}
            )
            step = {"prefect.deployments.steps.git_clone": {"repository": git.url("public/app.git")}}
            commands = {
                "prefect": None,
                "stepengine": shlex.join(
                    [
                        sys.executable,
                        "-m",
                        "stepengine",
                        "prefect-pull-and-run",
                        "--python",
                        str(venv / "bin" / "python"),
                    ]
                ),
            }
            deployments = {}
            worker_env = {
                **server.env(),
                "PYTHONPATH": str(ROOT),
                "PREFECT_WORKER_QUERY_SECONDS": "1",
                "GIT_TERMINAL_PROMPT": "0",
                "STEPENGINE_HOME": str(work / "stepengine-home"),
            }
            for engine, command in commands.items():
                template = json.loads(
                    server.run(
                        "prefect", "work-pool", "get-default-base-job-template", "--type", "process"
                    ).stdout
                )
                if command:
                    template["variables"]["properties"]["command"]["default"] = command
                (work / f"{engine}.json").write_text(json.dumps(template))
                server.run(
                    "prefect",
                    "work-pool",
                    "create",
                    f"pool-{engine}",
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
                    "work_pool_name": f"pool-{engine}",
                }
                deployments[engine] = register_deployment(spec, server.api_url)["deployment_id"]
                with open(work / f"worker-{engine}.log", "wb") as log:
                    processes.append(
                        subprocess.Popen(
                            [
                                str(venv / "bin" / "prefect"),
                                "worker",
                                "start",
                                "--pool",
                                f"pool-{engine}",
                                "--type",
                                "process",
                            ],
                            env=worker_env,
                            cwd=work,
                            stdout=log,
                            stderr=subprocess.STDOUT,
                            start_new_session=True,
                        )
                    )
            samples: dict[str, list[float]] = {engine: [] for engine in commands}
            for engine in commands:  # warm-up, untimed
                run_once(server.api_url, deployments[engine])
            for _ in range(args.rounds):
                for engine in commands:
                    samples[engine].append(run_once(server.api_url, deployments[engine]))
    finally:
        for process in reversed(processes):
            stop(process)
    print(
        f"worker pick-up (Pending) to flow start (Running), git_clone of {args.files} files, {args.rounds} rounds; seconds"
    )
    print("| engine | median | min | max |")
    print("| --- | --- | --- | --- |")
    for engine, values in samples.items():
        print(f"| {engine} | {statistics.median(values):.2f} | {min(values):.2f} | {max(values):.2f} |")
    ratio = statistics.median(samples["prefect"]) / statistics.median(samples["stepengine"])
    print(f"Prefect ÷ stepengine (medians): {ratio:.2f}×")
    return 0


if __name__ == "__main__":
    sys.exit(main())
