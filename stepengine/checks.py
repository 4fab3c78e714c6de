"""Every check made before anything runs, in one place: ``validate``, ``plan``, ``run``, ``deploy`` and
``execute`` all go through here, so none of them runs a step while any problem is known.

The flow is load → **check** → template → run:

- ``load_config`` reads a prefect.yaml and, beside it, the ``deployment.yaml`` of Prefect 2.10's
  two-file layout, checks both against the schema and builds one ``Config`` from whatever is
  well-formed. Schema errors do not stop it: they travel in ``Config.problems`` and are reported
  *with* the step errors, whichever comes first in the file. Only YAML that cannot be parsed stops
  at once.
- ``prepare`` checks the steps of one run — each step's name (resolved to its function), its
  arguments against the function's signature, its control keys, the syntax of every ``{{ }}``
  (Jinja expressions compiled, nothing evaluated) and that each ``{{ id.key }}`` names an earlier
  step — and raises one ``ValidationError`` listing all of these and the config's problems, in file
  order.
- ``spec_pull_config`` checks the pull steps of a deployment spec (``execute``, a worker's pull);
  ``check_parameters`` its flow parameters against the schema from the flow's signature.
- ``select_steps``, ``check_sections``: what a caller chose to run (``--from-step``, ``--only``,
  sections) names steps and sections that exist.
- ``check_config`` is ``validate``'s walk: the top-level run and each deployment's. A step shared by
  several runs is checked once, so a file with thousands of deployments checks in linear time.
"""

from __future__ import annotations

import os
import typing as t

from stepengine.config import FINALLY, SECTIONS, Config, Deployment, Step, build_config
from stepengine.errors import ConfigError, Issue, StepLookupError, TemplateError, ValidationError
from stepengine.loader import Document, load_document

if t.TYPE_CHECKING:
    from stepengine.project.execute import SpecSource
    from stepengine.registry import Registry, StepFunction

__all__ = [
    "Checker",
    "Layout",
    "check_config",
    "check_parameters",
    "check_sections",
    "config_from_document",
    "config_of",
    "load_config",
    "load_layout",
    "prepare",
    "select_steps",
    "spec_pull_config",
    "steps_for",
]

#: Prefect 2.10's second file, read from beside prefect.yaml
DEPLOYMENT_FILE = "deployment.yaml"


# -- loading -----------------------------------------------------------------------------------------


def config_of(source: str | os.PathLike[str] | Config, strict: bool = False) -> Config:
    """The ``Config`` to check and run (``source`` a path or a ``Config`` already loaded): schema
    problems are kept in it, to be reported with the step problems before anything runs."""
    return source if isinstance(source, Config) else load_config(source, strict=strict)


def check_sections(sections: t.Sequence[str] | str | None) -> list[str] | None:
    """The sections a caller chose (one name or several), each checked to be a known one."""
    if sections is None:
        return None
    if isinstance(sections, str):
        sections = [sections]
    for section in sections:
        if section not in SECTIONS:
            raise ConfigError(f"unknown section {section!r}; sections are: {', '.join(SECTIONS)}")
    return list(sections)


def select_steps(
    steps: t.Sequence[Step], *, from_step: str | None = None, only: str | None = None
) -> list[Step]:
    """The steps to run when resuming (``from_step``: that step and every later one) or running one
    (``only``). A step is named by its id or its place (``pull[1]``, ``finally[0]``). With
    ``from_step`` the ``finally`` steps still run; with ``only`` just the named step does.
    """
    if only is None and from_step is None:
        return list(steps)
    if only is not None and from_step is not None:
        raise ConfigError("--only and --from-step cannot be used together")
    wanted = t.cast(str, only if only is not None else from_step)
    for position, step in enumerate(steps):
        if wanted in (step.id, f"{step.section}[{step.index}]"):
            if only is not None:
                return [step]
            return list(steps[position:]) + [s for s in steps[:position] if s.section == FINALLY]
    from stepengine._suggest import did_you_mean

    known = [s.id or f"{s.section}[{s.index}]" for s in steps]
    raise ConfigError(
        f"no step {wanted!r} in this run" + did_you_mean(wanted, known),
        hint=f"steps: {', '.join(known)}" if known else "this run has no steps",
    )


