"""The ``stepengine`` command: a Click group whose verbs live one per module and call the public API.

Exit codes: 0 success, 1 a step failed, 2 invalid input, 3 an unexpected error (a bug: the traceback
is printed), 130 interrupted.

``main`` first offers the arguments to ``_fastpath.parse_run``, which recognises the common forms of
``stepengine run`` without importing click (a sixth of a cold run); everything else, and anything it
is unsure of, goes to the click group (``_group.py``), which owns every message, help text and error.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import sys
import typing as t

if t.TYPE_CHECKING:
    from stepengine.cli._output import TextStream
    from stepengine.events import EventHandler
    from stepengine.masking import Masker

__all__ = ["COMMANDS", "cli", "command_scope", "event_printer", "main"]

#: every verb and the module holding its ``command``, in the order ``--help`` lists them. A verb's
#: module is imported only when that verb runs (or help lists it), so ``stepengine run`` does not pay
#: for the other eleven.
COMMANDS: dict[str, str] = {
    "run": "stepengine.cli.run",
    "plan": "stepengine.cli.plan",
    "validate": "stepengine.cli.validate",
    "steps": "stepengine.cli.steps",
    "schema": "stepengine.cli.schema",
    "block": "stepengine.cli.block",
    "variable": "stepengine.cli.variable",
    "init": "stepengine.cli.init",
    "recipe": "stepengine.cli.recipe",
    "flows": "stepengine.cli.flows",
    "deploy": "stepengine.cli.deploy",
    "execute": "stepengine.cli.execute",
    "prefect-pull-and-run": "stepengine.cli.prefect_pull_and_run",
}

#: set to 0 to send every command line through click (to compare, or to rule the fast path out)
FASTPATH_ENV = "STEPENGINE_CLI_FASTPATH"

#: the masker ``main`` made for this command line; ``command_scope`` uses it, so the secrets a run
#: finds are still known while ``handle_errors`` prints an error after the command has ended
_COMMAND_MASKER: contextvars.ContextVar[Masker | None] = contextvars.ContextVar(
    "stepengine_command_masker", default=None
)


def event_printer(stream: TextStream) -> EventHandler:
    """The CLI's event printer (what ``stepengine run`` prints), writing to ``stream``: for a program
    that runs steps outside a command, such as the pull stage of a Prefect worker's job."""
    from stepengine.cli._output import EventPrinter

    return EventPrinter(stream=stream)


@contextlib.contextmanager
def command_scope() -> t.Iterator[None]:
    """Around every command: one masker, with stdout and stderr masked through it.

    Secrets a run finds stay masked in everything the command prints after the run (--output json,
    logs); even a step that print()s a token directly shows ***.
    """
    from stepengine.masking import Masker, current_masker, masked_std_streams, using_masker

    masker = _COMMAND_MASKER.get() or Masker(parent=current_masker())
    with using_masker(masker), masked_std_streams(masker):
        yield


def main(argv: t.Sequence[str] | None = None) -> int:
    """Console-script entry point: runs the CLI and turns every outcome into an exit code."""
    from stepengine.masking import Masker, current_masker, using_masker

    args = list(argv) if argv is not None else sys.argv[1:]
    # The command's masker is made here, outside the error handler: an error printed after the run
    # (say while writing --output json, exit 3) is masked with every secret the run found (issue 14).
    masker = Masker(parent=current_masker())
    token = _COMMAND_MASKER.set(masker)
    try:
        with using_masker(masker):
            code = _main(args)
    finally:
        _COMMAND_MASKER.reset(token)
    if argv is None:
        sys.exit(code)
    return code


def _main(args: list[str]) -> int:
    from stepengine.cli._errors import handle_errors

    with handle_errors() as outcome:
        from stepengine.paths import check_working_directory

        check_working_directory()
        params = None
        if os.environ.get(FASTPATH_ENV, "1") != "0":
            from stepengine.cli._fastpath import parse_run

            params = parse_run(args)
        if params is not None:
            from stepengine.cli._run import run_command

            with command_scope():
                run_command(**params)
        else:
            from stepengine.cli._group import cli

            outcome.code = cli.main(args=args, prog_name="stepengine", standalone_mode=False)
    return outcome.code if isinstance(outcome.code, int) else 0


def __getattr__(name: str) -> t.Any:
    if name == "cli":  # the click group, built on first use
        from stepengine.cli._group import cli

        return cli
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
