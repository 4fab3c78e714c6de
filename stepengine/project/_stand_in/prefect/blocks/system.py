"""Blocks by name, for code that deploys: ``Secret.load("gh-token")`` is a reference that becomes
``{{ prefect.blocks.secret.gh-token }}`` where a deployment stores it (pull steps, job variables), as
Prefect writes it. The stand-in has no server: reading the value (``.get()``) needs Prefect, or
stepengine's own templating (``{{ prefect.blocks.secret.gh-token }}`` in prefect.yaml)."""

from __future__ import annotations

import typing as t

_B = t.TypeVar("_B", bound="_Block")


class _Block:
    #: the same attribute names a loaded Prefect block has, so one rule reads both
    _block_type_slug: t.ClassVar[str | None] = None

    def __init__(self, name: str) -> None:
        self._block_document_name = name

    @classmethod
    def load(cls: type[_B], name: str, validate: bool = True, client: t.Any = None) -> _B:
        return cls(name)

    def get(self) -> t.NoReturn:
        kind, name = self._block_type_slug, self._block_document_name
        raise RuntimeError(
            f"{type(self).__name__}.load({name!r}).get(): the stand-in prefect module cannot read block "
            "values (no Prefect server); install prefect, or reference the block in prefect.yaml as "
            f"{{{{ prefect.blocks.{kind}.{name} }}}}"
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}.load({self._block_document_name!r})"


class Secret(_Block):
    _block_type_slug = "secret"


class String(_Block):
    _block_type_slug = "string"


class JSON(_Block):
    _block_type_slug = "json"
