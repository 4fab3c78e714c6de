"""Templating: ``{{ placeholders }}`` in step arguments, resolved once, just before a step runs.

The grammar is Prefect's: ``{{ name }}`` where name is word characters, ``.``, ``-``, ``[``, ``]`` and
``$`` (spaces inside the braces allowed). Kinds, by prefix:

- ``$NAME``                               environment variable
- ``prefect.blocks.<type>.<name>[.path]`` block document data (``{"value": X}`` resolves to X)
- ``prefect.variables.<name>``            variable
- ``ctx.…``                               left untouched (a worker fills it in later)
- anything else                           step outputs / ``--var`` values: ``clone.directory``,
                                          ``build.tags[0]``, or a flat key merged from any earlier step

Rules (each a deliberate choice, see README "Templating"):

- A string that is exactly one placeholder keeps the value's type; inside longer text the value is
  inserted with ``str()`` (``None`` as ``"None"``, as Prefect does), and a dict or list there is an
  error (with ``allow_missing``, Prefect's way: its ``str()``, except for a block's).
- **Render once**: text a substitution inserted is never scanned again.
- **Strict**: an unresolvable reference is a ``TemplateError`` (with did-you-mean); ``allow_missing``
  renders as Prefect does: a missing step output as the whole value drops the key (or list item) and
  becomes ``""`` inside text; a missing environment variable or variable becomes ``""`` either way; a
  missing block stays an error (Prefect raises too).
- Blocks and variables are read from the store once per run; every reference gets its own copy.
- Anything between ``{{ }}`` beyond that grammar (``{{ $BRANCH | default('main') }}``) is a Jinja2
  expression, evaluated in an ``ImmutableSandboxedEnvironment`` with ``StrictUndefined``.
"""

from __future__ import annotations

import functools
import os
import re
import typing as t

from stepengine.errors import TemplateError

if t.TYPE_CHECKING:
    from stepengine.config import Step
    from stepengine.masking import Masker
    from stepengine.resolvers import Resolver

__all__ = [
    "Placeholder",
    "TemplateContext",
    "find_placeholders",
    "render",
    "render_arguments",
    "split_path",
    "value_at",
]

#: Prefect's placeholder grammar
PLACEHOLDER_RE = re.compile(r"\{\{\s*([\w.\-\[\]$]+)\s*\}\}")
#: any ``{{ … }}``: whatever is not a plain placeholder is a Jinja expression
_ANY_RE = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_PATH_PART_RE = re.compile(r"([^.\[\]]+)|\[(\d+)\]")

BLOCK_PREFIX = "prefect.blocks."
VARIABLE_PREFIX = "prefect.variables."
ENV_PREFIX = "$"
CTX_PREFIX = "ctx."


class _Missing:
    """Marks a value that is absent (dropped from its mapping under ``allow_missing``)."""

    def __repr__(self) -> str:
        return "<missing>"


MISSING = _Missing()


class Placeholder(t.NamedTuple):
    """One ``{{ … }}`` found in a string."""

    #: the whole match, braces included
    text: str
    #: the name or expression inside the braces, stripped
    name: str
    #: ``output``, ``env``, ``block``, ``variable``, ``ctx`` or ``expression``
    kind: str
    start: int
    end: int

    @property
    def parts(self) -> list[str | int]:
        """The path a plain placeholder names: ``build.tags[0]`` → ``["build", "tags", 0]``."""
        return split_path(self.name)


def _kind(name: str) -> str:
    if name.startswith(ENV_PREFIX):
        return "env"
    if name.startswith(BLOCK_PREFIX):
        return "block"
    if name.startswith(VARIABLE_PREFIX):
        return "variable"
    if name.startswith(CTX_PREFIX):
        return "ctx"
    return "output"


def find_placeholders(text: str) -> list[Placeholder]:
    """Every placeholder and expression in ``text``, in order."""
    if "{{" not in text:
        return []
    found = []
    for match in _ANY_RE.finditer(text):
        plain = PLACEHOLDER_RE.fullmatch(match.group(0))
        if plain:
            name = plain.group(1)
            found.append(Placeholder(match.group(0), name, _kind(name), match.start(), match.end()))
        else:
            found.append(
                Placeholder(match.group(0), match.group(1).strip(), "expression", match.start(), match.end())
            )
    return found


