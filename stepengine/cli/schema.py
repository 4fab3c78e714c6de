"""``stepengine schema``: the file schema with every installed step's argument schema composed in."""

from __future__ import annotations

import click

from stepengine.cli._convention import Command, output_option, print_json, say, verbosity_options


@click.command("schema", cls=Command)
@click.option("--no-steps", is_flag=True, help="Print the plain file schema, without step argument schemas.")
@output_option("The schema is JSON: json is the only format.", default="json", choices=["json"])
@verbosity_options(verbose="Also say on stderr how many step argument schemas were composed in.")
def command(no_steps: bool, output: str, quiet: bool, verbose: bool) -> None:
    """Print the JSON Schema of prefect.yaml (use it with '# yaml-language-server: $schema=...')."""
    from stepengine.schema import composed_schema, file_schema

    schema = file_schema() if no_steps else composed_schema()
    print_json(schema)
    if verbose:
        n = len(schema["$defs"].get("stepsByName", {}))
        say(f"{n} step argument schema{'s' if n != 1 else ''} composed in", quiet)