def spec_pull_config(spec: t.Mapping[str, t.Any], source: SpecSource | str | None = None) -> Config:
    """The pull steps of a deployment ``spec`` (``deploy``'s output, or a Prefect server's deployment)
    as a ``Config``, checked against the schema (a ``ValidationError`` lists every problem).

    Messages name the spec's file, line and column when ``source`` says where it was read from
    (``execute.SpecSource``: the file and the spec's path inside it); a text ``source`` names where
    it came from (no line: the steps did not come from a file); else the deployment.
    """
    from stepengine.schema import check_document

    label = f"deployment {spec.get('name')!r} (its spec)"
    positions: dict[tuple[t.Any, ...], tuple[int, int]] = {}
    if isinstance(source, str):
        label = source
    elif source is not None:
        try:
            located = load_document(source.file)
        except ConfigError:  # changed or removed since: errors then name the deployment only
            located = None
        if located is not None:
            label, start = source.file, (*source.prefix, "pull_steps")
            positions = {
                ("pull", *path[len(start) :]): at
                for path, at in located.positions.items()
                if path[: len(start)] == start
            }
    document = Document({"pull": list(spec.get("pull_steps") or [])}, positions, label)
    errors = [i for i in check_document(document) if i.severity == "error"]
    if errors:
        raise ValidationError(errors)
    return build_config(document)


def check_parameters(
    spec: t.Mapping[str, t.Any], *, require_all: bool, parameters: t.Mapping[str, t.Any] | None = None
) -> None:
    """Check a deployment's flow parameters (its own, or ``parameters``) against the schema recorded
    from the flow's signature; ``ConfigError`` listing every problem. ``require_all``: a run needs every
    required one (``execute``); a deployment may leave some to the run (``deploy``)."""
    import jsonschema

    schema = dict(spec.get("parameter_openapi_schema") or {})
    if not schema:
        return
    if not require_all:
        schema.pop("required", None)
    values = dict(spec.get("parameters") or {}) if parameters is None else dict(parameters)
    validator = jsonschema.Draft202012Validator(schema)
    problems = []
    known = list((schema.get("properties") or {}).keys())
    if "properties" in schema:
        from stepengine._suggest import did_you_mean

        for name in values:
            if name not in known:
                have = f" (it has: {', '.join(known)})" if known else " (it has none)"
                problems.append(
                    f"  {name}: the flow has no parameter {name!r}" + (did_you_mean(name, known) or have)
                )
    for error in sorted(validator.iter_errors(values), key=lambda e: list(e.absolute_path)):
        where = ".".join(str(p) for p in error.absolute_path)
        problems.append(f"  {where}: {error.message}" if where else f"  {error.message}")
    if problems:
        raise ConfigError(
            f"deployment {spec.get('name')!r}: parameters do not match the flow's signature "
            f"({spec.get('entrypoint')}):\n" + "\n".join(problems)
        )


def config_from_document(document: Document, *, strict: bool = False) -> Config:
    """Schema-check ``document`` and build its ``Config``; schema errors go to ``Config.problems``."""
    from stepengine.schema import check_document

    issues = check_document(document, strict=strict)
    config = build_config(document)
    errors = tuple(i for i in issues if i.severity == "error")
    warnings = tuple(i.render() for i in issues if i.severity != "error")
    if errors or warnings:
        config = config.replace(problems=errors, warnings=warnings)
    return config


class Layout(t.NamedTuple):
    """A loaded prefect.yaml, with the deployments of the ``deployment.yaml`` beside it merged in."""

    config: Config
    #: the ``deployment.yaml`` read, when the project uses the two-file layout
    deployment_file: str | None
    #: the document each deployment was read from (by position in ``config.deployments``)
    documents: tuple[Document | None, ...]


