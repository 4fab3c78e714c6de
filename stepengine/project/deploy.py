"""Deploy: run build and push, then render the deployment spec a worker needs.

One implementation for ``stepengine deploy`` and ``from_source(...).deploy(...)``:

1. choose the deployment entries (``-n``/``--all``; a name not in the file is a new deployment) and
   apply the overrides given on the command line or in Python (entrypoint, work pool, ``-v``
   job variables merged in, parameters, ...);
2. check every build, push and pull step up front, then run build and push (with the deployment's
   own overrides of those sections) in the project directory;
3. render the deployment's fields with the step outputs, and the pull steps *partially*: only
   references to build/push outputs are filled; ``{{ ctx.* }}``, blocks, variables, environment
   variables and the pull steps' own outputs stay literal, for the worker to resolve at run time.
   A spec is data for a program, never masked: a secret block or variable stays its placeholder in
   every field, and a spec that would still hold a secret value is refused (``refuse_secrets``).

The spec has the field names of Prefect's deployment API (``work_pool_name``, ``job_variables``,
``pull_steps``, ``parameter_openapi_schema``...) plus ``flow_name``.
"""

from __future__ import annotations

import contextlib
import os
import typing as t
from pathlib import Path

from stepengine.config import Config, Step
from stepengine.errors import ConfigError, TemplateError
from stepengine.project.layout import Project

if t.TYPE_CHECKING:
    from stepengine.events import EventHandler
    from stepengine.masking import Masker
    from stepengine.resolvers import Resolver
    from stepengine.templating import Lookup, Placeholder, TemplateContext

__all__ = [
    "DeployRequest",
    "deploy_project",
    "record_project",
    "refuse_secrets",
    "render_spec",
    "step_to_yaml",
]

#: the pull a deployment gets when its file has no pull section at all
DEFAULT_PULL = "prefect.deployments.steps.set_working_directory"


class DeployRequest(t.NamedTuple):
    """What the caller (CLI flags or Python arguments) overrides in a deployment entry."""

    name: str | None = None
    entrypoint: str | None = None
    flow_name: str | None = None
    work_pool_name: str | None = None
    work_queue_name: str | None = None
    job_variables: t.Mapping[str, t.Any] | None = None
    parameters: t.Mapping[str, t.Any] | None = None
    version: str | None = None
    tags: t.Sequence[str] | None = None
    description: str | None = None
    #: added to the entry's schedules (as ``prefect deploy --cron/--interval/--rrule`` does)
    schedules: t.Sequence[t.Mapping[str, t.Any]] | None = None
    enforce_parameter_schema: bool | None = None
    paused: bool | None = None
    #: set on every schedule (``--timezone``), on every interval schedule (``--anchor-date``)
    timezone: str | None = None
    anchor_date: str | None = None
    #: ``--concurrency-limit`` (an int, or ``{"limit": N, "collision_strategy": ...}``)
    concurrency_limit: int | t.Mapping[str, t.Any] | None = None


@contextlib.contextmanager
def _working_directory(path: Path) -> t.Iterator[None]:
    previous = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


def _chosen(
    project: Project, request: DeployRequest, deploy_all: bool
) -> list[tuple[int | None, dict[str, t.Any]]]:
    """``(index in the file or None, entry data)`` for each deployment to deploy."""
    deployments = project.config.deployments
    if deploy_all:
        if request.name or request.entrypoint or request.flow_name:
            raise ConfigError(
                "--all deploys every deployment of the file: it cannot be combined with a name or entrypoint"
            )
        if not deployments:
            raise ConfigError(f"{project.config.file}: --all: the file defines no deployments")
        return [(i, dict(d.data)) for i, d in enumerate(deployments)]
    if request.name is not None:
        for i, d in enumerate(deployments):
            if d.name == request.name:
                return [(i, dict(d.data))]
        return [(None, {"name": request.name})]
    if len(deployments) == 1:
        return [(0, dict(deployments[0].data))]
    names = ", ".join(d.name for d in deployments if d.name is not None)
    raise ConfigError(
        "which deployment? give its name with -n NAME" + (f" (this project has: {names})" if names else ""),
        hint="or deploy them all with --all" if names else None,
    )


