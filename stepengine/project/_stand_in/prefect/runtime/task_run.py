"""``prefect.runtime.task_run``: the stand-in runs tasks as plain calls, so nothing is known."""

from __future__ import annotations

import typing as t


def __getattr__(name: str) -> t.Any:
    if name in ("id", "name", "task_name"):
        return None
    if name == "parameters":
        return {}
    if name == "run_count":
        return 1
    raise AttributeError(name)
