"""The compatibility suite (issue 13): Prefect's own ``prefect init`` output for every recipe of
several Prefect versions, and the prefect.yaml examples of Prefect's documentation (see README.md here).

Each fixture validates (warnings only where listed below), plans, and, where its pull section can run
offline, runs it with the same outputs as Prefect's ``run_steps`` (from the peer venv, see
``testkit/prefect_server.py``; those cases skip with a reason when it is missing).
"""

from __future__ import annotations

import json
import os
import subprocess
import typing as t
from pathlib import Path

import pytest
import yaml

import stepengine
from tests.fixtures.prefect_server import prefect_venv

HERE = Path(__file__).parent
FIXTURES = sorted(p.relative_to(HERE).as_posix() for p in HERE.glob("*/**/*.yaml"))

#: the warnings a fixture is expected to give (a substring of each), by fixture; every other is silent
EXPECTED_WARNINGS: dict[str, list[str]] = {
    # the docs' schedule-replacing example needs Prefect 3.6.17 or later
    "docs/schedules.yaml": ["schedules[0]: 'replaces': Prefect 3.4.21–3.6.16 refuse it"],
}

#: Prefect's own recipes that Prefect cannot run either: the errors stepengine reports up front (a
#: substring of each, by file name pattern), and why Prefect fails too.
EXPECTED_ERRORS: list[tuple[str, list[str], str]] = [
    # prefect-azure's push/pull steps require `credentials` (a positional parameter without a
    # default); the recipe passes none, so Prefect's push fails with a TypeError during `prefect deploy`.
    (
        "*/azure.yaml",
        [
            "push[0] (push_code: push_to_azure_blob_storage): missing required argument 'credentials'",
            "pull[0] (pull_code: pull_from_azure_blob_storage): missing required argument 'credentials'",
        ],
        "credentials",
    ),
    (
        "*/docker-azure.yaml",
        [
            "push[1] (push_code: push_to_azure_blob_storage): missing required argument 'credentials'",
            "pull[0] (pull_code: pull_from_azure_blob_storage): missing required argument 'credentials'",
        ],
        "credentials",
    ),
    # The gcs recipes' pull step reads `{{ pull_code.folder }}`, its own id: Prefect leaves it
    # unrendered at deploy time, and the worker's run drops the argument, so pull_from_gcs fails with
    # a TypeError (missing `folder`).
    (
        "*/gcs.yaml",
        ["pull[0] (pull_code: pull_from_gcs): {{ pull_code.folder }} refers to this step's own id"],
        "self-reference",
    ),
    # Prefect 2.10's gcs recipe names a module that does not exist (`prefect_gcp.deployment.steps`):
    # Prefect fails to import the step too.
    (
        "2.10.*/gcs.yaml",
        [
            "push[0] (push_code: push_to_gcs): unknown step 'prefect_gcp.deployment.steps.push_to_gcs'",
            "pull[0] (pull_code: pull_from_gcs): unknown step 'prefect_gcp.deployment.steps.pull_from_gcs'",
            "{{ pull_code.folder }} refers to this step's own id",
        ],
        "unknown module",
    ),
    # Prefect 2.10 and 2.11 docker-git recipes indent the push step's arguments wrongly: Prefect's step
    # runner refuses the step too ("Step has unexpected additional keys").
    (
        "2.1[01].*/docker-git.yaml",
        ["push[0]: a step must have exactly one key (its function name), found 4"],
        "indentation",
    ),
]


def expected_errors(fixture: str) -> list[str] | None:
    """The errors ``fixture`` must give (the most specific pattern wins), or None when it must be valid."""
    import fnmatch

    matches = [
        errors
        for pattern, errors, _ in EXPECTED_ERRORS
        if fnmatch.fnmatch(fixture, "prefect_init/" + pattern)
    ]
    return matches[-1] if matches else None


#: steps whose pull runs offline, and so are compared with Prefect's run_steps
_OFFLINE = {"prefect.deployments.steps.set_working_directory", "prefect.deployments.steps.run_shell_script"}


class _AnyStore:
    """Blocks and variables for ``plan``: every reference resolves (the fixtures name made-up ones)."""

    def get_block(self, block_type: str, name: str) -> t.Mapping[str, t.Any]:
        return {"value": f"{block_type}-{name}-value"}

    def get_variable(self, name: str) -> t.Any:
        return f"{name}-value"


def test_there_are_fixtures_of_every_kind() -> None:
    versions = {f.split("/")[1] for f in FIXTURES if f.startswith("prefect_init/")}
    assert any(v.startswith("2.") for v in versions) and any(v.startswith("3.") for v in versions), versions
    assert any(f.startswith("docs/") for f in FIXTURES)


