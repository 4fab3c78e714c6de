"""``prefect.runtime`` of the stand-in: the flow run ``stepengine execute`` started
(``$STEPENGINE_FLOW_RUN``, a JSON object it sets)."""

from __future__ import annotations

import json
import os
import typing as t


def _info() -> dict[str, t.Any]:
    try:
        data = json.loads(os.environ.get("STEPENGINE_FLOW_RUN") or "{}")
    except ValueError:
        data = {}
    return data if isinstance(data, dict) else {}


from prefect.runtime import deployment, flow_run, task_run  # noqa: E402

__all__ = ["deployment", "flow_run", "task_run"]
