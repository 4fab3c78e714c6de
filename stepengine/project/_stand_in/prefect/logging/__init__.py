"""Loggers of the stand-in: standard ``logging`` loggers, printed as Prefect prints them."""

from __future__ import annotations

import contextlib
import logging
import sys
import typing as t

_FORMAT = "%(asctime)s.%(msecs)03d | %(levelname)-7s | %(name)s - %(message)s"
_configured: list[logging.Handler] = []


def _configure() -> None:
    if not _configured:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(_FORMAT, "%H:%M:%S"))
        root = logging.getLogger("prefect")
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        root.propagate = False
        _configured.append(handler)


def get_logger(name: str | None = None) -> logging.Logger:
    _configure()
    return logging.getLogger("prefect" if not name else "prefect." + name)


def get_run_logger(context: t.Any = None, **kwargs: t.Any) -> logging.Logger:
    return get_logger("flow_runs")


@contextlib.contextmanager
def disable_run_logger() -> t.Iterator[None]:
    logger = get_logger("flow_runs")
    previous = logger.disabled
    logger.disabled = True
    try:
        yield
    finally:
        logger.disabled = previous


__all__ = ["disable_run_logger", "get_logger", "get_run_logger"]