def _apply(entry: dict[str, t.Any], request: DeployRequest, project_dir: Path) -> dict[str, t.Any]:
    entry = dict(entry)
    if request.entrypoint is not None:
        from stepengine.project.flows import resolve_entrypoint

        entry["entrypoint"] = resolve_entrypoint(request.entrypoint, root=project_dir)
    for key in ("version", "description", "paused", "enforce_parameter_schema", "concurrency_limit"):
        value = getattr(request, key)
        if value is not None:
            entry[key] = dict(value) if isinstance(value, t.Mapping) else value
    if request.tags is not None:
        entry["tags"] = list(request.tags)
    if request.schedules:
        existing = entry.get("schedules")
        if existing is None and entry.get("schedule"):
            existing = [entry["schedule"]]
        entry["schedules"] = [*(dict(s) for s in existing or ()), *(dict(s) for s in request.schedules)]
        entry.pop("schedule", None)
    if request.timezone is not None or request.anchor_date is not None:
        schedules = []
        for item in entry.get("schedules") or ([entry["schedule"]] if entry.get("schedule") else []):
            item = dict(item)
            if request.timezone is not None:
                item["timezone"] = request.timezone
            if request.anchor_date is not None and item.get("interval") is not None:
                item["anchor_date"] = request.anchor_date
            schedules.append(item)
        entry["schedules"] = schedules
        entry.pop("schedule", None)
    if request.flow_name is not None and request.entrypoint is None:
        from stepengine.project.flows import registered_entrypoint

        entry["entrypoint"] = registered_entrypoint(request.flow_name, root=project_dir)
    pool = dict(entry.get("work_pool") or {})
    if request.work_pool_name is not None:
        pool["name"] = request.work_pool_name
    if request.work_queue_name is not None:
        pool["work_queue_name"] = request.work_queue_name
    if request.job_variables:
        pool["job_variables"] = {**(pool.get("job_variables") or {}), **request.job_variables}
    entry["work_pool"] = pool
    if request.parameters:
        entry["parameters"] = {**(entry.get("parameters") or {}), **request.parameters}
    return entry


def step_to_yaml(step: Step) -> dict[str, t.Any]:
    """A ``Step`` back in its file form: ``{function: {id, requires, **arguments}}``."""
    body: dict[str, t.Any] = {}
    if step.id is not None:
        body["id"] = step.id
    if step.requires:
        body["requires"] = step.requires[0] if len(step.requires) == 1 else list(step.requires)
    body.update(step.controls)
    body.update(step.arguments)
    return {step.function: body}


def _sections(config: Config, name: str | None, index: int | None) -> dict[str, tuple[Step, ...] | None]:
    """build/push/pull for a deployment (its overrides win); ``None`` when a section is absent."""
    entry = config.deployments[index] if index is not None else None
    return {section: config.section_steps(section, entry) for section in ("build", "push", "pull")}


def _holds_secret(value: t.Any, masker: Masker) -> bool:
    """Whether masking would change ``value``: it is, or contains, a secret (in any encoded form)."""
    from stepengine.masking import current_masker

    return any(m.mask_data(value) != value for m in {id(m): m for m in (masker, current_masker())}.values())


def _field_lookup(templates: TemplateContext, resolver: Resolver | None, strict: bool) -> Lookup:
    """Deployment fields: outputs and environment resolved now; ``ctx`` kept; blocks and variables
    resolved when a resolver is configured, kept for the worker otherwise, and always kept when
    their value is secret: a spec is data for a program (a worker, ``execute``, a Prefect server),
    so it holds the placeholder, which the worker resolves at run time, never the value and never
    ``***``. Not ``strict`` (build and push did not run), unknown outputs are kept too."""
    from stepengine.templating import KEEP, resolve

    def lookup(placeholder: Placeholder) -> t.Any:
        if placeholder.kind == "ctx":
            return KEEP
        if not strict and placeholder.kind in ("output", "expression"):
            parts = placeholder.parts if placeholder.kind == "output" else []
            if not parts or parts[0] not in templates.namespace:
                return KEEP
        if placeholder.kind in ("block", "variable"):
            if resolver is None:
                return KEEP
            value = resolve(placeholder, templates)
            return KEEP if _holds_secret(value, templates.masker) else value
        return resolve(placeholder, templates)

    return lookup


