"""``stepengine.from_source(...).deploy(...)``: code locations → pull steps; the same spec as the CLI."""

from __future__ import annotations

import dataclasses
import textwrap
from pathlib import Path

import pytest

import stepengine
from stepengine.errors import ConfigError
from stepengine.project.deploy import DeployRequest, deploy_project
from stepengine.project.layout import load_project
from stepengine.project.source import FlowSource
from tests.fixtures.git_server import GitServer, create_bare_repo

FLOW = '''
from prefect import flow

@flow(name="report")
def build_report(day: str, pages: int = 3):
    """Build the daily report."""
'''


def test_local_directory_gives_the_same_spec_as_the_cli(tmp_path: Path) -> None:
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "report.py").write_text(FLOW)
    spec = stepengine.from_source(tmp_path, "flows/report.py:build_report").deploy(
        "daily",
        "process",
        job_variables={"env": {"X": "1"}},
        parameters={"day": "mon"},
        cron="0 6 * * *",
        tags=["reports"],
    )
    (tmp_path / "prefect.yaml").write_text(
        textwrap.dedent("""
        deployments:
          - name: daily
            entrypoint: flows/report.py:build_report
            tags: [reports]
            parameters: {day: mon}
            schedules:
              - cron: "0 6 * * *"
            work_pool:
              name: process
              job_variables: {env: {X: "1"}}
    """)
    )
    (cli_spec,) = deploy_project(load_project(tmp_path), DeployRequest(name="daily"))
    assert spec == cli_spec
    assert spec["pull_steps"] == [
        {"prefect.deployments.steps.set_working_directory": {"directory": str(tmp_path.resolve())}}
    ]
    assert (spec["flow_name"], spec["description"]) == ("report", "Build the daily report.")
    assert spec["schedules"] == [{"schedule": {"cron": "0 6 * * *"}, "active": True}]


@dataclasses.dataclass
class Repository:
    """What Prefect's GitRepository offers: a URL, a branch, credentials."""

    url: str
    branch: str | None = None
    credentials: object = None


@pytest.fixture(autouse=True)
def _in_a_scratch_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``.deploy`` records into the current directory for a remote source: not the repository's."""
    scratch = tmp_path / "cwd"
    scratch.mkdir()
    monkeypatch.chdir(scratch)


PLAIN_API = """\
import stepengine

repository = stepengine.GitRepository(
    {url!r}, credentials={{"access_token": "{{{{ prefect.blocks.secret.git-token }}}}"}}
)
stepengine.from_source(repository, "flows/report.py:build_report").deploy(
    "nightly", "process", parameters={{"day": "tue"}}
)
"""

#: Prefect's documented pattern for a private repository, run without Prefect by `stepengine deploy`
PREFECT_PATTERN = """\
from prefect import flow
from prefect.blocks.system import Secret
from prefect.runner.storage import GitRepository

if __name__ == "__main__":
    flow.from_source(
        source=GitRepository(url={url!r}, credentials={{"access_token": Secret.load("git-token")}}),
        entrypoint="flows/report.py:build_report",
    ).deploy(name="nightly", work_pool_name="process", parameters={{"day": "tue"}})
"""


