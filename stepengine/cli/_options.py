"""Options shared by several verbs."""

from __future__ import annotations

import typing as t

import click

from stepengine.cli._run import split_var
from stepengine.config import SECTIONS

F = t.TypeVar("F", bound=t.Callable[..., t.Any])


def section_options(func: F) -> F:
    func = click.option(
        "-s",
        "--section",
        "sections",
        multiple=True,
        type=click.Choice(SECTIONS),
        help="Section to run (repeatable). Default: every section present, in the order build, push, pull.",
    )(func)
    func = click.option("-d", "--deployment", help="Apply this deployment's build/push/pull overrides.")(func)
    return func


def var_option(func: F) -> F:
    return click.option(
        "--var",
        "variables",
        multiple=True,
        metavar="KEY=VALUE",
        callback=_check_vars,
        help="Seed a template value, available as {{ KEY }} (repeatable).",
    )(func)


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


def strict_option(func: F) -> F:
    return click.option(
        "--strict",
        is_flag=True,
        help="Treat warnings (unknown keys, values some Prefect versions refuse) as errors.",
    )(func)


def store_options(func: F) -> F:
    """``--prefect-api-url`` and ``--stores``: where ``prefect.blocks`` / ``prefect.variables`` come from."""
    func = click.option(
        "--stores",
        metavar="ORDER",
        help="Stores to read blocks and variables from, first hit wins (default: $STEPENGINE_STORES "
        "or values,env,local,prefect).",
    )(func)
    func = click.option(
        "--prefect-api-url",
        metavar="URL",
        help=(
            "Read blocks and variables from this Prefect API too (default: $PREFECT_API_URL; key: "
            "$PREFECT_API_KEY)."
        ),
    )(func)
    return func
