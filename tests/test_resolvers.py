"""The resolver protocol's pieces: the secret rule, the values file, the chain."""

from __future__ import annotations

from pathlib import Path

import pytest

from stepengine.errors import ConfigError
from stepengine.masking import Masker, using_masker
from stepengine.resolvers import ChainResolver, FileResolver, InMemoryResolver, block_secrets, is_secret_field


def test_secret_field_names() -> None:
    assert [
        n
        for n in (
            "token",
            "api_token",
            "password",
            "aws_secret_access_key",
            "private_key",
            "connection_string",
            "passphrase",
            "credentials",
        )
        if not is_secret_field(n)
    ] == []
    assert [n for n in ("aws_access_key_id", "username", "region_name", "url", 3) if is_secret_field(n)] == []


def test_block_secrets_rule() -> None:
    assert block_secrets("secret", {"value": "s"}) == ["s"]
    assert block_secrets("secret", {"value": {"user": "u", "pw": "p"}}) == [{"user": "u", "pw": "p"}]
    assert block_secrets("aws-secret", {"secret_name": "n", "x": 1}) == [{"secret_name": "n", "x": 1}]
    data = {
        "username": "u",
        "token": "t",
        "nested": {"password": "p", "host": "h"},
        "list": [{"api_key": "k"}],
    }
    assert block_secrets("github-credentials", data) == ["t", "p", "k"]
    assert block_secrets("json", {"value": {"replicas": 2}}) == []


def test_values_file_blocks_variables_and_secret_variables(tmp_path: Path) -> None:
    path = tmp_path / "values.yaml"
    path.write_text(
        "blocks:\n  secret:\n    gh-token: tok-123456\n  aws-credentials/prod:\n    aws_secret_access_key: wJalr\n"
        "variables:\n  branch: main\nsecret_variables:\n  db-password: dbpw-7890\n"
    )
    resolver = FileResolver(path)
    run = Masker()
    with using_masker(run):
        assert resolver.get_block("secret", "gh-token") == {"value": "tok-123456"}
        assert resolver.get_block("aws-credentials", "prod") == {"aws_secret_access_key": "wJalr"}
        assert resolver.get_variable("branch") == "main"
        assert resolver.get_variable("db-password") == "dbpw-7890"
    assert run.mask("main dbpw-7890") == "main ***"
    assert resolver.describe_missing("block", "secret", "x") == f"values file {path}"


def test_a_values_file_with_unknown_keys_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "values.yaml"
    path.write_text("secrets:\n  a: b\n")
    with pytest.raises(ConfigError) as info:
        FileResolver(path)
    assert str(info.value) == (
        f"{path}:1:1: a values file is a mapping with 'blocks:', 'variables:' and/or 'secret_variables:'"
    )


def test_chain_first_hit_wins_and_describes_every_store(tmp_path: Path) -> None:
    first = InMemoryResolver(blocks={"secret/a": "from-first"})
    second = InMemoryResolver(
        blocks={"secret/a": "from-second", "secret/b": "only-second"}, variables={"v": 1}
    )
    chain = ChainResolver(first, second)
    assert chain.get_block("secret", "a") == {"value": "from-first"}
    assert chain.get_block("secret", "b") == {"value": "only-second"}
    assert chain.get_variable("v") == 1
    with pytest.raises(LookupError):
        chain.get_variable("w")
    assert ChainResolver().describe_missing("variable", None, "w") == (
        "looked in: no store (the store order is empty). Add it with `stepengine variable set w VALUE`"
    )


class _Minimal:
    """A third-party resolver with only the two required methods of the protocol."""

    def get_block(self, block_type: str, name: str) -> dict[str, object]:
        if (block_type, name) == ("json", "cfg"):
            return {"api_token": "tok-123", "region": "eu", "nested": {"pin": "4711"}}
        raise LookupError(name)

    def get_variable(self, name: str) -> object:
        raise LookupError(name)


class _Described(_Minimal):
    """The same, with both optional methods (``DescribesMissing``, ``DeclaresSecretFields``)."""

    def describe_missing(self, kind: str, block_type: str | None, name: str) -> str:
        return f"the vault ({kind} {name})"

    def secret_fields(self, block_type: str, data: object) -> list[object]:
        assert isinstance(data, dict)
        return [data["nested"]["pin"]]


def test_the_optional_resolver_methods_are_used_when_present_and_not_required() -> None:
    """A resolver without ``describe_missing``/``secret_fields`` works as before: no hint, only the
    name rule's secrets; one that has them gets its description in the error and its fields masked."""
    from stepengine.errors import TemplateError
    from stepengine.resolvers import DeclaresSecretFields, DescribesMissing, Resolver
    from stepengine.templating import TemplateContext, render

    minimal, described = _Minimal(), _Described()
    assert isinstance(minimal, Resolver) and isinstance(described, Resolver)
    assert not isinstance(minimal, (DescribesMissing, DeclaresSecretFields))
    assert isinstance(described, DescribesMissing) and isinstance(described, DeclaresSecretFields)
    for resolver, hint, pin in ((minimal, None, "4711"), (described, "the vault (variable nope)", "***")):
        masker = Masker()
        ctx = TemplateContext({}, env={}, resolver=resolver, masker=masker)
        assert render("{{ prefect.blocks.json.cfg.region }}", ctx) == "eu"
        assert masker.mask("tok-123 4711") == f"*** {pin}"
        with pytest.raises(TemplateError) as info:
            render("{{ prefect.variables.nope }}", ctx)
        assert info.value.hint == hint
        # the chain asks each resolver the same way
        chain = ChainResolver(resolver)
        assert chain.secret_fields("json", resolver.get_block("json", "cfg")) == (
            [] if pin == "4711" else ["4711"]
        )
        assert ("the vault" in chain.describe_missing("variable", None, "nope")) is (hint is not None)
