"""What Prefect would not understand in a file (``stepengine validate --prefect-compatible``).

stepengine runs every Prefect file unchanged, but a file that uses stepengine's own features no longer
runs the same under Prefect: Prefect passes control keys (``if``, ``retries``…) to the step function as
arguments, ignores ``finally`` sections, leaves Jinja expressions (``{{ $X | default('a') }}``) as
literal text, and imports a step only by its full dotted path. Each use is reported as a warning
located in the file.
"""

from __future__ import annotations

import typing as t

from stepengine.config import CONTROL_KEYS, FINALLY, Config, Step
from stepengine.errors import Issue
from stepengine.templating import find_placeholders, iter_strings

__all__ = ["prefect_issues"]


def prefect_issues(config: Config, *, severity: str = "warning") -> list[Issue]:
    """Every key and feature of ``config`` that Prefect would not understand, in file order."""
    issues: list[Issue] = []

    def issue(message: str, line: int | None, col: int | None, path: str = "") -> None:
        issues.append(Issue(message, config.file, line, col, path, severity))

    document = config.document
    position = document.position if document is not None else (lambda path: None)
    if config.sections.get(FINALLY) is not None or (config.data.get(FINALLY) is not None):
        line, col = position((FINALLY,)) or (None, None)
        issue("'finally' is a stepengine section: Prefect does not run it", line, col, FINALLY)
    for deployment in config.deployments:
        if FINALLY in deployment.sections:
            line, col = position(("deployments", deployment.index, FINALLY)) or (None, None)
            issue(
                f"deployment {deployment.name!r}: 'finally' is a stepengine section: Prefect does not run it",
                line,
                col,
                f"deployments[{deployment.index}].finally",
            )
    seen: set[tuple[t.Any, ...]] = set()
    for step in _all_steps(config):
        if step.path in seen:
            continue
        seen.add(step.path)
        issues.extend(_step_issues(step, severity))
    issues.sort(key=lambda i: (i.line or 0, i.col or 0))
    return issues


def _all_steps(config: Config) -> t.Iterator[Step]:
    for steps in config.sections.values():
        yield from steps
    for deployment in config.deployments:
        for steps in deployment.sections.values():
            yield from steps


def _step_issues(step: Step, severity: str) -> list[Issue]:
    from stepengine.schema import format_path

    out = []

    def at(key: str | None) -> tuple[int | None, int | None]:
        return step.argument_positions.get(key, (step.line, step.col)) if key else (step.line, step.col)

    if "." not in step.function.replace(":", "."):
        suggestion = _dotted_alias(step.function)
        hint = f"; write {suggestion}" if suggestion else ""
        out.append(
            Issue(
                f"{step.label}: Prefect imports a step by its full dotted path, not {step.function!r}{hint}",
                step.file,
                step.line,
                step.col,
                format_path(step.path),
                severity,
            )
        )
    for key in sorted(step.controls, key=lambda k: at(k)):
        if key in CONTROL_KEYS:
            line, col = at(key)
            out.append(
                Issue(
                    f"{step.label}: {key!r} is a stepengine control key: Prefect would pass it to the "
                    "step as an argument",
                    step.file,
                    line,
                    col,
                    format_path(step.path + (key,)),
                    severity,
                )
            )
    for key, value in step.arguments.items():
        for text in iter_strings(value):
            for placeholder in find_placeholders(text):
                if placeholder.kind == "expression":
                    line, col = at(key)
                    out.append(
                        Issue(
                            f"{step.label}: {placeholder.text} is a Jinja expression: Prefect would leave "
                            "it as literal text",
                            step.file,
                            line,
                            col,
                            format_path(step.path + (key,)),
                            severity,
                        )
                    )
    return out


def _dotted_alias(name: str) -> str | None:
    """The Prefect dotted name registered for the same step as a short name (``git_clone`` →
    ``prefect.deployments.steps.git_clone``), if there is one."""
    from stepengine.registry import Registry

    try:
        names = Registry().names()
    except Exception:  # a broken entry point must not break validation
        return None
    candidates = sorted(
        n for n in names if n.endswith("." + name) and n.split(".", 1)[0].startswith("prefect")
    )
    # the current spelling (prefect.deployments…), not Prefect 2.10-2.16's prefect.projects alias
    return min(candidates, key=lambda n: (".projects." in n, len(n))) if candidates else None
