"""Click parameters built from the option table (``_table.py``), and the option groups several verbs share."""

from __future__ import annotations

import typing as t

import click

from stepengine.cli import _table
from stepengine.cli._run import split_var
from stepengine.cli._table import Option

F = t.TypeVar("F", bound=t.Callable[..., t.Any])


def click_params(*options: Option) -> t.Callable[[F], F]:
    """A decorator adding ``options`` to a click command, in this order in ``--help``."""

    def decorate(func: F) -> F:
        for option in reversed(options):
            func = _param(option)(func)
        return func

    return decorate


def _param(option: Option) -> t.Callable[[F], F]:
    kind = option.kind
    type_: t.Any = None
    if kind == "choice":
        type_ = click.Choice(list(option.choices))
    elif kind in ("file", "existing-file"):
        type_ = click.Path(dir_okay=False, exists=kind == "existing-file")
    if not option.names:
        return click.argument(option.dest, type=type_, default=option.default)
    extra: dict[str, t.Any] = {"is_flag": True} if option.flag else {"type": type_}
    if not option.flag and option.default is not None:
        extra["default"] = option.default
    return click.option(
        *option.names,
        option.dest,
        multiple=option.multiple,
        metavar=option.metavar,
        show_default=option.show_default,
        callback=_check_vars if kind == "pairs" else None,
        help=option.help,
        **extra,
    )


def _check_vars(ctx: click.Context, param: click.Parameter, pairs: tuple[str, ...]) -> tuple[str, ...]:
    parse_vars(pairs)  # a malformed pair is a usage error before anything runs
    return pairs


def parse_vars(pairs: t.Sequence[str]) -> dict[str, str]:
    values = {}
    for pair in pairs:
        split = split_var(pair)
        if split is None:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--var")
        values[split[0]] = split[1]
    return values


section_options = click_params(_table.DEPLOYMENT, _table.SECTION)
var_option = click_params(_table.VAR)
strict_option = click_params(_table.STRICT)
#: ``--stores`` and ``--prefect-api-url``: where ``prefect.blocks`` / ``prefect.variables`` come from
store_options = click_params(_table.PREFECT_API_URL, _table.STORES)