def load_layout(path: str | os.PathLike[str], *, strict: bool = False) -> Layout:
    """Read ``path`` and any ``deployment.yaml`` beside it into one ``Config`` (problems kept).

    ``deployment.yaml`` may be ``{deployments: [...]}``, a list of deployments or one deployment; its
    deployments come first (as Prefect 2.10 reads them), each still pointing at its own file and
    line. Steps stay in prefect.yaml: a top-level section in ``deployment.yaml`` is a problem.
    """
    name = os.fspath(path)
    document = load_document(name)
    if os.path.basename(name) == DEPLOYMENT_FILE:  # given on its own: its deployments, in any of its forms
        document = _wrap_deployments(document)
    config = config_from_document(document, strict=strict)
    second = os.path.join(os.path.dirname(name), DEPLOYMENT_FILE)
    if os.path.basename(name) == DEPLOYMENT_FILE or not os.path.isfile(second):
        return Layout(config, None, tuple(config.document for _ in config.deployments))
    extra = config_from_document(_wrap_deployments(load_document(second)), strict=strict)
    problems = list(config.problems) + list(extra.problems)
    for section in extra.sections:
        line, col = (extra.document.position((section,)) if extra.document else None) or (None, None)
        problems.append(
            Issue(
                f"top-level {section!r} belongs in prefect.yaml; deployment.yaml holds only deployments",
                second,
                line,
                col,
                section,
            )
        )
    deployments = (*extra.deployments, *config.deployments)
    documents = (*(extra.document for _ in extra.deployments), *(config.document for _ in config.deployments))
    merged = config.replace(
        data={**config.data, "deployments": [d.data for d in deployments]},
        deployments=deployments,
        warnings=config.warnings + extra.warnings,
        problems=tuple(problems),
    )
    return Layout(merged, second, documents)


def load_config(path: str | os.PathLike[str], *, strict: bool = False) -> Config:
    """``load_layout(path).config``: what ``run``, ``plan`` and ``validate`` read."""
    return load_layout(path, strict=strict).config


def _wrap_deployments(document: Document) -> Document:
    """A ``deployment.yaml`` may be ``{deployments: [...]}``, a list, or one deployment mapping."""
    data = document.data
    if isinstance(data, list):
        prefix: tuple[t.Any, ...] = ("deployments",)
    elif isinstance(data, dict) and "deployments" not in data and "name" in data:
        prefix = ("deployments", 0)
        data = [data]
    else:
        return document
    positions = {prefix + path: position for path, position in document.positions.items()}
    positions[()] = (1, 1)
    return Document({"deployments": data}, positions, document.file)


# -- checking steps ----------------------------------------------------------------------------------


class _StepCheck(t.NamedTuple):
    """What can be said of one step on its own (the same in every run that contains it)."""

    function: StepFunction | None
    issues: list[Issue]
    #: ``(argument, placeholder text, head)`` of each ``{{ head.key }}``: checked per run
    references: list[tuple[str, str, str]]


