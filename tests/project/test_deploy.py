"""Deploy: build/push run, the spec is rendered with their outputs, pull steps keep the worker's parts."""

from __future__ import annotations

import hashlib
import textwrap
from pathlib import Path

import pytest

from stepengine.errors import ConfigError, TemplateError, ValidationError
from stepengine.project.deploy import DeployRequest, deploy_project
from stepengine.project.flows import register_flows
from stepengine.project.init import init_project
from stepengine.project.layout import load_project

FLOW = '''
from prefect import flow


@flow(log_prints=True)
def hello(who: str = "world", times: int = 1):
    """Say hello."""
    for _ in range(times):
        print(f"hello {who}")
'''


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


@pytest.fixture()
def local_project(tmp_path: Path) -> Path:
    project = tmp_path / "proj"
    project.mkdir()
    write(project / "flows" / "hello.py", FLOW)
    init_project(project, recipe="local")
    return project


def test_local_recipe_spec(local_project: Path) -> None:
    (spec,) = deploy_project(
        load_project(local_project),
        DeployRequest(
            entrypoint="flows/hello.py:hello",
            work_pool_name="process",
            job_variables={"env": {"A": "1"}},
            parameters={"times": 2},
        ),
    )
    assert spec == {
        "name": "proj",
        "flow_name": "hello",
        "entrypoint": "flows/hello.py:hello",
        "version": hashlib.md5((local_project / "flows" / "hello.py").read_bytes()).hexdigest(),
        "tags": [],
        "description": "Say hello.",
        "parameters": {"times": 2},
        "parameter_openapi_schema": {
            "title": "Parameters",
            "type": "object",
            "properties": {
                "who": {"title": "who", "position": 0, "type": "string", "default": "world"},
                "times": {"title": "times", "position": 1, "type": "integer", "default": 1},
            },
        },
        "enforce_parameter_schema": True,
        "work_pool_name": "process",
        "work_queue_name": None,
        "job_variables": {"env": {"A": "1"}},
        "schedules": [],
        "paused": False,
        "concurrency_limit": None,
        "triggers": [],
        "pull_steps": [
            {"prefect.deployments.steps.set_working_directory": {"directory": str(local_project.resolve())}}
        ],
        "path": None,
    }
    # no version given: Prefect's default, the MD5 of the flow's file


PARTIAL = """
name: partial
build:
  - prefect.deployments.steps.run_shell_script:
      id: build_image
      script: echo registry.example/app:7
push:
  - prefect.deployments.steps.run_shell_script:
      id: upload
      script: echo bucket-7
pull:
  - prefect.deployments.steps.git_clone:
      id: clone
      repository: "https://git.example/{{ upload.stdout }}.git"
      branch: "{{ $BRANCH }}"
      access_token: "{{ prefect.blocks.secret.git-token }}"
  - prefect.deployments.steps.run_shell_script:
      directory: "{{ clone.directory }}"
      script: "echo {{ ctx.flow_run.id }} {{ prefect.variables.region }} {{ build_image.stdout }}"
deployments:
  - name: d
    entrypoint: flows/hello.py:hello
    version: "{{ upload.stdout }}"
    tags: ["{{ $TEAM }}", fixed]
    description: "built {{ build_image.stdout }} for {{ ctx.deployment.name }}"
    schedules:
      - cron: "0 3 * * *"
        timezone: Europe/Paris
      - interval: 3600
        active: "false"
    work_pool:
      name: pool
      job_variables:
        image: "{{ build_image.stdout }}"
        token: "{{ prefect.blocks.secret.api-token }}"
"""


def test_pull_steps_keep_what_the_worker_resolves(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "flows" / "hello.py", FLOW)
    write(tmp_path / "prefect.yaml", PARTIAL)
    monkeypatch.setenv("TEAM", "data")
    (spec,) = deploy_project(load_project(tmp_path), DeployRequest(name="d"))
    assert spec["pull_steps"] == [
        {
            "prefect.deployments.steps.git_clone": {
                "id": "clone",
                "repository": "https://git.example/bucket-7.git",
                "branch": "{{ $BRANCH }}",
                "access_token": "{{ prefect.blocks.secret.git-token }}",
            }
        },
        {
            "prefect.deployments.steps.run_shell_script": {
                "directory": "{{ clone.directory }}",
                "script": "echo {{ ctx.flow_run.id }} {{ prefect.variables.region }} registry.example/app:7",
            }
        },
    ]
    assert spec["job_variables"] == {
        "image": "registry.example/app:7",
        "token": "{{ prefect.blocks.secret.api-token }}",
    }
    assert (spec["version"], spec["tags"]) == ("bucket-7", ["data", "fixed"])
    assert spec["description"] == "built registry.example/app:7 for {{ ctx.deployment.name }}"
    assert spec["schedules"] == [
        {"schedule": {"cron": "0 3 * * *", "timezone": "Europe/Paris"}, "active": True},
        {"schedule": {"interval": 3600}, "active": False},
    ]