@pytest.mark.parametrize("fixture", FIXTURES)
def test_fixture_validates_and_plans(fixture: str) -> None:
    from stepengine.plan import plan

    errors = expected_errors(fixture)
    if errors is not None:
        with pytest.raises(stepengine.ValidationError) as info:
            stepengine.validate(stepengine.load(HERE / fixture))
        found = [i.render() for i in info.value.issues]
        assert len(found) == len(errors) and all(e in f for e, f in zip(errors, found, strict=False)), found
        return
    config = stepengine.load(HERE / fixture)
    warnings = [w.message for w in stepengine.validate(config)]
    expected = EXPECTED_WARNINGS.get(fixture, [])
    assert len(warnings) == len(expected) and all(e in w for e, w in zip(expected, warnings, strict=False)), (
        warnings
    )
    env = {"USER": "prefect-user", "my_deployment_tag": "tag"}
    for deployment in [None] + [d.name for d in config.deployments if d.name and d.sections]:
        planned = plan(config, deployment=deployment, resolver=_AnyStore(), env=env)
        assert planned.issues == [], [i.render() for i in planned.issues]
        assert [p.step.function for p in planned.steps] == [
            s.function for s in config.steps_for(None, deployment)
        ]


def _offline_pull(fixture: str) -> list[dict[str, t.Any]] | None:
    data = yaml.safe_load((HERE / fixture).read_text())
    pull = data.get("pull") if isinstance(data, dict) else None
    if isinstance(pull, dict):
        pull = [pull] if pull else []
    if not pull or not all(len(s) == 1 and next(iter(s)) in _OFFLINE for s in pull):
        return None
    if any(
        "run_shell_script" in next(iter(s)) and not str(s[next(iter(s))]["script"]).startswith("echo ")
        for s in pull
    ):
        return None
    return t.cast(list[dict[str, t.Any]], pull)


RUNNABLE = [f for f in FIXTURES if _offline_pull(f)]

# One Prefect process runs every case (importing Prefect's step runner is the slow part): each case
# starts in its own directory, as a worker's run would.
_PEER_SCRIPT = """
import asyncio, json, os, sys
from prefect.deployments.steps.core import run_steps
results = {}
for case, cwd, steps in json.load(sys.stdin):
    os.chdir(cwd)
    results[case] = asyncio.run(run_steps(steps, {}))
print(json.dumps(results))
"""


def _with_directory(pull: list[dict[str, t.Any]], directory: Path) -> list[dict[str, t.Any]]:
    """The pull steps with every set_working_directory pointed at ``directory`` (the fixtures name
    directories of the machine that generated them)."""
    out = []
    for step in pull:
        ((name, arguments),) = step.items()
        if name.endswith("set_working_directory"):
            arguments = {**arguments, "directory": str(directory)}
        out.append({name: arguments})
    return out


def test_some_fixtures_run_offline() -> None:
    assert len(RUNNABLE) >= 3, RUNNABLE


@pytest.fixture(scope="module")
def prefect_outputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, t.Any]:
    """What Prefect's ``run_steps`` returns for each runnable fixture's pull section (``results``), run
    under the directory ``base``."""
    python = prefect_venv() / "bin" / "python"
    if not python.exists():
        pytest.skip(
            f"Prefect's venv is missing at {python.parent.parent} (CI has it: .ci/install.d/60-prefect-venv.sh)"
        )
    base = tmp_path_factory.mktemp("peer")
    cases = []
    for fixture in RUNNABLE:
        cwd, workdir = _case_dirs(base, fixture)
        cases.append(
            [
                fixture,
                str(cwd),
                _with_directory(t.cast(list[dict[str, t.Any]], _offline_pull(fixture)), workdir),
            ]
        )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "STEPENGINE_"))}
    env.update(
        USER="prefect-user",
        PREFECT_HOME=str(base / "prefect-home"),
        PREFECT_API_URL="http://127.0.0.1:9/api",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
    )
    peer = subprocess.run(
        [str(python), "-c", _PEER_SCRIPT],
        input=json.dumps(cases),
        capture_output=True,
        text=True,
        env=env,
        cwd=base,
        timeout=300,
    )
    assert peer.returncode == 0, peer.stderr
    return {"base": str(base), "results": json.loads(peer.stdout.strip().splitlines()[-1])}


def _case_dirs(base: Path, fixture: str) -> tuple[Path, Path]:
    """The directory a case starts in, and the one its set_working_directory steps go to."""
    cwd = base / fixture.replace("/", "_")
    (cwd / "project").mkdir(parents=True, exist_ok=True)
    return cwd, cwd / "project"


@pytest.mark.parametrize("fixture", RUNNABLE)
def test_pull_gives_the_same_outputs_as_prefect(
    fixture: str, prefect_outputs: dict[str, t.Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cwd, workdir = _case_dirs(tmp_path, fixture)
    pull = _with_directory(t.cast(list[dict[str, t.Any]], _offline_pull(fixture)), workdir)
    (cwd / "prefect.yaml").write_text(yaml.safe_dump({"pull": pull}))
    monkeypatch.chdir(cwd)  # set_working_directory moves this process: monkeypatch moves it back
    monkeypatch.setenv("USER", "prefect-user")  # what a shell step's own environment holds, as for the peer
    ours = stepengine.run(cwd / "prefect.yaml", sections=["pull"], env={"USER": "prefect-user"})
    # the same case directory names, under the peer's base directory instead of this test's
    theirs = json.loads(
        json.dumps(prefect_outputs["results"][fixture]).replace(prefect_outputs["base"], str(tmp_path))
    )
    assert ours == theirs
