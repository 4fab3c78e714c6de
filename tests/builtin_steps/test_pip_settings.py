"""Reading pip's settings (files + PIP_* variables) and translating them for uv.

The property test holds the reader against pip's own option parser (the pip installed here), on
generated configuration files and environment variables.
"""

from __future__ import annotations

import os
import sys
import tempfile
import typing as t
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stepengine.builtin_steps import _pip_settings
from stepengine.builtin_steps._pip_settings import Setting, boolean, config_files, read, translate

ALL_UV_FLAGS = frozenset(
    {
        "--no-config",
        "--python",
        "--compile-bytecode",
        "--index-strategy",
        "--requirements",
        "--index-url",
        "--extra-index-url",
        "--find-links",
        "--allow-insecure-host",
        "--constraints",
        "--no-index",
        "--prerelease",
        "--require-hashes",
        "--no-deps",
        "--break-system-packages",
        "--upgrade",
        "--keyring-provider",
        "--system-certs",
    }
)


def _env(home: Path, **extra: str) -> dict[str, str]:
    """A process environment with no PIP_* variable of this machine, a private HOME and XDG dirs."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "XDG_", "REQUESTS_CA", "CURL_CA"))
    }
    env.update(HOME=str(home), XDG_CONFIG_DIRS=str(home / "xdg"), XDG_CONFIG_HOME=str(home / "config"))
    env.update(extra)
    return env


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _values(found: t.Mapping[str, Setting]) -> dict[str, str]:
    return {name: setting.value for name, setting in found.items()}


def test_file_order_and_the_config_file_variable(tmp_path: Path) -> None:
    env = _env(tmp_path)
    user_files = [str(tmp_path / ".pip" / "pip.conf"), str(tmp_path / "config" / "pip" / "pip.conf")]
    with mock.patch.dict(os.environ, env, clear=True):
        files = config_files(env, "/prefix")
        assert files == [
            str(tmp_path / "xdg" / "pip" / "pip.conf"),
            "/etc/pip.conf",
            *user_files,
            "/prefix/pip.conf",
        ]
        # PIP_CONFIG_FILE that exists: read last, and the user files are not read
        chosen = _write(tmp_path / "chosen.conf", "")
        assert config_files({**env, "PIP_CONFIG_FILE": str(chosen)}, "/prefix") == [
            str(tmp_path / "xdg" / "pip" / "pip.conf"),
            "/etc/pip.conf",
            "/prefix/pip.conf",
            str(chosen),
        ]
        # one that does not exist: user files are read
        assert user_files[0] in config_files({**env, "PIP_CONFIG_FILE": str(tmp_path / "nope")}, "/prefix")
        assert config_files({**env, "PIP_CONFIG_FILE": os.devnull}, "/prefix") == []


def test_sections_sources_and_empty_values(tmp_path: Path) -> None:
    _write(
        tmp_path / "xdg" / "pip" / "pip.conf",
        "[global]\nindex-url = https://global.example/simple\npre = yes\n",
    )
    _write(tmp_path / ".pip" / "pip.conf", "[global]\nfind-links = /legacy\n[freeze]\nno-index = yes\n")
    _write(tmp_path / "config" / "pip" / "pip.conf", "[global]\nfind-links =\n    /a\n    /b\n")
    _write(tmp_path / "prefix" / "pip.conf", "[install]\nindex-url = https://site.example/simple\n")
    env = _env(tmp_path, PIP_PRE="", PIP_NO_DEPENDENCIES="1", PIP_VERSION="x")
    with mock.patch.dict(os.environ, env, clear=True):
        found = read(env, str(tmp_path / "prefix"))
    values = _values(found)
    assert values["index-url"] == "https://site.example/simple"  # [install] of the site file wins
    assert values["find-links"].split() == ["/a", "/b"]  # the XDG user file beats ~/.pip
    assert values["pre"] == "yes"  # an empty PIP_PRE is unset: the file's value stays
    assert values["no-deps"] == "1"  # alias no-dependencies
    assert "no-index" not in values  # [freeze] is not pip install's
    assert "version" not in values
    assert found["no-deps"].source == "PIP_NO_DEPENDENCIES"
    assert found["index-url"].source == f"{tmp_path / 'prefix' / 'pip.conf'} [install]"
    with mock.patch.dict(os.environ, {**env, "PIP_CONFIG_FILE": os.devnull}, clear=True):
        assert _values(read({**env, "PIP_CONFIG_FILE": os.devnull}, str(tmp_path / "prefix"))) == {
            "no-deps": "1"
        }


def test_an_unreadable_file_is_reported(tmp_path: Path) -> None:
    broken = _write(tmp_path / "broken.conf", "index-url = no section header\n")
    env = _env(tmp_path, PIP_CONFIG_FILE=str(broken))
    with pytest.raises(_pip_settings.Unreadable, match="broken.conf"):
        read(env, str(tmp_path))


@pytest.mark.parametrize(
    ("text", "expected"),
    [("yes", True), ("On", True), (" 1 ", True), ("false", False), ("off", False), ("0", False)],
)
def test_booleans(text: str, expected: bool) -> None:
    assert boolean(Setting(text, "X")) is expected


def test_a_bad_boolean_makes_pip_run_it_stops_there() -> None:
    with pytest.raises(ValueError, match="'maybe' is not a yes/no value"):
        boolean(Setting("maybe", "PIP_NO_INDEX"))
    plan = translate({"no-index": Setting("maybe", "PIP_NO_INDEX")}, {}, in_venv=True, uv_flags=ALL_UV_FLAGS)
    assert plan.refusal is not None and "pip stops on it" in plan.refusal


def _s(**values: str) -> dict[str, Setting]:
    return {name.replace("_", "-"): Setting(value, "PIP_" + name.upper()) for name, value in values.items()}


def test_translations() -> None:
    plan = translate(
        _s(
            index_url="https://i.example/simple",
            extra_index_url="https://a.example https://b.example",
            find_links="/w1\n/w2",
            no_index="yes",
            pre="1",
            trusted_host="h.example:8080",
            constraint="c.txt",
            require_hashes="off",
            no_deps="true",
            cert="/ca.pem",
            disable_pip_version_check="1",
            timeout="60",
            no_input="1",
            root_user_action="ignore",
            progress_bar="off",
            cache_dir="/c",
            quiet="2",
            keyring_provider="disabled",
        ),
        {},
        in_venv=True,
        uv_flags=ALL_UV_FLAGS,
    )
    assert plan.refusal is None
    assert plan.args == [
        "--index-url",
        "https://i.example/simple",
        "--extra-index-url",
        "https://a.example",
        "--extra-index-url",
        "https://b.example",
        "--find-links",
        "/w1",
        "--find-links",
        "/w2",
        "--no-index",
        "--prerelease",
        "allow",
        "--allow-insecure-host",
        "h.example:8080",
        "--constraints",
        "c.txt",
        "--no-deps",
    ]
    assert plan.env == {"SSL_CERT_FILE": "/ca.pem"}
    assert "timeout" not in plan.passed and "find-links" in plan.passed


def test_certificates() -> None:
    no_settings = translate({}, {}, in_venv=True, uv_flags=ALL_UV_FLAGS)
    assert (
        no_settings.args == ["--system-certs"] and no_settings.env == {}
    )  # pip >= 24.2 trusts the system store
    older_uv = translate(
        {}, {}, in_venv=True, uv_flags=(ALL_UV_FLAGS - {"--system-certs"}) | {"--native-tls"}
    )
    assert older_uv.args == ["--native-tls"]
    bundle = translate({}, {"REQUESTS_CA_BUNDLE": "/bundle.pem"}, in_venv=True, uv_flags=ALL_UV_FLAGS)
    assert bundle.args == [] and bundle.env == {"SSL_CERT_FILE": "/bundle.pem"}


@pytest.mark.parametrize(
    ("values", "why"),
    [
        ({"target": "/t"}, "pip setting 'target' (PIP_TARGET) has no uv equivalent"),
        ({"user": "1"}, "pip setting 'user' (PIP_USER) has no uv equivalent"),
        ({"prefer_binary": "1"}, "pip setting 'prefer-binary' (PIP_PREFER_BINARY) has no uv equivalent"),
        ({"no_build_isolation": "0"}, "has no uv equivalent"),
        ({"keyring_provider": "import"}, "has no uv equivalent"),
        ({"upgrade": "1"}, "upgrades only the named packages"),
        ({"require_virtualenv": "yes"}, "refuses an environment that is not a virtualenv"),
        ({"index_url": "http://mirror.example/simple"}, "plain-http location in PIP_INDEX_URL"),
        ({"find_links": "/w http://mirror.example/wheels"}, "plain-http location in PIP_FIND_LINKS"),
    ],
)
def test_refusals(values: dict[str, str], why: str) -> None:
    plan = translate(_s(**values), {}, in_venv=False, uv_flags=ALL_UV_FLAGS)
    assert plan.refusal is not None and why in plan.refusal
    assert plan.args == []


def test_what_is_fine_in_some_cases() -> None:
    assert (
        translate(_s(upgrade="1", upgrade_strategy="eager"), {}, in_venv=True, uv_flags=ALL_UV_FLAGS).args[0]
        == "--upgrade"
    )
    assert translate(_s(upgrade="0"), {}, in_venv=True, uv_flags=ALL_UV_FLAGS).refusal is None
    assert translate(_s(require_virtualenv="yes"), {}, in_venv=True, uv_flags=ALL_UV_FLAGS).refusal is None
    trusted = _s(index_url="http://mirror.example/simple", trusted_host="mirror.example")
    assert translate(trusted, {}, in_venv=True, uv_flags=ALL_UV_FLAGS).refusal is None
    local = _s(index_url="http://127.0.0.1:8080/simple", find_links="http://localhost/w")
    assert translate(local, {}, in_venv=True, uv_flags=ALL_UV_FLAGS).refusal is None


@pytest.mark.parametrize("name", ["PIP_COMPILE", "PIP_NO_COMPILE"])
@pytest.mark.parametrize("value", ["1", "0", "yes", "no", "true", "false", "on", "off", "maybe", None])
def test_compile_is_read_as_pip_reads_it(name: str, value: str | None) -> None:
    """Against pip's own option parser (the pip installed here): both names set one switch to the
    value given, so PIP_NO_COMPILE=1 compiles — pip's quirk, kept, since auto must install as pip would."""
    import os

    from pip._internal.commands import create_command

    environ = {name: value} if value is not None else {}
    saved = dict(os.environ)
    try:
        for key in [k for k in os.environ if k.startswith("PIP_")]:
            del os.environ[key]
        os.environ.update(environ, PIP_CONFIG_FILE=os.devnull)
        try:
            pip_says: bool | None = bool(create_command("install").parse_args([])[0].compile)
        except SystemExit:
            pip_says = None  # pip stops on a value it cannot read
    finally:
        os.environ.clear()
        os.environ.update(saved)
    plan = translate(
        read(environ | {"PIP_CONFIG_FILE": os.devnull}, "/nonexistent"),
        {},
        in_venv=True,
        uv_flags=ALL_UV_FLAGS,
    )
    if pip_says is None:
        assert plan.refusal is not None and "pip stops on it" in plan.refusal
    else:
        assert plan.refusal is None and plan.compile is pip_says


