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

__all__ = ["SCHEDULE_KEYS", "Finding", "refused_by", "version_findings", "version_issues"]

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
    "timezone",
    "anchor_date",
    "day_or",
    "active",
    "parameters",
    "slug",
    "replaces",
    "max_active_runs",
    "catchup",
)

_PLACEHOLDER = re.compile(r"^\s*\{\{.*\}\}\s*$", re.S)
_ISO_DURATION = re.compile(
    r"^P(?!$)(\d+(\.\d+)?Y)?(\d+(\.\d+)?M)?(\d+(\.\d+)?W)?(\d+(\.\d+)?D)?"
    r"(T(?=\d)(\d+(\.\d+)?H)?(\d+(\.\d+)?M)?(\d+(\.\d+)?S)?)?$"
)


#: a range of Prefect versions, both ends included; ``None`` for an open end
Range = tuple[str | None, str | None]
EVERY: tuple[Range, ...] = ((None, None),)


class Finding(t.NamedTuple):
    """A value some Prefect versions refuse: the issue (a warning, or an error when every version
    refuses it) and the ranges of the versions that refuse it."""

    issue: Issue
    refused_in: tuple[Range, ...]


def version_issues(document: Document, *, strict: bool = False) -> list[Issue]:
    """Every value of ``document`` that some Prefect version refuses (see the module docstring)."""
    issues = [finding.issue for finding in version_findings(document)]
    return [i._replace(severity="error") for i in issues] if strict else issues


def refused_by(document: Document, version: str) -> list[Issue]:
    """The issues of ``document`` that Prefect ``version`` (e.g. ``"3.9.1"``) refuses."""
    key = _key(version)
    return [
        f.issue
        for f in version_findings(document)
        if any((lo is None or _key(lo) <= key) and (hi is None or key <= _key(hi)) for lo, hi in f.refused_in)
    ]


def _key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def version_findings(document: Document) -> list[Finding]:
    """The findings of ``version_issues``, with the versions that refuse each."""
    data = document.data
    if not isinstance(data, dict):
        return []
    found: list[Finding] = []

    def report(path: tuple[t.Any, ...], message: str, refused_in: t.Sequence[Range]) -> None:
        from stepengine.schema import format_path

        line, col = document.position(path) or (None, None)
        severity = "error" if tuple(refused_in) == EVERY else "warning"
        found.append(
            Finding(Issue(message, document.file, line, col, format_path(path), severity), tuple(refused_in))
        )

    for key in ("name", "prefect-version"):
        if isinstance(data.get(key), (int, float)) and not isinstance(data.get(key), bool):
            report(
                (key,),
                f"{key!r} is a number: Prefect {MODEL} and later refuse it (and skip every "
                f'deployment of the file); quote it: {key}: "{data[key]}"',
                [(MODEL, None)],
            )
    _sections(data, (), "", report)
    if "deployments" in data and data["deployments"] is None:
        report(
            ("deployments",),
            f"'deployments: null': Prefect {MODEL} and later refuse it (earlier versions "
            "read it as no deployments); write 'deployments: []'",
            [(MODEL, None)],
        )
    deployments = data.get("deployments")
    for index, entry in enumerate(deployments if isinstance(deployments, list) else ()):
        if isinstance(entry, dict):
            _deployment(entry, ("deployments", index), report)
    return found


#: Prefect 3.7.7 reads a section written as one step mapping as a list of that step
ONE_STEP_SECTIONS = "3.7.7"


def _sections(
    data: dict[str, t.Any], path: tuple[t.Any, ...], where: str, report: t.Callable[..., None]
) -> None:
    for section in ("build", "push", "pull"):
        value = data.get(section)
        for index, step in enumerate(value if isinstance(value, list) else ()):
            if step is None:
                report(
                    path + (section, index),
                    f"{where}{section}[{index}] is null: Prefect {MODEL} and later refuse "
                    "it (and skip every deployment of the file); earlier versions skip "
                    "the step; remove it",
                    [(MODEL, None)],
                )
        if isinstance(value, dict) and value:
            report(
                path + (section,),
                f"{where}section {section!r} is one step mapping, not a list: Prefect before "
                f"{ONE_STEP_SECTIONS} refuses it (3.4.19–3.7.6 when reading the file, earlier "
                "versions when the steps run); write it as a list ('- ' before the step)",
                [(None, "3.7.6")],
            )


def _where(entry: dict[str, t.Any], path: tuple[t.Any, ...]) -> str:
    name = entry.get("name")
    return f"deployment {name!r}" if isinstance(name, str) else f"deployments[{path[-1]}]"


