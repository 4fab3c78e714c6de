"""``stepengine execute``: run a deployment locally, as a process worker would."""

from __future__ import annotations

import contextlib
import os
import sys
import typing as t

import click

from stepengine.cli import _table
from stepengine.cli._convention import Command, output_option, print_json, say, verbosity_options
from stepengine.cli._options import click_params, store_options
from stepengine.cli.deploy import parse_json_pairs


@click.command("execute", cls=Command)
@click.argument("file", type=click.Path(dir_okay=False), default="prefect.yaml")
@click.option(
    "-d",
    "--deployment",
    "-n",
    "--name",
    "deployment",
    help=(
        "Deployment name, or FLOW/NAME: one `deploy` recorded in .prefect/deployments.json, else one of "
        "FILE (default: the only one)."
    ),
)
@click.option(
    "--spec",
    "spec_file",
    type=click.Path(dir_okay=False, exists=True),
    help="Run a spec written by `stepengine deploy --output-file` instead of FILE.",
)
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="KEY=VALUE",
    help="Flow parameter (repeatable; JSON values allowed).",
)
@click.option(
    "--python",
    "python",
    help="Interpreter to run the flow in (default: job_variables python/venv/conda_prefix, else this one).",
)
@click_params(_table.VALUES.but(help="YAML/JSON file with blocks: and variables: for the pull steps."))
@store_options
@click.option("--keep", is_flag=True, help="Keep the temporary working directory.")
@output_option(
    'json: {"deployment", "entrypoint", "exit_code"} on stdout when the flow ends (its own output then '
    "goes to stderr)."
)
@verbosity_options(
    quiet="Print only errors and the flow's own output: no progress of the pull steps.",
    verbose="Also print each pull step's inputs and timing, and debug logs.",
)
def command(
    file: str,
    deployment: str | None,
    spec_file: str | None,
    params: tuple[str, ...],
    python: str | None,
    values_file: str | None,
    prefect_api_url: str | None,
    stores: str | None,
    keep: bool,
    output: str,
    quiet: bool,
    verbose: bool,
) -> None:
    """Run a deployment's pull steps in a fresh directory, then its flow; exit with the flow's code."""
    import stepengine
    from stepengine.cli._output import EventPrinter, configure_logging
    from stepengine.project.execute import execute_spec, load_spec_with_source
    from stepengine.stores import default_resolver

    configure_logging(quiet=quiet, verbose=verbose)
    try:
        if spec_file:
            spec, source = load_spec_with_source(spec_file)
        else:
            from stepengine.project.records import find_deployment

            spec, warning, source = find_deployment(file, deployment)
            if warning:
                say(f"warning: {warning}", quiet)
        with _stdout_to_stderr() if output == "json" else contextlib.nullcontext():
            code = execute_spec(
                spec,
                parameters=parse_json_pairs(params, "--param"),
                python=python,
                resolver=default_resolver(
                    values_file=values_file, prefect_api_url=prefect_api_url, order=stores
                ),
                on_event=EventPrinter(quiet=quiet, verbose=verbose),
                keep_directory=keep,
                source=source,
            )
    except stepengine.ValidationError as exc:
        if not spec_file and any("no earlier step has that id" in issue.message for issue in exc.issues):
            # pull steps that use build/push outputs need the spec deploy rendered (and recorded)
            name = deployment or spec_name_hint(file)
            hint = f"deploy it first (`stepengine deploy -n {name}`): execute -d then runs the deployed spec"
            raise exc.with_hint(hint) from exc.__cause__
        raise
    if output == "json":
        shown = f"{spec['flow_name']}/{spec['name']}" if spec.get("flow_name") else spec.get("name")
        print_json({"deployment": shown, "entrypoint": spec.get("entrypoint"), "exit_code": code})
    if code:
        click.echo(f"flow {spec.get('flow_name') or spec['entrypoint']} failed (exit code {code})", err=True)
    raise click.exceptions.Exit(code)


@contextlib.contextmanager
def _stdout_to_stderr() -> t.Iterator[None]:
    """While the pull and the flow run, whatever they print goes to stderr, leaving stdout to the JSON
    document alone: file descriptor 1 is stderr's (the flow inherits the descriptors), and so is
    ``sys.stdout`` (the flow's output relayed through the masker is written there)."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def spec_name_hint(file: str) -> str:
    """The deployment's name for a hint: the file's only deployment, else NAME."""
    try:
        from stepengine.project.layout import load_project

        names = [d.name for d in load_project(file).config.deployments]
    except Exception:  # only a hint: never let it hide the error being reported
        return "NAME"
    return names[0] if len(names) == 1 and names[0] is not None else "NAME"