def test_not_compiling_does_not_need_uvs_compile_flag() -> None:
    plan = translate(_s(no_compile="0"), {}, in_venv=True, uv_flags=ALL_UV_FLAGS - {"--compile-bytecode"})
    assert plan.refusal is None and plan.compile is False
    plan = translate({}, {}, in_venv=True, uv_flags=ALL_UV_FLAGS - {"--compile-bytecode"})
    assert plan.refusal == "this uv lacks --compile-bytecode"


def test_a_uv_without_a_flag_is_not_used() -> None:
    plan = translate(
        _s(trusted_host="h"), {}, in_venv=True, uv_flags=ALL_UV_FLAGS - {"--allow-insecure-host"}
    )
    assert plan.refusal == "this uv lacks --allow-insecure-host"
    plan = translate({}, {}, in_venv=True, uv_flags=frozenset())
    assert plan.refusal is not None and "--compile-bytecode" in plan.refusal and "--no-config" in plan.refusal


def test_keyring_in_the_target_environment_means_pip(tmp_path: Path) -> None:
    _write(tmp_path / "bin" / "keyring", "")
    plan = translate({}, {}, in_venv=True, uv_flags=ALL_UV_FLAGS, bindir=str(tmp_path / "bin"))
    assert plan.refusal is not None and "keyring" in plan.refusal
    assert (
        translate(
            _s(keyring_provider="disabled"),
            {},
            in_venv=True,
            uv_flags=ALL_UV_FLAGS,
            bindir=str(tmp_path / "bin"),
        ).refusal
        is None
    )
    assert translate(
        _s(keyring_provider="subprocess"),
        {},
        in_venv=True,
        uv_flags=ALL_UV_FLAGS,
        bindir=str(tmp_path / "bin"),
    ).args[:2] == ["--keyring-provider", "subprocess"]


