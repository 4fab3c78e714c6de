"""``stepengine flows register|ls``: record the project's flows in .prefect/flows.json."""

from __future__ import annotations

import click


@click.group("flows")
def command() -> None:
    """Find @flow functions by reading the source, and list the recorded ones."""


@command.command("register")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
def register(paths: tuple[str, ...]) -> None:
    """Record the @flow functions in PATHS (files or directories) in .prefect/flows.json."""
    from stepengine.project.flows import register_flows

    total = 0
    for path in paths:
        for flow in register_flows(path):
            total += 1
            click.echo(f"registered {flow.name} ({flow.entrypoint})", err=True)
    if not total:
        click.echo("no @flow functions found", err=True)
        raise click.exceptions.Exit(1)


@command.command("ls")
@click.option("--json", "as_json", is_flag=True, help="Print .prefect/flows.json's content.")
def ls(as_json: bool) -> None:
    """List the registered flows: name, entrypoint, parameters."""
    import json

    from stepengine.project.flows import load_registry

    registry = load_registry()
    if as_json:
        click.echo(json.dumps(registry, indent=2))
        return
    if not registry:
        click.echo("no flows registered (stepengine flows register PATH)", err=True)
        return
    width = max(len(name) for name in registry)
    for name, record in sorted(registry.items()):
        properties = (record.get("parameter_openapi_schema") or {}).get("properties") or {}
        click.echo(
            f"{name:<{width}}  {record.get('entrypoint', '')}  ({', '.join(properties) or 'no parameters'})"
        )
