"""``stepengine deploy``: run build and push, then write the resolved deployment spec as JSON."""

from __future__ import annotations

import json
import os
import sys
import typing as t

import click

from stepengine.cli import _table
from stepengine.cli._convention import (
    JOB_VARIABLE,
    OUTPUT_FILE,
    Command,
    output_option,
    say,
    verbosity_options,
)
from stepengine.cli._options import click_params, parse_vars


def parse_json_pairs(pairs: t.Sequence[str], option: str, *, objects: bool = False) -> dict[str, t.Any]:
    """``key=value`` pairs; a value that parses as JSON is taken as JSON (``-jv env='{"A": "1"}'``).
    With ``objects``, an item may also be a whole JSON object (``-jv '{"env": {"A": "1"}}'``)."""
    result: dict[str, t.Any] = {}
    for pair in pairs:
        if objects and pair.lstrip().startswith("{"):
            try:
                parsed = json.loads(pair)
            except ValueError as exc:
                raise click.BadParameter(f"{pair!r} is not a JSON object: {exc}", param_hint=option) from None
            if not isinstance(parsed, dict):
                raise click.BadParameter(f"{pair!r} is not a JSON object", param_hint=option)
            result.update(parsed)
            continue
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(
                f"{pair!r} is not KEY=VALUE" + (" or a JSON object" if objects else ""), param_hint=option
            )
        try:
            result[key] = json.loads(value)
        except ValueError:
            result[key] = value
    return result


def _parameters(params: t.Sequence[str], params_json: str | None) -> dict[str, t.Any] | None:
    if params and params_json is not None:
        raise click.UsageError("give parameters with --param or with --params, not both (as prefect deploy)")
    if params_json is None:
        return parse_json_pairs(params, "--param") or None
    try:
        parsed = json.loads(params_json)
    except ValueError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint="--params") from None
    if not isinstance(parsed, dict):
        raise click.BadParameter("must be a JSON object of parameter names to values", param_hint="--params")
    return parsed


