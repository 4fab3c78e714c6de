"""stepengine's stand-in for Prefect, used when Prefect is not installed (``stepengine execute``,
``stepengine deploy FILE.py``). It is not Prefect: ``@flow`` and ``@task`` code runs as the plain
functions it decorates, in one process, without retries, caching, states or a server.

Provided: ``flow``, ``task``, ``Flow``, ``Task``, ``get_run_logger``, ``get_client`` (no), ``tags``,
``unmapped``, ``allow_failure``, ``serve`` (no) and the submodules ``prefect.flows``, ``prefect.tasks``,
``prefect.futures``, ``prefect.logging``, ``prefect.context``, ``prefect.runtime`` (``flow_run``,
``task_run``, ``deployment``), ``prefect.artifacts``, ``prefect.deployments``, ``prefect.runner.storage``
(``GitRepository``, ``RemoteStorage``) and ``prefect.blocks.system`` (``Secret.load`` as a reference
for deployments). Importing any other
``prefect.*`` module fails with a hint to install Prefect where the flow runs.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
import typing as t

__version__ = "0+stepengine.stand.in"
__stepengine_stand_in__ = True

#: the submodules the stand-in has (anything else gets the hint below)
PROVIDED = (
    "prefect.artifacts",
    "prefect.blocks",
    "prefect.blocks.system",
    "prefect.context",
    "prefect.deployments",
    "prefect.flows",
    "prefect.futures",
    "prefect.logging",
    "prefect.runtime",
    "prefect.runtime.deployment",
    "prefect.runtime.flow_run",
    "prefect.runtime.task_run",
    "prefect.runner",
    "prefect.runner.storage",
    "prefect.tasks",
)


class _Hint(importlib.abc.MetaPathFinder):
    """Turns ``import prefect.<anything else>`` into an error that says what is going on."""

    def find_spec(
        self,
        fullname: str,
        path: t.Sequence[str] | None = None,
        target: t.Any = None,
    ) -> importlib.machinery.ModuleSpec | None:
        # last on sys.meta_path: asked only about modules no other finder has
        if not fullname.startswith("prefect.") or fullname in PROVIDED:
            return None
        raise ModuleNotFoundError(
            "No module named {!r}: Prefect is not installed where this flow runs, and stepengine's stand-in "
            "prefect module provides only {} (install prefect in the flow's interpreter: "
            "job_variables.venv / python, or `stepengine execute --python`)".format(
                fullname, ", ".join(PROVIDED)
            ),
            name=fullname,
        )


if not any(isinstance(finder, _Hint) for finder in sys.meta_path):
    sys.meta_path.append(_Hint())

from prefect.context import tags  # noqa: E402
from prefect.flows import Flow, flow, serve  # noqa: E402
from prefect.futures import allow_failure, unmapped  # noqa: E402
from prefect.logging import get_run_logger  # noqa: E402
from prefect.tasks import Task, task  # noqa: E402


def get_client(*args: t.Any, **kwargs: t.Any) -> t.NoReturn:
    raise RuntimeError(
        "prefect.get_client: stepengine's stand-in prefect module has no Prefect API client "
        "(install prefect in the flow's interpreter to talk to a Prefect server)"
    )


__all__ = [
    "Flow",
    "Task",
    "allow_failure",
    "flow",
    "get_client",
    "get_run_logger",
    "serve",
    "tags",
    "task",
    "unmapped",
]
