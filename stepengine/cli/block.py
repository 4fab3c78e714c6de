"""``stepengine block``: set, get, list and remove blocks in the embedded store
($STEPENGINE_HOME/store.db)."""

from __future__ import annotations

import typing as t

import click

from stepengine.cli._convention import JSON_FLAG, Group, output_option, print_json, say, verbosity_options
from stepengine.masking import MASK

if t.TYPE_CHECKING:
    from stepengine.stores.sqlite import SQLiteStore


@click.group("block", cls=Group)
def command() -> None:
    """Manage blocks in the local store ($STEPENGINE_HOME/store.db).

    A template reads them as {{ prefect.blocks.TYPE.NAME }}. Types: secret and string hold text,
    json any JSON value, any other type (github-credentials, aws-credentials, ...) a JSON object.
    """


def open_store() -> SQLiteStore:
    from stepengine.stores.sqlite import SQLiteStore

    return SQLiteStore()


def parse_ref(ref: str) -> tuple[str, str]:
    from stepengine.stores.sqlite import BLOCK_NAME_RE, BLOCK_TYPE_RE, check_name

    block_type, sep, name = ref.partition("/")
    if not sep or not block_type or not name:
        raise click.BadParameter(
            f"{ref!r} is not TYPE/NAME (e.g. secret/github-token)", param_hint="TYPE/NAME"
        )
    try:
        check_name("block type", block_type, BLOCK_TYPE_RE)
        check_name("block name", name, BLOCK_NAME_RE)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="TYPE/NAME") from None
    return block_type, name


def read_input(value: str | None, json_text: str | None, from_file: str | None) -> tuple[str, bool]:
    """The text given by exactly one of --value / --json / --from-file, and whether it is JSON."""
    given = [
        o for o, v in (("--value", value), ("--json", json_text), ("--from-file", from_file)) if v is not None
    ]
    if len(given) != 1:
        raise click.UsageError("give exactly one of --value, --json or --from-file")
    if value is not None:
        return value, False
    if json_text is not None:
        return json_text, True
    assert from_file is not None
    with click.open_file(from_file, encoding="utf-8") as handle:
        text = handle.read()
    # A file saved by an editor ends with one newline that is not part of the secret.
    return (text[:-1] if text.endswith("\n") else text), False


def parse_json(text: str, option: str) -> t.Any:
    import json

    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        # the position only: the text may be a secret
        raise click.BadParameter(
            f"not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})", param_hint=option
        ) from None


@command.command("set")
@click.argument("ref", metavar="TYPE/NAME")
@click.option(
    "--value",
    help="The text of a secret or string block (visible in the process list: prefer --from-file -).",
)
@click.option(
    "--json", "json_text", metavar="JSON", help="The block's data as JSON (an object for credentials blocks)."
)
@click.option(
    "--from-file",
    type=click.Path(dir_okay=False, allow_dash=True),
    help="Read the value from a file ('-': stdin); JSON unless the type is secret or string.",
)
@click.option(
    "--secret",
    is_flag=True,
    help="Mask every value of this block when a run reads it (always on for type secret).",
)
@verbosity_options(quiet="Print only errors.", verbose="Also say where the block was saved.")
def set_(
    ref: str,
    value: str | None,
    json_text: str | None,
    from_file: str | None,
    secret: bool,
    quiet: bool,
    verbose: bool,
) -> None:
    """Create or replace the block TYPE/NAME."""
    from stepengine.stores.sqlite import TEXT_TYPES, make_block_data

    block_type, name = parse_ref(ref)
    text, is_json = read_input(value, json_text, from_file)
    if from_file is not None and block_type not in TEXT_TYPES:
        is_json = True
    if is_json:
        data: t.Any = parse_json(text, "--json" if json_text is not None else "--from-file")
    elif block_type in TEXT_TYPES:
        data = text
    else:
        raise click.UsageError(f"a {block_type} block holds JSON: use --json or --from-file")
    store = open_store()
    try:
        document = make_block_data(block_type, data)
        store.set_block(block_type, name, document, secret=secret)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="TYPE/NAME") from None
    say(f"saved block {block_type}/{name}" + (f" in {store.path}" if verbose else ""), quiet)


