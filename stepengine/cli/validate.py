"""``stepengine validate``: report every problem in a prefect.yaml without running anything."""

from __future__ import annotations

import click

from stepengine.cli._options import parse_vars, section_options, strict_option, var_option


@click.command("validate")
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
def command(
    files: tuple[str, ...],
    sections: tuple[str, ...],
    deployment: str | None,
    variables: tuple[str, ...],
    strict: bool,
    prefect_compatible: bool = False,
) -> None:
    """Check FILES (default: prefect.yaml): schema, step names, step arguments, references."""
    import stepengine

    failed = False
    for file in files or ("prefect.yaml",):
        try:
            warnings = stepengine.validate(
                file,
                sections=list(sections) or None,
                deployment=deployment,
                values=parse_vars(variables),
                strict=strict,
            )
        except stepengine.ConfigError as exc:
            for warning in getattr(exc, "warnings", ()):
                click.echo(warning.render(), err=True)
            click.echo(str(exc), err=True)
            failed = True
            continue
        for warning in warnings:
            click.echo(warning.message, err=True)
        if prefect_compatible:
            from stepengine.compat import prefect_issues

            incompatible = prefect_issues(stepengine.load(file), severity="error" if strict else "warning")
            for issue in incompatible:
                click.echo(issue.render() if not strict else "error: " + issue.render(), err=True)
            if incompatible and strict:
                failed = True
                continue
            if incompatible:
                n = len(incompatible)
                click.echo(
                    f"{file}: valid, but Prefect would not run it the same "
                    f"({n} warning{'s' if n != 1 else ''})",
                    err=True,
                )
                continue
        click.echo(f"{file}: valid", err=True)
    if failed:
        raise click.exceptions.Exit(2)
