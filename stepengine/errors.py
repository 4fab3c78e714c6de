"""The one error tree of stepengine.

    StepEngineError                 base of everything stepengine raises on purpose
    ├── ConfigError                 invalid input; nothing has run (CLI exit 2)
    │   ├── YAMLSyntaxError         the file is not YAML, or has a duplicate key
    │   ├── ValidationError         schema, step lookup or reference problems (all of them at once)
    │   ├── TemplateError           a placeholder cannot be resolved or rendered
    │   └── StepLookupError         a step name resolves to nothing importable
    ├── StepError                   raised *by a step* for an expected failure (public, for step authors)
    │   ├── ProcessError            a child process exited non-zero (argv and output masked)
    │   └── StepTimeoutError        a step ran over its timeout_seconds and was stopped (also a TimeoutError)
    ├── StepExecutionError          a step failed during a run (CLI exit 1); ``__cause__`` is the original
    └── StoreError                  a block/variable store cannot be used: corrupt file, server unreachable or
                                    refusing (CLI exit 2)

Every error carries its context as fields (``file``, ``line``, ``col``, ``section``, ``step_index``,
``step_id``, ``function``) and builds its message from them; secrets are masked when the message is
built, so ``str(error)`` is always safe to print or log.
"""

from __future__ import annotations

import typing as t

if t.TYPE_CHECKING:
    from stepengine.config import Step

__all__ = [
    "ConfigError",
    "Issue",
    "ProcessError",
    "StepEngineError",
    "StepError",
    "StepExecutionError",
    "StepLookupError",
    "StepTimeoutError",
    "StoreError",
    "TemplateError",
    "ValidationError",
    "YAMLSyntaxError",
]


def _masked(text: str) -> str:
    from stepengine.masking import current_masker

    return current_masker().mask(text)


_E = t.TypeVar("_E", bound="StepEngineError")


class StepEngineError(Exception):
    """Base class of every error stepengine raises deliberately."""

    #: process exit code the CLI uses for this error
    exit_code: int = 1

    def __init__(self, message: str = "", *, hint: str | None = None) -> None:
        self.hint = hint
        self._message = message
        super().__init__(message)

    @property
    def detail(self) -> str:
        """What went wrong, without the location or step prefix ``message`` adds and without the hint."""
        return self._message

    @property
    def message(self) -> str:
        return self._message

    def with_hint(self: _E, hint: str | None) -> _E:
        """A copy of this error with another hint (an error is never changed once raised)."""
        return self._copy(hint=hint)

    def _copy(self: _E, **fields: t.Any) -> _E:
        copy = type(self).__new__(type(self))
        copy.__dict__.update(self.__dict__)
        copy.__dict__.update(fields)
        copy.args = self.args
        copy.__cause__, copy.__suppress_context__ = self.__cause__, self.__suppress_context__
        return copy

    def __str__(self) -> str:
        text = self.message
        if self.hint:
            text = f"{text}\nhint: {self.hint}"
        return _masked(text)


def _location(file: str | None, line: int | None, col: int | None) -> str:
    if not file:
        return ""
    if line is None:
        return f"{file}: "
    if col is None:
        return f"{file}:{line}: "
    return f"{file}:{line}:{col}: "


class ConfigError(StepEngineError):
    """The input is invalid: raised before any step runs."""

    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        col: int | None = None,
        hint: str | None = None,
    ) -> None:
        self.file, self.line, self.col = file, line, col
        super().__init__(message, hint=hint)

    @property
    def message(self) -> str:
        return _location(self.file, self.line, self.col) + self._message


class YAMLSyntaxError(ConfigError):
    """The file cannot be parsed as YAML, or a mapping repeats a key."""


class Issue(t.NamedTuple):
    """One problem found during validation, located in the user's file."""

    message: str
    file: str | None = None
    line: int | None = None
    col: int | None = None
    #: where in the document, e.g. ``pull[1].prefect.deployments.steps.git_clone.branch``
    path: str = ""
    #: ``error`` or ``warning``
    severity: str = "error"

    def render(self) -> str:
        text = _location(self.file, self.line, self.col) + self.message
        if self.path:
            text += f" ({self.path})"
        if self.severity == "warning":
            text = "warning: " + text
        return text


class ValidationError(ConfigError):
    """The file is well-formed YAML but not a valid configuration. ``issues`` lists every problem."""

    def __init__(self, issues: t.Sequence[Issue]) -> None:
        self.issues = [i for i in issues if i.severity == "error"]
        #: warnings found alongside the errors (not part of the message)
        self.warnings = [i for i in issues if i.severity != "error"]
        first = self.issues[0] if self.issues else Issue("invalid configuration")
        super().__init__(first.message, file=first.file, line=first.line, col=first.col)

    @property
    def message(self) -> str:
        return "\n".join(issue.render() for issue in self.issues)


