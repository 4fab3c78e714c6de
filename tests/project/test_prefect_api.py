"""Registering deployments on a real ``prefect server start`` (127.0.0.1, from Prefect's own venv)."""

from __future__ import annotations

import json
import shutil
import subprocess
import textwrap
import urllib.request
from pathlib import Path

import pytest

from stepengine.errors import StoreError
from stepengine.project.prefect_api import deployment_body, register_deployment
from testkit.processes import free_port

FLOW = '''
from prefect import flow


@flow
def hello(who: str = "world", times: int = 1):
    """Say hello."""
'''


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())


def test_body_has_only_deployment_create_fields() -> None:
    spec = {
        "name": "d",
        "flow_name": "f",
        "entrypoint": "a.py:f",
        "version": None,
        "tags": ["t"],
        "description": None,
        "parameters": {},
        "parameter_openapi_schema": {},
        "enforce_parameter_schema": True,
        "work_pool_name": None,
        "work_queue_name": None,
        "job_variables": {},
        "paused": False,
        "concurrency_limit": {"limit": 2, "collision_strategy": "CANCEL_NEW"},
        "triggers": [],
        "pull_steps": [],
        "path": "/p",
        "schedules": [{"schedule": {"cron": "* * * * *", "max_active_runs": 3}, "active": True}],
    }
    assert deployment_body(spec, "FLOW-ID") == {
        "name": "d",
        "flow_id": "FLOW-ID",
        "tags": ["t"],
        "parameters": {},
        "parameter_openapi_schema": {},
        "enforce_parameter_schema": True,
        "job_variables": {},
        "pull_steps": [],
        "entrypoint": "a.py:f",
        "path": "/p",
        "paused": False,
        "schedules": [{"active": True, "schedule": {"cron": "* * * * *"}}],
        "concurrency_limit": 2,
        "concurrency_options": {"collision_strategy": "CANCEL_NEW"},
    }


def test_unreachable_server_is_a_clear_error() -> None:
    url = f"http://127.0.0.1:{free_port()}/api"
    with pytest.raises(StoreError) as info:  # the one Prefect client's error, as the Prefect store's
        register_deployment({"name": "d", "flow_name": "f"}, url, timeout=5)
    assert str(info.value) == (
        f"cannot reach the Prefect API at {url}: [Errno 111] Connection refused\n"
        "hint: is the server running? (--prefect-api-url / PREFECT_API_URL)"
    )


@pytest.mark.slow
def test_deploy_creates_then_updates_on_a_real_server(tmp_path: Path, prefect_server: object) -> None:
    server = prefect_server
    api = server.api_url  # type: ignore[attr-defined]
    server.run("prefect", "work-pool", "create", "se-pool", "--type", "process")  # type: ignore[attr-defined]
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "hello.py").write_text(FLOW)
    (tmp_path / "prefect.yaml").write_text(
        textwrap.dedent("""
        pull:
          - prefect.deployments.steps.git_clone:
              repository: https://git.example/org/flows.git
              access_token: "{{ prefect.blocks.secret.git-token }}"
        deployments:
          - name: nightly
            entrypoint: flows/hello.py:hello
            parameters: {who: server}
            schedules:
              - cron: "0 3 * * *"
                timezone: UTC
            work_pool:
              name: se-pool
              job_variables: {env: {A: "1"}}
    """)
    )
    exe = shutil.which("stepengine")
    assert exe

    def deploy(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [exe, "deploy", "-n", "nightly", "--prefect-api-url", api, *extra],
            check=False,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )

    first = deploy()
    assert first.returncode == 0, first.stderr
    spec = json.loads(first.stdout)
    stored = _get(f"{api}/deployments/name/hello/nightly")
    assert stored["id"] == spec["id"]
    assert (stored["entrypoint"], stored["work_pool_name"], stored["parameters"]) == (
        "flows/hello.py:hello",
        "se-pool",
        {"who": "server"},
    )
    assert stored["pull_steps"] == spec["pull_steps"]
    assert stored["job_variables"] == {"env": {"A": "1"}}
    assert stored["parameter_openapi_schema"]["properties"]["times"]["type"] == "integer"
    assert [s["schedule"]["cron"] for s in stored["schedules"]] == ["0 3 * * *"]
    # Prefect's own CLI reads what we registered
    listed = server.run("prefect", "deployment", "ls")  # type: ignore[attr-defined]
    assert "hello/nightly" in listed.stdout

    second = deploy("--param", "times=5")
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout)["id"] == spec["id"]  # updated in place, not duplicated
    assert _get(f"{api}/deployments/name/hello/nightly")["parameters"] == {"who": "server", "times": 5}

    missing = deploy("-p", "no-such-pool")
    assert missing.returncode == 2  # a StoreError: the server refused what the file asks for
    assert missing.stderr.splitlines()[-2:] == [
        f'error: Prefect API POST {api}/deployments/ failed with HTTP 404: Work pool "no-such-pool" not found.',
        "hint: create the work pool first (prefect work-pool create NAME --type process)",
    ]


