"""``stepengine variable``: set, get, list and remove variables in the embedded store."""

from __future__ import annotations

import click

from stepengine.cli.block import open_store, parse_json, print_items
from stepengine.masking import MASK


@click.group("variable")
def command() -> None:
    """Manage variables in the local store ($STEPENGINE_HOME/store.db).

    A template reads them as {{ prefect.variables.NAME }}.
    """


@command.command("set")
@click.argument("name")
@click.argument("value", required=False)
@click.option("--json", "is_json", is_flag=True, help="VALUE is JSON (a number, list, object...), not text.")
@click.option(
    "--from-file",
    type=click.Path(dir_okay=False, allow_dash=True),
    help="Read the value from a file ('-': stdin).",
)
@click.option("--secret", is_flag=True, help="Mask this value wherever a run would show it.")
def set_(name: str, value: str | None, is_json: bool, from_file: str | None, secret: bool) -> None:
    """Create or replace the variable NAME."""
    if (value is None) == (from_file is None):
        raise click.UsageError("give either VALUE or --from-file")
    if from_file is not None:
        with click.open_file(from_file, encoding="utf-8") as handle:
            value = handle.read()
        value = value[:-1] if value.endswith("\n") else value
    assert value is not None
    data = parse_json(value, "VALUE") if is_json else value
    try:
        open_store().set_variable(name, data, secret=secret)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="NAME") from None
    click.echo(f"saved variable {name}", err=True)


@command.command("get")
@click.argument("name")
@click.option("--reveal", is_flag=True, help="Show a secret value instead of ***.")
def get(name: str, reveal: bool) -> None:
    """Print the variable NAME (text as is, anything else as JSON)."""
    import json

    from stepengine.masking import Masker, using_masker

    store = open_store()
    try:
        with using_masker(Masker()):  # shown on purpose with --reveal: not masked from the output
            value = store.get_variable(name)
    except LookupError:
        raise click.ClickException(f"no variable {name} in {store.path}") from None
    if not reveal and store.is_secret_variable(name):
        value = MASK
    click.echo(value if isinstance(value, str) else json.dumps(value, indent=2))


@command.command("ls")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def ls(as_json: bool) -> None:
    """List the variables (never their values)."""
    print_items(open_store().list_variables(), as_json)


@command.command("rm")
@click.argument("name")
def rm(name: str) -> None:
    """Remove the variable NAME."""
    store = open_store()
    if not store.delete_variable(name):
        raise click.ClickException(f"no variable {name} in {store.path}")
    click.echo(f"removed variable {name}", err=True)