class TemplateError(ConfigError):
    """A ``{{ placeholder }}`` cannot be resolved, or its value cannot be inserted where it stands."""

    def __init__(
        self,
        message: str,
        *,
        placeholder: str | None = None,
        section: str | None = None,
        step_index: int | None = None,
        step_id: str | None = None,
        function: str | None = None,
        file: str | None = None,
        line: int | None = None,
        col: int | None = None,
        hint: str | None = None,
    ) -> None:
        self.placeholder = placeholder
        self.section, self.step_index, self.step_id, self.function = section, step_index, step_id, function
        super().__init__(message, file=file, line=line, col=col, hint=hint)

    @property
    def message(self) -> str:
        where = step_label(self.section, self.step_index, self.step_id, self.function)
        text = self._message
        if where:
            text = f"{where}: {text}"
        return _location(self.file, self.line, self.col) + text

    def locate(
        self,
        step: Step | None = None,
        *,
        argument: str | None = None,
        file: str | None = None,
        line: int | None = None,
        col: int | None = None,
        context: str = "",
    ) -> TemplateError:
        """A copy of this error placed where the template stands; this one is left as it was raised.

        ``step`` (a ``config.Step``) names the section, index, id and function, and the file, line and
        column of its ``argument`` (of the step itself when that key has no position); without a step,
        ``file``/``line``/``col`` are given directly. ``context`` goes before the text
        (``deployment 'x' → parameters: ``).
        """
        fields: dict[str, t.Any] = {}
        if step is not None:
            position = step.argument_positions.get(argument) if argument is not None else None
            line, col = position if position is not None else (step.line, step.col)
            file = step.file
            fields.update(section=step.section, step_index=step.index, step_id=step.id)
            fields["function"] = step.function
        if file is not None or step is not None:
            fields.update(file=file, line=line, col=col)
        if context:
            fields["_message"] = context + self._message
        return self._copy(**fields)


class StepLookupError(ConfigError):
    """A step's function name resolves to nothing: no entry point and no importable dotted path."""

    def __init__(self, message: str, *, function: str | None = None, **kwargs: t.Any) -> None:
        self.function = function
        super().__init__(message, **kwargs)


class StepError(StepEngineError):
    """Raise this from a step for an expected failure: the message is shown without a traceback.

    Part of the step-author API (``stepengine.step_api.StepError``).
    """


class ProcessError(StepError):
    """A child process started through ``run_process`` exited with a non-zero code."""

    def __init__(
        self,
        args: t.Sequence[str],
        returncode: int,
        *,
        stdout: str = "",
        stderr: str = "",
        hint: str | None = None,
    ) -> None:
        self.argv = list(args)
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        tail = "\n".join(stderr.strip().splitlines()[-20:])
        message = f"command `{_shell_join(self.argv)}` exited with code {returncode}"
        if tail:
            message += ":\n" + _indent(tail)
        super().__init__(message, hint=hint)


class StepTimeoutError(StepError, TimeoutError):
    """A step ran longer than its ``timeout_seconds``: it was stopped, with every child process it
    started through ``run_process`` (the whole process group). ``retry_on: [TimeoutError]`` matches it.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        super().__init__(
            f"timed out after {seconds:g} s (timeout_seconds) and was stopped, with its child processes"
        )


class StepExecutionError(StepEngineError):
    """A step raised while running. ``__cause__`` is the original exception."""

    exit_code = 1

    def __init__(
        self,
        *,
        section: str,
        step_index: int,
        step_id: str | None,
        function: str,
        file: str | None = None,
        line: int | None = None,
        col: int | None = None,
        cause: BaseException | None = None,
    ) -> None:
        self.section, self.step_index, self.step_id, self.function = section, step_index, step_id, function
        self.file, self.line, self.col = file, line, col
        self.cause = cause
        super().__init__("step failed")

    @property
    def message(self) -> str:
        where = step_label(self.section, self.step_index, self.step_id, self.function)
        cause = self.cause
        if cause is None:
            reason = "failed"
        elif isinstance(cause, StepEngineError):
            reason = f"failed: {cause.message}"
            if cause.hint:
                reason += f"\nhint: {cause.hint}"
        else:
            reason = f"failed: {type(cause).__name__}: {cause}"
        return _location(self.file, self.line, self.col) + f"{where} {reason}"


class StoreError(StepEngineError):
    """A block/variable store cannot be read or written: its file is corrupt or not a store, or a
    Prefect server is unreachable or refuses the request. The message names the store (a path or an
    API URL), never a credential."""

    exit_code = 2

    def __init__(self, message: str, *, store: str | None = None, hint: str | None = None) -> None:
        self.store = store
        super().__init__(message, hint=hint)


def short_name(function: str) -> str:
    """A step function's last name: ``git_clone`` for ``prefect.deployments.steps.git_clone`` or
    ``pkg.mod:git_clone``."""
    return function.rsplit(":", 1)[-1].rsplit(".", 1)[-1]


def step_label(section: str | None, index: int | None, step_id: str | None, function: str | None) -> str:
    """``pull[1] (clone: git_clone)`` — how every message names a step."""
    if section is None:
        return ""
    label = f"{section}[{index}]" if index is not None else section
    short = short_name(function) if function else None
    if step_id and short:
        label += f" ({step_id}: {short})"
    elif short:
        label += f" ({short})"
    return label


def _shell_join(argv: t.Sequence[str]) -> str:
    import shlex

    return shlex.join(argv)


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())
