"""Plan: what a run would do — every step checked and its inputs templated — without running anything.

``plan`` goes through the same checks as ``run`` (schema, step lookup, arguments, control keys,
references) and then renders each step's arguments with everything known before the run: ``--var``
values, saved outputs, environment variables, blocks and variables. A value that depends on the output
of an earlier step is shown as ``<from clone.directory>``. Secrets are masked in the result, as in
every other output. Problems found while templating (an unset environment variable, a missing block)
are collected, not raised, so one plan shows them all.
"""

from __future__ import annotations

import typing as t

from stepengine.config import RunOptions, Step
from stepengine.errors import Issue, StoreError, TemplateError
from stepengine.templating import (
    MISSING,
    Lookup,
    Placeholder,
    TemplateContext,
    render_arguments,
    resolve,
    value_at,
)

if t.TYPE_CHECKING:
    from typing_extensions import Unpack

    from stepengine.api import RunFields, Source

__all__ = ["Plan", "PlannedStep", "plan"]


class Deferred(str):
    """A value known only at run time: ``<from clone.directory>``."""

    __slots__ = ()


class PlannedStep(t.NamedTuple):
    step: Step
    #: the arguments as the step would receive them (masked; ``<from …>`` for run-time values)
    inputs: dict[str, t.Any]
    #: the control keys as written (``if``, ``retries``…)
    controls: dict[str, t.Any]
    #: ``true`` / ``false`` when the ``if`` can be decided now (assuming earlier steps succeed),
    #: ``None`` when it is decided at run time or the step has no ``if``
    condition: bool | None


class Plan(t.NamedTuple):
    steps: list[PlannedStep]
    #: problems found while templating (each names the file, line and step)
    issues: list[Issue]

    def to_dict(self) -> dict[str, t.Any]:
        """A JSON-ready form (``stepengine plan --output json``)."""
        out = []
        for planned in self.steps:
            step = planned.step
            entry: dict[str, t.Any] = {
                "section": step.section,
                "index": step.index,
                "function": step.function,
                "location": step.location,
                "inputs": planned.inputs,
            }
            if step.id:
                entry["id"] = step.id
            if planned.controls:
                entry["controls"] = planned.controls
            if "if" in planned.controls:
                entry["if_now"] = planned.condition
            out.append(entry)
        return {"steps": out, "problems": [issue.render() for issue in self.issues]}


def _plan_lookup(context: TemplateContext, after_steps: bool) -> Lookup:
    """Templating where outputs of earlier steps are not known yet: they become ``Deferred``.
    ``after_steps``: an earlier step exists, so a name may be one of its outputs (merged flat, as
    Prefect does)."""

    def lookup(placeholder: Placeholder) -> t.Any:
        if placeholder.kind == "output":
            if after_steps and value_at(context.namespace, placeholder.parts) is MISSING:
                return Deferred(f"<from {placeholder.name}>")
        elif placeholder.kind == "expression":
            from stepengine._expressions import check_syntax

            check_syntax(placeholder.name)  # a syntax error is a problem now, not at run time
            try:
                return resolve(placeholder, context)
            except TemplateError:
                if after_steps:
                    return Deferred(f"<from {{{{ {placeholder.name} }}}}>")
                raise
        return resolve(placeholder, context)

    return lookup


def plan(source: Source, options: RunOptions | None = None, **fields: Unpack[RunFields]) -> Plan:
    """Check and template every step a run would run, running nothing.

    Raises ``ValidationError`` / ``ConfigError`` as ``run`` would before starting; problems found
    while templating are returned in ``Plan.issues`` (the CLI then exits 2).

    Example::

        result = plan("prefect.yaml", sections=["pull"], values={"branch": "main"})
        for planned in result.steps:
            print(planned.step.label, planned.inputs)

    ``options`` and the keywords are ``run``'s (a ``RunOptions``; ``install_requires`` is ignored).
    """
    import os

    from stepengine.api import run_options
    from stepengine.checks import check_sections, config_of, prepare, select_steps, steps_for
    from stepengine.control import Controls, evaluate_condition
    from stepengine.masking import run_masker
    from stepengine.registry import Registry

    opts = run_options(options, fields, "plan")
    config = config_of(source, opts.strict)
    env = os.environ if opts.env is None else opts.env
    registry = Registry(opts.steps)
    masker = run_masker(None, env)
    chosen = select_steps(
        steps_for(config, check_sections(opts.sections), opts.deployment),
        from_step=opts.from_step,
        only=opts.only,
    )
    allow_missing = opts.allow_missing
    prepare(chosen, registry, known_names=set(opts.values or ()), allow_missing=allow_missing, config=config)
    seeded = dict(opts.values or {})
    context = TemplateContext(
        dict(seeded), env=env, resolver=opts.resolver, allow_missing=allow_missing, masker=masker
    )
    planned: list[PlannedStep] = []
    issues: list[Issue] = []
    outcomes: dict[str, str] = {}
    for position, step in enumerate(chosen):
        lookup = _plan_lookup(context, after_steps=position > 0)
        inputs = {}
        for key in step.arguments:
            # one argument at a time, so that every problem of every argument is reported
            single = step.replace(arguments={key: step.arguments[key]})
            try:
                inputs.update(render_arguments(single, context, lookup))
            except TemplateError as exc:
                issues.append(Issue(_strip_location(exc), exc.file, exc.line, exc.col))
                inputs[key] = Deferred("<error: see below>")
            except StoreError as exc:
                line, col = step.argument_positions.get(key, (step.line, step.col))
                hint = f"\nhint: {exc.hint}" if exc.hint else ""
                issues.append(Issue(f"{step.label}: {exc.message}{hint}", step.file, line, col))
                inputs[key] = Deferred("<error: see below>")
        condition = None
        controls = Controls.of(step.controls) if step.controls else None
        if controls is not None and controls.condition is not None:
            try:
                condition = evaluate_condition(
                    controls.condition,
                    namespace=context.namespace,
                    values=seeded,
                    env=env,
                    outcomes=outcomes,
                    failed=False,
                )
            except TemplateError:
                condition = None  # it needs outputs: decided at run time
        if step.id:
            outcomes[step.id] = "success"
        planned.append(PlannedStep(step, inputs, dict(step.controls), condition))
    # Mask at the end: a secret found while templating a later step is masked everywhere.
    masked = [
        p._replace(inputs=masker.mask_data(p.inputs), controls=masker.mask_data(p.controls)) for p in planned
    ]
    issues = [i._replace(message=masker.mask(i.message)) for i in issues]
    return Plan(masked, issues)


def _strip_location(exc: TemplateError) -> str:
    """The error's text without its ``file:line:col:`` prefix (the ``Issue`` renders that)."""
    text = exc.message
    prefix = ""
    if exc.file:
        prefix = f"{exc.file}:{exc.line}:{exc.col}: " if exc.line is not None and exc.col is not None else ""
    if prefix and text.startswith(prefix):
        text = text[len(prefix) :]
    if exc.hint:
        text += f"\nhint: {exc.hint}"
    return text