def _schedules(
    cron: t.Sequence[str],
    interval: t.Sequence[float],
    rrule: t.Sequence[str],
    timezone: str | None,
    anchor_date: str | None,
) -> list[dict[str, t.Any]]:
    """One schedule per --cron/--interval/--rrule, each checked now (a bad one fails before build runs)."""
    if timezone is not None:
        import zoneinfo

        try:
            zoneinfo.ZoneInfo(timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise click.BadParameter(
                f"{timezone!r} is not a time zone name (e.g. America/New_York)", param_hint="--timezone"
            ) from None
    if anchor_date is not None:
        import datetime

        try:
            datetime.datetime.fromisoformat(anchor_date)
        except ValueError:
            raise click.BadParameter(
                f"{anchor_date!r} is not an ISO 8601 date", param_hint="--anchor-date"
            ) from None
    for expression in cron:
        if len(expression.split()) not in (5, 6) and not expression.startswith("@"):
            raise click.BadParameter(
                f"{expression!r} is not a cron expression (5 fields, e.g. '0 3 * * *')", param_hint="--cron"
            )
    for seconds in interval:
        if not seconds > 0 or seconds == float("inf"):
            raise click.BadParameter(
                f"{seconds} is not a positive number of seconds", param_hint="--interval"
            )
    for rule in rrule:
        if "FREQ=" not in rule.upper():
            raise click.BadParameter(
                f"{rule!r} is not an RRule (e.g. 'FREQ=DAILY;BYHOUR=3')", param_hint="--rrule"
            )
    return [
        *({"cron": c} for c in cron),
        *({"interval": int(i) if float(i).is_integer() else i} for i in interval),
        *({"rrule": r} for r in rrule),
    ]


@click.command("deploy", cls=Command, old_spellings=[OUTPUT_FILE, JOB_VARIABLE])
@click.argument("entrypoint", required=False)
@click.option(
    "-f", "--flow", "flow_name", help="A flow registered with `stepengine flows register`, by name."
)
@click.option("-n", "--name", help="Deployment name (a name not in the file makes a new deployment).")
@click.option(
    "-d", "--description", help="Deployment description (default: the flow's docstring or description=)."
)
@click.option("-p", "--pool", "work_pool", help="Work pool name.")
@click.option("--work-queue", help="Work queue name.")
@click.option(
    "-jv",
    "--job-variable",
    "job_variables",
    multiple=True,
    metavar="KEY=VALUE",
    help=(
        "Job variable, merged into the work pool's job_variables: KEY=VALUE (a JSON value is taken as JSON) "
        "or a JSON object (repeatable)."
    ),
)
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="KEY=VALUE",
    help="Flow parameter (repeatable; JSON values allowed); checked against the flow's signature.",
)
@click.option(
    "--params",
    "params_json",
    metavar="JSON",
    help="Flow parameters as one JSON object, e.g. '{\"limit\": 10}' (instead of --param).",
)
@click.option("--cron", multiple=True, help="Add a cron schedule, e.g. '0 3 * * *' (repeatable).")
@click.option(
    "--interval", multiple=True, type=float, metavar="SECONDS", help="Add an interval schedule (repeatable)."
)
@click.option(
    "--rrule", multiple=True, help="Add an RRule schedule, e.g. 'FREQ=DAILY;BYHOUR=3' (repeatable)."
)
@click.option("--timezone", help="Time zone of every schedule, e.g. America/New_York.")
@click.option("--anchor-date", help="Anchor date of the interval schedules (ISO 8601).")
@click.option("--version", "version", help="Deployment version.")
@click.option("-t", "--tag", "tags", multiple=True, help="Tag (repeatable; replaces the file's tags).")
@click.option("--concurrency-limit", type=click.IntRange(min=1), help="Most runs of this deployment at once.")
@click.option(
    "--collision-strategy",
    type=click.Choice(["ENQUEUE", "CANCEL_NEW"]),
    help="What a run over the concurrency limit does (default ENQUEUE).",
)
@click.option(
    "--enforce-parameter-schema/--no-enforce-parameter-schema",
    default=None,
    help="Check parameters against the flow's signature (default: yes).",
)
@click.option("--all", "deploy_all", is_flag=True, help="Deploy every deployment of the file.")
@click.option(
    "--prefect-file",
    "prefect_file",
    type=click.Path(dir_okay=False),
    default="prefect.yaml",
    show_default=True,
    help="The project file (deployment.yaml beside it is read too).",
)
@output_option(
    "json: the deployment spec (a list with --all), data for `execute --spec`; text: a line per deployment.",
    default="json",
)
@click.option(
    "--output-file",
    "output_file",
    type=click.Path(dir_okay=False, writable=True),
    metavar="FILE",
    help="Write the spec (JSON) to FILE instead of stdout.",
)
@click_params(
    _table.VALUES.but(help="YAML/JSON file with blocks: and variables: for build/push steps."),
    _table.VAR,
    _table.PREFECT_API_URL.but(
        help="Also create or update the flow and deployment on this Prefect server "
        "(e.g. http://127.0.0.1:4200/api); blocks and variables are read from it too.",
        metavar=None,
    ),
    _table.STORES,
)
@verbosity_options(
    quiet="Print only errors and the spec (on stdout, unless --output-file).",
    verbose="Also print each build/push step's inputs and timing, and debug logs.",
)
def command(
    entrypoint: str | None,
    flow_name: str | None,
    name: str | None,
    description: str | None,
    work_pool: str | None,
    work_queue: str | None,
    job_variables: tuple[str, ...],
    params: tuple[str, ...],
    params_json: str | None,
    cron: tuple[str, ...],
    interval: tuple[float, ...],
    rrule: tuple[str, ...],
    timezone: str | None,
    anchor_date: str | None,
    version: str | None,
    tags: tuple[str, ...],
    concurrency_limit: int | None,
    collision_strategy: str | None,
    enforce_parameter_schema: bool | None,
    deploy_all: bool,
    prefect_file: str,
    output: str,
    output_file: str | None,
    values_file: str | None,
    variables: tuple[str, ...],
    prefect_api_url: str | None,
    stores: str | None,
    quiet: bool,
    verbose: bool,
) -> None:
    """Deploy ENTRYPOINT (path/to/file.py:function) or a deployment of prefect.yaml.

    Runs the build and push steps, then renders the deployment (work pool, job variables, schedules,
    parameters and their schema, pull steps) with the step outputs, as JSON. The options are
    `prefect deploy`'s (but -q is quiet here, not the work queue, as on every stepengine verb).
    """
    from stepengine.cli._output import EventPrinter, configure_logging
    from stepengine.project.deploy import DeployRequest, deploy_project
    from stepengine.project.layout import load_project
    from stepengine.stores import default_resolver

    if entrypoint and flow_name:
        raise click.UsageError("give an ENTRYPOINT or -f FLOW_NAME, not both")
    if collision_strategy and concurrency_limit is None:
        raise click.UsageError("--collision-strategy needs --concurrency-limit")
    configure_logging(quiet=quiet, verbose=verbose)
    limit: t.Any = concurrency_limit
    if collision_strategy:
        limit = {"limit": concurrency_limit, "collision_strategy": collision_strategy}
    request = DeployRequest(
        name=name,
        entrypoint=entrypoint,
        flow_name=flow_name,
        work_pool_name=work_pool,
        work_queue_name=work_queue,
        job_variables=parse_json_pairs(job_variables, "--job-variable", objects=True) or None,
        parameters=_parameters(params, params_json),
        version=version,
        tags=list(tags) or None,
        description=description,
        schedules=_schedules(cron, interval, rrule, timezone, anchor_date) or None,
        enforce_parameter_schema=enforce_parameter_schema,
        timezone=timezone,
        anchor_date=anchor_date,
        concurrency_limit=limit,
    )
    resolver = default_resolver(values_file=values_file, prefect_api_url=prefect_api_url, order=stores)
    if entrypoint and entrypoint.endswith(".py") and os.path.isfile(entrypoint):
        from stepengine.project.script import deploys_itself, run_script

        if deploys_itself(entrypoint):
            given = [
                option
                for option, value in (
                    ("-n", name),
                    ("-p", work_pool),
                    ("--work-queue", work_queue),
                    ("-jv", job_variables),
                    ("--param", params or params_json),
                    ("-d", description),
                    ("-t", tags),
                    ("--version", version),
                    ("--cron/--interval/--rrule", cron or interval or rrule),
                    ("--all", deploy_all),
                )
                if value
            ]
            if given:
                raise click.UsageError(
                    f"{entrypoint} deploys itself (its __main__ block calls .deploy): "
                    f"{', '.join(given)} cannot be "
                    "given with it; change the call in the file, or deploy one flow with FILE.py:function"
                )
            specs, warnings = run_script(
                entrypoint,
                resolver=resolver,
                on_event=EventPrinter(quiet=quiet, verbose=verbose),
                prefect_api_url=prefect_api_url,
            )
            for warning in warnings:
                say(f"warning: {warning}", quiet)
            if not quiet:
                _tell_how_to_run(specs, os.getcwd())
            _emit(specs[0] if len(specs) == 1 else specs, output, output_file, quiet)
            return
    if prefect_file == "prefect.yaml" and not os.path.exists(prefect_file):
        from stepengine.project.layout import empty_project

        project = empty_project()  # as prefect deploy: the command line gives the deployment
    else:
        project = load_project(prefect_file)
    for warning in project.config.warnings:
        say(warning, quiet)
    specs = deploy_project(
        project,
        request,
        deploy_all=deploy_all,
        values=parse_vars(variables),
        resolver=resolver,
        on_event=EventPrinter(quiet=quiet, verbose=verbose),
        record=True,
    )
    if prefect_api_url:
        from stepengine.project.prefect_api import register_deployment

        for spec in specs:
            ids = register_deployment(spec, prefect_api_url)
            spec["id"], spec["flow_id"] = ids["deployment_id"], ids["flow_id"]
            say(f"registered deployment {spec['flow_name']}/{spec['name']} ({ids['deployment_id']})", quiet)
    if not quiet:
        _tell_how_to_run(specs, str(project.directory))
    _emit(specs if deploy_all else specs[0], output, output_file, quiet)