def iter_strings(value: t.Any) -> t.Iterator[str]:
    """Every string inside a JSON-like value (keys included)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str):
                yield key
            yield from iter_strings(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from iter_strings(item)


class TemplateContext:
    """Everything a placeholder can resolve against."""

    def __init__(
        self,
        namespace: t.MutableMapping[str, t.Any] | None = None,
        *,
        env: t.Mapping[str, str] | None = None,
        resolver: Resolver | None = None,
        allow_missing: bool = False,
        masker: Masker | None = None,
    ) -> None:
        #: step outputs by id, merged flat, and ``--var`` values
        self.namespace: t.MutableMapping[str, t.Any] = namespace if namespace is not None else {}
        self.env = env if env is not None else os.environ
        self.resolver = resolver
        self.allow_missing = allow_missing
        if masker is None:
            from stepengine.masking import current_masker

            masker = current_masker()
        self.masker = masker
        self._blocks: dict[tuple[str, str], t.Any] = {}
        self._variables: dict[str, t.Any] = {}

    # -- lookups ---------------------------------------------------------------------------------

    def lookup(self, placeholder: Placeholder) -> t.Any:
        kind = placeholder.kind
        name = placeholder.name
        if kind == "output":
            return self._lookup_output(name)
        if kind == "env":
            value = self.env.get(name[len(ENV_PREFIX) :], MISSING)
            if value is MISSING:
                if self.allow_missing:
                    return ""  # Prefect renders an unset variable as "", whole value or inside text
                raise TemplateError(
                    f"environment variable {name[1:]!r} is not set",
                    placeholder=placeholder.text,
                    hint=f"export {name[1:]}=… before the run, or use {{{{ {name} | default('…') }}}}",
                )
            return value
        if kind == "block":
            return self._lookup_block(placeholder)
        if kind == "variable":
            return self._lookup_variable(placeholder)
        raise AssertionError(kind)  # pragma: no cover - ctx and expressions are handled by the caller

    def _lookup_output(self, name: str) -> t.Any:
        parts = split_path(name)
        if not parts:  # {{ . }}, {{ [] }}: not the whole namespace (a step output holding it is circular)
            raise TemplateError(
                f"{{{{ {name} }}}} names no value",
                placeholder=name,
                hint="name an output ({{ id.key }}) or a --var value",
            )
        value = value_at(self.namespace, parts)
        if value is MISSING and not self.allow_missing:
            from stepengine._suggest import did_you_mean

            head = parts[0] if parts else name
            if head not in self.namespace:
                names = [str(k) for k in self.namespace]
                known = ", ".join(sorted(names)[:20]) or "none yet"
                raise TemplateError(
                    f"{{{{ {name} }}}} refers to {head!r}, which no earlier step produced"
                    + did_you_mean(str(head), names),
                    placeholder=name,
                    hint=f"available names: {known}",
                )
            available = _describe_keys(value_at(self.namespace, parts[:1]))
            raise TemplateError(
                f"{{{{ {name} }}}} cannot be resolved: {head!r} has no {'.'.join(map(str, parts[1:]))!r}"
                + (did_you_mean(str(parts[1]), available) if len(parts) > 1 else ""),
                placeholder=name,
                hint=f"{head} has: {', '.join(available)}" if available else None,
            )
        return value

    def _lookup_block(self, placeholder: Placeholder) -> t.Any:
        rest = placeholder.name[len(BLOCK_PREFIX) :]
        pieces = rest.split(".")
        if len(pieces) < 2 or not all(pieces[:2]):
            raise TemplateError(
                f"{placeholder.text}: a block reference needs a type and a name: "
                "{{ prefect.blocks.<type>.<name>[.field] }}",
                placeholder=placeholder.name,
            )
        block_type, block_name, path = pieces[0], pieces[1], pieces[2:]
        data = self._block(block_type, block_name, placeholder.text, placeholder.name)
        if not path:
            if isinstance(data, dict) and set(data) == {"value"}:
                return _copy(data["value"])
            return _copy(data)
        parts = split_path(".".join(path))
        if isinstance(data, dict) and set(data) == {"value"} and parts[:1] != ["value"]:
            # Prefect: the path of a one-field block ({"value": …}) starts inside that value
            # (``prefect.blocks.json.settings.replicas``) unless it names ``value`` itself
            data = data["value"]
        value = value_at(data, parts)
        if value is MISSING:
            fields = _describe_keys(data)
            raise TemplateError(
                f"block {block_type}/{block_name} has no field {'.'.join(path)!r}",
                placeholder=placeholder.name,
                hint=f"its fields: {', '.join(fields)}" if fields else None,
            )
        return _copy(value)

    def block_document(self, block_type: str, block_name: str) -> t.Any:
        """A block's whole data, for a step that loads a block itself (``step_api.load_block``): read
        once per run like a placeholder's, a fresh copy for every caller, its secrets masked."""
        reference = f"prefect.blocks.{block_type}.{block_name}"
        return _copy(self._block(block_type, block_name, f"block {block_type}/{block_name}", reference))

    def _block(self, block_type: str, block_name: str, text: str, reference: str) -> t.Any:
        """The block's data as the store gave it (cached for the run: never hand this object out)."""
        key = (block_type, block_name)
        if key in self._blocks:
            return self._blocks[key]
        if self.resolver is None:
            raise TemplateError(
                f"{text} needs a block store, and none is configured",
                placeholder=reference,
                hint="pass --values FILE (with a blocks: section) or a resolver to stepengine.run()",
            )
        try:
            data = self.resolver.get_block(block_type, block_name)
        except LookupError:
            raise TemplateError(
                f"block {block_type}/{block_name} not found",
                placeholder=reference,
                hint=_where_missing(self.resolver, "block", block_type, block_name),
            ) from None
        self._mark_block_secrets(block_type, data)
        self._blocks[key] = data
        return data

    def _mark_block_secrets(self, block_type: str, data: t.Any) -> None:
        """Register the block's secret values (the rule is ``stepengine.resolvers.block_secrets``)."""
        from stepengine.resolvers import block_secrets, declared_secret_fields

        for value in block_secrets(block_type, data):
            self.masker.add(value)
        if self.resolver is not None:
            for leaf in declared_secret_fields(self.resolver, block_type, data):
                self.masker.add(leaf)

    def _lookup_variable(self, placeholder: Placeholder) -> t.Any:
        name = placeholder.name[len(VARIABLE_PREFIX) :]
        if self.resolver is None:
            if self.allow_missing:
                return ""  # Prefect: a variable it cannot find renders as ""
            raise TemplateError(
                f"{placeholder.text} needs a variable store, and none is configured",
                placeholder=placeholder.name,
                hint="pass --values FILE (with a variables: section) or a resolver to stepengine.run()",
            )
        # Each variable is read from the store once per run (a missing one too), as Prefect does.
        value = self._variables.get(name, _UNREAD)
        if value is _UNREAD:
            try:
                value = self.resolver.get_variable(name)
            except LookupError:
                value = MISSING
            self._variables[name] = value
        if value is MISSING:
            if self.allow_missing:
                return ""
            raise TemplateError(
                f"variable {name!r} not found",
                placeholder=placeholder.name,
                hint=_where_missing(self.resolver, "variable", None, name),
            )
        return _copy(value)

    # -- expressions -----------------------------------------------------------------------------

    def evaluate(self, expression: str) -> t.Any:
        """Evaluate a Jinja2 expression in the sandbox (loaded only when a file uses one)."""
        from stepengine._expressions import evaluate

        return evaluate(expression, self)