def _deployment(entry: dict[str, t.Any], path: tuple[t.Any, ...], report: t.Callable[..., None]) -> None:
    where = _where(entry, path)
    _sections(entry, path, f"{where}: ", report)
    refusing = {"version": PYDANTIC2, "description": MODEL}  # 3.0-3.4.18 turn a number description into text
    for key, since in refusing.items():
        value = entry.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            report(
                path + (key,),
                f"{where}: {key!r} is a number: Prefect {since} and later refuse it "
                f'(earlier versions turned it into text); quote it: {key}: "{value}"',
                [(since, None)],
            )
    if "parameters" in entry and entry["parameters"] is None:
        report(
            path + ("parameters",),
            f"{where}: 'parameters: null': Prefect {MODEL} and later refuse it (and skip "
            "every deployment of the file); write 'parameters: {}' or leave it out",
            [(MODEL, None)],
        )
    if "work_pool" in entry and entry["work_pool"] is None:
        report(
            path + ("work_pool",),
            f"{where}: 'work_pool: null': Prefect before {MODEL} refuses it (it fills in "
            "the pool's defaults); write 'work_pool: {}' or leave it out",
            [(None, "3.4.18")],
        )
    pool = entry.get("work_pool")
    if isinstance(pool, dict) and "job_variables" in pool and pool["job_variables"] is None:
        report(
            path + ("work_pool", "job_variables"),
            f"{where}: 'job_variables: null': Prefect {MODEL} and later refuse it (and skip every deployment "
            "of the file); write 'job_variables: {}' or leave it out",
            [(MODEL, None)],
        )
    schedule = entry.get("schedule")
    if isinstance(schedule, list):
        report(
            path + ("schedule",),
            f"{where}: 'schedule' is a list: Prefect {MODEL} and later refuse it (and skip "
            f"every deployment of the file), {SCHEDULES}–3.4.18 ignore it; a list of "
            "schedules goes under 'schedules'",
            [(MODEL, None)],
        )
    if schedule and isinstance(schedule, dict):
        if "schedules" in entry:
            report(
                path + ("schedule",),
                f"{where}: both 'schedule' and 'schedules': Prefect {SCHEDULES} and later "
                "refuse the pair (earlier versions ignore 'schedules'); move the schedule "
                "into the 'schedules' list",
                [(SCHEDULES, None)],
            )
        _schedule(schedule, path + ("schedule",), where, report, legacy=True)
    schedules = entry.get("schedules")
    for i, item in enumerate(schedules if isinstance(schedules, list) else ()):
        if isinstance(item, dict):
            _schedule(item, path + ("schedules", i), where, report, legacy=False)


def _schedule(
    schedule: dict[str, t.Any],
    path: tuple[t.Any, ...],
    where: str,
    report: t.Callable[..., None],
    *,
    legacy: bool,
) -> None:
    """One non-empty ``schedule:`` mapping (``legacy``) or one ``schedules:`` item."""
    kinds = [k for k in _KINDS if schedule.get(k) not in (None, "")]
    label = f"{where}: " + ("schedule" if legacy else f"schedules[{path[-1]}]")
    if legacy and schedule.get("anchor_date") is not None and "interval" not in kinds:
        report(
            path + ("anchor_date",),
            f"{label}: 'anchor_date' without 'interval': Prefect 2.10–2.16.0 refuse it "
            "(later versions ignore it)",
            [("2.10", "2.16.0")],
        )
    if not kinds:
        if legacy:
            report(
                path,
                f"{label} names none of cron, interval or rrule: Prefect {SCHEDULES} and later refuse it "
                "(earlier versions read it as no schedule); write 'schedule: {}' for none",
                [(SCHEDULES, None)],
            )
        else:
            report(path, f"{label} needs one of cron, interval or rrule, found none", EVERY)
        return
    if len(kinds) > 1:
        earlier = "Prefect 2.10–2.16.0 and " if legacy else "Prefect "
        report(
            path,
            f"{label} names {len(kinds)} kinds ({', '.join(kinds)}): {earlier}{STRICT_SCHEDULES} and later "
            f"refuse it; Prefect {SCHEDULES}–3.4.20 use only {kinds[0]!r}; keep one",
            ([("2.10", "2.16.0")] if legacy else []) + [(STRICT_SCHEDULES, None)],
        )
    interval = schedule.get("interval")
    if isinstance(interval, str) and not (
        _ISO_DURATION.match(interval.strip()) or _PLACEHOLDER.match(interval) or interval.strip().isdigit()
    ):
        report(
            path + ("interval",),
            f"{label}: interval {interval!r} is neither a number of seconds nor an ISO 8601 duration (PT1H)",
            EVERY,
        )
        return
    # From 3.4.21 each item must validate as Prefect's raw schedule (known keys, one kind) or as one of
    # its schedule types; judged with only the first kind kept (several kinds are reported above).
    single = {k: v for k, v in schedule.items() if k not in _KINDS or k == kinds[0]}
    refused = _refusing_eras(single)
    # Before 3.4.19 Prefect computes timedelta(seconds=interval), so text fails; a placeholder works
    # from 3.1.15, which renders schedules with the build/push outputs first.
    text = isinstance(interval, str)
    placeholder = isinstance(interval, str) and bool(_PLACEHOLDER.match(interval))
    if not refused and not text:
        return
    from stepengine._suggest import did_you_mean

    causes: list[tuple[str, str]] = []
    for key in schedule:
        if key in ("max_active_runs", "catchup"):
            causes.append((key, f"{key!r} (read only by Prefect 3.0; 2.x and 3.1–3.4.20 ignore it)"))
        elif key not in SCHEDULE_KEYS:
            causes.append((key, f"unknown key {key!r}{did_you_mean(str(key), SCHEDULE_KEYS)}"))
        elif key in ("day_or", "replaces") and refused:
            causes.append((key, repr(key)))
        elif key == "interval" and (text or refused):
            causes.append(
                (key, f"interval {interval!r}" + (" (text, not seconds)" if text and not placeholder else ""))
            )
    ranges = ([(None, "3.1.14" if placeholder else "3.4.18")] if text else []) + refused
    first = causes[0][0] if causes else None
    report(
        path + ((first,) if first else ()),
        f"{label}: {', '.join(c for _, c in causes) or 'these keys together'}: "
        f"Prefect {_ranges_text(ranges)} "
        "refuse it" + (" (and skip every deployment of the file)" if refused else ""),
        ranges,
    )


