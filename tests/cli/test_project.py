"""The project verbs through the real console script: init, recipe ls, flows, deploy, execute."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

FLOW = '''
from prefect import flow


@flow
def hello(who: str = "world"):
    """Say hello."""
    print(f"hello {who}")
'''


def stepengine(
    *args: str, cwd: Path, env: dict | None = None, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("stepengine")
    assert exe, "the console script is installed by `pip install -e .`"
    return subprocess.run(
        [exe, *args], check=False, capture_output=True, text=True, cwd=cwd, env=env, timeout=120, input=input
    )


def test_init_then_again(tmp_path: Path) -> None:
    first = stepengine("init", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert first.stderr.splitlines() == [
        "recipe: local (no git remote and no Dockerfile were found; choose another with --recipe)",
        "created prefect.yaml",
        "created .prefectignore",
        "created .prefect/",
    ]
    before = (tmp_path / "prefect.yaml").read_text()
    second = stepengine(
        "init", "--recipe", "git", "--field", "repository=r", "--field", "branch=b", cwd=tmp_path
    )
    assert second.returncode == 0, second.stderr
    assert second.stderr.splitlines() == [
        "recipe: git",
        "prefect.yaml already exists; left unchanged",
        ".prefectignore already exists; left unchanged",
        ".prefect/ already exists; left unchanged",
    ]
    assert (tmp_path / "prefect.yaml").read_text() == before


def test_init_missing_fields_without_a_tty_exits_2(tmp_path: Path) -> None:
    result = stepengine("init", "--recipe", "s3", "--field", "bucket=b", cwd=tmp_path, input="")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "error: recipe 's3' needs 1 more field:",
        "error:   credentials_block: the name of an aws-credentials block",
        "hint: give them as --field credentials_block=...",
    ]
    assert not (tmp_path / "prefect.yaml").exists()


def test_recipe_ls(tmp_path: Path) -> None:
    result = stepengine("recipe", "ls", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["RECIPE", "DESCRIPTION", "REQUIRED", "FIELDS"]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert sorted(rows) == [
        "azure",
        "docker",
        "docker-azure",
        "docker-gcs",
        "docker-git",
        "docker-s3",
        "gcs",
        "git",
        "local",
        "s3",
    ]
    assert rows["git"].endswith("repository, branch")
    assert rows["local"].endswith("  -")
    as_json = json.loads(stepengine("recipe", "ls", "-o", "json", cwd=tmp_path).stdout)
    assert {r["name"]: r["required"] for r in as_json}["docker-s3"] == [
        "image_name",
        "bucket",
        "credentials_block",
    ]


def test_flows_register_ls_and_deploy_by_flow_name(tmp_path: Path) -> None:
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "hello.py").write_text(FLOW)
    assert stepengine("init", cwd=tmp_path).returncode == 0
    registered = stepengine("flows", "register", "flows", cwd=tmp_path)
    assert registered.returncode == 0, registered.stderr
    assert registered.stderr == "registered hello (flows/hello.py:hello)\n"
    assert stepengine("flows", "ls", cwd=tmp_path).stdout == "hello  flows/hello.py:hello  (who)\n"
    out = tmp_path / "spec.json"
    deployed = stepengine(
        "deploy",
        "-f",
        "hello",
        "-p",
        "process",
        "-jv",
        'env={"A": "1"}',
        "--job-variable",
        "x=y",
        "--param",
        "who=you",
        "--output-file",
        str(out),
        cwd=tmp_path,
    )
    assert deployed.returncode == 0, deployed.stderr
    spec = json.loads(out.read_text())
    assert (spec["entrypoint"], spec["work_pool_name"], spec["job_variables"], spec["parameters"]) == (
        "flows/hello.py:hello",
        "process",
        {"env": {"A": "1"}, "x": "y"},
        {"who": "you"},
    )
    executed = stepengine("execute", "--spec", str(out), "-q", cwd=tmp_path)
    assert (executed.returncode, executed.stdout) == (0, "hello you\n")


def test_flows_register_nothing_found(tmp_path: Path) -> None:
    (tmp_path / "x.py").write_text("def f(): pass\n")
    result = stepengine("flows", "register", "x.py", cwd=tmp_path)
    assert (result.returncode, result.stderr) == (1, "no @flow functions found\n")


def test_deploy_all_to_stdout(tmp_path: Path) -> None:
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "hello.py").write_text(FLOW)
    (tmp_path / "prefect.yaml").write_text(
        "deployments:\n  - name: a\n    entrypoint: flows/hello.py:hello\n  - name: b\n    entrypoint: flows/hello.py:hello\n"
    )
    result = stepengine("deploy", "--all", "-p", "pool", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    specs = json.loads(result.stdout)
    assert [(s["name"], s["work_pool_name"]) for s in specs] == [("a", "pool"), ("b", "pool")]


@pytest.mark.docker
def test_deploy_docker_recipe_with_a_real_engine(
    tmp_path: Path, docker_host: object, docker_registry: object, busybox_context: Path
) -> None:
    """docker recipe → build_docker_image on a private dockerd → push_docker_image to a loopback
    registry (credentials from a block) → job_variables.image is the built image."""
    registry = docker_registry
    project = tmp_path / "app"
    (project / "flows").mkdir(parents=True)
    (project / "flows" / "hello.py").write_text(FLOW)
    shutil.copy(busybox_context / "busybox", project / "busybox")
    (project / "Dockerfile").write_text(
        "FROM scratch\nCOPY busybox /bin/busybox\nCOPY flows /opt/prefect/app/flows\n"
    )
    init = stepengine(
        "init", "--field", f"image_name={registry.address}/team/app", "--field", "tag=v7", cwd=project
    )  # type: ignore[attr-defined]
    assert init.returncode == 0, init.stderr
    assert init.stderr.startswith("recipe: docker (a Dockerfile was found and no git remote")
    data = yaml.safe_load((project / "prefect.yaml").read_text())
    data["build"][0]["prefect_docker.deployments.steps.build_docker_image"]["pull"] = False
    data["push"][0]["prefect_docker.deployments.steps.push_docker_image"]["credentials"] = (
        "{{ prefect.blocks.docker-registry-credentials.local }}"
    )
    (project / "prefect.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    values = tmp_path / "values.yaml"
    values.write_text(
        yaml.safe_dump({"blocks": {"docker-registry-credentials": {"local": registry.credentials}}})
    )  # type: ignore[attr-defined]
    result = stepengine(
        "deploy", "flows/hello.py:hello", "-p", "docker-pool", "--values", str(values), cwd=project
    )
    assert result.returncode == 0, result.stderr
    spec = json.loads(result.stdout)
    assert spec["job_variables"] == {"image": f"{registry.address}/team/app:v7"}  # type: ignore[attr-defined]
    assert spec["pull_steps"] == [
        {"prefect.deployments.steps.set_working_directory": {"directory": "/opt/prefect/app"}}
    ]
    assert registry.tags("team/app") == ["v7"]  # type: ignore[attr-defined]
    assert registry.password not in result.stdout + result.stderr  # type: ignore[attr-defined]


def test_execute_needs_a_spec_when_pull_uses_build_outputs(tmp_path: Path) -> None:
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "hello.py").write_text(FLOW)
    (tmp_path / "prefect.yaml").write_text(
        "build:\n  - prefect.deployments.steps.run_shell_script:\n      id: b\n      script: pwd\n"
        'pull:\n  - prefect.deployments.steps.set_working_directory:\n      directory: "{{ b.stdout }}"\n'
        "deployments:\n  - name: x\n    entrypoint: flows/hello.py:hello\n"
    )
    result = stepengine("execute", "-n", "x", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        (
            "error: prefect.yaml:7:7: pull[0] (set_working_directory): {{ b.stdout }} refers to 'b', but no earlier "
            'step has that id (pull[0]."prefect.deployments.steps.set_working_directory".directory)'
        ),
        "hint: deploy it first (`stepengine deploy -n x`): execute -d then runs the deployed spec",
    ]
    deployed = stepengine("deploy", "-n", "x", "-q", cwd=tmp_path)
    assert deployed.returncode == 0, deployed.stderr
    executed = stepengine("execute", "-n", "x", "-q", cwd=tmp_path)
    assert (executed.returncode, executed.stdout) == (0, "hello world\n"), executed.stderr


def test_init_prompts_for_missing_fields_on_a_tty(tmp_path: Path) -> None:
    """A real pseudo-terminal: each missing field is asked for, and the answers land in the file."""
    import os
    import pty
    import select
    import time

    exe = shutil.which("stepengine")
    assert exe
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [exe, "init", "--recipe", "s3"], cwd=tmp_path, stdin=slave, stdout=slave, stderr=slave
    )
    os.close(slave)
    answers = [b"my-bucket\n", b"dev-creds\n"]
    seen = b""
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # the child closed the terminal
                    break
                if not chunk:
                    break
                seen += chunk
                if seen.endswith(b": ") and answers:
                    os.write(master, answers.pop(0))
            elif proc.poll() is not None:
                break
    finally:
        os.close(master)
        proc.wait(timeout=30)
    text = seen.decode()
    assert proc.returncode == 0, text
    assert "bucket (the S3 bucket the code is uploaded to): " in text
    assert "credentials_block (the name of an aws-credentials block): " in text
    push = yaml.safe_load((tmp_path / "prefect.yaml").read_text())["push"][0][
        "prefect_aws.deployments.steps.push_to_s3"
    ]
    assert (push["bucket"], push["credentials"]) == (
        "my-bucket",
        "{{ prefect.blocks.aws-credentials.dev-creds }}",
    )


SECRET_FLOW = """
import os


