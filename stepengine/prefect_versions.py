"""What each Prefect version accepts in a prefect.yaml, as located warnings (issue 13).

The file schema (``schemas/prefect.yaml.schema.json``) accepts everything that some Prefect version
from 2.10 to 3.9 loads. What only some versions load is checked here: each finding is a warning
naming the Prefect versions that refuse the value (an error with ``strict``), and what no version
loads is an error. The version facts come from reading each release's ``prefect deploy`` (its
``PrefectYamlModel`` from 3.4.19 on, the dictionaries it reads before that) and are summed up in the
README's table; ``tests/compat/`` checks them against Prefect's own ``prefect init`` output.
"""

from __future__ import annotations

import re
import typing as t

from stepengine.errors import Issue
from stepengine.loader import Document

__all__ = ["SCHEDULE_KEYS", "version_issues"]

#: Prefect 3.4.19 validates the whole file with a pydantic model; a value it refuses makes
#: ``prefect deploy`` skip every deployment of the file ("Skipping deployment configuration").
MODEL = "3.4.19"
#: Prefect 3.4.21 refuses unknown schedule keys and schedules naming no (or several) kinds.
STRICT_SCHEDULES = "3.4.21"
#: Prefect 3.0 moved to pydantic 2, which no longer turns numbers into strings.
PYDANTIC2 = "3.0"
#: Prefect 2.16.1 added ``schedules:`` and reads a non-empty ``schedule:`` as one of them.
SCHEDULES = "2.16.1"

_KINDS = ("cron", "interval", "rrule")

#: every key a schedule item has had in some Prefect version
SCHEDULE_KEYS: tuple[str, ...] = _KINDS + (
    "timezone", "anchor_date", "day_or", "active", "parameters", "slug", "replaces",
    "max_active_runs", "catchup",
)

_PLACEHOLDER = re.compile(r"^\s*\{\{.*\}\}\s*$", re.S)
_ISO_DURATION = re.compile(r"^P(?!$)(\d+(\.\d+)?Y)?(\d+(\.\d+)?M)?(\d+(\.\d+)?W)?(\d+(\.\d+)?D)?"
                           r"(T(?=\d)(\d+(\.\d+)?H)?(\d+(\.\d+)?M)?(\d+(\.\d+)?S)?)?$")


def version_issues(document: Document, *, strict: bool = False) -> list[Issue]:
    """Every value of ``document`` that some Prefect version refuses (see the module docstring)."""
    data = document.data
    if not isinstance(data, dict):
        return []
    found: list[Issue] = []
    severity = "error" if strict else "warning"

    def report(path: tuple[t.Any, ...], message: str, *, always: bool = False) -> None:
        from stepengine.schema import format_path

        line, col = document.position(path) or (None, None)
        found.append(Issue(message, document.file, line, col, format_path(path), "error" if always else severity))

    for key in ("name", "prefect-version"):
        if isinstance(data.get(key), (int, float)) and not isinstance(data.get(key), bool):
            report((key,), f"{key!r} is a number: Prefect {MODEL} and later refuse it (and skip every "
                           f"deployment of the file); quote it: {key}: \"{data[key]}\"")
    if "deployments" in data and data["deployments"] is None:
        report(("deployments",), f"'deployments: null': Prefect {MODEL} and later refuse it (earlier versions "
                                 "read it as no deployments); write 'deployments: []'")
    deployments = data.get("deployments")
    for index, entry in enumerate(deployments if isinstance(deployments, list) else ()):
        if isinstance(entry, dict):
            _deployment(entry, ("deployments", index), report)
    return found


def _where(entry: dict[str, t.Any], path: tuple[t.Any, ...]) -> str:
    name = entry.get("name")
    return f"deployment {name!r}" if isinstance(name, str) else f"deployments[{path[-1]}]"