@pytest.mark.parametrize("deployer", ["plain-api", "prefect-pattern"])
def test_a_remote_source_is_recorded_and_runs_with_execute(
    git_server: GitServer, tmp_path: Path, deployer: str
) -> None:
    """issue 15, the seed's workflow in a fresh directory: a script deploys a flow from a private git
    repository (the token a secret block), says how to run it, and ``stepengine execute -d NAME``
    there clones with the block's token and runs the flow, as a Prefect worker would."""
    import os
    import subprocess
    import sys

    create_bare_repo(
        git_server.root / "team" / "etl.git",
        files=0,
        extra_files={"flows/report.py": FLOW + "    print('report for', day, pages)\n"},
    )
    project = tmp_path / "deployer"
    project.mkdir()
    url = git_server.url("team/etl.git")
    env = {**os.environ, "STEPENGINE_BLOCK_SECRET__GIT_TOKEN": git_server.token}
    if deployer == "plain-api":
        (project / "deploy.py").write_text(PLAIN_API.format(url=url))
        command = [sys.executable, "deploy.py"]
    else:
        (project / "deploy.py").write_text(PREFECT_PATTERN.format(url=url))
        command = [sys.executable, "-m", "stepengine", "deploy", "deploy.py", "-q"]
    deployed = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True, check=False)
    assert deployed.returncode == 0, deployed.stderr
    if deployer == "plain-api":
        assert (
            deployed.stderr
            == "deployment report/nightly recorded; run it with: stepengine execute -d nightly\n"
        )
    records = (project / ".prefect" / "deployments.json").read_text()
    assert git_server.token not in records
    assert '"access_token": "{{ prefect.blocks.secret.git-token }}"' in records
    executed = subprocess.run(
        [sys.executable, "-m", "stepengine", "execute", "-d", "nightly", "-q"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert (executed.returncode, executed.stdout) == (0, "report for tue 3\n"), executed.stderr
    assert git_server.token not in executed.stderr


def test_the_stand_in_block_cannot_be_read() -> None:
    """``Secret.load(name)`` in the stand-in is a reference for deployments; reading it says why not."""
    import subprocess
    import sys

    from stepengine.project import _stand_in

    code = "from prefect.blocks.system import Secret\nSecret.load('gh-token').get()\n"
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={"PYTHONPATH": _stand_in.__path__[0], "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    assert (
        "RuntimeError: Secret.load('gh-token').get(): the stand-in prefect module cannot read" in done.stderr
    )
    assert "{{ prefect.blocks.secret.gh-token }}" in done.stderr


def test_git_source_is_cloned_to_read_the_flow(git_server: GitServer) -> None:
    create_bare_repo(
        git_server.root / "secret-team" / "reports.git",
        files=0,
        branch="prod",
        extra_files={"flows/report.py": FLOW},
    )
    repo = Repository(
        git_server.url("secret-team/reports.git"), "prod", {"access_token": "{{ prefect.blocks.secret.git }}"}
    )
    resolver = stepengine.InMemoryResolver(blocks={"secret/git": git_server.token})
    spec = stepengine.from_source(repo, "flows/report.py:build_report").deploy(
        "nightly", "k8s", resolver=resolver
    )
    assert spec["pull_steps"] == [
        {
            "prefect.deployments.steps.git_clone": {
                "id": "clone",
                "repository": git_server.url("secret-team/reports.git"),
                "branch": "prod",
                "credentials": {"access_token": "{{ prefect.blocks.secret.git }}"},
            }
        },
        {"prefect.deployments.steps.set_working_directory": {"directory": "{{ clone.directory }}"}},
    ]
    assert spec["parameter_openapi_schema"]["required"] == ["day"]
    assert spec["description"] == "Build the daily report."
    assert git_server.token not in repr(spec)


def test_git_url_and_storage_urls_map_to_pull_steps() -> None:
    assert FlowSource("https://github.com/org/repo.git", "a.py:f").pull_steps == [
        {
            "prefect.deployments.steps.git_clone": {
                "id": "clone",
                "repository": "https://github.com/org/repo.git",
            }
        },
        {"prefect.deployments.steps.set_working_directory": {"directory": "{{ clone.directory }}"}},
    ]
    assert FlowSource("git@github.com:org/repo", "a.py:f").pull_steps[0] == {
        "prefect.deployments.steps.git_clone": {"id": "clone", "repository": "git@github.com:org/repo"}
    }
    for url in ("s3://bucket/flows", "gs://bucket/flows", "az://container/flows"):
        assert FlowSource(url, "a.py:f").pull_steps == [
            {"prefect.deployments.steps.pull_from_remote_storage": {"id": "pull_code", "url": url}},
            {"prefect.deployments.steps.set_working_directory": {"directory": "{{ pull_code.directory }}"}},
        ]


def test_unusable_sources(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        stepengine.from_source(str(tmp_path / "missing"), "a.py:f")
    assert str(info.value) == (
        f"from_source: '{tmp_path / 'missing'}' is not a directory, a git URL or a storage URL (s3://, gs://, az://)"
    )
    with pytest.raises(ConfigError) as info:
        stepengine.from_source(tmp_path, "a.py:f").deploy("x", build=True)
    assert str(info.value) == "from_source(...).deploy: build/push need an image="


@pytest.mark.docker
def test_image_build_and_push_run_first(
    tmp_path: Path, docker_host: object, docker_registry: object, busybox_context: Path
) -> None:
    """``image=`` + ``build=True`` + ``push=True``: the Docker build and push steps run before the spec
    is rendered, and the image lands in ``job_variables.image``."""
    registry = docker_registry
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "report.py").write_text(FLOW)
    (tmp_path / "busybox").write_bytes((busybox_context / "busybox").read_bytes())
    (tmp_path / "Dockerfile").write_text("FROM scratch\nCOPY busybox /bin/busybox\nCOPY flows /app/flows\n")
    image = f"{registry.address}/reports:2024"  # type: ignore[attr-defined]
    resolver = stepengine.InMemoryResolver(blocks={"docker-registry-credentials/local": registry.credentials})  # type: ignore[attr-defined]
    source = stepengine.from_source(tmp_path, "flows/report.py:build_report")
    spec = source.deploy(
        "img",
        "docker",
        image=image,
        build=True,
        push=True,
        dockerfile="Dockerfile",
        push_credentials="{{ prefect.blocks.docker-registry-credentials.local }}",
        resolver=resolver,
    )
    assert spec["job_variables"] == {"image": image}
    assert registry.tags("reports") == ["2024"]  # type: ignore[attr-defined]


@dataclasses.dataclass
class Storage:
    """What Prefect's RemoteStorage offers: a URL and fsspec settings."""

    url: str
    settings: dict


def test_s3_source_is_pulled_to_read_the_flow(moto_s3: object) -> None:
    """Against a real S3 (moto on 127.0.0.1); keys come from blocks and stay placeholders in the spec."""
    s3 = moto_s3
    client = s3.boto3_client()  # type: ignore[attr-defined]
    client.create_bucket(Bucket="flows-bucket")
    client.put_object(Bucket="flows-bucket", Key="team/flows/report.py", Body=FLOW.encode())
    storage = Storage(
        "s3://flows-bucket/team",
        {
            "key": "{{ prefect.blocks.secret.s3-key }}",
            "secret": "{{ prefect.blocks.secret.s3-secret }}",
            "endpoint_url": s3.endpoint_url,
        },
    )  # type: ignore[attr-defined]
    resolver = stepengine.InMemoryResolver(blocks={"secret/s3-key": s3.key, "secret/s3-secret": s3.secret})  # type: ignore[attr-defined]
    spec = stepengine.from_source(storage, "flows/report.py:build_report").deploy(
        "from-s3", "pool", resolver=resolver
    )
    assert spec["pull_steps"][0] == {
        "prefect.deployments.steps.pull_from_remote_storage": {
            "id": "pull_code",
            "url": "s3://flows-bucket/team",
            "key": "{{ prefect.blocks.secret.s3-key }}",
            "secret": "{{ prefect.blocks.secret.s3-secret }}",
            "endpoint_url": s3.endpoint_url,
        }
    }  # type: ignore[attr-defined]
    assert (spec["flow_name"], spec["description"]) == ("report", "Build the daily report.")
    assert s3.secret not in repr(spec)  # type: ignore[attr-defined]


def _import(path: Path, name: str) -> object:
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"_t7_{path.stem}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, name)


def test_a_function_object_as_entrypoint_and_build_from_flow(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "jobs.py").write_text("def nightly(limit: int = 5):\n    '''Nightly job.'''\n")
    function = _import(tmp_path / "pkg" / "jobs.py", "nightly")
    assert stepengine.from_source(tmp_path, function).entrypoint == "pkg/jobs.py:nightly"
    by_object = stepengine.from_source(tmp_path, function).deploy("n", "pool", job_variables={"a": 1, "b": 1})
    from stepengine.project.source import build_from_flow

    older = build_from_flow(
        function, "n", work_pool_name="pool", path=tmp_path, job_variables={"a": 1}, infra_overrides={"b": 1}
    )
    assert older == by_object
    assert (older["entrypoint"], older["description"]) == ("pkg/jobs.py:nightly", "Nightly job.")
    with pytest.raises(ConfigError) as info:
        stepengine.from_source(tmp_path / "pkg", textwrap.dedent)
    assert str(info.value) == f"from_source: {textwrap.__file__} is not inside {tmp_path / 'pkg'}"
    with pytest.raises(ConfigError) as info:
        stepengine.from_source("https://git.example/x.git", function)
    assert (
        str(info.value) == "from_source: with a remote source, give the entrypoint as path/file.py:function"
    )


def test_file_urls_are_local_storage_as_in_prefect(tmp_path: Path) -> None:
    """issue 15: ``from_source("file:///…")`` and ``build_from_flow(storage="file://…")`` are the local
    directory (Prefect's LocalStorage), not a git clone that fails at run time; the spec runs."""
    import json
    import subprocess
    import sys

    project = tmp_path / "my project"
    (project / "flows").mkdir(parents=True)
    (project / "flows" / "report.py").write_text(FLOW + "    print('report for', day, pages)\n")
    url = project.as_uri()  # file:///…/my%20project
    spec = stepengine.from_source(url, "flows/report.py:build_report").deploy(
        "n", "pool", parameters={"day": "mon"}
    )
    assert spec["pull_steps"] == [
        {"prefect.deployments.steps.set_working_directory": {"directory": str(project)}}
    ]
    older = stepengine.build_from_flow(
        None,
        "n",
        work_pool_name="pool",
        storage=url,
        entrypoint="flows/report.py:build_report",
        parameters={"day": "mon"},
    )
    assert older == spec
    assert FlowSource("local://" + str(project), "a.py:f").pull_steps == spec["pull_steps"]
    assert FlowSource("file:///srv/repo.git", "a.py:f").pull_steps[0] == {
        "prefect.deployments.steps.git_clone": {"id": "clone", "repository": "file:///srv/repo.git"}
    }
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    executed = subprocess.run(
        [sys.executable, "-m", "stepengine", "execute", "--spec", str(tmp_path / "spec.json"), "-q"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert (executed.returncode, executed.stdout) == (0, "report for mon 3\n"), executed.stderr