def test_build_and_push_run_in_the_project_directory(tmp_path: Path) -> None:
    write(tmp_path / "flows" / "hello.py", FLOW)
    write(
        tmp_path / "prefect.yaml",
        """
        build:
          - prefect.deployments.steps.run_shell_script:
              id: where
              script: pwd
        deployments:
          - name: d
            entrypoint: flows/hello.py:hello
            work_pool:
              job_variables:
                built_in: "{{ where.stdout }}"
    """,
    )
    (spec,) = deploy_project(load_project(tmp_path / "prefect.yaml"))
    assert spec["job_variables"] == {"built_in": str(tmp_path.resolve())}


def test_docker_recipe_with_a_shell_build_step(tmp_path: Path) -> None:
    """The docker recipe's deploy renders ``job_variables.image`` from the build output. Here the
    build step is swapped for a shell step printing the image name, and push is off (the test with
    a real Docker engine and registry is in tests/cli/test_deploy.py)."""
    import yaml

    project = tmp_path / "app"
    write(project / "flows" / "hello.py", FLOW)
    init_project(project, recipe="docker", fields={"image_name": "127.0.0.1:5000/app", "tag": "v1"})
    data = yaml.safe_load((project / "prefect.yaml").read_text())
    build = data["build"][0]["prefect_docker.deployments.steps.build_docker_image"]
    data["build"] = [
        {
            "prefect.deployments.steps.run_shell_script": {
                "id": "build_image",
                "script": f"echo {build['image_name']}:{build['tag']}",
            }
        }
    ]
    data["push"] = []
    data["deployments"][0]["work_pool"]["job_variables"]["image"] = "{{ build_image.stdout }}"
    (project / "prefect.yaml").write_text(yaml.safe_dump(data))
    (spec,) = deploy_project(
        load_project(project), DeployRequest(entrypoint="flows/hello.py:hello", work_pool_name="docker")
    )
    assert spec["job_variables"] == {"image": "127.0.0.1:5000/app:v1"}
    assert spec["pull_steps"] == [
        {"prefect.deployments.steps.set_working_directory": {"directory": "/opt/prefect/app"}}
    ]


def test_no_pull_section_means_the_project_directory(tmp_path: Path) -> None:
    write(tmp_path / "flows" / "hello.py", FLOW)
    write(
        tmp_path / "prefect.yaml",
        """
        deployments:
          - name: a
            entrypoint: flows/hello.py:hello
          - name: b
            entrypoint: flows/hello.py:hello
            pull: []
    """,
    )
    a, b = deploy_project(load_project(tmp_path), deploy_all=True)
    assert a["pull_steps"] == [
        {"prefect.deployments.steps.set_working_directory": {"directory": str(tmp_path.resolve())}}
    ]
    assert b["pull_steps"] == []


def test_choosing_deployments(tmp_path: Path) -> None:
    write(tmp_path / "flows" / "hello.py", FLOW)
    register_flows(tmp_path / "flows", root=tmp_path)
    write(
        tmp_path / "prefect.yaml",
        """
        deployments:
          - name: a
            entrypoint: flows/hello.py:hello
            work_pool: {name: from-file}
          - name: b
    """,
    )
    project = load_project(tmp_path)
    with pytest.raises(ConfigError) as info:
        deploy_project(project)
    assert (
        str(info.value)
        == "which deployment? give its name with -n NAME (this project has: a, b)\nhint: or deploy them all with --all"
    )
    with pytest.raises(ConfigError) as info:
        deploy_project(project, DeployRequest(name="b"))
    assert str(info.value) == (
        "deployment 'b' has no entrypoint\n"
        "hint: give one: `stepengine deploy path/to/file.py:flow_function -n NAME` (or -f FLOW_NAME)"
    )
    (b,) = deploy_project(project, DeployRequest(name="b", flow_name="hello"))
    assert b["entrypoint"] == "flows/hello.py:hello"
    (a,) = deploy_project(project, DeployRequest(name="a", work_pool_name="from-cli"))
    assert a["work_pool_name"] == "from-cli"
    (new,) = deploy_project(project, DeployRequest(name="brand-new", entrypoint="flows/hello.py:hello"))
    assert (new["name"], new["work_pool_name"]) == ("brand-new", None)
    with pytest.raises(ConfigError) as info:
        deploy_project(project, DeployRequest(name="a"), deploy_all=True)
    assert (
        str(info.value)
        == "--all deploys every deployment of the file: it cannot be combined with a name or entrypoint"
    )


