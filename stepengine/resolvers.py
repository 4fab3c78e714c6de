"""Where ``{{ prefect.blocks.… }}`` and ``{{ prefect.variables.… }}`` come from: the resolver protocol.

A resolver is any object with ``get_block(block_type, name)`` and ``get_variable(name)``, each raising
``LookupError`` (``KeyError`` is one) when the thing does not exist (the ``Resolver`` protocol). The
engine asks it only when a placeholder needs it, at most once per block per run. Two methods are
optional, each its own protocol: ``describe_missing`` (``DescribesMissing``: where a missing block or
variable was looked for, added to the error) and ``secret_fields`` (``DeclaresSecretFields``: more
values of a block to mask). ``missing_description`` and ``declared_secret_fields`` call them on any
resolver, with the answer of one that lacks them. ``ChainResolver`` tries several in order (first
hit wins), which is how the embedded store, the environment and a Prefect server combine (see
``stepengine.stores`` for the stores and the default chain).

Block data is a JSON object; a ``secret`` (or ``string``) block is ``{"value": …}``. Which values are
secret (``block_secrets``): all of a block whose type is or contains ``secret``, and every field of
any other block whose name says token/password/secret/key/credential (but not ``…_id``). A resolver
that knows more (a variable declared secret, a field a Prefect block schema marks secret) registers
those values with ``stepengine.masking.mask`` before returning them.
"""

from __future__ import annotations

import os
import re
import typing as t

from stepengine.errors import ConfigError

__all__ = [
    "ChainResolver",
    "DeclaresSecretFields",
    "DescribesMissing",
    "FileResolver",
    "InMemoryResolver",
    "Resolver",
    "block_secrets",
    "declared_secret_fields",
    "missing_description",
]

#: fields of a credentials block whose names say they are secret (``…_id`` fields are not)
SECRET_FIELD_RE = re.compile(r"token|password|secret|key|credential|connection_string|passphrase", re.I)


def is_secret_field(name: t.Any) -> bool:
    """Whether a block field with this name holds a secret (``api_token`` yes, ``aws_access_key_id`` no)."""
    return isinstance(name, str) and bool(SECRET_FIELD_RE.search(name)) and not name.lower().endswith("_id")


def block_secrets(block_type: str, data: t.Any) -> list[t.Any]:
    """The values of a block document that must be masked (each may be a structure: mask every leaf)."""
    if "secret" in block_type.lower():
        if isinstance(data, t.Mapping) and set(data) == {"value"}:
            return [data["value"]]
        return [data]
    found: list[t.Any] = []
    if isinstance(data, t.Mapping):
        for field, value in data.items():
            if is_secret_field(field):
                found.append(value)
            elif isinstance(value, (t.Mapping, list)):
                found.extend(block_secrets(block_type, value))
    elif isinstance(data, list):
        for item in data:
            found.extend(block_secrets(block_type, item))
    return found


@t.runtime_checkable
class Resolver(t.Protocol):
    """The interface between templating and any block/variable store."""

    def get_block(self, block_type: str, name: str) -> t.Mapping[str, t.Any]:
        """The block document's data; raise ``LookupError`` if there is none."""
        ...

    def get_variable(self, name: str) -> t.Any:
        """The variable's value; raise ``LookupError`` if there is none."""
        ...


@t.runtime_checkable
class DescribesMissing(t.Protocol):
    """The optional method of a resolver that can say where it looked for what it does not have."""

    def describe_missing(self, kind: str, block_type: str | None, name: str) -> str:
        """Where a missing block (``kind="block"``) or variable (``"variable"``) was looked for, e.g.
        ``values file ci.yaml`` (empty: nothing to say)."""
        ...


@t.runtime_checkable
class DeclaresSecretFields(t.Protocol):
    """The optional method of a resolver that knows more secret values of a block than the name rule
    (``block_secrets``), e.g. the fields a Prefect block schema marks secret."""

    def secret_fields(self, block_type: str, data: t.Any) -> list[t.Any]:
        """The values of the block document ``data`` to mask (each may be a structure)."""
        ...


def missing_description(resolver: Resolver, kind: str, block_type: str | None, name: str) -> str | None:
    """``resolver.describe_missing(...)``, or ``None`` for a resolver without that optional method."""
    if isinstance(resolver, DescribesMissing):
        return resolver.describe_missing(kind, block_type, name)
    return None


def declared_secret_fields(resolver: Resolver, block_type: str, data: t.Any) -> list[t.Any]:
    """``resolver.secret_fields(...)``, or none for a resolver without that optional method."""
    if isinstance(resolver, DeclaresSecretFields):
        return list(resolver.secret_fields(block_type, data))
    return []