def main():
    token = os.environ["TOKEN"]
    print("token is the secret:", token == "s3cr3t-" + "value-0042", "| inside:", os.environ["OTHER"] == "value-s3cr3t-" + "value-0042-inside")
    print("printed:", token)
"""


def test_a_spec_keeps_secret_placeholders_and_execute_resolves_them(tmp_path: Path) -> None:
    """issue 14.10: a job variable set from a secret block stays a placeholder in the spec written
    for a program (never the value, never ***); execute --spec resolves it for the flow, and the
    flow's own output of it is masked."""
    import os

    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "job.py").write_text(SECRET_FLOW)
    (tmp_path / "prefect.yaml").write_text(
        "deployments:\n  - name: d\n    entrypoint: flows/job.py:main\n    work_pool:\n      name: p\n"
        '      job_variables:\n        env:\n          TOKEN: "{{ prefect.blocks.secret.api }}"\n'
        '          OTHER: "value-{{ prefect.blocks.secret.api }}-inside"\n'
        '          PLAIN: "{{ prefect.variables.stage }}"\n'
    )
    env = {**os.environ, "STEPENGINE_BLOCK_SECRET__API": "s3cr3t-value-0042", "STEPENGINE_VAR_STAGE": "prod"}
    out = tmp_path / "spec.json"
    deployed = stepengine("deploy", "-n", "d", "--output-file", str(out), cwd=tmp_path, env=env)
    assert deployed.returncode == 0, deployed.stderr
    assert json.loads(out.read_text())["job_variables"] == {
        "env": {
            "TOKEN": "{{ prefect.blocks.secret.api }}",
            "OTHER": "value-{{ prefect.blocks.secret.api }}-inside",
            "PLAIN": "prod",  # not a secret: resolved at deploy time, as Prefect does
        }
    }
    assert "***" not in out.read_text()
    executed = stepengine("execute", "--spec", str(out), "-q", cwd=tmp_path, env=env)
    assert (executed.returncode, executed.stdout) == (
        0,
        "token is the secret: True | inside: True\nprinted: ***\n",
    ), executed.stderr
    assert "s3cr3t" not in executed.stdout + executed.stderr


