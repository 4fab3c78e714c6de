"""Local execution as a process worker does it: pull in a fresh directory, then run the flow."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from stepengine.errors import ConfigError
from stepengine.project.deploy import DeployRequest, deploy_project
from stepengine.project.execute import choose_python, execute_spec, load_spec
from stepengine.project.init import init_project
from stepengine.project.layout import load_project
from tests.fixtures.git_server import GitServer, create_bare_repo
from tests.fixtures.tools import needs_program
from tests.fixtures.wheels import make_wheel

FLOW = '''
import os
import sys

from greeting import hello     # installed into the venv by the pull steps


def greet(who: str, times: int = 1):
    """A plain function: no Prefect needed to run it."""
    for _ in range(times):
        print(hello(who), flush=True)
    print("prefix", sys.prefix)
    print("cwd", os.getcwd())
    if who == "boom":
        raise RuntimeError("the flow failed")
'''


def _stepengine(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stepengine", *args],
        check=False,
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


@needs_program("uv", ".ci/install.d/70-project.sh")
def test_git_recipe_deployment_end_to_end_in_a_venv(tmp_path: Path, git_server: GitServer) -> None:
    """init --recipe git → pull from the loopback git server (token from a block) → requirements
    into a venv → the flow runs in that venv with the parameters; exit code follows the flow."""
    wheels = tmp_path / "wheels"
    make_wheel(wheels, "greeting", "1.0", 'def hello(name):\n    return f"hello {name}"\n')
    create_bare_repo(
        git_server.root / "team" / "flows.git",
        files=0,
        extra_files={
            "flows/greet.py": FLOW,
            "requirements.txt": f"--no-index\n--find-links {wheels}\ngreeting==1.0\n",
        },
    )
    venv = tmp_path / "flow-venv"
    subprocess.run(["uv", "venv", "--quiet", "--python", sys.executable, str(venv)], check=True)

    project = tmp_path / "project"
    project.mkdir()
    (project / "flows").mkdir()
    (project / "flows" / "greet.py").write_text(FLOW)  # the developer's checkout
    init_project(
        project, recipe="git", fields={"repository": git_server.url("team/flows.git"), "branch": "main"}
    )
    data = yaml.safe_load((project / "prefect.yaml").read_text())
    clone = data["pull"][0]["prefect.deployments.steps.git_clone"]
    clone["access_token"] = "{{ prefect.blocks.secret.git-token }}"
    data["pull"].append(
        {
            "prefect.deployments.steps.pip_install_requirements": {
                "directory": "{{ clone.directory }}",
                "python": str(venv / "bin" / "python"),
                "installer": "uv",
            }
        }
    )
    deployment = data["deployments"][0]
    deployment.update(entrypoint="flows/greet.py:greet", parameters={"who": "file"})
    deployment["work_pool"]["job_variables"] = {"venv": str(venv)}
    (project / "prefect.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    values = tmp_path / "values.yaml"
    values.write_text(f"blocks:\n  secret:\n    git-token: {git_server.token}\n")

    env = {**os.environ, "UV_NO_CONFIG": "1"}
    run = _stepengine("execute", "--values", str(values), "--param", "times=2", cwd=project, env=env)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[:3] == ["hello file", "hello file", f"prefix {venv}"]
    assert lines[3].startswith("cwd /") and lines[3].endswith(
        "/flows-main"
    )  # the fresh clone, not the project
    assert "project" not in lines[3]
    assert git_server.token not in run.stdout + run.stderr

    failed = _stepengine(
        "execute", "--values", str(values), "--param", "who=boom", "-q", cwd=project, env=env
    )
    assert failed.returncode == 1
    assert "RuntimeError: the flow failed" in failed.stderr
    assert failed.stderr.rstrip().splitlines()[-1] == "flow greet failed (exit code 1)"


def _local_spec(tmp_path: Path, flow: str, **request: object) -> dict[str, object]:
    project = tmp_path / "proj"
    (project / "flows").mkdir(parents=True)
    (project / "flows" / "f.py").write_text(textwrap.dedent(flow))
    init_project(project, recipe="local")
    (spec,) = deploy_project(load_project(project), DeployRequest(entrypoint="flows/f.py:main", **request))  # type: ignore[arg-type]
    return spec


def test_parameters_are_validated_before_anything_runs(tmp_path: Path) -> None:
    spec = _local_spec(tmp_path, "def main(n: int, label: str = 'x'):\n    open('ran', 'w').close()\n")
    with pytest.raises(ConfigError) as info:
        execute_spec(spec, parameters={"label": 3})
    assert str(info.value) == (
        "deployment 'proj': parameters do not match the flow's signature (flows/f.py:main):\n"
        "  'n' is a required property\n"
        "  label: 3 is not of type 'string'"
    )
    assert not (tmp_path / "proj" / "ran").exists()


def test_async_flow_and_a_spec_file(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    spec = _local_spec(
        tmp_path,
        """
        import asyncio
        async def main(n: int = 1):
            await asyncio.sleep(0)
            print("async", n * 2)
    """,
        parameters={"n": 4},
    )
    (tmp_path / "spec.json").write_text(json.dumps([spec]))
    assert execute_spec(load_spec(tmp_path / "spec.json")) == 0
    assert capfd.readouterr().out == "async 8\n"


def test_exit_code_of_the_flow_process(tmp_path: Path) -> None:
    spec = _local_spec(tmp_path, "import sys\ndef main():\n    sys.exit(7)\n")
    assert execute_spec(spec, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) == 7


def test_choose_python(tmp_path: Path) -> None:
    venv = tmp_path / "env"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(sys.executable)
    assert choose_python({"job_variables": {}}) == sys.executable
    assert choose_python({"job_variables": {"venv": str(venv)}}) == str(venv / "bin" / "python")
    assert choose_python({"job_variables": {"conda_prefix": str(venv)}}) == str(venv / "bin" / "python")
    assert choose_python({"job_variables": {"venv": str(venv)}}, "/usr/bin/python3") == "/usr/bin/python3"
    with pytest.raises(ConfigError) as info:
        choose_python({"job_variables": {"venv": str(tmp_path / "none")}})
    assert (
        str(info.value)
        == f"job_variables.venv: {tmp_path / 'none' / 'bin' / 'python'} is not an executable Python interpreter"
    )


def test_a_prefect_flow_runs_without_prefect_installed(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """Prefect is not installed next to stepengine: ``@flow``/``@task`` code runs as plain functions."""
    spec = _local_spec(
        tmp_path,
        """
        from prefect import flow, task, get_run_logger

        @task(retries=2)
        def double(x):
            return 2 * x

        @flow(name="numbers", log_prints=True)
        def main(n: int = 3):
            get_run_logger().info("starting")
            futures = double.map(range(n))
            print([f.result() for f in futures], double.submit(5).result(), double.fn(1))
    """,
    )
    assert execute_spec(spec) == 0
    captured = capfd.readouterr()
    assert captured.out == "[0, 2, 4] 10 2\n"
    assert captured.err.rstrip().endswith("| INFO    | prefect.flow_runs - starting")


def test_job_variables_env_and_working_dir(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """As a process worker: ``env`` reaches the pull steps and the flow; ``working_dir`` is where the
    pull runs (and it is kept)."""
    spec = _local_spec(
        tmp_path,
        "import os\ndef main():\n    print(os.environ['STAGE'], os.getcwd())\n",
        job_variables={"env": {"STAGE": "prod"}, "working_dir": str(tmp_path / "work")},
    )
    spec["pull_steps"] = [
        {"prefect.deployments.steps.run_shell_script": {"script": "touch pulled-$STAGE", "shell": True}},
        *spec["pull_steps"],  # set_working_directory to the project
    ]
    assert "STAGE" not in os.environ
    assert execute_spec(spec) == 0
    assert capfd.readouterr().out == f"prod {tmp_path / 'proj'}\n"
    assert (tmp_path / "work" / "pulled-prod").exists()
    assert "STAGE" not in os.environ  # restored


def test_a_venv_made_by_the_pull_steps_is_looked_for_after_them(tmp_path: Path) -> None:
    """issue 15: ``job_variables.venv`` names an environment a pull step creates; it is looked for
    after the pull (relative paths from the flow's directory), not before anything runs."""
    spec = _local_spec(
        tmp_path,
        "import sys\ndef main():\n    print('prefix', sys.prefix)\n",
        job_variables={"venv": ".venv"},
    )
    spec["pull_steps"] = [
        *spec["pull_steps"],  # set_working_directory to the project: the flow's directory
        {
            "prefect.deployments.steps.run_shell_script": {
                "script": f"{sys.executable} -m venv --without-pip .venv"
            }
        },
    ]
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    result = _stepengine("execute", "--spec", str(tmp_path / "spec.json"), "-q", cwd=tmp_path)
    assert (result.returncode, result.stdout) == (0, f"prefix {tmp_path / 'proj' / '.venv'}\n"), result.stderr


def test_star_args_and_star_kwargs_parameters(tmp_path: Path) -> None:
    """As Prefect: ``*args`` and ``**kwargs`` are parameters holding a list and an object."""
    spec = _local_spec(
        tmp_path,
        "def main(a, /, b=1, *rest: int, **options):\n    print(a, b, rest, options)\n",
        parameters={"a": 0, "rest": [5, 6], "options": {"x": 1}},
    )
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    result = _stepengine("execute", "--spec", str(tmp_path / "spec.json"), "-q", cwd=tmp_path)
    assert (result.returncode, result.stdout) == (0, "0 1 (5, 6) {'x': 1}\n"), result.stderr


STAND_IN_FLOW = """
from prefect import flow, task, unmapped
from prefect.artifacts import create_markdown_artifact
from prefect.context import get_run_context
from prefect.futures import wait
from prefect.logging import get_run_logger
from prefect.runtime import deployment, flow_run


@task
def scale(x, k=2):
    return k * x


@flow(name="numbers")
def main(n: int = 3):
    get_run_logger().info("flow %s, deployment %s, parameters %s", flow_run.flow_name, deployment.name, flow_run.parameters)
    futures = scale.map(range(n), k=unmapped(10))
    wait(futures)
    print([f.result() for f in futures], get_run_context().flow_run.parameters)
    create_markdown_artifact("# done", key="report")
    if n == 0:
        import prefect.filesystems  # not in the stand-in
"""


def test_the_stand_in_has_prefects_common_submodules(tmp_path: Path) -> None:
    """issue 15: without Prefect, ``prefect.logging``, ``.runtime``, ``.artifacts``, ``.context``,
    ``.futures`` work; any other ``prefect.*`` import fails with a hint, not a bare ModuleNotFoundError."""
    spec = _local_spec(tmp_path, STAND_IN_FLOW, parameters={"n": 2})
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    result = _stepengine("execute", "--spec", str(tmp_path / "spec.json"), "-q", cwd=tmp_path)
    assert (result.returncode, result.stdout) == (0, "[0, 10] {'n': 2}\n"), result.stderr
    logged = [line.split(" | ", 2)[2] for line in result.stderr.splitlines()]
    assert logged == [
        "prefect.flow_runs - flow numbers, deployment proj, parameters {'n': 2}",
        "prefect.flow_runs - markdown artifact 'report': # done",
    ]
    missing = _stepengine(
        "execute", "--spec", str(tmp_path / "spec.json"), "-q", "--param", "n=0", cwd=tmp_path
    )
    assert missing.returncode == 1
    assert (
        "ModuleNotFoundError: No module named 'prefect.filesystems': Prefect is not installed where this flow runs, "
        "and stepengine's stand-in prefect module provides only prefect.artifacts, "
    ) in missing.stderr
    assert (
        "(install prefect in the flow's interpreter: job_variables.venv / python, or `stepengine execute --python`)"
        in missing.stderr
    )