def _secret_paths(value: t.Any, masker: Masker, path: str = "") -> t.Iterator[str]:
    """Where in ``value`` a secret sits (``job_variables.env.TOKEN``, ``pull_steps[0]...``)."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _secret_paths(item, masker, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _secret_paths(item, masker, f"{path}[{i}]")
    elif _holds_secret(value, masker):
        yield path


def refuse_secrets(spec: t.Mapping[str, t.Any], masker: Masker | None = None) -> None:
    """A spec is written for programs, never masked: refuse one that would carry a secret value
    (a secret environment variable or step output in a field), naming every place it sits."""
    from stepengine.masking import current_masker

    places = list(_secret_paths(dict(spec), masker or current_masker()))
    if places:
        raise ConfigError(
            f"deployment {spec.get('name')!r}: {', '.join(places)} would hold a secret value; a deployment "
            "spec is data for a worker and is never masked, so it may only hold a placeholder",
            hint="keep the secret in a block or secret variable ({{ prefect.blocks.secret.NAME }}): "
            "the spec keeps the placeholder and the worker (or `stepengine execute`) resolves it at run time",
        )


def _pull_lookup(templates: TemplateContext, known: set[str], pull_ids: set[str]) -> Lookup:
    """Pull steps: only build/push outputs are filled in; everything else is the worker's."""
    from stepengine.templating import KEEP

    def lookup(placeholder: Placeholder) -> t.Any:
        if placeholder.kind != "output":
            return KEEP
        parts = placeholder.parts
        head = parts[0] if parts else placeholder.name
        if head in pull_ids or head not in known:
            return KEEP
        return templates.lookup(placeholder)

    return lookup


def _schedules(entry: t.Mapping[str, t.Any]) -> list[dict[str, t.Any]]:
    """``schedule`` (older, one) or ``schedules`` → the API's list of ``{schedule, active, ...}``."""
    raw = entry.get("schedules")
    if raw is None and entry.get("schedule"):
        raw = [entry["schedule"]]
    result = []
    for item in raw or []:
        item = dict(item)
        outer = {
            k: item.pop(k)
            for k in ("active", "max_active_runs", "catchup", "parameters", "slug")
            if k in item
        }
        if isinstance(outer.get("active"), str):
            outer["active"] = outer["active"].strip().lower() in ("true", "1", "yes", "on")
        outer.setdefault("active", True)
        item = {k: v for k, v in item.items() if v is not None}
        result.append({"schedule": item, **outer})
    return result


def deploy_project(
    project: Project,
    request: DeployRequest | None = None,
    *,
    deploy_all: bool = False,
    run_build_push: bool = True,
    values: t.Mapping[str, t.Any] | None = None,
    resolver: Resolver | None = None,
    on_event: EventHandler | None = None,
    steps: t.Mapping[str, t.Callable[..., t.Any]] | None = None,
    flow_source: t.Callable[[str], t.Any] | None = None,
    record: bool = False,
) -> list[dict[str, t.Any]]:
    """Deploy the chosen deployments of ``project``; returns one resolved spec per deployment.

    :param record: leave the specs in the project for ``execute -d NAME`` (``record_project``).

    :param run_build_push: ``False`` skips build and push (``execute`` renders the pull steps only).
    :param flow_source: called with the entrypoint when its file is not in the project directory
        (``from_source`` fetches remote code with it); returns a ``FlowInfo``.
    """
    request = request or DeployRequest()
    if project.config.problems:
        # the files have schema problems: report them with every step problem, deploying nothing
        from stepengine.checks import check_config
        from stepengine.registry import Registry

        check_config(project.config, Registry(steps), values=values or ())
    specs = [
        render_spec(
            project,
            index,
            _apply(entry, request, project.directory),
            run_build_push=run_build_push,
            values=values,
            resolver=resolver,
            on_event=on_event,
            steps=steps,
            flow_source=flow_source,
        )
        for index, entry in _chosen(project, request, deploy_all)
    ]
    if record:
        record_project(project, specs)
    return specs


def record_project(project: Project, specs: t.Sequence[t.Mapping[str, t.Any]]) -> None:
    """What ``prefect deploy`` leaves on its server, left in the project: the specs in
    ``.prefect/deployments.json`` (for ``execute -d NAME``) and their flows in ``.prefect/flows.json``
    (for ``deploy -f FLOW``), as Prefect 2.10's deploy registered the flow itself."""
    from stepengine.project.flows import flow_at, record_flows
    from stepengine.project.records import record_deployments, source_digest

    local = [s for s in specs if (project.directory / str(s["entrypoint"]).rpartition(":")[0]).is_file()]
    if local:
        record_flows(
            [flow_at(str(s["entrypoint"]), root=project.directory) for s in local], root=project.directory
        )
    files = [Path(project.config.file) if project.config.file else None, project.deployment_file]
    record_deployments(project.directory, specs, source_digest(files))


