"""``stepengine plan``: show what a run would do — each step with its templated inputs — running nothing."""

from __future__ import annotations

import json
import sys
import types
import typing as t

import click

from stepengine.cli._convention import Command
from stepengine.cli._options import click_params
from stepengine.cli._table import PLAN

if t.TYPE_CHECKING:
    from stepengine.plan import Plan


@click.command("plan", cls=Command)
@click_params(*PLAN)
def command(**params: t.Any) -> None:
    """Check FILE (default: prefect.yaml) and print each step a run would run, with its inputs
    templated: secrets masked, values from earlier steps' outputs shown as <from id.key>. Nothing runs.
    Exits 2 on any problem."""
    from stepengine.checks import load_config
    from stepengine.cli._run import run_options
    from stepengine.errors import ValidationError
    from stepengine.plan import plan

    args = types.SimpleNamespace(**params)
    config = load_config(args.file, strict=args.strict)
    if not args.quiet:
        for warning in config.warnings:
            click.echo(warning, err=True)
    result = plan(config, run_options(args))
    output = args.output
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
        write_plan(result, sys.stdout, verbose=args.verbose)
    if result.issues:
        raise ValidationError(result.issues)


#: what a plan says of an ``if:``: true or false now, or only known when the run gets there (None)
_CONDITION_NOTES: dict[bool | None, str] = {
    True: "  (true now)",
    False: "  (false now: would be skipped)",
    None: "  (decided at run time)",
}


def write_plan(result: Plan, stream: t.TextIO, *, verbose: bool = False) -> None:
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
                line += _CONDITION_NOTES[planned.condition]
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
