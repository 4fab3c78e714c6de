"""``stepengine deploy``: run build and push, then write the resolved deployment spec as JSON."""

from __future__ import annotations

import json
import sys
import typing as t

import click

from stepengine.cli._options import parse_vars, var_option


def parse_json_pairs(pairs: t.Sequence[str], option: str) -> dict[str, t.Any]:
    """``key=value`` pairs; a value that parses as JSON is taken as JSON (``-v env='{"A": "1"}'``)."""
    result: dict[str, t.Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint=option)
        try:
            result[key] = json.loads(value)
        except ValueError:
            result[key] = value
    return result


@click.command("deploy")
@click.argument("entrypoint", required=False)
@click.option("-f", "--flow", "flow_name", help="A flow registered with `stepengine flows register`, by name.")
@click.option("-n", "--name", help="Deployment name (a name not in the file makes a new deployment).")
@click.option("-p", "--pool", "work_pool", help="Work pool name.")
@click.option("--work-queue", help="Work queue name.")
@click.option("-v", "--job-variable", "job_variables", multiple=True, metavar="KEY=VALUE", help="Job variable, merged into the work pool's job_variables (repeatable; JSON values allowed).")
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE", help="Flow parameter (repeatable; JSON values allowed).")
@click.option("--version", "version", help="Deployment version.")
@click.option("--tag", "tags", multiple=True, help="Tag (repeatable; replaces the file's tags).")
@click.option("--all", "deploy_all", is_flag=True, help="Deploy every deployment of the file.")
@click.option("--prefect-file", "prefect_file", type=click.Path(dir_okay=False), default="prefect.yaml", show_default=True, help="The project file (deployment.yaml beside it is read too).")
@click.option("--output", "output", type=click.Path(dir_okay=False, writable=True), help="Write the spec to this file instead of stdout.")
@click.option("--values", "values_file", type=click.Path(dir_okay=False), help="YAML/JSON file with blocks: and variables: for build/push steps.")
@var_option
@click.option("--prefect-api-url", help="Also create or update the flow and deployment on this Prefect server (e.g. http://127.0.0.1:4200/api); blocks and variables are read from it too.")
@click.option("--stores", metavar="ORDER", help="Stores to read blocks and variables from, first hit wins (default: $STEPENGINE_STORES or values,env,local,prefect).")
@click.option("-q", "--quiet", "quiet", is_flag=True, help="Print only errors.")
def command(
    entrypoint: str | None,
    flow_name: str | None,
    name: str | None,
    work_pool: str | None,
    work_queue: str | None,
    job_variables: tuple[str, ...],
    params: tuple[str, ...],
    version: str | None,
    tags: tuple[str, ...],
    deploy_all: bool,
    prefect_file: str,
    output: str | None,
    values_file: str | None,
    variables: tuple[str, ...],
    prefect_api_url: str | None,
    stores: str | None,
    quiet: bool,
) -> None:
    """Deploy ENTRYPOINT (path/to/file.py:function) or a deployment of prefect.yaml.

    Runs the build and push steps, then renders the deployment (work pool, job variables, schedules,
    parameters and their schema, pull steps) with the step outputs, as JSON.
    """
    from stepengine.cli._output import EventPrinter, configure_logging
    from stepengine.project.deploy import DeployRequest, deploy_project
    from stepengine.project.layout import load_project
    from stepengine.stores import default_resolver

    if entrypoint and flow_name:
        raise click.UsageError("give an ENTRYPOINT or -f FLOW_NAME, not both")
    configure_logging(quiet=quiet)
    project = load_project(prefect_file)
    for warning in project.config.warnings:
        click.echo(warning, err=True)
    request = DeployRequest(
        name=name,
        entrypoint=entrypoint,
        flow_name=flow_name,
        work_pool_name=work_pool,
        work_queue_name=work_queue,
        job_variables=parse_json_pairs(job_variables, "-v") or None,
        parameters=parse_json_pairs(params, "--param") or None,
        version=version,
        tags=list(tags) or None,
    )
    specs = deploy_project(
        project,
        request,
        deploy_all=deploy_all,
        values=parse_vars(variables),
        resolver=default_resolver(values_file=values_file, prefect_api_url=prefect_api_url, order=stores),
        on_event=EventPrinter(quiet=quiet),
    )
    if prefect_api_url:
        from stepengine.project.prefect_api import register_deployment

        for spec in specs:
            ids = register_deployment(spec, prefect_api_url)
            spec["id"], spec["flow_id"] = ids["deployment_id"], ids["flow_id"]
            click.echo(f"registered deployment {spec['flow_name']}/{spec['name']} ({ids['deployment_id']})", err=True)
    result: t.Any = specs if deploy_all else specs[0]
    # The spec is data for a program (execute --spec, a worker): written as it is, never masked.
    # deploy_project refused any spec holding a secret value; secrets stay placeholders.
    text = json.dumps(result, indent=2, default=str) + "\n"
    if output:
        with open(output, "w", encoding="utf-8") as handle:
            handle.write(text)
        click.echo(f"wrote {output}", err=True)
    else:
        sys.stdout.write(text)
