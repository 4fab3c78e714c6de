"""``stepengine plan``: show what a run would do — each step with its templated inputs — running nothing."""

from __future__ import annotations

import json
import sys
import typing as t

import click

from stepengine.cli._convention import Command, output_option, verbosity_options
from stepengine.cli._options import section_options, store_options, strict_option, var_option


@click.command("plan", cls=Command)
@click.argument("file", type=click.Path(dir_okay=False), default="prefect.yaml")
@section_options
@var_option
@click.option(
    "--values",
    "values_file",
    type=click.Path(dir_okay=False),
    help="YAML/JSON file with blocks: and variables:.",
)
@store_options
@click.option(
    "--load-outputs",
    type=click.Path(dir_okay=False, exists=True),
    help="Seed template values from an outputs file written by run --save-outputs.",
)
@click.option("--from-step", metavar="ID", help="Plan a resumed run starting at this step.")
@click.option("--only", metavar="ID", help="Plan just this step.")
@click.option(
    "--allow-missing", is_flag=True, help="Prefect's lenient templating: drop unresolved placeholders."
)
@output_option("json: the plan as one JSON document.")
@verbosity_options(verbose="Also show each step's arguments as written, before templating.")
@strict_option
def command(
    file: str,
    sections: tuple[str, ...],
    deployment: str | None,
    variables: tuple[str, ...],
    values_file: str | None,
    prefect_api_url: str | None,
    stores: str | None,
    load_outputs: str | None,
    from_step: str | None,
    only: str | None,
    allow_missing: bool,
    output: str,
    quiet: bool,
    verbose: bool,
    strict: bool,
) -> None:
    """Check FILE (default: prefect.yaml) and print each step a run would run, with its inputs
    templated: secrets masked, values from earlier steps' outputs shown as <from id.key>. Nothing runs.
    Exits 2 on any problem."""
    from stepengine.checks import load_config
    from stepengine.cli._run import seed_values
    from stepengine.errors import ValidationError
    from stepengine.plan import plan
    from stepengine.stores import default_resolver

    config = load_config(file, strict=strict)
    if not quiet:
        for warning in config.warnings:
            click.echo(warning, err=True)
    result = plan(
        config,
        sections=list(sections) or None,
        deployment=deployment,
        values=seed_values(load_outputs, variables),
        resolver=default_resolver(values_file=values_file, prefect_api_url=prefect_api_url, order=stores),
        from_step=from_step,
        only=only,
        allow_missing=allow_missing,
    )
    if output == "json":
        json.dump(result.to_dict(), sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
        if result.issues:
            # the problems are in the JSON document already: say so once, not each problem again
            n = len(result.issues)
            click.echo(
                f'error: {n} problem{"s" if n != 1 else ""} found while templating (listed in "problems")',
                err=True,
            )
            raise click.exceptions.Exit(2)
    else:
        write_plan(result, sys.stdout, verbose=verbose)
    if result.issues:
        raise ValidationError(result.issues)


def write_plan(result: t.Any, stream: t.TextIO, *, verbose: bool = False) -> None:
    """The plan as text: one block per step, its control keys, then its inputs."""
    n = len(result.steps)
    stream.write(f"{n} step{'s' if n != 1 else ''} would run (nothing was run):\n")
    for planned in result.steps:
        step = planned.step
        stream.write(f"\n{step.label}" + (f"  {step.location}" if step.location else "") + "\n")
        stream.write(f"  function: {step.function}\n")
        for key, value in planned.controls.items():
            line = f"  {key}: {_value(value)}"
            if key == "if":
                line += {True: "  (true now)", False: "  (false now: would be skipped)"}.get(
                    planned.condition, "  (decided at run time)"
                )
            stream.write(line + "\n")
        if not planned.inputs:
            stream.write("  inputs: (none)\n")
            continue
        stream.write("  inputs:\n")
        for key, value in planned.inputs.items():
            stream.write(f"    {key}: {_value(value)}\n")
        if verbose:
            stream.write("  as written:\n")
            for key, value in step.arguments.items():
                stream.write(f"    {key}: {_value(value)}\n")


def _value(value: t.Any) -> str:
    if isinstance(value, str) and "\n" not in value:
        return value
    return json.dumps(value, default=str, ensure_ascii=False)