COMPARED_FLOW = """
import datetime
from typing import Dict, List, Literal, Optional, Tuple, Union

from prefect import flow


@flow(name="compared")
def f(source: str, limit: int = 10, ratio: float = 0.5, dry: bool = False, cols: List[str] = ["a"],
      table: Optional[str] = None, mode: Literal["x", "y"] = "x", opts: Dict[str, int] = {},
      when: Optional[datetime.datetime] = None, pair: Tuple[int, str] = (1, "a"), u: Union[int, str] = 3,
      anything=None, *, kw: int = 1):
    \"\"\"Doc here.\"\"\"
"""


@pytest.mark.slow
def test_same_server_record_as_prefect_deploy(tmp_path: Path, prefect_server: object) -> None:
    """One project deployed twice, by ``prefect deploy`` and by ``stepengine deploy``: the server
    holds the same deployment (parameter schema, version, pull steps, job variables, schedules...)."""
    server = prefect_server
    api = server.api_url  # type: ignore[attr-defined]
    server.run("prefect", "work-pool", "create", "cmp-pool", "--type", "process", "--overwrite")  # type: ignore[attr-defined]
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "f.py").write_text(COMPARED_FLOW)
    records = {}
    for engine in ("prefect", "stepengine"):
        (tmp_path / "prefect.yaml").write_text(
            textwrap.dedent(f"""
            name: proj
            prefect-version: 3.8.8
            pull:
              - prefect.deployments.steps.set_working_directory:
                  directory: {tmp_path}
            deployments:
              - name: by-{engine}
                entrypoint: flows/f.py:f
                tags: [t1]
                parameters: {{source: s}}
                schedules:
                  - cron: "0 3 * * *"
                    timezone: UTC
                work_pool:
                  name: cmp-pool
                  job_variables: {{env: {{A: "1"}}}}
        """)
        )
        if engine == "prefect":
            argv = [str(server.venv / "bin" / "prefect"), "--no-prompt", "deploy", "-n", "by-prefect"]  # type: ignore[attr-defined]
        else:
            argv = [
                shutil.which("stepengine") or "stepengine",
                "deploy",
                "-n",
                "by-stepengine",
                "--prefect-api-url",
                api,
                "-q",
            ]
        result = subprocess.run(
            argv, cwd=tmp_path, env=server.env(), capture_output=True, text=True, check=False, timeout=120
        )  # type: ignore[attr-defined]
        assert result.returncode == 0, result.stdout + result.stderr
        records[engine] = _get(f"{api}/deployments/name/compared/by-{engine}")
    ignored = {
        "id",
        "name",
        "created",
        "updated",
        "created_by",
        "updated_by",
        "last_polled",
        "status",
        "work_queue_id",
        "schedules",
    }
    prefect, ours = (
        {k: v for k, v in r.items() if k not in ignored} for r in (records["prefect"], records["stepengine"])
    )
    assert ours == prefect
    assert [(s["schedule"], s["active"]) for s in records["stepengine"]["schedules"]] == [
        (s["schedule"], s["active"]) for s in records["prefect"]["schedules"]
    ]


