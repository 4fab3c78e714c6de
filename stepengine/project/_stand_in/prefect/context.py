"""Run context of the stand-in: what ``prefect.runtime`` knows, and ``tags``."""

from __future__ import annotations

import contextlib
import typing as t

_tags: list[str] = []


class _FlowRun:
    def __init__(self) -> None:
        from prefect.runtime import flow_run

        self.id = flow_run.id
        self.name = flow_run.name
        self.parameters = flow_run.parameters
        self.tags = list(flow_run.tags)


class FlowRunContext:
    def __init__(self) -> None:
        self.flow_run = _FlowRun()

    @classmethod
    def get(cls) -> FlowRunContext:
        return cls()


def get_run_context() -> FlowRunContext:
    return FlowRunContext()


@contextlib.contextmanager
def tags(*names: str) -> t.Iterator[set[str]]:
    """Tags for the runs inside the block (recorded only: the stand-in has no server)."""
    before = len(_tags)
    _tags.extend(names)
    try:
        yield set(_tags)
    finally:
        del _tags[before:]


__all__ = ["FlowRunContext", "get_run_context", "tags"]
