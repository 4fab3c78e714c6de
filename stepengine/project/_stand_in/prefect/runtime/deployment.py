"""``prefect.runtime.deployment``: id, name, version, flow_run_id, parameters."""

from __future__ import annotations

import typing as t


def __getattr__(name: str) -> t.Any:
    from prefect.runtime import _info

    info = _info().get("deployment") or {}
    if name in info:
        return info[name]
    if name == "parameters":
        return {}
    if name in ("id", "name", "version", "flow_run_id"):
        return None
    raise AttributeError(name)
