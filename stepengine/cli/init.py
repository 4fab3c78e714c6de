"""``stepengine init``: prepare a project directory from a recipe."""

from __future__ import annotations

import sys

import click

from stepengine.cli._convention import Command, output_option, print_json, say, verbosity_options


@click.command("init", cls=Command)
@click.option(
    "-r", "--recipe", help="Recipe name (see `stepengine recipe ls`). Default: chosen from the directory."
)
@click.option("--field", "fields", multiple=True, metavar="KEY=VALUE", help="A recipe field (repeatable).")
@click.option("--name", help="Project name (default: the directory name).")
@click.option(
    "--directory", type=click.Path(file_okay=False, exists=True), default=".", help="Project directory."
)
@output_option("json: the recipe chosen and the files created, as JSON (no prompt is shown).")
@verbosity_options(verbose="Also print the recipe's field values.")
def command(
    recipe: str | None,
    fields: tuple[str, ...],
    name: str | None,
    directory: str,
    output: str,
    quiet: bool,
    verbose: bool,
) -> None:
    """Create prefect.yaml, .prefectignore and .prefect/ where they do not exist yet."""
    from stepengine.project.init import init_project, parse_fields

    def prompt(field: str, help_text: str, default: str | None) -> str:
        return str(click.prompt(f"{field} ({help_text})" if help_text else field, default=default, err=True))

    interactive = sys.stdin.isatty() and sys.stderr.isatty() and output == "text"
    result = init_project(
        directory,
        recipe=recipe,
        fields=parse_fields(fields),
        name=name,
        prompt=prompt if interactive else None,
    )
    if output == "json":
        print_json(
            {
                "recipe": result.recipe,
                "reason": result.reason,
                "fields": result.fields,
                "created": result.created,
                "existing": result.existing,
            }
        )
        return
    if result.reason:
        say(f"recipe: {result.recipe} ({result.reason}; choose another with --recipe)", quiet)
    else:
        say(f"recipe: {result.recipe}", quiet)
    if verbose:
        for key, value in sorted(result.fields.items()):
            say(f"  {key} = {value}", quiet)
    for item in result.created:
        say(f"created {item}", quiet)
    for item in result.existing:
        say(f"{item} already exists; left unchanged", quiet)
