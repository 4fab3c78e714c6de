"""Every step name a Prefect file of any version may use resolves to the built-in step doing that job.

Prefect resolves a step by importing its dotted path, so a file can name a step by any path under which
the function was importable in the Prefect (or integration) version it was written for. The table below
was read from the wheels themselves (``pip download --no-deps``): Prefect 2.10.0, 2.11.0, 2.13.0,
2.16.0/2.16.9, 2.17.0, 2.20.0, 3.0.0, 3.9.1; prefect-aws 0.3.0–0.3.2 (``projects.steps``), 0.3.4–0.4.20
(``deployments.steps`` + ``projects`` alias + deprecated ``*_project_*`` names), 0.5–0.7; prefect-gcp
0.4.0 (``projects.steps``), 0.4.3–0.5.17 (alias + deprecated names), 0.6; prefect-azure 0.2.8–0.4
(``deployments.steps`` only); prefect-docker 0.2 (``projects.steps``), 0.3–0.4 (alias), 0.5–0.7.
"""

from __future__ import annotations

import pytest

from stepengine.registry import Registry

SHELL = "stepengine.builtin_steps.shell:run_shell_script"
PIP = "stepengine.builtin_steps.pip:pip_install_requirements"
CHDIR = "stepengine.builtin_steps.filesystem:set_working_directory"
GIT = "stepengine.builtin_steps.git:git_clone"
AGIT = "stepengine.builtin_steps.git:agit_clone"
REMOTE = "stepengine.builtin_steps.blob:pull_from_remote_storage"
BLOCK = "stepengine.builtin_steps.blocks:pull_with_block"


def _names(prefix: str, steps: dict[str, str]) -> dict[str, str]:
    return {f"{prefix}.{name}": target for name, target in steps.items()}


# prefect/deployments/steps/__init__.py (2.11+): what `prefect.deployments.steps.X` imports
_PACKAGE = {
    "set_working_directory": CHDIR,
    "git_clone": GIT,
    "git_clone_project": GIT,  # git_clone_project: 2.11-2.20
    "pull_from_remote_storage": REMOTE,
    "pull_with_block": BLOCK,  # 2.16+
    "run_shell_script": SHELL,
    "pip_install_requirements": PIP,
}
_PULL = {k: v for k, v in _PACKAGE.items() if k not in ("run_shell_script", "pip_install_requirements")}
_UTILITY = {"run_shell_script": SHELL, "pip_install_requirements": PIP}

PREFECT = {
    # 2.10: prefect/projects/steps/{__init__,pull}.py
    **_names("prefect.projects.steps", {"set_working_directory": CHDIR, "git_clone_project": GIT}),
    **_names("prefect.projects.steps.pull", {"set_working_directory": CHDIR, "git_clone_project": GIT}),
    # 2.11+: prefect.deployments.steps, its pull and utility modules; 3.x adds pull.agit_clone
    **_names("prefect.deployments.steps", _PACKAGE),
    **_names("prefect.deployments.steps.pull", {**_PULL, "agit_clone": AGIT}),
    **_names("prefect.deployments.steps.utility", _UTILITY),
    # 2.11-2.16: register_renamed_module("prefect.projects", "prefect.deployments")
    **_names("prefect.projects.steps", _PACKAGE),
    **_names("prefect.projects.steps.pull", _PULL),
    **_names("prefect.projects.steps.utility", _UTILITY),
}

INTEGRATIONS = {
    # prefect-aws: projects.steps.push_project_to_s3/pull_project_from_s3 (0.3.0-0.3.2); then
    # deployments.steps.push_to_s3/pull_from_s3, the old names kept (deprecated) until 0.5, and
    # register_renamed_module("prefect_aws.projects", "prefect_aws.deployments") until 0.5
    **{
        f"prefect_aws.{module}.steps.{name}": f"stepengine.builtin_steps.blob:{target}"
        for module in ("projects", "deployments")
        for name, target in {
            "push_to_s3": "push_to_s3",
            "pull_from_s3": "pull_from_s3",
            "push_project_to_s3": "push_to_s3",
            "pull_project_from_s3": "pull_from_s3",
        }.items()
    },
    # prefect-gcp: the same story (projects.steps in 0.4.0-0.4.2, alias and old names until 0.6)
    **{
        f"prefect_gcp.{module}.steps.{name}": f"stepengine.builtin_steps.blob:{target}"
        for module in ("projects", "deployments")
        for name, target in {
            "push_to_gcs": "push_to_gcs",
            "pull_from_gcs": "pull_from_gcs",
            "push_project_to_gcs": "push_to_gcs",
            "pull_project_from_gcs": "pull_from_gcs",
        }.items()
    },
    # prefect-azure: steps since 0.2.8, always under deployments
    "prefect_azure.deployments.steps.push_to_azure_blob_storage": "stepengine.builtin_steps.blob:push_to_azure_blob_storage",
    "prefect_azure.deployments.steps.pull_from_azure_blob_storage": "stepengine.builtin_steps.blob:pull_from_azure_blob_storage",
    # prefect-docker: projects.steps.build_docker_image (0.2); deployments.steps + alias (0.3-0.4); then deployments
    **{
        f"prefect_docker.{module}.steps.{name}": f"stepengine.builtin_steps.docker:{name}"
        for module in ("projects", "deployments")
        for name in ("build_docker_image", "push_docker_image")
    },
}


@pytest.fixture(scope="module")
def registry() -> Registry:
    return Registry()  # one scan of the installed distributions for the whole table


@pytest.mark.parametrize("name", sorted({**PREFECT, **INTEGRATIONS}))
def test_every_prefect_step_name_resolves(registry: Registry, name: str) -> None:
    step = registry.resolve(name)
    assert step.target == {**PREFECT, **INTEGRATIONS}[name]
    assert step.distribution == "stepengine"


def test_no_prefect_name_is_registered_that_no_version_had(registry: Registry) -> None:
    """The list is exact both ways: a name no Prefect version could import is not invented."""
    registered = {name for name in registry.names() if name.startswith("prefect")}
    assert registered == set(PREFECT) | set(INTEGRATIONS)
