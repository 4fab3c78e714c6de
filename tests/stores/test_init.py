"""The default store chain: which stores, in which order, first hit wins."""

from __future__ import annotations

from pathlib import Path

import pytest

from stepengine.errors import ConfigError
from stepengine.stores import default_resolver, parse_order
from stepengine.stores.sqlite import SQLiteStore


def test_default_order_and_configured_order() -> None:
    assert parse_order(None, {}) == ["values", "env", "local", "prefect"]
    assert parse_order(None, {"STEPENGINE_STORES": "local, env"}) == ["local", "env"]
    assert parse_order("prefect,local", {"STEPENGINE_STORES": "env"}) == ["prefect", "local"]


def test_unknown_or_repeated_store_names_are_refused() -> None:
    with pytest.raises(ConfigError) as info:
        parse_order("env,vault", {})
    assert (
        str(info.value) == "unknown store 'vault' in the store order; stores are: values, env, local, prefect"
    )
    with pytest.raises(ConfigError, match=r"^the store order 'env,env' names a store twice$"):
        parse_order("env,env", {})


def test_first_store_that_has_it_wins(tmp_path: Path) -> None:
    SQLiteStore(tmp_path / "store.db").set_block("secret", "tok", {"value": "from-local"})
    SQLiteStore(tmp_path / "store.db").set_variable("only-local", "yes")
    values = tmp_path / "values.yaml"
    values.write_text("blocks:\n  secret:\n    tok: from-file\n")
    env = {"STEPENGINE_HOME": str(tmp_path), "STEPENGINE_BLOCK_SECRET__TOK": "from-env"}
    assert default_resolver(env=env).get_block("secret", "tok") == {"value": "from-env"}
    assert default_resolver(env=env, values_file=values).get_block("secret", "tok") == {"value": "from-file"}
    assert default_resolver(env=env, order="local,env").get_block("secret", "tok") == {"value": "from-local"}
    assert default_resolver(env=env).get_variable("only-local") == "yes"
    with pytest.raises(LookupError):
        default_resolver(env=env, order="env").get_variable("only-local")


def test_prefect_store_only_with_a_url() -> None:
    chain = default_resolver(env={"STEPENGINE_HOME": "/nonexistent"})
    assert [type(r).__name__ for r in chain.resolvers] == ["EnvStore", "_LocalStore"]
    chain = default_resolver(env={"PREFECT_API_URL": "http://127.0.0.1:9/api", "STEPENGINE_HOME": "/x"})
    assert [type(r).__name__ for r in chain.resolvers] == ["EnvStore", "_LocalStore", "PrefectAPIStore"]
    chain = default_resolver(env={}, prefect_api_url="http://127.0.0.1:9/api", order="prefect")
    assert repr(chain.resolvers[0]) == "PrefectAPIStore('http://127.0.0.1:9/api')"


def test_a_values_file_left_out_of_the_order_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"^a values file was given, but the store order 'env' leaves out 'values'$"
    ):
        default_resolver(env={}, values_file=tmp_path / "v.yaml", order="env")


def test_a_missing_block_or_variable_says_where_it_was_looked_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import stepengine

    home = tmp_path / "home"
    monkeypatch.setenv("STEPENGINE_HOME", str(home))
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    values = tmp_path / "values.yaml"
    values.write_text("variables:\n  other: 1\n")
    (tmp_path / "prefect.yaml").write_text(
        "pull:\n  - prefect.deployments.steps.run_shell_script:\n      script: echo {{ prefect.blocks.secret.gh-token }}\n"
    )
    with pytest.raises(stepengine.TemplateError) as info:
        stepengine.run(tmp_path / "prefect.yaml", resolver=default_resolver(values_file=values))
    assert str(info.value) == (
        f"{tmp_path / 'prefect.yaml'}:3:7: pull[0] (run_shell_script): block secret/gh-token not found\n"
        f"hint: looked in: values file {values}; environment ($STEPENGINE_BLOCK_SECRET__GH_TOKEN); "
        f"local store {home / 'store.db'} (not created yet). "
        "Add it with `stepengine block set secret/gh-token --value ...`"
    )
    (tmp_path / "prefect.yaml").write_text(
        "pull:\n  - prefect.deployments.steps.run_shell_script:\n      script: echo {{ prefect.variables.branch }}\n"
    )
    with pytest.raises(stepengine.TemplateError) as info:
        stepengine.run(tmp_path / "prefect.yaml", resolver=default_resolver(order="env"))
    assert str(info.value).endswith(
        "variable 'branch' not found\n"
        "hint: looked in: environment ($STEPENGINE_VAR_BRANCH, $STEPENGINE_SECRET_VAR_BRANCH). "
        "Add it with `stepengine variable set branch VALUE`"
    )
