"""``stepengine steps``: every installed step, where it comes from and how to call it."""

from __future__ import annotations

import typing as t

import click

from stepengine.cli._convention import JSON_FLAG, Command, output_option, verbosity_options

if t.TYPE_CHECKING:
    from stepengine.registry import Registration


@click.command("steps", cls=Command, old_spellings=[JSON_FLAG])
@click.argument("pattern", required=False)
@click.option(
    "--short", is_flag=True, help="One line per step function: name → function, its other names grouped."
)
@output_option("json: the list as JSON.")
@verbosity_options(verbose="Print each step's whole docstring.")
def command(pattern: str | None, short: bool, output: str, quiet: bool, verbose: bool) -> None:
    """List the installed steps: name, distribution, signature, first docstring line.

    PATTERN keeps the steps whose name or function contains it (case-insensitive), or matches it
    when it has wildcards: `stepengine steps git`, `stepengine steps 'prefect_aws.*'`.
    """
    import json

    from stepengine.registry import Registry

    as_json = output == "json"

    registrations = Registry().registrations()
    rows = []
    for name, regs in sorted(registrations.items()):
        for reg in regs:
            if pattern and not _matches(pattern, name, reg.value):
                continue
            row: dict[str, str | bool | None] = {
                "name": name,
                "distribution": reg.distribution,
                "version": reg.version,
                "target": reg.value,
            }
            if len(regs) > 1:
                row["conflict"] = True
            rows.append((row, reg))
    if short:
        groups = _group(rows)
        if as_json:
            click.echo(json.dumps(groups, indent=2))
        else:
            width = min(max((len(g["name"]) for g in groups), default=0), 28)
            for group in groups:
                also = f"  (also {', '.join(group['aliases'])})" if group["aliases"] else ""
                click.echo(f"{group['name']:<{width}}  → {group['target']}{also}")
        _say_none(pattern, rows, quiet)
        return
    for row, reg in rows:
        row.update(_describe(reg))
    if as_json:
        click.echo(json.dumps([{k: v for k, v in row.items() if k != "doc"} for row, _ in rows], indent=2))
        _say_none(pattern, rows, quiet)
        return
    for row, _ in rows:
        source = f"{row['distribution']} {row['version']}" if row["distribution"] else "?"
        flag = "  [CONFLICT: registered by more than one distribution]" if row.get("conflict") else ""
        click.echo(f"{row['name']}{row['signature']}{flag}")
        click.echo(f"    from {source} ({row['target']})")
        doc = row["doc"]
        if verbose and isinstance(doc, str) and doc:
            click.echo("\n".join(f"    {line}".rstrip() for line in doc.splitlines()))
        elif row["summary"]:
            click.echo(f"    {row['summary']}")
    _say_none(pattern, rows, quiet)


def _matches(pattern: str, name: str, target: str) -> bool:
    import fnmatch

    pattern = pattern.lower()
    if any(c in pattern for c in "*?["):
        return fnmatch.fnmatchcase(name.lower(), pattern) or fnmatch.fnmatchcase(target.lower(), pattern)
    return pattern in name.lower() or pattern in target.lower()


def _group(rows: list[tuple[dict[str, t.Any], t.Any]]) -> list[dict[str, t.Any]]:
    """One entry per (distribution, function): the shortest name first, the others as aliases."""
    by_target: dict[tuple[t.Any, str], list[str]] = {}
    for row, _ in rows:
        by_target.setdefault((row["distribution"], row["target"]), []).append(row["name"])
    groups = []
    for (distribution, target), names in by_target.items():
        # short names first, then Prefect's current paths before its 2.10-2.16 `projects` ones
        names.sort(key=lambda n: (n.count("."), ".projects." in n, len(n), n))
        groups.append(
            {"name": names[0], "target": target, "distribution": distribution, "aliases": names[1:]}
        )
    return sorted(groups, key=lambda g: g["name"])


def _describe(reg: Registration) -> dict[str, str]:
    import inspect

    try:
        func = reg.entry_point.load()
        doc = (inspect.getdoc(func) or "").strip()
        return {
            "signature": str(inspect.signature(func)),
            "summary": doc.splitlines()[0] if doc else "",
            "doc": doc,
        }
    except Exception as exc:  # a broken plug-in is listed, not fatal
        summary = f"(cannot be imported: {type(exc).__name__}: {exc})"
        return {"signature": "", "summary": summary, "doc": summary}


def _say_none(pattern: str | None, rows: list[t.Any], quiet: bool) -> None:
    if pattern and not rows and not quiet:
        click.echo(f"no installed step matches {pattern!r}", err=True)
