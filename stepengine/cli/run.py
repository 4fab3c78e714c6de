"""``stepengine run``: run sections of a prefect.yaml (the options; ``_run.py`` does the work)."""

from __future__ import annotations

import typing as t

import click

from stepengine.cli._convention import Command
from stepengine.cli._options import section_options, store_options, strict_option, var_option
from stepengine.cli._run import run_command


@click.command("run", cls=Command)
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
    "--allow-missing", is_flag=True, help="Prefect's lenient templating: drop unresolved placeholders."
)
@click.option(
    "--install-requires", is_flag=True, help="Install a step's 'requires' if the step cannot be imported."
)
@click.option(
    "-o",
    "--output",
    "output",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="json: print all outputs as JSON on stdout (the steps' output goes to stderr).",
)
@click.option("-q", "--quiet", is_flag=True, help="Print only errors, warnings and the data asked for.")
@click.option(
    "-v", "--verbose", is_flag=True, help="Also print each step's inputs and timing, and debug logs."
)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    help="json: one JSON object per line on stderr for every event (schemas/events.schema.json).",
)
@click.option("--from-step", metavar="ID", help="Resume: start at this step (an id, or e.g. pull[1]).")
@click.option("--only", metavar="ID", help="Run just this step (an id, or e.g. pull[1]).")
@click.option(
    "--load-outputs",
    type=click.Path(dir_okay=False, exists=True),
    help="Seed template values from an outputs file written by --save-outputs.",
)
@click.option(
    "--save-outputs",
    type=click.Path(dir_okay=False),
    help="Write every output (secrets masked) to this JSON file when the run ends, even if it fails.",
)
@strict_option
def command(**params: t.Any) -> None:
    """Run the build, push and/or pull steps of FILE (default: prefect.yaml)."""
    run_command(**params)