def test_deploy_refuses_to_write_a_secret_it_cannot_keep_as_a_placeholder(tmp_path: Path) -> None:
    """A secret environment variable cannot stay a placeholder a worker resolves: deploy stops
    (exit 2, naming the field) instead of writing the value or ***."""
    import os

    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "job.py").write_text(SECRET_FLOW)
    (tmp_path / "prefect.yaml").write_text(
        "deployments:\n  - name: d\n    entrypoint: flows/job.py:main\n    work_pool:\n      name: p\n"
        '      job_variables:\n        env:\n          TOKEN: "{{ $DEPLOY_TOKEN }}"\n'
    )
    env = {**os.environ, "DEPLOY_TOKEN": "s3cr3t-value-0042", "STEPENGINE_SECRET_ENV": "DEPLOY_TOKEN"}
    out = tmp_path / "spec.json"
    deployed = stepengine("deploy", "-n", "d", "--output-file", str(out), cwd=tmp_path, env=env)
    assert deployed.returncode == 2
    assert deployed.stderr.splitlines() == [
        "error: deployment 'd': job_variables.env.TOKEN would hold a secret value; a deployment spec is data "
        "for a worker and is never masked, so it may only hold a placeholder",
        "hint: keep the secret in a block or secret variable ({{ prefect.blocks.secret.NAME }}): the spec keeps "
        "the placeholder and the worker (or `stepengine execute`) resolves it at run time",
    ]
    assert not out.exists()


