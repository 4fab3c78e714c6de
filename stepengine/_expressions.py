"""Jinja2 expressions: the one owner of compiling, the ``$NAME`` rule, the sandbox, the names an
expression sees and the translation of Jinja's errors into ``TemplateError``.

Two places use expressions: ``{{ … }}`` beyond Prefect's plain placeholder grammar (``evaluate``), and a
step's ``if:`` (``stepengine.control`` builds its extra names and calls ``evaluate_with``). Evaluated in
an ``ImmutableSandboxedEnvironment`` with ``StrictUndefined``: no attribute access to internals, no
mutation, and a name that does not exist is an error rather than an empty string. ``$NAME`` is
accepted as shorthand for ``env.NAME`` (outside string literals: ``'$HOME'`` stays text). Jinja is
imported only when a file uses one.
"""

from __future__ import annotations

import functools
import re
import typing as t

from stepengine.errors import TemplateError

if t.TYPE_CHECKING:
    from jinja2.environment import TemplateExpression
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    from stepengine.templating import TemplateContext

__all__ = ["check_syntax", "compile_expression", "env_shorthand", "evaluate", "evaluate_with", "names"]

#: a quoted string (Jinja's rule: either quote, backslash escapes), or ``$NAME`` outside one
_DOLLAR_RE = re.compile(r"""('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")|(?<!\w)\$([A-Za-z_]\w*)""", re.DOTALL)


def env_shorthand(expression: str) -> str:
    """``$NAME`` → ``env['NAME']``, leaving string literals alone (``'$HOME'`` is text)."""
    if "$" not in expression:
        return expression
    return _DOLLAR_RE.sub(lambda m: m.group(1) or f"env[{m.group(2)!r}]", expression)


#: the most characters or items ``text * n`` may make, and the most bits ``a * b`` / ``a ** b`` may
#: give an integer (Python's own limit for turning one into text is 4,300 digits, ~14,300 bits)
MAX_REPEAT = 1_000_000
MAX_INT_BITS = 14_000


@functools.lru_cache(maxsize=1)
def _environment() -> ImmutableSandboxedEnvironment:
    from jinja2 import StrictUndefined
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class _Bounded(ImmutableSandboxedEnvironment):
        """The sandbox, with what a few bytes can expand to bounded (issue 14): ``*`` and ``**``
        (``{{ 'a' * 10**10 }}``, ``{{ 2**10**10 }}``), a width in a ``%`` or ``str.format`` pattern
        (``{{ '%999999999d' % 1 }}``), and a size given to a filter, global or method
        (``{{ 'a'|center(10**9) }}``, ``{{ lipsum(10**9) }}``, ``{{ 'a'.zfill(10**9) }}``) would
        otherwise take the whole memory or never end. Intercepted operators are never folded at
        compile time either."""

        intercepted_binops = frozenset({"*", "**", "%"})

        def __init__(self, **options: t.Any) -> None:
            super().__init__(**options)
            self.filters = {name: _bounded(f, pattern=name == "format") for name, f in self.filters.items()}
            self.globals = {name: _bounded(f) if callable(f) else f for name, f in self.globals.items()}

        def call_binop(self, context: t.Any, operator: str, left: t.Any, right: t.Any) -> t.Any:
            _check_size(operator, left, right)
            return super().call_binop(context, operator, left, right)

        def wrap_str_format(self, value: t.Any) -> t.Any:
            wrapper = super().wrap_str_format(value)
            if wrapper is not None:  # the arguments are values to insert; the pattern holds the sizes
                _check_pattern(value.__self__)
                vars(wrapper)["stepengine_format"] = True  # (a mark on the function object)
            return wrapper

        def call(__self, __context: t.Any, __obj: t.Any, *args: t.Any, **kwargs: t.Any) -> t.Any:
            if not getattr(__obj, "stepengine_format", False):
                _check_arguments(args, kwargs)
            return super().call(__context, __obj, *args, **kwargs)

    return _Bounded(undefined=StrictUndefined, autoescape=False)


def _bounded(function: t.Callable[..., t.Any], *, pattern: bool = False) -> t.Callable[..., t.Any]:
    """A filter or global whose size arguments (every argument after the value it applies to) are
    bounded; for the ``format`` filter, the widths in its pattern (its arguments are values)."""
    if not callable(function) or isinstance(function, type):
        return function
    skip = 2 if getattr(function, "jinja_pass_arg", None) is not None else 1

    @functools.wraps(function)
    def bounded(*args: t.Any, **kwargs: t.Any) -> t.Any:
        if pattern:
            if len(args) >= skip and isinstance(args[skip - 1], str):
                _check_pattern(args[skip - 1])
        else:
            _check_arguments(args[skip:], kwargs)
        return function(*args, **kwargs)

    return bounded