def render_spec(
    project: Project,
    index: int | None,
    entry: dict[str, t.Any],
    *,
    run_build_push: bool = True,
    values: t.Mapping[str, t.Any] | None = None,
    resolver: Resolver | None = None,
    on_event: EventHandler | None = None,
    steps: t.Mapping[str, t.Callable[..., t.Any]] | None = None,
    flow_source: t.Callable[[str], t.Any] | None = None,
) -> dict[str, t.Any]:
    """Run build/push for one deployment entry (already overridden) and render its spec."""
    from stepengine.checks import prepare
    from stepengine.project.flows import FlowInfo, flow_at
    from stepengine.registry import Registry
    from stepengine.runner import Runner
    from stepengine.templating import render

    config = project.config
    name = entry.get("name")
    if name is None:
        # `prefect init` writes `name: null`; Prefect asks for a name (or skips the deployment)
        raise ConfigError(
            f"deployments[{index}] has no name",
            file=config.file,
            hint="give it one in the file, or on the command line: `stepengine deploy ... -n NAME`",
        )
    entrypoint = entry.get("entrypoint")
    if not entrypoint:
        raise ConfigError(
            f"deployment {name!r} has no entrypoint",
            hint="give one: `stepengine deploy path/to/file.py:flow_function -n NAME` (or -f FLOW_NAME)",
        )
    sections = _sections(config, name, index)
    build_push = [*(sections["build"] or ()), *(sections["push"] or ())] if run_build_push else []
    pull = list(sections["pull"] or ())

    from stepengine.masking import current_masker
    from stepengine.stores.env import env_secrets

    current_masker().add(env_secrets())  # as a run does: the environment's secrets are known from the start
    registry = Registry(steps)
    runner = Runner(registry=registry, resolver=resolver, values=values, on_event=on_event)
    # Check everything (pull steps included) before build runs: a typo in pull fails in a second.
    prepare([*build_push, *pull], registry, known_names=set(values or ()))
    with _working_directory(project.directory):
        outputs = runner.run(build_push) if build_push else dict(values or {})

    if flow_source is not None and not (project.directory / entrypoint.rpartition(":")[0]).is_file():
        flow: FlowInfo = flow_source(entrypoint)
    else:
        flow = flow_at(entrypoint, root=project.directory)

    templates = runner.templates
    fields = {k: v for k, v in entry.items() if k not in ("build", "push", "pull")}
    rendered: dict[str, t.Any] = {}
    lookup = _field_lookup(templates, resolver, strict=run_build_push)
    for key, value in fields.items():
        try:
            rendered[key] = render(value, templates, lookup)
        except TemplateError as exc:
            file, line, col = project.locate(index, key) if index is not None else (None, None, None)
            located = exc.locate(file=file, line=line, col=col, context=f"deployment {name!r} → {key}: ")
            raise located from exc.__cause__

    if sections["pull"] is None:
        pull_steps: list[dict[str, t.Any]] = [{DEFAULT_PULL: {"directory": str(project.directory)}}]
    else:
        pull_ids = {s.id for s in pull if s.id}
        pull_lookup = _pull_lookup(templates, set(outputs), pull_ids)
        pull_steps = [render(step_to_yaml(step), templates, pull_lookup) for step in pull]

    pool = rendered.get("work_pool") or {}
    tags = rendered.get("tags") or []
    spec: dict[str, t.Any] = {
        "name": name,
        "flow_name": rendered.get("flow_name") or flow.name,
        "entrypoint": entrypoint,
        "version": flow.version if rendered.get("version") is None else str(rendered["version"]),
        "tags": [tags] if isinstance(tags, str) else list(tags),
        "description": rendered.get("description") or flow.description,
        "parameters": dict(rendered.get("parameters") or {}),
        "parameter_openapi_schema": flow.parameters,
        "enforce_parameter_schema": rendered.get("enforce_parameter_schema", True) is not False,
        "work_pool_name": pool.get("name"),
        "work_queue_name": pool.get("work_queue_name"),
        "job_variables": dict(pool.get("job_variables") or {}),
        "schedules": _schedules(rendered),
        "paused": bool(rendered.get("paused") or False),
        "concurrency_limit": rendered.get("concurrency_limit"),
        "triggers": list(rendered.get("triggers") or []),
        "pull_steps": pull_steps,
        # as Prefect: a deployment with pull steps has no path (the pull says where the code is)
        "path": None,
    }
    refuse_secrets(spec, templates.masker)
    if spec["enforce_parameter_schema"]:
        from stepengine.checks import check_parameters

        check_parameters(spec, require_all=False)
    return spec
