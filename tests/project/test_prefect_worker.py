"""``stepengine prefect-pull-and-run`` as the command of a real Prefect process work pool.

Everything is real and on 127.0.0.1: ``prefect server start`` and ``prefect worker start --type
process`` from Prefect's own venv, the loopback git server with token auth, Secret blocks saved by
Prefect's client. The work pool's command runs ``python -m stepengine prefect-pull-and-run`` with the
test interpreter (stepengine importable through PYTHONPATH) and hands the flow to Prefect's engine in
Prefect's venv (``--python``).
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
import typing as t
from pathlib import Path

import pytest

from stepengine.project.prefect_api import api_request as _api
from stepengine.project.prefect_api import register_deployment
from testkit.processes import stop
from tests.fixtures.git_server import create_bare_repo

ROOT = Path(__file__).resolve().parents[2]

FLOW = """
from prefect import flow, get_run_logger


@flow
def hello(who: str = "world"):
    get_run_logger().info(f"hello {who} from the pulled code")
    return 42
"""

GOOD_TOKEN_BLOCK = "repo-token"
BAD_TOKEN = "wrong-token-5d1e77"
FINAL = {"COMPLETED", "FAILED", "CANCELLED", "CRASHED"}


def pool_command(python: str, peer_python: Path) -> str:
    """The work pool's command: stepengine's pull stage, then Prefect's engine in Prefect's venv."""
    return shlex.join([python, "-m", "stepengine", "prefect-pull-and-run", "--python", str(peer_python)])


class Setup(t.NamedTuple):
    api_url: str
    pool: str
    repo_url: str
    worker: subprocess.Popen[bytes]
    worker_log: Path


def test_without_a_flow_run_or_an_api_it_is_invalid_input(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT")}
    env["PYTHONPATH"] = str(ROOT)
    command = [sys.executable, "-m", "stepengine", "prefect-pull-and-run"]
    missing_run = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert (missing_run.returncode, missing_run.stderr) == (
        2,
        "error: no flow run: set PREFECT__FLOW_RUN_ID (a Prefect worker sets it) or pass --flow-run-id\n",
    )
    env["PREFECT__FLOW_RUN_ID"] = "0b7f6a8e-0000-4000-8000-000000000000"
    missing_api = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert (missing_api.returncode, missing_api.stderr) == (
        2,
        "error: no Prefect API: set PREFECT_API_URL (a Prefect worker sets it) or pass --prefect-api-url\n",
    )


@pytest.fixture(scope="module")
def worker_setup(
    prefect_server: t.Any, git_server: t.Any, tmp_path_factory: pytest.TempPathFactory
) -> t.Iterator[Setup]:
    base = tmp_path_factory.mktemp("prefect-worker")
    create_bare_repo(git_server.root / "private" / "flows.git", files=2, extra_files={"flows/hello.py": FLOW})
    repo_url = git_server.url("private/flows.git")
    prefect_server.run(
        "python",
        "-c",
        "import sys\nfrom prefect.blocks.system import Secret\n"
        f"Secret(value=sys.argv[1]).save({GOOD_TOKEN_BLOCK!r}, overwrite=True)\n"
        "Secret(value=sys.argv[2]).save('bad-token', overwrite=True)\n",
        git_server.token,
        BAD_TOKEN,
    )
    template = json.loads(
        prefect_server.run(
            "prefect", "work-pool", "get-default-base-job-template", "--type", "process"
        ).stdout
    )
    template["variables"]["properties"]["command"]["default"] = pool_command(
        sys.executable, prefect_server.venv / "bin" / "python"
    )
    (base / "template.json").write_text(json.dumps(template))
    pool = "stepengine-pool"
    prefect_server.run(
        "prefect",
        "work-pool",
        "create",
        pool,
        "--type",
        "process",
        "--base-job-template",
        str(base / "template.json"),
    )
    env = prefect_server.env()
    env.update(
        PYTHONPATH=str(ROOT),
        PREFECT_WORKER_QUERY_SECONDS="1",
        PREFECT_WORKER_PREFETCH_SECONDS="1",
        PREFECT_WORKER_CANCELLATION_POLL_SECONDS="2",
        GIT_TERMINAL_PROMPT="0",
    )
    worker_log = base / "worker.log"
    with open(worker_log, "wb") as log:
        worker = subprocess.Popen(
            [
                str(prefect_server.venv / "bin" / "prefect"),
                "worker",
                "start",
                "--pool",
                pool,
                "--type",
                "process",
            ],
            env=env,
            cwd=base,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield Setup(prefect_server.api_url, pool, repo_url, worker, worker_log)
    finally:
        stop(worker)


def _deploy(setup: Setup, name: str, pull_steps: list[dict[str, t.Any]]) -> str:
    spec = {
        "name": name,
        "flow_name": "hello",
        "entrypoint": "flows/hello.py:hello",
        "pull_steps": pull_steps,
        "work_pool_name": setup.pool,
    }
    return register_deployment(spec, setup.api_url)["deployment_id"]


def _clone(setup: Setup, block: str) -> list[dict[str, t.Any]]:
    step = {
        "id": "clone",
        "repository": setup.repo_url,
        "access_token": "{{ prefect.blocks.secret." + block + " }}",
    }
    return [{"prefect.deployments.steps.git_clone": step}]


def _start(setup: Setup, deployment_id: str) -> str:
    return str(_api(setup.api_url, "POST", f"/deployments/{deployment_id}/create_flow_run", {})["id"])


def _wait(
    setup: Setup, flow_run_id: str, types: t.Collection[str], timeout: float = 120.0
) -> dict[str, t.Any]:
    deadline = time.monotonic() + timeout
    while True:
        run = _api(setup.api_url, "GET", f"/flow_runs/{flow_run_id}")
        if (run.get("state") or {}).get("type") in types:
            return run
        if time.monotonic() > deadline:
            raise AssertionError(
                f"flow run still {run.get('state')}; worker log:\n{setup.worker_log.read_text()[-4000:]}"
            )
        time.sleep(0.5)


def _logs(setup: Setup, flow_run_id: str, until: str | None = None, timeout: float = 15.0) -> list[str]:
    """The flow run's log messages; with ``until``, wait (a while) for a message containing it:
    Prefect's engine sends its logs in batches, some after the final state is set."""
    body = {"logs": {"flow_run_id": {"any_": [flow_run_id]}}, "sort": "TIMESTAMP_ASC", "limit": 200}
    deadline = time.monotonic() + timeout
    while True:
        messages = [entry["message"] for entry in _api(setup.api_url, "POST", "/logs/filter", body)]
        if until is None or any(until in m for m in messages) or time.monotonic() > deadline:
            return messages
        time.sleep(0.5)