_BASE_KEYS = frozenset(
    ("cron", "interval", "rrule", "timezone", "anchor_date", "active", "parameters", "slug")
)
#: (first, last, keys of Prefect's raw schedule model, whether its interval is a duration rather than
#: a whole number of seconds), from 3.4.21, when that model started refusing unknown keys
_ERAS: tuple[tuple[str, str | None, frozenset[str], bool], ...] = (
    ("3.4.21", "3.4.22", _BASE_KEYS, False),
    ("3.4.23", "3.6.10", _BASE_KEYS | {"day_or"}, False),
    ("3.6.11", "3.6.16", _BASE_KEYS | {"day_or"}, True),
    ("3.6.17", None, _BASE_KEYS | {"day_or", "replaces"}, True),
)
#: the keys of Prefect's schedule types, which an item may validate as too
_TYPE_KEYS = {
    "cron": {"cron", "timezone", "day_or"},
    "interval": {"interval", "anchor_date", "timezone"},
    "rrule": {"rrule", "timezone"},
}


def _validates(schedule: dict[str, t.Any], era: tuple[str, str | None, frozenset[str], bool]) -> bool:
    """Whether one schedule item (one kind) passes the ``PrefectYamlModel`` of the versions in ``era``."""
    kinds = [k for k in _KINDS if schedule.get(k) is not None]
    if len(kinds) != 1:
        return False
    interval = schedule.get("interval")
    duration = interval is None or _is_duration(interval)
    whole = (
        interval is None
        or (isinstance(interval, str) and interval.strip().isdigit())
        or (
            isinstance(interval, (int, float))
            and not isinstance(interval, bool)
            and float(interval).is_integer()
        )
    )
    raw = set(schedule) <= era[2] and (duration if era[3] else whole)
    typed = set(schedule) <= _TYPE_KEYS[kinds[0]] and duration
    return raw or typed


def _is_duration(value: t.Any) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, (int, float)) or (
        isinstance(value, str) and bool(_ISO_DURATION.match(value.strip()))
    )


def _refusing_eras(schedule: dict[str, t.Any]) -> list[Range]:
    """The version ranges (from 3.4.21) whose ``PrefectYamlModel`` refuses this item, adjacent ones joined."""
    out: list[Range] = []
    joined = False
    for era in _ERAS:
        if _validates(schedule, era):
            joined = False
        elif joined:
            out[-1] = (out[-1][0], era[1])
        else:
            out.append((era[0], era[1]))
            joined = True
    return out


def _ranges_text(ranges: t.Sequence[Range]) -> str:
    parts = [
        f"before {_next(hi)}" if lo is None else f"{lo} and later" if hi is None else f"{lo}–{hi}"
        for lo, hi in ranges
    ]
    return ", ".join(parts[:-1]) + (" and " if len(parts) > 1 else "") + parts[-1]


def _next(version: str | None) -> str:
    """``3.4.18`` → ``3.4.19`` (how a "before" range is written)."""
    head, _, last = str(version).rpartition(".")
    return f"{head}.{int(last) + 1}"
