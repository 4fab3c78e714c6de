"""``stepengine validate``: report every problem in a prefect.yaml without running anything."""

from __future__ import annotations

import re
import typing as t

import click

from stepengine.cli._convention import Command, output_option, print_json, say, verbosity_options
from stepengine.cli._options import parse_vars, section_options, strict_option, var_option

if t.TYPE_CHECKING:
    from stepengine.config import Config
    from stepengine.errors import Issue


@click.command("validate", cls=Command)
@click.argument("files", nargs=-1, type=click.Path(dir_okay=False))
@section_options
@var_option
@strict_option
@click.option(
    "--prefect-compatible",
    is_flag=True,
    help="Also warn about every stepengine-only key and feature Prefect would not understand "
    "(errors with --strict).",
)
@output_option('json: one object per file ({"file", "valid", "errors", "warnings"}) in a JSON list.')
@verbosity_options(
    quiet="Print only the problems.", verbose="Also count each valid file's sections, steps and deployments."
)
def command(
    files: tuple[str, ...],
    sections: tuple[str, ...],
    deployment: str | None,
    variables: tuple[str, ...],
    strict: bool,
    prefect_compatible: bool,
    output: str,
    quiet: bool,
    verbose: bool,
) -> None:
    """Check FILES (default: prefect.yaml): schema, step names, step arguments, references."""
    reports = [
        _check(file, sections, deployment, parse_vars(variables), strict, prefect_compatible)
        for file in files or ("prefect.yaml",)
    ]
    failed = [report for report in reports if not report["valid"]]
    if output == "json":
        print_json([{k: v for k, v in report.items() if not k.startswith("_")} for report in reports])
        if failed:
            n = sum(len(report["errors"]) for report in failed)
            click.echo(f'error: {n} problem{"s" if n != 1 else ""} found (listed in "errors")', err=True)
    else:
        for report in reports:
            for line in report["_lines"]:  # the problems and warnings found: -q keeps them
                click.echo(line, err=True)
            if report["valid"]:
                say(report["_verdict"] + (f" ({report['_counts']})" if verbose else ""), quiet)
    if failed:
        raise click.exceptions.Exit(2)


#: a warning kept as rendered text (``stepengine.Config.warnings``): its location, read back
_LOCATED = re.compile(r"(?:warning: )?(?P<file>[^:\n]+):(?P<line>\d+):(?P<col>\d+): (?P<message>.*)", re.S)


def _issue(issue: Issue) -> dict[str, t.Any]:
    """An ``Issue`` as JSON data: message, file, line, col, path."""
    found = _LOCATED.fullmatch(issue.message) if issue.file is None else None
    if found:
        return {
            "message": found["message"],
            "file": found["file"],
            "line": int(found["line"]),
            "col": int(found["col"]),
            "path": issue.path,
        }
    return {
        "message": issue.message.removeprefix("warning: "),
        "file": issue.file,
        "line": issue.line,
        "col": issue.col,
        "path": issue.path,
    }


def _check(
    file: str,
    sections: tuple[str, ...],
    deployment: str | None,
    values: dict[str, str],
    strict: bool,
    prefect_compatible: bool,
) -> dict[str, t.Any]:
    """One file's report: the problems and warnings, as data and as the lines text output shows."""
    import stepengine

    report: dict[str, t.Any] = {"file": file, "valid": True, "errors": [], "warnings": [], "_lines": []}
    lines: list[str] = report["_lines"]
    try:
        warnings = stepengine.validate(
            file, sections=list(sections) or None, deployment=deployment, values=values, strict=strict
        )
    except stepengine.ValidationError as exc:
        report["warnings"] = [_issue(w) for w in exc.warnings]
        report["errors"] = [_issue(i) for i in exc.issues]
        lines.extend([*(w.render() for w in exc.warnings), str(exc)])
        report["valid"] = False
        return report
    except stepengine.ConfigError as exc:
        report["errors"] = [
            {"message": exc.message, "file": exc.file, "line": exc.line, "col": exc.col, "path": ""}
        ]
        lines.append(str(exc))
        report["valid"] = False
        return report
    report["warnings"] = [_issue(w) for w in warnings]
    lines.extend(warning.message for warning in warnings)
    report["_verdict"] = f"{file}: valid"
    config = stepengine.load(file)
    report["_counts"] = _counts(config)
    if prefect_compatible:
        from stepengine.compat import prefect_issues

        incompatible = prefect_issues(config, severity="error" if strict else "warning")
        for issue in incompatible:
            lines.append(issue.render() if not strict else "error: " + issue.render())
        if incompatible and strict:
            report["valid"] = False
            report["errors"] = [_issue(i) for i in incompatible]
            return report
        report["warnings"] += [_issue(i) for i in incompatible]
        if incompatible:
            n = len(incompatible)
            report["_verdict"] = (
                f"{file}: valid, but Prefect would not run it the same ({n} warning{'s' if n != 1 else ''})"
            )
    return report


def _counts(config: Config) -> str:
    steps = sum(len(steps) for steps in config.sections.values())
    n_sections, n_deployments = len(config.sections), len(config.deployments)
    return (
        f"{n_sections} section{'s' if n_sections != 1 else ''}, {steps} step{'s' if steps != 1 else ''}, "
        f"{n_deployments} deployment{'s' if n_deployments != 1 else ''}"
    )