@pytest.mark.slow
def test_git_deployment_with_a_secret_block_token_completes(worker_setup: Setup) -> None:
    run_id = _start(worker_setup, _deploy(worker_setup, "good", _clone(worker_setup, GOOD_TOKEN_BLOCK)))
    run = _wait(worker_setup, run_id, FINAL)
    logs = _logs(worker_setup, run_id, until="hello world")
    assert run["state"]["type"] == "COMPLETED", (run["state"], logs)
    text = "\n".join(logs)
    assert "> Running git_clone step..." in text  # stepengine ran the pull, reported in the run's logs
    assert "hello world from the pulled code" in text  # Prefect's engine ran the flow from the checkout
    assert "deployment pull step" not in text  # Prefect's own step runner did not run
    assert worker_setup_token_not_in(text)


def worker_setup_token_not_in(text: str) -> bool:
    return "test-token-7f3a9c" not in text and BAD_TOKEN not in text


@pytest.mark.slow
def test_wrong_token_fails_the_flow_run_with_stepengines_error_in_its_logs(worker_setup: Setup) -> None:
    run_id = _start(worker_setup, _deploy(worker_setup, "bad", _clone(worker_setup, "bad-token")))
    run = _wait(worker_setup, run_id, FINAL)
    logs = _logs(worker_setup, run_id)
    text = "\n".join(logs)
    assert run["state"]["type"] == "FAILED", (run["state"], logs)
    where = f"deployment 'bad' ({worker_setup.api_url}/deployments/{run['deployment_id']}): pull[0] (clone: git_clone) failed"
    assert run["state"]["message"].startswith(
        f"stepengine pull failed: error: {where}: authentication failed"
    ), run["state"]["message"]
    errors = [line for line in logs if line.startswith(f"error: {where}")]
    assert errors and "git_clone" in errors[0] and "uthentication" in text, logs
    assert "hello world" not in text
    assert worker_setup_token_not_in(text + run["state"]["message"])


@pytest.mark.slow
def test_cancelled_flow_run_stops_the_pull(worker_setup: Setup, tmp_path: Path) -> None:
    marker, pidfile = tmp_path / "pull-finished", tmp_path / "pull.pid"
    script = f"sh -c 'echo $$ > {pidfile}; sleep 60; touch {marker}'"
    steps = [
        {"prefect.deployments.steps.run_shell_script": {"id": "slow", "script": script}},
        *_clone(worker_setup, GOOD_TOKEN_BLOCK),
    ]
    run_id = _start(worker_setup, _deploy(worker_setup, "slow", steps))
    deadline = time.monotonic() + 90
    while not (pidfile.exists() and pidfile.read_text().strip()):
        assert time.monotonic() < deadline, worker_setup.worker_log.read_text()[-4000:]
        time.sleep(0.2)
    pid = int(pidfile.read_text())
    _api(
        worker_setup.api_url,
        "POST",
        f"/flow_runs/{run_id}/set_state",
        {"state": {"type": "CANCELLING"}, "force": True},
    )
    run = _wait(worker_setup, run_id, FINAL, timeout=30)
    assert run["state"]["type"] == "CANCELLED", run["state"]
    deadline = time.monotonic() + 10
    while _alive(pid):  # the step's process group was killed, not left to finish
        assert time.monotonic() < deadline, f"pull step process {pid} still running"
        time.sleep(0.2)
    assert not marker.exists()
    text = "\n".join(_logs(worker_setup, run_id))
    assert "pull stopped" in text and "hello world" not in text and "Running git_clone" not in text


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
