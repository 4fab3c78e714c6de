"""Acceptance agrees with Prefect's own loading code (issue 13).

Each case (and every fixture file) goes through the peer venv's Prefect as ``prefect deploy`` reads a
file before it talks to a server: ``PrefectYamlModel`` (3.4.19 and later) or the client's
``DeploymentCreate`` (2.16.1-3.4.18), the legacy ``schedule:`` handling and the building of each
schedule, and the step structure Prefect's step runner requires. stepengine refuses a case for that
Prefect version exactly when its schema gives an error or ``prefect_versions.refused_by`` names the
version. Skips with a reason when the peer venv is missing (CI has it). Point
``STEPENGINE_PREFECT_VENV`` at another release's venv to compare with it.
"""

from __future__ import annotations

import json
import os
import subprocess
import typing as t

import pytest

from stepengine.loader import parse_document
from stepengine.prefect_versions import refused_by
from stepengine.schema import check_document
from tests.compat.test_fixtures import FIXTURES, HERE
from tests.fixtures.prefect_server import prefect_venv

_D = "deployments:\n  - name: d\n"
CASES: dict[str, str] = {
    "name null, schedule {}": "deployments:\n  - name: null\n    schedule: {}\n",
    "schedule null": _D + "    schedule: null\n",
    "schedules null": _D + "    schedules: null\n",
    "legacy schedule keys": _D + "    schedule: {cron: '0 0 * * *', max_active_runs: 3, catchup: true}\n",
    "legacy keys in schedules": _D + "    schedules: [{cron: '0 0 * * *', max_active_runs: 3}]\n",
    "unknown schedule key": _D + "    schedules: [{cron: '0 0 * * *', foo: 1}]\n",
    "is_schedule_active in a schedule": _D
    + "    schedules: [{cron: '0 0 * * *', is_schedule_active: true}]\n",
    "schedules item {}": _D + "    schedules: [{}]\n",
    "schedule without kind": _D + "    schedule: {timezone: UTC}\n",
    "schedules item without kind": _D + "    schedules: [{anchor_date: '2024-01-01'}]\n",
    "cron and interval": _D + "    schedules: [{cron: '0 0 * * *', interval: 60}]\n",
    "schedule and schedules": _D + "    schedule: {cron: '0 0 * * *'}\n    schedules: []\n",
    "nested schedule form": _D + "    schedules: [{schedule: {cron: '0 0 * * *'}, active: true}]\n",
    "interval ISO": _D + "    schedules: [{interval: PT1H}]\n",
    "interval float": _D + "    schedules: [{interval: 60.5}]\n",
    "interval digits text": _D + "    schedules: [{interval: '3600'}]\n",
    "every schedule option": _D
    + "    schedules: [{cron: '0 0 * * *', timezone: UTC, day_or: false, active: false, "
    "parameters: {x: 1}, slug: s, replaces: t}]\n",
    "day_or plain": _D + "    schedules: [{cron: '0 0 * * *', timezone: UTC, day_or: false}]\n",
    "day_or with slug": _D + "    schedules: [{cron: '0 0 * * *', day_or: false, slug: s}]\n",
    "rrule": _D + "    schedules: [{rrule: FREQ=DAILY}]\n",
    "parameters null": _D + "    parameters: null\n",
    "parameters list": _D + "    parameters: [1]\n",
    "version int": _D + "    version: 2\n",
    "version null": _D + "    version: null\n",
    "description int": _D + "    description: 5\n",
    "entrypoint int": _D + "    entrypoint: 5\n",
    "tags text": _D + "    tags: prod\n",
    "tags numbers": _D + "    tags: [1, 2]\n",
    "tags null": _D + "    tags: null\n",
    "concurrency int": _D + "    concurrency_limit: 3\n",
    "concurrency digits text": _D + "    concurrency_limit: '3'\n",
    "concurrency object": _D
    + "    concurrency_limit: {limit: 3, collision_strategy: CANCEL_NEW, grace_period_seconds: 30}\n",
    "work_pool null": _D + "    work_pool: null\n",
    "job_variables null": _D + "    work_pool: {name: p, job_variables: null}\n",
    "triggers": _D + "    triggers: [{enabled: true, match: {prefect.resource.id: x}, expect: [y]}]\n",
    "enforce, paused, sla, version_type": _D + "    enforce_parameter_schema: false\n    paused: true\n"
    "    sla: [{name: s, duration: 10}]\n    version_type: vcs:git\n",
    "unknown deployment key": _D + "    foo: 1\n",
    "deployments null": "deployments: null\n",
    "prefect-version number": "prefect-version: 3.1\n",
    "project name number": "name: 5\n",
    "pull {} and null": "pull: {}\nbuild: null\ndeployments:\n  - name: d\n    pull: {}\n",
    "single step section": "pull: {prefect.deployments.steps.set_working_directory: {directory: /x}}\n",
    "step not a mapping": "pull: [x]\n",
    "null step": "build: [null]\n",
    "schedule a list": _D + "    schedule: [{cron: '0 0 * * *'}]\n",
}