@pytest.mark.slow
def test_execute_runs_a_real_prefect_flow_in_prefects_venv(tmp_path: Path, prefect_server: object) -> None:
    """``execute --python <Prefect's venv>``: the flow runs as a Prefect flow run on the server; the
    exit code follows its final state."""
    server = prefect_server
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "real.py").write_text(
        textwrap.dedent("""
        from prefect import flow, task

        @task
        def square(x: int) -> int:
            return x * x

        @flow(name="really-prefect")
        def real(n: int = 2):
            print("squared", square(n))
            if n < 0:
                raise ValueError("negative")
    """)
    )
    (tmp_path / "prefect.yaml").write_text("deployments:\n  - name: r\n    entrypoint: flows/real.py:real\n")
    python = str(server.venv / "bin" / "python")  # type: ignore[attr-defined]
    exe = shutil.which("stepengine") or "stepengine"

    def execute(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [exe, "execute", "--python", python, "-q", *extra],
            cwd=tmp_path,
            env=server.env(),  # type: ignore[attr-defined]
            capture_output=True,
            text=True,
            check=False,
            timeout=180,
        )

    ok = execute("--param", "n=7")
    assert ok.returncode == 0, ok.stderr
    assert "squared 49" in ok.stdout + ok.stderr
    failed = execute("--param", "n=-1")
    assert failed.returncode == 1
    assert "ValueError: negative" in failed.stderr
    request = urllib.request.Request(
        f"{server.api_url}/flow_runs/filter",
        data=b"{}",
        method="POST",  # type: ignore[attr-defined]
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        runs = json.loads(response.read())
    flow_id = _get(f"{server.api_url}/flows/name/really-prefect")["id"]  # type: ignore[attr-defined]
    states = sorted(r["state"]["type"] for r in runs if r["flow_id"] == flow_id)
    assert states == ["COMPLETED", "FAILED"]


@pytest.mark.slow
def test_deploy_options_give_the_same_server_record_as_prefect_deploy(
    tmp_path: Path, prefect_server: object
) -> None:
    """issue 15: `prefect deploy`'s options (schedules with time zone and anchor, description, tags,
    --params, --job-variable, concurrency) given to both CLIs leave the same deployment on the server."""
    server = prefect_server
    api = server.api_url  # type: ignore[attr-defined]
    server.run("prefect", "work-pool", "create", "opt-pool", "--type", "process", "--overwrite")  # type: ignore[attr-defined]
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "f.py").write_text(COMPARED_FLOW)
    (tmp_path / "prefect.yaml").write_text(
        f"name: proj\npull:\n  - prefect.deployments.steps.set_working_directory:\n      directory: {tmp_path}\n"
    )
    options = [
        "flows/f.py:f",
        "-p",
        "opt-pool",
        "--cron",
        "0 3 * * *",
        "--interval",
        "3600",
        "--rrule",
        "FREQ=DAILY;BYHOUR=4",
        "--timezone",
        "Europe/Paris",
        "--anchor-date",
        "2026-01-01T00:00:00",
        "-d",
        "described",
        "-t",
        "a",
        "-t",
        "b",
        "--params",
        '{"source": "s", "limit": 5}',
        "--job-variable",
        "image=org/app:1",
        "--concurrency-limit",
        "2",
        "--collision-strategy",
        "CANCEL_NEW",
    ]
    records = {}
    for engine in ("prefect", "stepengine"):
        if engine == "prefect":
            argv = [
                str(server.venv / "bin" / "prefect"),
                "--no-prompt",
                "deploy",
                "-n",
                "opt-by-prefect",
                *options,
            ]  # type: ignore[attr-defined]
        else:
            argv = [
                shutil.which("stepengine") or "stepengine",
                "deploy",
                "-n",
                "opt-by-stepengine",
                *options,
                "--prefect-api-url",
                api,
                "-q",
            ]
        result = subprocess.run(
            argv, cwd=tmp_path, env=server.env(), capture_output=True, text=True, check=False, timeout=120
        )  # type: ignore[attr-defined]
        assert result.returncode == 0, result.stdout + result.stderr
        records[engine] = _get(f"{api}/deployments/name/compared/opt-by-{engine}")
    ignored = {
        "id",
        "name",
        "created",
        "updated",
        "created_by",
        "updated_by",
        "last_polled",
        "status",
        "work_queue_id",
        "schedules",
        "global_concurrency_limit",
    }
    prefect, ours = (
        {k: v for k, v in r.items() if k not in ignored} for r in (records["prefect"], records["stepengine"])
    )
    assert ours == prefect
    assert [(s["schedule"], s["active"]) for s in records["stepengine"]["schedules"]] == [
        (s["schedule"], s["active"]) for s in records["prefect"]["schedules"]
    ]
    assert (records["stepengine"]["global_concurrency_limit"] or {}).get("limit") == 2