#: a variable not read from the store yet in this run
_UNREAD = object()


def _copy(value: t.Any) -> t.Any:
    """Each reference gets its own copy of a structured value: a step that changes its argument must
    not change what the next reference receives (Prefect deep-copies each resolved block too)."""
    if isinstance(value, (dict, list)):
        import copy

        return copy.deepcopy(value)
    return value


def _where_missing(resolver: Resolver, kind: str, block_type: str | None, name: str) -> str | None:
    """The resolver's own account of where it looked (``describe_missing``), if it gives one."""
    from stepengine.resolvers import missing_description

    return missing_description(resolver, kind, block_type, name)


def split_path(name: str) -> list[str | int]:
    """``build.tags[0]`` → ``["build", "tags", 0]``; ``get-commit.stdout`` → ``["get-commit", "stdout"]``."""
    parts: list[str | int] = []
    for key, index in _PATH_PART_RE.findall(name):
        parts.append(int(index) if index else key)
    return parts


def value_at(value: t.Any, parts: t.Sequence[str | int]) -> t.Any:
    """What ``parts`` (``split_path``) name inside ``value``, or ``MISSING``."""
    for part in parts:
        if isinstance(part, int):
            if isinstance(value, (list, tuple)) and -len(value) <= part < len(value):
                value = value[part]
                continue
            return MISSING
        if isinstance(value, t.Mapping) and part in value:
            value = value[part]
            continue
        return MISSING
    return value


