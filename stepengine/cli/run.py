"""``stepengine run``: run sections of a prefect.yaml (options: ``_table.RUN``; ``_run.py`` does the work)."""

from __future__ import annotations

import typing as t

import click

from stepengine.cli._convention import Command
from stepengine.cli._options import click_params
from stepengine.cli._run import run_command
from stepengine.cli._table import RUN


@click.command("run", cls=Command)
@click_params(*RUN)
def command(**params: t.Any) -> None:
    """Run the build, push and/or pull steps of FILE (default: prefect.yaml)."""
    run_command(**params)