# --- against pip itself -------------------------------------------------------------------------

pip_internal = pytest.importorskip("pip._internal.commands")
SOURCES = ("global", "legacy-user", "user", "config-file")
OPTIONS = {
    "find-links": st.lists(st.sampled_from(["/w1", "/w2", "./w3"]), max_size=2).map(" ".join),
    "index-url": st.sampled_from(["", "https://a.example/simple", "https://b.example/simple"]),
    "no-index": st.sampled_from(["", "yes", "no", "1", "off"]),
    "pre": st.sampled_from(["", "true", "false", "on"]),
}
entries = st.tuples(
    st.sampled_from([*SOURCES, "env"]),
    st.sampled_from(["global", "install"]),
    st.sampled_from(sorted(OPTIONS)),
).flatmap(lambda e: st.tuples(st.just(e), OPTIONS[e[2]]))


def _pip_parse() -> dict[str, object]:
    options, _ = pip_internal.create_command("install").parse_args([])
    return {
        "find-links": list(options.find_links),
        "index-url": options.index_url,
        "no-index": bool(options.no_index),
        "pre": bool(options.pre),
    }


def _ours(found: t.Mapping[str, Setting]) -> dict[str, object]:
    return {
        "find-links": found["find-links"].value.split() if "find-links" in found else [],
        "index-url": found["index-url"].value if "index-url" in found else "https://pypi.org/simple",
        "no-index": boolean(found["no-index"]) if "no-index" in found else False,
        "pre": boolean(found["pre"]) if "pre" in found else False,
    }