def _check_arguments(args: t.Sequence[t.Any], kwargs: t.Mapping[str, t.Any]) -> None:
    from jinja2.exceptions import SecurityError

    for value in (*args, *kwargs.values()):
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_REPEAT:
            raise SecurityError(f"an argument over {MAX_REPEAT:,} (a size could take the whole memory)")


_WIDE = re.compile(r"\d{7,}")


def _check_pattern(pattern: str) -> None:
    from jinja2.exceptions import SecurityError

    if _WIDE.search(pattern):
        raise SecurityError(f"a width or precision over {MAX_REPEAT:,} in a format pattern")


def _check_size(operator: str, left: t.Any, right: t.Any) -> None:
    from jinja2.exceptions import SecurityError

    def is_int(value: t.Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool)

    if operator == "%":
        if isinstance(left, str):
            _check_pattern(left)
        return
    if operator == "*":
        for sequence, times in ((left, right), (right, left)):
            if (
                isinstance(sequence, (str, list, tuple))
                and is_int(times)
                and len(sequence) * times > MAX_REPEAT
            ):
                raise SecurityError(f"the result would have more than {MAX_REPEAT:,} characters or items")
        if is_int(left) and is_int(right) and abs(left).bit_length() + abs(right).bit_length() > MAX_INT_BITS:
            raise SecurityError("the result would be an integer too large to use")
    elif is_int(left) and is_int(right) and right > 0 and abs(left) > 1:
        if abs(left).bit_length() * right > MAX_INT_BITS:
            raise SecurityError("the result would be an integer too large to use")


def compile_expression(expression: str, label: str | None = None) -> TemplateExpression:
    """The compiled expression (cached). A ``TemplateError`` naming it as ``label`` (default
    ``{{ expression }}``) when it is not a valid expression."""
    return _compile(expression, label if label is not None else f"{{{{ {expression} }}}}")


@functools.lru_cache(maxsize=512)
def _compile(expression: str, label: str) -> TemplateExpression:
    import jinja2

    try:
        return _environment().compile_expression(env_shorthand(expression), undefined_to_none=False)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(f"{label} is not a valid expression: {exc.message}") from None
    except Exception as exc:  # compiling folds constants, which can fail (a literal too long to print)
        raise TemplateError(f"{label} is not a valid expression: {type(exc).__name__}: {exc}") from None


def check_syntax(expression: str) -> None:
    """Raise ``TemplateError`` when ``expression`` is not a valid Jinja2 expression (nothing evaluated)."""
    compile_expression(expression)


def names(
    outputs: t.Mapping[str, t.Any], values: t.Mapping[str, t.Any], env: t.Mapping[str, str]
) -> dict[str, t.Any]:
    """The names every expression sees: each output (and seed value) by its own name, ``outputs``
    (the same, as one mapping), ``vars`` (``values``: what the caller counts as seed values) and
    ``env``."""
    return {**outputs, "outputs": dict(outputs), "vars": dict(values), "env": dict(env)}


def evaluate_with(
    expression: str,
    names: t.Mapping[str, t.Any],
    *,
    label: str | None = None,
    hint: str | None = None,
    convert: t.Callable[[t.Any], t.Any] | None = None,
) -> t.Any:
    """Evaluate ``expression`` over ``names`` in the sandbox; ``convert`` (e.g. ``bool``) is applied to
    the value inside the same error translation. Errors are ``TemplateError`` naming it as ``label``
    (default ``{{ expression }}``); ``hint`` goes with a name that is not defined."""
    import jinja2

    label = label if label is not None else f"{{{{ {expression} }}}}"
    compiled = _compile(expression, label)
    try:
        value = compiled(**names)
        if convert is not None:
            value = convert(value)
    except jinja2.UndefinedError as exc:
        raise TemplateError(f"{label}: {exc.message}", hint=hint) from None
    except jinja2.exceptions.SecurityError as exc:
        raise TemplateError(f"{label} is not allowed: {exc}") from None
    except Exception as exc:  # an expression can raise anything (ZeroDivisionError, TypeError…)
        raise TemplateError(f"{label} failed: {type(exc).__name__}: {exc}") from None
    if isinstance(value, jinja2.Undefined):
        raise TemplateError(f"{label} is undefined")
    return value


def evaluate(expression: str, ctx: TemplateContext) -> t.Any:
    """A ``{{ … }}`` expression in a template. A template does not tell seed values from outputs (both
    live in ``ctx.namespace``), so its ``vars`` holds every name there."""
    return evaluate_with(expression, names(ctx.namespace, ctx.namespace, ctx.env))
