"""``stepengine prefect-pull-and-run``: the pull stage of a Prefect flow run, as a work pool's command.

See ``stepengine.project.prefect_worker`` and the README section "Prefect workers: stepengine as the
pull stage".
"""

from __future__ import annotations

import click

from stepengine.cli._convention import Command, verbosity_options


@click.command("prefect-pull-and-run", cls=Command)
@click.option(
    "--flow-run-id",
    envvar="PREFECT__FLOW_RUN_ID",
    metavar="ID",
    help="The flow run (default: $PREFECT__FLOW_RUN_ID, set by every Prefect worker).",
)
@click.option(
    "--prefect-api-url",
    metavar="URL",
    help="The Prefect API (default: $PREFECT_API_URL; key: $PREFECT_API_KEY).",
)
@click.option(
    "--python",
    envvar="STEPENGINE_PREFECT_PYTHON",
    metavar="PATH",
    help=(
        "Interpreter with Prefect installed that runs the flow (default: $STEPENGINE_PREFECT_PYTHON, else "
        "this one)."
    ),
)
@click.option(
    "--poll-interval",
    type=float,
    default=1.0,
    show_default=True,
    help=(
        "Seconds between checks of the flow run's state for a cancellation during the pull (0: only the "
        "worker's SIGTERM)."
    ),
)
@verbosity_options(
    quiet="Print only errors (the flow's own output is the flow's).", verbose="Also print debug logs."
)
def command(
    flow_run_id: str | None,
    prefect_api_url: str | None,
    python: str | None,
    poll_interval: float,
    quiet: bool,
    verbose: bool,
) -> None:
    """Run a flow run's deployment pull steps with stepengine, then hand the flow to Prefect's engine.

    Put it in a work pool's base job template as the ``command`` (see the README). A failed pull
    fails the flow run with stepengine's error in its logs; a cancelled flow run stops the pull.
    """
    from stepengine.cli._output import configure_logging
    from stepengine.project.prefect_worker import pull_and_run

    configure_logging(quiet=quiet, verbose=verbose)
    pull_and_run(flow_run_id, api_url=prefect_api_url, python=python, poll_interval=poll_interval)
