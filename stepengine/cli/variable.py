"""``stepengine variable``: set, get, list and remove variables in the embedded store."""

from __future__ import annotations

import click

from stepengine.cli._convention import JSON_FLAG, Group, output_option, print_json, say, verbosity_options
from stepengine.cli.block import open_store, parse_json, print_items
from stepengine.masking import MASK


@click.group("variable", cls=Group)
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
@verbosity_options(quiet="Print only errors.", verbose="Also say where the variable was saved.")
def set_(
    name: str,
    value: str | None,
    is_json: bool,
    from_file: str | None,
    secret: bool,
    quiet: bool,
    verbose: bool,
) -> None:
    """Create or replace the variable NAME."""
    if (value is None) == (from_file is None):
        raise click.UsageError("give either VALUE or --from-file")
    if from_file is not None:
        with click.open_file(from_file, encoding="utf-8") as handle:
            value = handle.read()
        value = value[:-1] if value.endswith("\n") else value
    assert value is not None
    data = parse_json(value, "VALUE") if is_json else value
    store = open_store()
    try:
        store.set_variable(name, data, secret=secret)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="NAME") from None
    say(f"saved variable {name}" + (f" in {store.path}" if verbose else ""), quiet)


@command.command("get")
@click.argument("name")
@click.option("--reveal", is_flag=True, help="Show a secret value instead of ***.")
@output_option("json: the value as JSON, also when it is text.")
@verbosity_options(verbose="Also say on stderr where the variable is stored and whether it is secret.")
def get(name: str, reveal: bool, output: str, quiet: bool, verbose: bool) -> None:
    """Print the variable NAME (text as is, anything else as JSON)."""
    import json

    from stepengine.masking import Masker, using_masker

    store = open_store()
    try:
        with using_masker(Masker()):  # shown on purpose with --reveal: not masked from the output
            value = store.get_variable(name)
    except LookupError:
        raise click.ClickException(f"no variable {name} in {store.path}") from None
    secret = store.is_secret_variable(name)
    if not reveal and secret:
        value = MASK
    if verbose:
        say(f"variable {name} in {store.path}{' (secret)' if secret else ''}", quiet)
    if output == "json":
        print_json(value)
    else:
        click.echo(value if isinstance(value, str) else json.dumps(value, indent=2))


@command.command("ls", old_spellings=[JSON_FLAG])
@output_option("json: the list as JSON.")
@verbosity_options(verbose="Also print when each was last changed.")
def ls(output: str, quiet: bool, verbose: bool) -> None:
    """List the variables (never their values)."""
    print_items(open_store().list_variables(), output, verbose)


@command.command("rm")
@click.argument("name")
@verbosity_options(quiet="Print only errors.", verbose="Also say which store it was removed from.")
def rm(name: str, quiet: bool, verbose: bool) -> None:
    """Remove the variable NAME."""
    store = open_store()
    if not store.delete_variable(name):
        raise click.ClickException(f"no variable {name} in {store.path}")
    say(f"removed variable {name}" + (f" from {store.path}" if verbose else ""), quiet)