_PEER_SCRIPT = r"""
import json, sys, uuid, yaml
import prefect
from prefect.deployments.steps.core import _get_step_fully_qualified_name_and_inputs
try:  # 3.4.19 and later: the file's model, then the schedule handling of `prefect deploy`
    from prefect.cli.deploy._models import PrefectYamlModel
    from prefect.cli.deploy._config import _handle_deprecated_schedule_fields
    from prefect.cli.deploy._schedules import _schedule_config_to_deployment_schedule
except ImportError:  # 2.16.1-3.4.18: `prefect deploy`'s helpers, then the client's deployment model
    PrefectYamlModel = None
    from rich.console import Console
    from prefect.cli.root import app
    app.console = Console(stderr=True)  # set when the command runs; the schedule helper prints through it
    from prefect.cli.deploy import _handle_deprecated_schedule_fields, _schedule_config_to_deployment_schedule
    from prefect.cli.deploy import _merge_with_default_deploy_config
    from prefect.client.schemas.actions import DeploymentCreate


def steps_of(section):
    # what run_steps iterates (3.7.7 and later wrap a one-step mapping into a list first)
    return [section] if PrefectYamlModel and isinstance(section, dict) and section else (section or [])


def check_steps(sections):
    for section in sections:
        for step in steps_of(section):
            if step:
                _get_step_fully_qualified_name_and_inputs(step)
                if len(step.keys()) > 1:  # the check run_step makes before it runs a step
                    raise ValueError("Step has unexpected additional keys")


out = {"version": prefect.__version__, "results": {}}
for name, text in json.load(sys.stdin).items():
    try:
        raw = yaml.safe_load(text) or {}
        if PrefectYamlModel is not None:
            model = PrefectYamlModel.model_validate(raw)
            configs = [d.model_dump(exclude_unset=True, mode="json") for d in model.deployments]
            sections = [model.build, model.push, model.pull]
        else:
            configs = [_merge_with_default_deploy_config(d) for d in raw.get("deployments", []) or []]
            sections = [raw.get("build"), raw.get("push"), raw.get("pull")]
        for config in configs:
            sections += [config.get("build"), config.get("push"), config.get("pull")]
            config = _handle_deprecated_schedule_fields(config)
            for schedule in config.get("schedules") or []:
                _schedule_config_to_deployment_schedule(schedule)
            if PrefectYamlModel is None:
                # `prefect deploy` splits the entrypoint (path:function) before anything else
                if config.get("entrypoint") is not None:
                    config["entrypoint"].split(":")
                DeploymentCreate(flow_id=uuid.uuid4(), name=config.get("name") or "unnamed",
                                 version=config.get("version"), description=config.get("description"),
                                 tags=list(config.get("tags") or []), parameters=dict(config.get("parameters") or {}))
        check_steps(sections)
        out["results"][name] = "accepts"
    except Exception as exc:
        out["results"][name] = "refuses: " + " ".join(str(exc).split())[:300]
print(json.dumps(out))
"""


def _all_cases() -> dict[str, str]:
    cases = dict(CASES)
    cases.update({fixture: (HERE / fixture).read_text() for fixture in FIXTURES})
    return cases


@pytest.fixture(scope="module")
def prefect_verdicts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, t.Any]:
    python = prefect_venv() / "bin" / "python"
    if not python.exists():
        pytest.skip(
            f"Prefect's venv is missing at {python.parent.parent} (CI has it: .ci/install.d/60-prefect-venv.sh)"
        )
    home = tmp_path_factory.mktemp("prefect-home")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "STEPENGINE_"))}
    env.update(
        PREFECT_HOME=str(home),
        PREFECT_API_URL="http://127.0.0.1:9/api",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
    )
    peer = subprocess.run(
        [str(python), "-c", _PEER_SCRIPT],
        input=json.dumps(_all_cases()),
        capture_output=True,
        text=True,
        env=env,
        cwd=home,
        timeout=300,
    )
    assert peer.returncode == 0, peer.stderr
    return t.cast(dict[str, t.Any], json.loads(peer.stdout.strip().splitlines()[-1]))


def _our_verdict(text: str, version: str) -> str:
    document = parse_document(text, "prefect.yaml")
    errors = [i for i in check_document(document) if i.severity == "error"]
    refusals = errors + refused_by(document, version)
    return "refuses: " + refusals[0].message if refusals else "accepts"


@pytest.mark.parametrize("case", sorted(_all_cases()))
def test_stepengine_refuses_exactly_what_this_prefect_refuses(
    case: str, prefect_verdicts: dict[str, t.Any]
) -> None:
    theirs = prefect_verdicts["results"][case]
    ours = _our_verdict(_all_cases()[case], prefect_verdicts["version"])
    assert ours.split(":")[0] == theirs.split(":")[0], (
        f"Prefect {prefect_verdicts['version']} {theirs}; stepengine {ours}"
    )