def _tell_how_to_run(specs: t.Sequence[t.Mapping[str, t.Any]], directory: str) -> None:
    from stepengine.project.records import how_to_run

    for spec in specs:
        click.echo(how_to_run(spec, directory), err=True)


def _emit(
    result: dict[str, t.Any] | list[dict[str, t.Any]], output: str, output_file: str | None, quiet: bool
) -> None:
    """The spec(s) as JSON: data for a program (execute --spec, a worker), written as they are and
    never masked (deploy refused any spec holding a secret value; secrets stay placeholders).
    ``--output-file`` writes the JSON to a file (whatever ``-o`` says: the file is data)."""
    text = json.dumps(result, indent=2, default=str) + "\n"
    if output_file:
        with open(output_file, "w", encoding="utf-8") as handle:
            handle.write(text)
        say(f"wrote {output_file}", quiet)
    elif output == "json":
        sys.stdout.write(text)
    else:
        for spec in result if isinstance(result, list) else [result]:
            pool = spec.get("work_pool_name") or "-"
            schedules = len(spec.get("schedules") or [])
            name = f"{spec.get('flow_name')}/{spec.get('name')}"
            sys.stdout.write(
                f"{name}  entrypoint {spec.get('entrypoint')}  pool {pool}  "
                f"{schedules} schedule{'s' if schedules != 1 else ''}\n"
            )
