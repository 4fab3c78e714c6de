"""The click group behind ``stepengine``: verbs are loaded lazily from ``COMMANDS``."""

from __future__ import annotations

import typing as t

import click

from stepengine import __version__
from stepengine.cli import COMMANDS, command_scope

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = COMMANDS.get(cmd_name)
        if module is None:
            return None
        import importlib

        return t.cast(click.Command, importlib.import_module(module).command)


@click.group(cls=_LazyGroup, context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, "-V", "--version", prog_name="stepengine")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Validate and run the build, push and pull steps of prefect.yaml files."""
    ctx.with_resource(command_scope())