class Checker:
    """Checks steps; each step once, however many runs (deployments) include it."""

    def __init__(self, registry: Registry, *, install_requires: bool = False) -> None:
        self.registry = registry
        self.install_requires = install_requires
        self._memo: dict[int, tuple[Step, _StepCheck]] = {}

    def run(
        self,
        steps: t.Sequence[Step],
        known_names: t.Iterable[str] = (),
        extra_ids: t.Collection[str] = (),
        *,
        allow_missing: bool = False,
    ) -> tuple[list[tuple[Step, StepFunction]], list[Issue]]:
        """The resolved steps of one run and every problem with them. ``extra_ids``: ids of steps
        the schema rejected (a reference to one is not reported as well). ``allow_missing``: a
        ``{{ id.key }}`` naming no earlier step is not a problem (it renders as Prefect renders a
        missing value)."""
        names = known_names if isinstance(known_names, (set, frozenset)) else set(known_names)
        issues: list[Issue] = []
        resolved: list[tuple[Step, StepFunction]] = []
        ids: dict[str, None] = {}
        memo = self._memo
        for step in steps:
            hit = memo.get(id(step))
            check = hit[1] if hit is not None and hit[0] is step else self.step(step)
            if check.function is not None:
                resolved.append((step, check.function))
            issues.extend(check.issues)
            for argument, text, head in () if allow_missing else check.references:
                if head not in ids and head not in names and head not in extra_ids:
                    issues.append(_reference_issue(step, argument, text, head, ids))
            if step.id is not None:
                ids[step.id] = None
        return resolved, issues

    def step(self, step: Step) -> _StepCheck:
        hit = self._memo.get(id(step))
        if hit is not None and hit[0] is step:
            return hit[1]
        issues: list[Issue] = []
        function = self._resolve(step, issues)
        if function is not None:
            from stepengine.signatures import argument_issues

            for argument, problem in argument_issues(function.func, step.arguments):
                issues.append(_issue(step, argument, problem))
        if step.controls:
            from stepengine.control import control_issues

            for key, problem in control_issues(step.controls):
                issues.append(_issue(step, key, problem))
        references = _template_issues(step, issues)
        check = _StepCheck(function, issues, references)
        self._memo[id(step)] = (step, check)
        return check

    def _resolve(self, step: Step, issues: list[Issue]) -> StepFunction | None:
        try:
            return self.registry.resolve(step.function, requires=step.requires)
        except StepLookupError as exc:
            failure = exc
            if self.install_requires and step.requires:
                from stepengine.registry import install_requirements

                install_requirements(step.requires)
                self.registry.drop_cache()
                try:
                    return self.registry.resolve(step.function, requires=step.requires)
                except StepLookupError as again:
                    failure = again
            message = failure.detail + (f"\nhint: {failure.hint}" if failure.hint else "")
            issues.append(_issue(step, None, message))
            return None


def _issue(step: Step, argument: str | None, problem: str) -> Issue:
    from stepengine.schema import format_path

    line, col = (
        step.argument_positions.get(argument, (step.line, step.col)) if argument else (step.line, step.col)
    )
    path = format_path(step.path + ((argument,) if argument else ()))
    return Issue(f"{step.label}: {problem}", step.file, line, col, path)


def _template_issues(step: Step, issues: list[Issue]) -> list[tuple[str, str, str]]:
    """Add the syntax errors of ``step``'s placeholders to ``issues``; return its ``{{ id.key }}``
    references (checked per run: they depend on the steps before)."""
    from stepengine.templating import BLOCK_PREFIX, find_placeholders, iter_strings, split_path

    references: list[tuple[str, str, str]] = []
    for argument, value in step.arguments.items():
        if isinstance(value, str):  # the common case, without a generator
            if "{{" not in value:
                continue
            texts: t.Iterable[str] = (value,)
        else:
            texts = iter_strings(value)
        for text in texts:
            for placeholder in find_placeholders(text):
                if placeholder.kind == "output":
                    parts = split_path(placeholder.name)
                    if not parts:  # {{ . }}, {{ [] }}: not the whole namespace (issue 14)
                        issues.append(_issue(step, argument, f"{placeholder.text} names no value"))
                    elif len(parts) >= 2 and isinstance(parts[0], str):
                        references.append((argument, placeholder.text, parts[0]))
                elif placeholder.kind == "expression":
                    from stepengine._expressions import check_syntax

                    try:
                        check_syntax(placeholder.name)
                    except TemplateError as exc:
                        issues.append(_issue(step, argument, exc.detail))
                elif placeholder.kind == "block":
                    pieces = placeholder.name[len(BLOCK_PREFIX) :].split(".")
                    if len(pieces) < 2 or not all(pieces[:2]):
                        issues.append(
                            _issue(
                                step,
                                argument,
                                (
                                    f"{placeholder.text}: a block reference needs a type and a name: "
                                    "{{ prefect.blocks.<type>.<name>[.field] }}"
                                ),
                            )
                        )
    return references


