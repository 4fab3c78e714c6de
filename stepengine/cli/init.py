"""``stepengine init``: prepare a project directory from a recipe."""

from __future__ import annotations

import sys

import click


@click.command("init")
@click.option(
    "-r", "--recipe", help="Recipe name (see `stepengine recipe ls`). Default: chosen from the directory."
)
@click.option("--field", "fields", multiple=True, metavar="KEY=VALUE", help="A recipe field (repeatable).")
@click.option("--name", help="Project name (default: the directory name).")
@click.option(
    "--directory", type=click.Path(file_okay=False, exists=True), default=".", help="Project directory."
)
def command(recipe: str | None, fields: tuple[str, ...], name: str | None, directory: str) -> None:
    """Create prefect.yaml, .prefectignore and .prefect/ where they do not exist yet."""
    from stepengine.project.init import init_project, parse_fields

    def prompt(field: str, help_text: str, default: str | None) -> str:
        return str(click.prompt(f"{field} ({help_text})" if help_text else field, default=default, err=True))

    interactive = sys.stdin.isatty() and sys.stderr.isatty()
    result = init_project(
        directory,
        recipe=recipe,
        fields=parse_fields(fields),
        name=name,
        prompt=prompt if interactive else None,
    )
    if result.reason:
        click.echo(f"recipe: {result.recipe} ({result.reason}; choose another with --recipe)", err=True)
    else:
        click.echo(f"recipe: {result.recipe}", err=True)
    for item in result.created:
        click.echo(f"created {item}", err=True)
    for item in result.existing:
        click.echo(f"{item} already exists; left unchanged", err=True)
