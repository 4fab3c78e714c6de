"""The one convention every verb follows (README "The command": one convention for every verb).

- ``-o/--output text|json``: the format of the data a verb prints on stdout (Prefect 3's ``-o json``).
  With ``json``, stdout holds one JSON document and nothing else; everything else goes to stderr.
- ``--output-file FILE``: a file to write instead of stdout (``deploy``'s spec), never a format.
- ``-q/--quiet``: only errors, warnings about the command line itself, and the data asked for.
- ``-v/--verbose``: more detail (step inputs and timings, debug logs, fuller listings).
- ``-jv/--job-variable``: a deployment's job variable, as ``prefect deploy`` spells it.

``Command`` keeps the old spellings (``--json``, ``deploy --output FILE``, ``deploy -v KEY=VALUE``)
working for one release: it rewrites them to the new spelling before click parses the line, and
says so on stderr. ``tests/cli/test_convention.py`` checks every registered verb against this.
"""

from __future__ import annotations

import os
import re
import typing as t

import click

from stepengine.cli._options import click_params
from stepengine.cli._table import OUTPUT, QUIET, VERBOSE

F = t.TypeVar("F", bound=t.Callable[..., t.Any])

FORMATS = OUTPUT.choices


class OldSpelling(t.NamedTuple):
    """An option spelling kept for one release. ``rewrite`` gets the value the old option took (None
    for a flag) and returns the new tokens and how to write them, or None when the tokens are not
    the old form (they are then parsed as they stand)."""

    option: str
    takes_value: bool
    rewrite: t.Callable[[str | None], tuple[list[str], str] | None]


def _json_flag(value: str | None) -> tuple[list[str], str]:
    return ["--output", "json"], "-o json"


#: ``--json`` of ``steps`` and the ``ls`` verbs
JSON_FLAG = OldSpelling("--json", False, _json_flag)


def _output_file(value: str | None) -> tuple[list[str], str] | None:
    if value is None or value in FORMATS:
        return None  # a format: the new meaning
    return ["--output-file", value], f"--output-file {value}"


#: ``deploy --output FILE`` (``--output json``/``text`` is the format now)
OUTPUT_FILE = OldSpelling("--output", True, _output_file)

_KEY_VALUE = re.compile(r"[A-Za-z_][\w.-]*=")


def _job_variable(value: str | None) -> tuple[list[str], str] | None:
    """``-v KEY=VALUE`` or ``-v '{...}'``: a job variable (an entrypoint has no ``KEY=`` in front, and
    an existing path is taken as the entrypoint it is)."""
    if value is None or os.path.exists(value.partition(":")[0]):
        return None
    if _KEY_VALUE.match(value) or value.lstrip().startswith("{"):
        return ["--job-variable", value], f"-jv {value}"
    return None


#: ``deploy -v KEY=VALUE`` (``-v`` is ``--verbose`` on every verb now)
JOB_VARIABLE = OldSpelling("-v", True, _job_variable)


class Command(click.Command):
    """A verb following the convention; ``old_spellings`` are rewritten (with a warning) before parsing."""

    def __init__(self, *args: t.Any, old_spellings: t.Sequence[OldSpelling] = (), **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        self.old_spellings = {old.option: old for old in old_spellings}

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if self.old_spellings:
            args = self._rewrite(list(args))
        return super().parse_args(ctx, args)

    def _rewrite(self, args: list[str]) -> list[str]:
        valued = {
            name
            for param in self.params
            if isinstance(param, click.Option) and not param.is_flag and not param.count
            for name in param.opts
        }
        out: list[str] = []
        i = 0
        while i < len(args):
            token = args[i]
            if token == "--":
                out.extend(args[i:])
                break
            rewritten = self._old_form(token, args[i + 1] if i + 1 < len(args) else None)
            if rewritten is not None:
                tokens, used = rewritten
                out.extend(tokens)
                i += used
                continue
            out.append(token)
            if token in valued and i + 1 < len(args):
                out.append(args[i + 1])  # an option's value is never read as an option
                i += 1
            i += 1
        return out

    def _old_form(self, token: str, following: str | None) -> tuple[list[str], int] | None:
        """The new tokens for an old spelling at ``token`` and how many tokens it used, or None."""
        if token.startswith("--"):
            name, eq, inline = token.partition("=")
            glued = inline if eq else None
        else:  # -vKEY=VALUE
            name, glued = token[:2], (token[2:] or None)
        old = self.old_spellings.get(name)
        if old is None or (glued is not None and not old.takes_value):
            return None
        value, used = None, 1
        if old.takes_value:
            if glued is not None:
                value = glued
            elif following is not None:
                value, used = following, 2
            else:
                return None
        new = old.rewrite(value)
        if new is None:
            return None
        tokens, spelled = new
        shown = token if used == 1 else f"{token} {value}"
        click.echo(
            f"warning: {shown} is deprecated: use {spelled} (the old spelling goes in the next release)",
            err=True,
        )
        return tokens, used


class Group(click.Group):
    """A verb with sub-verbs (``block``, ``variable``, ``flows``, ``recipe``): each follows the convention."""

    command_class = Command


def output_option(
    help: str, *, default: str = "text", choices: t.Sequence[str] = FORMATS
) -> t.Callable[[F], F]:
    """``-o/--output FORMAT``: the format of the data on stdout (``_table.OUTPUT``, worded for the verb)."""
    return click_params(OUTPUT.but(help=help, default=default, choices=tuple(choices)))


def verbosity_options(quiet: str = QUIET.help, verbose: str = VERBOSE.help) -> t.Callable[[F], F]:
    """``-q/--quiet`` and ``-v/--verbose``, the same on every verb (``_table.QUIET``, ``_table.VERBOSE``)."""
    return click_params(QUIET.but(help=quiet), VERBOSE.but(help=verbose))


def print_json(data: t.Any) -> None:
    """``data`` as the one JSON document on stdout (masked: the command's stdout is a masking stream)."""
    import json

    click.echo(json.dumps(data, indent=2, default=str))


def say(text: str, quiet: bool) -> None:
    """A note for the person at the terminal, on stderr (none with ``-q``)."""
    if not quiet:
        click.echo(text, err=True)