def _reference_issue(step: Step, argument: str, text: str, head: str, ids: t.Collection[str]) -> Issue:
    """``{{ a.b }}`` must name a step id defined earlier in the run (or a value given with --var).
    A bare ``{{ name }}`` may be a key merged flat from any earlier output: only known at run time."""
    if head == step.id:
        return _issue(
            step, argument, f"{text} refers to this step's own id {head!r}; only earlier steps' outputs exist"
        )
    from stepengine._suggest import did_you_mean

    return _issue(
        step,
        argument,
        f"{text} refers to {head!r}, but no earlier step has that id" + did_you_mean(head, list(ids)),
    )


def _broken_ids(config: Config) -> set[str]:
    """Ids of steps the schema rejected (left out of the ``Config``): a reference to one of them is
    not an error of its own."""
    if not config.problems:
        return set()
    found: set[str] = set()

    def visit(value: t.Any) -> None:
        if isinstance(value, dict):
            step_id = value.get("id")
            if isinstance(step_id, str):
                found.add(step_id)
            for item in value.values():
                if isinstance(item, (dict, list)):
                    visit(item)
        elif isinstance(value, list):
            for item in value:
                visit(item)

    visit(config.data)
    return found


def _in_file_order(config: Config | None, issues: t.Iterable[Issue]) -> list[Issue]:
    """Each problem once, the main file's first, then by line and column. Where the schema already
    found a problem (a negative ``retries``), the step checks' word on the same value is left out."""
    said = {i.path for i in config.problems if i.path} if config is not None else set()
    problems = set(config.problems) if config is not None else set()
    unique = [i for i in dict.fromkeys(issues) if i in problems or i.path not in said]
    main = config.file if config is not None else None
    return sorted(unique, key=lambda i: (i.file != main, i.file or "", i.line or 0, i.col or 0))


def steps_for(
    config: Config, sections: t.Sequence[str] | None, deployment: str | Deployment | None
) -> list[Step]:
    """``config.steps_for``; when the deployment cannot be chosen in a file with problems, those
    problems are reported with it (a deployment the schema rejected cannot be found)."""
    from stepengine.errors import ConfigError

    try:
        return config.steps_for(sections, deployment)
    except ConfigError as exc:
        if not config.problems:
            raise
        raise ValidationError(
            _in_file_order(
                config, [*config.problems, Issue(exc.detail + (f"\nhint: {exc.hint}" if exc.hint else ""))]
            )
        ) from None


def prepare(
    steps: t.Sequence[Step],
    registry: Registry,
    *,
    known_names: t.Iterable[str] = (),
    install_requires: bool = False,
    allow_missing: bool = False,
    config: Config | None = None,
) -> list[tuple[Step, StepFunction]]:
    """Check every step of a run; raise one ``ValidationError`` listing every problem (those
    ``config`` carries from loading included). Returns each step with its resolved function.
    ``allow_missing``: references to no earlier step are not problems (``Checker.run``)."""
    extra = _broken_ids(config) if config is not None else set()
    resolved, issues = Checker(registry, install_requires=install_requires).run(
        steps, known_names, extra, allow_missing=allow_missing
    )
    problems = list(config.problems) if config is not None else []
    errors = problems + [i for i in issues if i.severity == "error"]
    if errors:
        raise ValidationError(_in_file_order(config, errors))
    return resolved


def check_config(
    config: Config,
    registry: Registry,
    *,
    sections: t.Sequence[str] | None = None,
    deployment: str | Deployment | None = None,
    values: t.Iterable[str] = (),
) -> None:
    """``validate``'s check: the chosen run, or with no ``sections``/``deployment`` the top-level
    run and every deployment's. Raises one ``ValidationError`` listing every problem."""
    checker = Checker(registry)
    names = set(values)
    extra = _broken_ids(config)
    runs: list[tuple[Deployment | str | None, t.Sequence[str] | None]] = [(deployment, sections)]
    if deployment is None and sections is None:
        runs.extend((d, None) for d in config.deployments if d.sections)
    issues: list[Issue] = list(config.problems)
    for entry, chosen in runs:
        issues.extend(checker.run(steps_for(config, chosen, entry), names, extra)[1])
    errors = [i for i in issues if i.severity == "error"]
    if errors:
        raise ValidationError(_in_file_order(config, errors))