def _deployment(entry: dict[str, t.Any], path: tuple[t.Any, ...], report: t.Callable[..., None]) -> None:
    where = _where(entry, path)
    refusing = {"version": PYDANTIC2, "description": MODEL}  # 3.0-3.4.18 turn a number description into text
    for key, since in refusing.items():
        value = entry.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            report(path + (key,), f"{where}: {key!r} is a number: Prefect {since} and later refuse it "
                                  f"(earlier versions turned it into text); quote it: {key}: \"{value}\"")
    if "parameters" in entry and entry["parameters"] is None:
        report(path + ("parameters",), f"{where}: 'parameters: null': Prefect {MODEL} and later refuse it (and skip "
                                       "every deployment of the file); write 'parameters: {}' or leave it out")
    pool = entry.get("work_pool")
    if isinstance(pool, dict) and "job_variables" in pool and pool["job_variables"] is None:
        report(path + ("work_pool", "job_variables"),
               f"{where}: 'job_variables: null': Prefect {MODEL} and later refuse it (and skip every deployment "
               "of the file); write 'job_variables: {}' or leave it out")
    schedule = entry.get("schedule")
    if schedule and isinstance(schedule, dict):
        if "schedules" in entry:
            report(path + ("schedule",), f"{where}: both 'schedule' and 'schedules': Prefect {SCHEDULES} and later "
                                         "refuse the pair (earlier versions ignore 'schedules'); move the schedule "
                                         "into the 'schedules' list")
        _schedule(schedule, path + ("schedule",), where, report, legacy=True)
    schedules = entry.get("schedules")
    for i, item in enumerate(schedules if isinstance(schedules, list) else ()):
        if isinstance(item, dict):
            _schedule(item, path + ("schedules", i), where, report, legacy=False)


def _schedule(
    schedule: dict[str, t.Any], path: tuple[t.Any, ...], where: str, report: t.Callable[..., None], *, legacy: bool
) -> None:
    """One non-empty ``schedule:`` mapping (``legacy``) or one ``schedules:`` item."""
    kinds = [k for k in _KINDS if schedule.get(k) not in (None, "")]
    label = f"{where}: " + ("schedule" if legacy else f"schedules[{path[-1]}]")
    if not kinds:
        if legacy:
            report(path, f"{label} names none of cron, interval or rrule: Prefect {SCHEDULES} and later refuse it "
                         "(earlier versions read it as no schedule); write 'schedule: {}' for none")
        else:
            report(path, f"{label} needs one of cron, interval or rrule, found none", always=True)
    elif len(kinds) > 1:
        first = kinds[0]
        earlier = "Prefect 2.10–2.16.0 and " if legacy else "Prefect "
        report(path, f"{label} names {len(kinds)} kinds ({', '.join(kinds)}): {earlier}{STRICT_SCHEDULES} and later "
                     f"refuse it; Prefect {SCHEDULES}–3.4.20 use only {first!r}; keep one")
    for key in schedule:
        if key in ("max_active_runs", "catchup"):
            report(path + (key,), f"{label}: {key!r} is read only by Prefect 3.0 (2.x and 3.1–3.4.20 ignore it); "
                                  f"Prefect {STRICT_SCHEDULES} and later refuse it (and skip every deployment of "
                                  "the file); remove it")
        elif key not in SCHEDULE_KEYS:
            from stepengine._suggest import did_you_mean

            report(path + (key,), f"{label}: unknown key {key!r}{did_you_mean(str(key), SCHEDULE_KEYS)}: Prefect "
                                  f"{STRICT_SCHEDULES} and later refuse it (and skip every deployment of the file)")
    interval = schedule.get("interval")
    if isinstance(interval, str) and not _PLACEHOLDER.match(interval):
        if _ISO_DURATION.match(interval.strip()):
            report(path + ("interval",), f"{label}: interval {interval!r} is an ISO 8601 duration: Prefect before "
                                         f"{MODEL} refuses it; give seconds (a number) for every version")
        else:
            report(path + ("interval",), f"{label}: interval {interval!r} is neither a number of seconds nor an "
                                         "ISO 8601 duration (PT1H)", always=True)
    if legacy and schedule.get("anchor_date") is not None and "interval" not in kinds:
        report(path + ("anchor_date",), f"{label}: 'anchor_date' without 'interval': Prefect 2.10–2.16.0 refuse it "
                                        "(later versions ignore it)")
