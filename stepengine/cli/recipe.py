"""``stepengine recipe ls``: the recipes ``init`` can use."""

from __future__ import annotations

import typing as t

import click

from stepengine.cli._convention import JSON_FLAG, Group, output_option, verbosity_options

if t.TYPE_CHECKING:

    class _Row(t.TypedDict):
        name: str
        description: str
        required: list[str]
        fields: list[str]
        distribution: str | None


@click.group("recipe", cls=Group)
def command() -> None:
    """Project recipes for `stepengine init`."""


@command.command("ls", old_spellings=[JSON_FLAG])
@output_option("json: the recipes as JSON.")
@verbosity_options(verbose="Also list every field a recipe uses and where it comes from.")
def ls(output: str, quiet: bool, verbose: bool) -> None:
    """List recipes: name, description, required fields."""
    import json

    from stepengine.project.recipes import all_recipes

    rows: list[_Row] = []
    for recipe in all_recipes().values():
        # always known from the directory itself; repository and branch only when git has them
        auto = {"name", "directory", "dockerfile"}
        used = recipe.used_fields
        defaults = {f: field.default for f in used if (field := recipe.field(f)) is not None}
        required = [f for f in used if defaults[f] is None and f not in auto]
        rows.append(
            {
                "name": recipe.name,
                "description": recipe.description,
                "required": required,
                "fields": used,
                "distribution": recipe.distribution,
            }
        )
    if output == "json":
        click.echo(json.dumps(rows, indent=2))
        return
    headers = ("RECIPE", "DESCRIPTION", "REQUIRED FIELDS")
    table = [(r["name"], r["description"], ", ".join(r["required"]) or "-") for r in rows]
    widths = [max(len(row[i]) for row in [headers, *table]) for i in range(2)]
    for row in [headers, *table]:
        click.echo(f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]}".rstrip())
    if verbose:
        for r in rows:
            click.echo(
                f"\n{r['name']} ({r['distribution'] or 'built in'}): fields {', '.join(r['fields']) or '-'}"
            )