@command.command("get")
@click.argument("ref", metavar="TYPE/NAME")
@click.option("--reveal", is_flag=True, help="Show secret values instead of ***.")
@output_option("json: the block's data as JSON, also for a secret or string block.")
@verbosity_options(verbose="Also say on stderr where the block is stored and whether it is secret.")
def get(ref: str, reveal: bool, output: str, quiet: bool, verbose: bool) -> None:
    """Print a block: the text of a secret/string block, the JSON of any other."""
    import json

    from stepengine.masking import Masker, using_masker
    from stepengine.stores.sqlite import TEXT_TYPES

    block_type, name = parse_ref(ref)
    store = open_store()
    try:
        # read with a throw-away masker: what the user asked to see is not masked from the output
        with using_masker(Masker()):
            data = store.get_block(block_type, name)
    except LookupError:
        raise click.ClickException(f"no block {block_type}/{name} in {store.path}") from None
    secret = store.is_secret_block(block_type, name)
    if not reveal:
        data = redact_block(block_type, data, whole=secret)
    if verbose:
        say(f"block {block_type}/{name} in {store.path}{' (secret)' if secret else ''}", quiet)
    if output == "json":
        print_json(data)
    elif block_type in TEXT_TYPES and set(data) == {"value"} and isinstance(data["value"], str):
        click.echo(data["value"])
    else:
        click.echo(json.dumps(data, indent=2))


@command.command("ls", old_spellings=[JSON_FLAG])
@click.option("--type", "block_type", help="Only blocks of this type.")
@output_option("json: the list as JSON.")
@verbosity_options(verbose="Also print when each was last changed.")
def ls(block_type: str | None, output: str, quiet: bool, verbose: bool) -> None:
    """List the blocks (never their values)."""
    print_items(open_store().list_blocks(block_type), output, verbose)


@command.command("rm")
@click.argument("ref", metavar="TYPE/NAME")
@verbosity_options(quiet="Print only errors.", verbose="Also say which store it was removed from.")
def rm(ref: str, quiet: bool, verbose: bool) -> None:
    """Remove the block TYPE/NAME."""
    block_type, name = parse_ref(ref)
    store = open_store()
    if not store.delete_block(block_type, name):
        raise click.ClickException(f"no block {block_type}/{name} in {store.path}")
    say(f"removed block {block_type}/{name}" + (f" from {store.path}" if verbose else ""), quiet)


def redact_block(block_type: str, data: t.Any, *, whole: bool) -> t.Any:
    """``data`` with every secret leaf shown as ``***``: all of it for a secret block, else the
    fields ``stepengine.resolvers.is_secret_field`` names (the rule runs use)."""
    from stepengine.resolvers import is_secret_field

    if whole or "secret" in block_type.lower():
        return _redact_all(data)

    def walk(value: t.Any) -> t.Any:
        if isinstance(value, dict):
            return {k: _redact_all(v) if is_secret_field(k) else walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        return value

    return walk(data)


def _redact_all(value: t.Any) -> t.Any:
    if isinstance(value, dict):
        return {k: _redact_all(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact_all(v) for v in value]
    return value if value is None or isinstance(value, bool) else MASK


def print_items(items: t.Sequence[t.Any], output: str, verbose: bool) -> None:
    if output == "json":
        print_json([{"name": i.name, "secret": i.secret, "updated": i.updated} for i in items])
        return
    width = max((len(item.name) for item in items), default=0)
    for item in items:
        if verbose:
            import datetime

            updated = datetime.datetime.fromtimestamp(item.updated).isoformat(" ", "seconds")
            click.echo(f"{item.name:<{width}}  {'secret' if item.secret else '      '}  updated {updated}")
        else:
            click.echo(f"{item.name}{'  (secret)' if item.secret else ''}")