@settings(max_examples=200, deadline=None)
@given(st.lists(entries, max_size=8), st.sampled_from(["unset", "devnull", "file", "missing"]))
def test_the_reader_agrees_with_pip(
    entries: list[tuple[tuple[str, str, str], str]], config_file: str
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        paths = {
            "global": home / "xdg" / "pip" / "pip.conf",
            "legacy-user": home / ".pip" / "pip.conf",
            "user": home / "config" / "pip" / "pip.conf",
            "config-file": home / "chosen.conf",
        }
        files: dict[str, dict[str, dict[str, str]]] = {}
        env = _env(home)
        for (source, section, name), value in entries:
            if source == "env":
                env["PIP_" + name.upper().replace("-", "_")] = value
            else:
                files.setdefault(source, {}).setdefault(section, {})[name] = value
        for source, sections in files.items():
            _write(
                paths[source],
                "".join(
                    f"[{s}]\n" + "".join(f"{k} = {v}\n" for k, v in kv.items()) for s, kv in sections.items()
                ),
            )
        if config_file == "devnull":
            env["PIP_CONFIG_FILE"] = os.devnull
        elif config_file in ("file", "missing"):
            env["PIP_CONFIG_FILE"] = str(
                paths["config-file"] if config_file == "file" else home / "missing.conf"
            )
        with mock.patch.dict(os.environ, env, clear=True):
            assert _ours(read(env, sys.prefix)) == _pip_parse()