def test_deploy_takes_prefect_deploys_options(tmp_path: Path) -> None:
    """issue 15: --cron/--interval/--rrule/--timezone/--anchor-date, -d, -t, --params, -jv (KEY=VALUE
    or a JSON object), --concurrency-limit/--collision-strategy, as `prefect deploy` spells them;
    schedules are added to the file's; -q prints nothing but the spec."""
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "hello.py").write_text(FLOW)
    (tmp_path / "prefect.yaml").write_text(
        "deployments:\n  - name: x\n    entrypoint: flows/hello.py:hello\n    schedules:\n      - cron: '0 1 * * *'\n"
    )
    result = stepengine(
        "deploy",
        "-n",
        "x",
        "-p",
        "pool",
        "-d",
        "nightly hello",
        "-t",
        "a",
        "-t",
        "b",
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
        "--params",
        '{"who": "you"}',
        "-jv",
        "image=org/app:1",
        "-jv",
        '{"env": {"A": "1"}}',
        "--concurrency-limit",
        "2",
        "--collision-strategy",
        "CANCEL_NEW",
        "-q",
        cwd=tmp_path,
    )
    assert (result.returncode, result.stderr) == (0, "")
    spec = json.loads(result.stdout)
    assert (spec["description"], spec["tags"], spec["parameters"], spec["job_variables"]) == (
        "nightly hello",
        ["a", "b"],
        {"who": "you"},
        {"image": "org/app:1", "env": {"A": "1"}},
    )
    assert spec["concurrency_limit"] == {"limit": 2, "collision_strategy": "CANCEL_NEW"}
    assert [s["schedule"] for s in spec["schedules"]] == [
        {"cron": "0 1 * * *", "timezone": "Europe/Paris"},
        {"cron": "0 3 * * *", "timezone": "Europe/Paris"},
        {"interval": 3600, "timezone": "Europe/Paris", "anchor_date": "2026-01-01T00:00:00"},
        {"rrule": "FREQ=DAILY;BYHOUR=4", "timezone": "Europe/Paris"},
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--param", "uri=x"], "error:   uri: the flow has no parameter 'uri' (it has: who)"),
        (["--param", "wh=x"], "error:   wh: the flow has no parameter 'wh' (did you mean 'who'?)"),
        (["--params", '{"who": 3}'], "error:   who: 3 is not of type 'string'"),
    ],
)
def test_deploy_checks_parameters_against_the_signature(
    tmp_path: Path, args: list[str], message: str
) -> None:
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "hello.py").write_text(FLOW)
    (tmp_path / "prefect.yaml").write_text("deployments: []\n")
    result = stepengine("deploy", "flows/hello.py:hello", "-n", "x", "-p", "pool", *args, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "error: deployment 'x': parameters do not match the flow's signature (flows/hello.py:hello):",
        message,
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--cron", "bad"],
            "Error: Invalid value for --cron: 'bad' is not a cron expression (5 fields, e.g. '0 3 * * *')",
        ),
        (
            ["--timezone", "Mars/Base"],
            "Error: Invalid value for --timezone: 'Mars/Base' is not a time zone name (e.g. America/New_York)",
        ),
        (
            ["--param", "who=a", "--params", "{}"],
            "Error: give parameters with --param or with --params, not both (as prefect deploy)",
        ),
        (["-jv", "[1]"], "Error: Invalid value for --job-variable: '[1]' is not KEY=VALUE or a JSON object"),
    ],
)
def test_deploy_refuses_bad_options_before_anything_runs(
    tmp_path: Path, args: list[str], message: str
) -> None:
    (tmp_path / "prefect.yaml").write_text(
        "build:\n  - prefect.deployments.steps.run_shell_script:\n      script: touch built\n"
    )
    result = stepengine("deploy", "flows/hello.py:hello", "-n", "x", *args, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == message
    assert not (tmp_path / "built").exists()


def test_the_tutorials_deploy_then_execute_by_name(tmp_path: Path) -> None:
    """issue 15: `deploy ./ -n NAME -p POOL` with no prefect.yaml (the flow found in the directory and
    registered, as Prefect's deploy does), then `execute -d NAME` runs what was deployed."""
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "hello.py").write_text(FLOW)
    deployed = stepengine(
        "deploy", "./", "-n", "nightly", "-p", "pool", "--param", "who=you", "-q", cwd=tmp_path
    )
    assert deployed.returncode == 0, deployed.stderr
    assert json.loads(deployed.stdout)["entrypoint"] == "flows/hello.py:hello"
    assert stepengine("flows", "ls", cwd=tmp_path).stdout == "hello  flows/hello.py:hello  (who)\n"
    recorded = json.loads((tmp_path / ".prefect" / "deployments.json").read_text())
    assert list(recorded) == ["hello/nightly"]
    assert recorded["hello/nightly"]["spec"] == json.loads(deployed.stdout)
    executed = stepengine("execute", "-d", "nightly", "-q", cwd=tmp_path)
    assert (executed.returncode, executed.stdout, executed.stderr) == (0, "hello you\n", "")
    # by flow name now that deploy registered it; ./path:function is taken relative to the project
    again = stepengine("deploy", "-f", "hello", "-n", "other", "-q", "--output-file", "o.json", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    dotted = stepengine("deploy", "./flows/hello.py:hello", "-n", "third", "-q", cwd=tmp_path)
    assert json.loads(dotted.stdout)["entrypoint"] == "flows/hello.py:hello"
    assert sorted(json.loads((tmp_path / ".prefect" / "deployments.json").read_text())) == [
        "hello/nightly",
        "hello/other",
        "hello/third",
    ]
    assert stepengine("execute", "-d", "hello/other", "-q", cwd=tmp_path).stdout == "hello world\n"
    told = stepengine("deploy", "flows/hello.py:hello", "-n", "fourth", cwd=tmp_path)
    assert told.stderr == "deployment hello/fourth recorded; run it with: stepengine execute -d fourth\n"
    (tmp_path / "flows" / "bye.py").write_text(FLOW.replace("hello", "bye"))
    two = stepengine("deploy", "./", "-n", "x", cwd=tmp_path)
    assert two.returncode == 2
    assert two.stderr.splitlines() == [
        "error: ./: 2 flows found: bye (flows/bye.py:bye), hello (flows/hello.py:hello)",
        "hint: name one: stepengine deploy flows/bye.py:bye -n NAME",
    ]


def test_execute_tells_an_unknown_name_from_one_without_an_entrypoint(tmp_path: Path) -> None:
    """issue 15: distinct messages (the same 'has no entrypoint' was given for both), no hint naming
    an option execute does not have (--all), and a warning when prefect.yaml changed since deploy."""
    project = tmp_path / "proj"
    (project / "flows").mkdir(parents=True)
    (project / "flows" / "hello.py").write_text(FLOW)
    assert stepengine("init", cwd=project).returncode == 0  # one deployment 'proj', entrypoint: null
    assert stepengine("deploy", "flows/hello.py:hello", "-n", "nightly", "-q", cwd=project).returncode == 0
    unknown = stepengine("execute", "-d", "nightlly", cwd=project)
    assert unknown.returncode == 2
    assert unknown.stderr.splitlines() == [
        "error: no deployment named 'nightlly' (did you mean 'nightly'?)",
        f"hint: this project has: nightly, proj (deployed: {project / '.prefect' / 'deployments.json'}; in "
        "prefect.yaml); deploy one with `stepengine deploy path/to/file.py:function -n NAME`",
    ]
    empty = stepengine("execute", "-d", "proj", cwd=project)
    assert (empty.returncode, empty.stderr.splitlines()) == (
        2,
        [
            "error: deployment 'proj' (prefect.yaml:22:5) has no entrypoint and was never deployed",
            "hint: deploy it first: stepengine deploy path/to/file.py:function -n proj",
        ],
    )
    which = stepengine("execute", cwd=project)
    assert (which.returncode, which.stderr) == (
        2,
        "error: which deployment? give its name with -d NAME (this project has: nightly, proj)\n",
    )
    with (project / "prefect.yaml").open("a") as handle:
        handle.write("# edited\n")
    changed = stepengine("execute", "-d", "nightly", cwd=project)
    assert changed.returncode == 0, changed.stderr
    assert changed.stderr.splitlines()[0] == (
        "warning: prefect.yaml changed since deployment 'hello/nightly' was deployed; running it as "
        "deployed (run `stepengine deploy -n nightly` again to use the changes)"
    )


def test_execute_errors_point_into_the_spec_file(tmp_path: Path) -> None:
    """issue 15: a bad pull step of a spec is located in the spec file (not '<deployment spec>:1:1:')."""
    (tmp_path / "spec.json").write_text(
        '{"name": "x", "entrypoint": "f.py:main", "pull_steps": [\n'
        '  {"prefect.deployments.steps.set_working_directory": {"directory": "."}},\n'
        '  {"prefect.deployments.steps.git_clone": {"repository": "r", "brnch": "main"}}\n]}\n'
    )
    result = stepengine("execute", "--spec", "spec.json", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.splitlines()[0].startswith(
        "error: spec.json:3:63: pull[1] (git_clone): unknown argument 'brnch' (did you mean 'branch'?)"
    )


SELF_DEPLOYING = '''
import os

from prefect import flow
from prefect.deployments import Deployment


@flow(name="etl")
def etl(limit: int = 3):
    """Extract, transform, load."""
    print("etl", limit, os.environ.get("STAGE"))


if __name__ == "__main__":
    etl.from_source(source=os.path.dirname(os.path.dirname(os.path.abspath(__file__))), entrypoint="flows/etl.py:etl").deploy(
        name="nightly", work_pool_name="process", parameters={"limit": 2}, cron="0 3 * * *",
        job_variables={"env": {"STAGE": "prod"}}, print_next_steps=False,
    )
    Deployment.build_from_flow(etl, "older", work_pool_name="process", apply=True)
'''


def test_a_flow_file_that_deploys_itself(tmp_path: Path) -> None:
    """issue 15: the seed's pattern (flow + ``if __name__ == "__main__": flow.from_source(...).deploy(...)``
    in one file, also Prefect 2's ``Deployment.build_from_flow(...).apply()``) deploys without Prefect
    through `stepengine deploy FILE.py`; execute -d then runs each deployment."""
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "etl.py").write_text(SELF_DEPLOYING)
    deployed = stepengine("deploy", "flows/etl.py", cwd=tmp_path)
    assert deployed.returncode == 0, deployed.stderr
    assert (
        "warning: deploy 'nightly': print_next_steps= is not used by stepengine (ignored)" in deployed.stderr
    )
    specs = json.loads(deployed.stdout)
    assert [(s["name"], s["flow_name"], s["entrypoint"], s["parameters"]) for s in specs] == [
        ("nightly", "etl", "flows/etl.py:etl", {"limit": 2}),
        ("older", "etl", "flows/etl.py:etl", {}),
    ]
    assert specs[0]["schedules"] == [{"schedule": {"cron": "0 3 * * *"}, "active": True}]
    assert stepengine("execute", "-d", "nightly", "-q", cwd=tmp_path).stdout == "etl 2 prod\n"
    assert stepengine("execute", "-d", "etl/older", "-q", cwd=tmp_path).stdout == "etl 3 None\n"
    refused = stepengine("deploy", "flows/etl.py", "-n", "x", "-p", "pool", cwd=tmp_path)
    assert (refused.returncode, refused.stderr.splitlines()[-1]) == (
        2,
        (
            "Error: flows/etl.py deploys itself (its __main__ block calls .deploy): -n, -p cannot be given with it; "
            "change the call in the file, or deploy one flow with FILE.py:function"
        ),
    )


def test_a_deploy_file_that_raises_is_an_error_in_the_file_not_a_bug(tmp_path: Path) -> None:
    """`stepengine deploy FILE.py` whose own code raises: exit 2, the file's line and its frames
    (not "unexpected error ... this is a bug" with stepengine's and runpy's frames)."""
    (tmp_path / "d.py").write_text(
        "from prefect import flow\n\n@flow\ndef hello():\n    pass\n\n"
        "def helper():\n    return 1 / 0\n\n"
        'if __name__ == "__main__":\n    helper()\n    hello.deploy("x")\n'
    )
    done = subprocess.run(
        [sys.executable, "-m", "stepengine", "deploy", "d.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert lines[0] == "error: d.py:8: ZeroDivisionError while deploying: division by zero"
    assert (
        "this is a bug" not in done.stderr and "runpy" not in done.stderr and "stepengine/" not in done.stderr
    )
    assert f'File "{tmp_path / "d.py"}", line 11, in <module>' in done.stderr
    assert not (tmp_path / ".prefect" / "deployments.json").exists()


def test_execute_an_unknown_name_in_a_project_with_an_unnamed_deployment(tmp_path: Path) -> None:
    """A deployment without a name (allowed: it cannot be chosen by name) is left out of the names
    offered; it made the list unsortable (str and None), so the command ended as a bug (exit 3)."""
    (tmp_path / "flow.py").write_text(FLOW)
    (tmp_path / "prefect.yaml").write_text(
        "deployments:\n  - entrypoint: flow.py:hello\n  - name: named\n    entrypoint: flow.py:hello\n"
    )
    told = stepengine("execute", "-d", "nope", cwd=tmp_path)
    assert (told.returncode, told.stderr.splitlines()[0]) == (2, "error: no deployment named 'nope'")