def test_parameters_are_checked_against_the_signature(local_project: Path) -> None:
    with pytest.raises(ConfigError) as info:
        deploy_project(
            load_project(local_project),
            DeployRequest(entrypoint="flows/hello.py:hello", parameters={"times": "two"}),
        )
    assert str(info.value) == (
        "deployment 'proj': parameters do not match the flow's signature (flows/hello.py:hello):\n"
        "  times: 'two' is not of type 'integer'"
    )


def test_a_bad_reference_in_a_field_is_located(tmp_path: Path) -> None:
    write(tmp_path / "flows" / "hello.py", FLOW)
    write(
        tmp_path / "prefect.yaml",
        """
        build:
          - prefect.deployments.steps.run_shell_script:
              id: build_image
              script: echo hi
        deployments:
          - name: d
            entrypoint: flows/hello.py:hello
            description: "{{ build_imag.stdout }}"
    """,
    )
    with pytest.raises(TemplateError) as info:
        deploy_project(load_project(tmp_path))
    assert str(info.value).startswith(
        f"{tmp_path / 'prefect.yaml'}:8:5: deployment 'd' → description: "
        "{{ build_imag.stdout }} refers to 'build_imag', which no earlier step produced (did you mean 'build_image'?)"
    )


def test_a_bad_pull_step_fails_before_build_runs(tmp_path: Path) -> None:
    write(tmp_path / "flows" / "hello.py", FLOW)
    write(
        tmp_path / "prefect.yaml",
        """
        build:
          - prefect.deployments.steps.run_shell_script:
              script: touch built
        pull:
          - prefect.deployments.steps.git_clone:
              repo: https://example.invalid/x.git
        deployments:
          - name: d
            entrypoint: flows/hello.py:hello
    """,
    )
    with pytest.raises(ValidationError) as info:
        deploy_project(load_project(tmp_path))
    assert "pull[0] (git_clone): unknown argument 'repo'" in str(info.value)
    assert not (tmp_path / "built").exists()


def test_two_file_layout_with_projects_step_names(tmp_path: Path) -> None:
    """Prefect 2.10 projects: steps in prefect.yaml, deployments in deployment.yaml."""
    write(tmp_path / "flows" / "hello.py", FLOW)
    write(
        tmp_path / "prefect.yaml",
        """
        name: old-style
        prefect-version: 2.10.4
        build: null
        push: null
        pull:
          - prefect.projects.steps.git_clone_project:
              repository: https://git.example/org/old-style.git
              branch: main
    """,
    )
    write(
        tmp_path / "deployment.yaml",
        """
        deployments:
          - name: legacy
            version: null
            tags: [old]
            description: null
            schedule:
              interval: 600
            flow_name: null
            entrypoint: flows/hello.py:hello
            parameters: {who: legacy}
            work_pool:
              name: default-pool
              work_queue_name: null
              job_variables: {}
            typo_key: 1
    """,
    )
    project = load_project(tmp_path)
    assert project.deployment_file == tmp_path / "deployment.yaml"
    assert project.config.warnings and "deployment.yaml" in project.config.warnings[0]
    (spec,) = deploy_project(project)
    assert spec["pull_steps"] == [
        {
            "prefect.projects.steps.git_clone_project": {
                "repository": "https://git.example/org/old-style.git",
                "branch": "main",
            }
        }
    ]
    assert (spec["name"], spec["work_pool_name"], spec["tags"], spec["parameters"]) == (
        "legacy",
        "default-pool",
        ["old"],
        {"who": "legacy"},
    )
    assert spec["schedules"] == [{"schedule": {"interval": 600}, "active": True}]


def test_two_file_layout_errors_point_at_deployment_yaml(tmp_path: Path) -> None:
    write(tmp_path / "flows" / "hello.py", FLOW)
    write(tmp_path / "prefect.yaml", "name: x\n")
    write(
        tmp_path / "deployment.yaml",
        """
        - name: one
          entrypoint: flows/hello.py:hello
          description: "{{ nothing.here }}"
    """,
    )
    with pytest.raises(TemplateError) as info:
        deploy_project(load_project(tmp_path))
    assert str(info.value).startswith(f"{tmp_path / 'deployment.yaml'}:3:3: deployment 'one' → description: ")


def _record_one(root: str, i: int) -> None:
    from stepengine.project.records import record_deployments

    record_deployments(root, [{"flow_name": "f", "name": f"d{i}", "entrypoint": "a.py:f"}], None)


def test_concurrent_deploys_keep_every_record(tmp_path: Path) -> None:
    """Eight processes recording at once: the lock keeps each record (no lost read-modify-write)."""
    import multiprocessing

    from stepengine.project.records import find_records, load_records

    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_record_one, args=(str(tmp_path), i)) for i in range(8)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(60)
    assert sorted(load_records(tmp_path)) == [f"f/d{i}" for i in range(8)]
    assert [r.key for r in find_records(tmp_path, "d3")] == ["f/d3"]
    assert sorted(p.name for p in (tmp_path / ".prefect").iterdir()) == ["deployments.json"]