class InMemoryResolver:
    """Blocks and variables given as Python data.

    ``blocks`` is ``{"<type>/<name>": data}`` or ``{"<type>": {"<name>": data}}``; a block given as a
    scalar is stored as ``{"value": scalar}``.

    Example::

        resolver = InMemoryResolver(blocks={"secret/gh-token": "s3cr3t"}, variables={"branch": "main"})
    """

    def __init__(
        self,
        blocks: t.Mapping[str, t.Any] | None = None,
        variables: t.Mapping[str, t.Any] | None = None,
    ) -> None:
        self._blocks: dict[tuple[str, str], dict[str, t.Any]] = {}
        for key, value in (blocks or {}).items():
            if "/" in key:
                block_type, name = key.split("/", 1)
                self._blocks[(block_type, name)] = _as_block(value)
            elif isinstance(value, t.Mapping):
                for name, data in value.items():
                    self._blocks[(key, str(name))] = _as_block(data)
            else:
                raise ValueError(f"block {key!r}: expected '<type>/<name>' or a mapping of names")
        self._variables = dict(variables or {})

    def get_block(self, block_type: str, name: str) -> t.Mapping[str, t.Any]:
        return self._blocks[(block_type, name)]

    def get_variable(self, name: str) -> t.Any:
        return self._variables[name]

    def __repr__(self) -> str:  # never show the values: they are likely secrets
        return f"{type(self).__name__}(blocks={len(self._blocks)}, variables={len(self._variables)})"


def _as_block(value: t.Any) -> dict[str, t.Any]:
    return dict(value) if isinstance(value, t.Mapping) else {"value": value}


class FileResolver(InMemoryResolver):
    """Blocks and variables from a YAML or JSON file (``--values FILE``)::

    blocks:
      secret:
        gh-token: s3cr3t                 # same as {value: s3cr3t}
      aws-credentials/prod:
        aws_access_key_id: AKIA…
        aws_secret_access_key: …
    variables:
      branch: main
    secret_variables:                    # variables masked wherever a run would show them
      db-password: …
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        from stepengine.loader import load_document

        document = load_document(path, cache=False)  # it holds secrets: never in the parse cache
        data = document.data or {}
        if not isinstance(data, dict) or not set(data) <= {"blocks", "variables", "secret_variables"}:
            raise ConfigError(
                "a values file is a mapping with 'blocks:', 'variables:' and/or 'secret_variables:'",
                file=document.file,
                line=1,
                col=1,
            )
        secret_variables = data.get("secret_variables") or {}
        if not isinstance(secret_variables, dict):
            raise ConfigError("'secret_variables:' is a mapping of names to values", file=document.file)
        try:
            super().__init__(
                blocks=data.get("blocks") or {},
                variables={**(data.get("variables") or {}), **secret_variables},
            )
        except ValueError as exc:
            raise ConfigError(str(exc), file=document.file) from None
        self.file = document.file
        self._secret_variables = set(secret_variables)

    def get_variable(self, name: str) -> t.Any:
        value = super().get_variable(name)
        if name in self._secret_variables:
            from stepengine.masking import mask

            mask(value)
        return value

    def describe_missing(self, kind: str, block_type: str | None, name: str) -> str:
        return f"values file {self.file}"


class ChainResolver:
    """Asks each resolver in turn; the first that has the block or variable wins."""

    def __init__(self, *resolvers: Resolver) -> None:
        self.resolvers = [r for r in resolvers if r is not None]

    def get_block(self, block_type: str, name: str) -> t.Mapping[str, t.Any]:
        for resolver in self.resolvers:
            try:
                return resolver.get_block(block_type, name)
            except LookupError:
                continue
        raise LookupError(f"{block_type}/{name}")

    def get_variable(self, name: str) -> t.Any:
        for resolver in self.resolvers:
            try:
                return resolver.get_variable(name)
            except LookupError:
                continue
        raise LookupError(name)

    def describe_missing(self, kind: str, block_type: str | None, name: str) -> str:
        """Where a missing block (``kind="block"``) or variable was looked for, and how to add it."""
        described = [missing_description(r, kind, block_type, name) for r in self.resolvers]
        places = [p for p in described if p] or ["no store (the store order is empty)"]
        ref = f"{block_type}/{name}" if kind == "block" else name
        add = (
            f"stepengine block set {ref} --value ..."
            if kind == "block"
            else f"stepengine variable set {ref} VALUE"
        )
        return f"looked in: {'; '.join(places)}. Add it with `{add}`"

    def secret_fields(self, block_type: str, data: t.Any) -> list[t.Any]:
        found: list[t.Any] = []
        for resolver in self.resolvers:
            found.extend(declared_secret_fields(resolver, block_type, data))
        return found