def _describe_keys(value: t.Any) -> list[str]:
    return [str(k) for k in value] if isinstance(value, t.Mapping) else []


class _Keep:
    """Returned by a lookup to leave a placeholder literally in place (for a later stage)."""

    def __repr__(self) -> str:
        return "<keep>"


KEEP = _Keep()

#: resolves one placeholder to its value, ``MISSING``, or ``KEEP``
Lookup = t.Callable[[Placeholder], t.Any]


def resolve(placeholder: Placeholder, ctx: TemplateContext) -> t.Any:
    """The default lookup: ``ctx.`` placeholders are kept, expressions evaluated, the rest looked up."""
    if placeholder.kind == "ctx":
        # left for a worker to fill in; with allow_missing it is what Prefect's run_steps makes of
        # it: a value nobody produced
        return MISSING if ctx.allow_missing else KEEP
    if placeholder.kind == "expression":
        return ctx.evaluate(placeholder.name)
    value = ctx.lookup(placeholder)
    if placeholder.kind == "env" and value is not MISSING:
        return str(value)
    return value


def render(value: t.Any, ctx: TemplateContext, lookup: Lookup | None = None) -> t.Any:
    """Render every placeholder inside ``value`` (a string, or any JSON-like structure).

    Returns ``MISSING`` for a whole-value placeholder that resolved to nothing under ``allow_missing``;
    mappings and lists drop such entries. ``lookup`` replaces ``resolve`` for callers that render
    only some placeholders now and keep the others for later (``stepengine deploy``).
    """
    if lookup is None:
        lookup = functools.partial(resolve, ctx=ctx)
    return _render(value, lookup, ctx.allow_missing)


def _render(value: t.Any, lookup: Lookup, lenient: bool = False) -> t.Any:
    if isinstance(value, str):
        return _render_string(value, lookup, lenient)
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            rendered = _render(item, lookup, lenient)
            if rendered is not MISSING:
                out[key] = rendered
        return out
    if isinstance(value, list):
        return [r for r in (_render(item, lookup, lenient) for item in value) if r is not MISSING]
    return value


def _render_string(text: str, lookup: Lookup, lenient: bool = False) -> t.Any:
    placeholders = find_placeholders(text)
    if not placeholders:
        return text
    if len(placeholders) == 1 and placeholders[0].text == text:
        value = lookup(placeholders[0])
        return text if value is KEEP else value
    # Build the result from the original text's pieces: inserted values are never scanned again.
    pieces: list[str] = []
    position = 0
    for placeholder in placeholders:
        pieces.append(text[position : placeholder.start])
        position = placeholder.end
        value = lookup(placeholder)
        if value is KEEP:
            pieces.append(placeholder.text)
            continue
        if value is MISSING:
            continue
        if isinstance(value, (dict, list, tuple)) and (not lenient or placeholder.kind == "block"):
            # Prefect inserts the Python repr of an output or variable here (and refuses a block's)
            raise TemplateError(
                f"{placeholder.text} is a {type(value).__name__} and cannot be inserted into text; "
                "use it as the whole value instead",
                placeholder=placeholder.name,
                hint=None
                if lenient
                else "with --allow-missing it is inserted as Prefect inserts it, as its Python repr",
            )
        pieces.append(str(value))  # as Prefect does: None becomes "None"
    pieces.append(text[position:])
    return "".join(pieces)


def render_arguments(step: Step, ctx: TemplateContext, lookup: Lookup | None = None) -> dict[str, t.Any]:
    """Render a step's arguments (``lookup`` as in ``render``); a ``TemplateError`` is raised located
    at the step and the argument's line."""
    rendered: dict[str, t.Any] = {}
    for key, value in step.arguments.items():
        try:
            result = render(value, ctx, lookup)
        except TemplateError as exc:
            raise exc.locate(step, argument=key) from exc.__cause__
        if result is not MISSING:
            rendered[key] = result
    return rendered
