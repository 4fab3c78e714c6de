"""``stepengine flows register|ls``: record the project's flows in .prefect/flows.json."""

from __future__ import annotations

import typing as t

import click

from stepengine.cli._convention import JSON_FLAG, Group, output_option, print_json, say, verbosity_options


@click.group("flows", cls=Group)
def command() -> None:
    """Find @flow functions by reading the source, and list the recorded ones."""


@command.command("register")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@output_option("json: the flows registered, as .prefect/flows.json records them.")
@verbosity_options(verbose="Also print each flow's parameters.")
def register(paths: tuple[str, ...], output: str, quiet: bool, verbose: bool) -> None:
    """Record the @flow functions in PATHS (files or directories) in .prefect/flows.json."""
    from stepengine.project.flows import register_flows

    found = [flow for path in paths for flow in register_flows(path)]
    if output == "json":
        print_json({flow.name: flow.to_json() for flow in found})
    else:
        for flow in found:  # what was done, not data asked for: on stderr, as every such note
            say(f"registered {flow.name} ({flow.entrypoint})", quiet)
            if verbose:
                say(f"  parameters: {_parameters(flow.parameters, types=True)}", quiet)
    if not found:
        say("no @flow functions found", quiet)
        raise click.exceptions.Exit(1)


@command.command("ls", old_spellings=[JSON_FLAG])
@output_option("json: .prefect/flows.json's content.")
@verbosity_options(verbose="Also print each parameter's type and each flow's description.")
def ls(output: str, quiet: bool, verbose: bool) -> None:
    """List the registered flows: name, entrypoint, parameters."""
    from stepengine.project.flows import load_registry

    registry = load_registry()
    if output == "json":
        print_json(registry)
        return
    if not registry:
        say("no flows registered (stepengine flows register PATH)", quiet)
        return
    width = max(len(name) for name in registry)
    for name, record in sorted(registry.items()):
        parameters = _parameters(record.get("parameter_openapi_schema"), types=verbose)
        click.echo(f"{name:<{width}}  {record.get('entrypoint', '')}  ({parameters})")
        if verbose and record.get("description"):
            click.echo(f"{'':<{width}}  {record['description']}")


def _parameters(schema: t.Any, *, types: bool) -> str:
    properties = (schema or {}).get("properties") or {}
    if not types:
        return ", ".join(properties) or "no parameters"
    shown = [
        f"{name}: {spec.get('type', 'any')}" if isinstance(spec, dict) else name
        for name, spec in properties.items()
    ]
    return ", ".join(shown) or "no parameters"
