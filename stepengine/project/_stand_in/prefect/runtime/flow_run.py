"""``prefect.runtime.flow_run``: id, name, flow_name, parameters, tags, scheduled_start_time..."""

from __future__ import annotations

import typing as t


def __getattr__(name: str) -> t.Any:
    from prefect.runtime import _info

    info = _info()
    defaults = {
        "parameters": {},
        "tags": [],
        "run_count": 1,
        "parent_flow_run_id": None,
        "parent_deployment_id": None,
    }
    if name in info:
        return info[name]
    if name in defaults:
        return defaults[name]
    if name in ("id", "name", "flow_name", "scheduled_start_time", "job_variables", "api_url", "ui_url"):
        return None
    raise AttributeError(name)
