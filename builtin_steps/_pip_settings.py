"""The pip settings in effect for ``pip install``, and whether uv can be told the same thing.

pip reads its settings from configuration files and ``PIP_*`` environment variables; uv reads
neither. ``pip_install_requirements`` with ``installer: auto`` uses uv only when every setting pip
would apply has a uv equivalent (see ``translate``); otherwise pip runs, exactly as in Prefect.

The reading follows pip's rules (Unix): files are read in the order global (``pip/pip.conf`` under
each ``$XDG_CONFIG_DIRS`` entry, default ``/etc/xdg``, then ``/etc/pip.conf``), user
(``~/.pip/pip.conf``, then ``$XDG_CONFIG_HOME/pip/pip.conf``; skipped when ``PIP_CONFIG_FILE``
names an existing file), site (``<prefix>/pip.conf``), then ``PIP_CONFIG_FILE``; a later file wins.
``PIP_CONFIG_FILE=/dev/null`` reads no file at all. Within the result ``[install]`` beats
``[global]`` and environment variables beat both. An empty value counts as unset.
"""

from __future__ import annotations

import configparser
import importlib.util
import locale
import os
import shutil
import typing as t
import urllib.parse
from dataclasses import dataclass, field

#: ``PIP_*`` variables that are not pip options (pip ignores them too)
_NOT_OPTIONS = frozenset({"config-file", "version", "help", "build-tracker", "req-tracker"})

#: one name per option: pip's long aliases map to the first
_ALIASES = {
    "no-dependencies": "no-deps",
    "pypi-url": "index-url",
    "default-timeout": "timeout",
    "log-file": "log",
    "local-log": "log",
    "require-venv": "require-virtualenv",
}

#: settings that change nothing about what gets installed (output, logging, caching, network patience)
IGNORED = frozenset(
    {
        "disable-pip-version-check",
        "no-python-version-warning",
        "progress-bar",
        "no-color",
        "quiet",
        "verbose",
        "cache-dir",
        "no-cache-dir",
        "root-user-action",
        "timeout",
        "retries",
        "resume-retries",
        "log",
        "no-input",
        "no-warn-script-location",
        "no-warn-conflicts",
        "no-clean",
        "debug",
        "upgrade-strategy",  # upgrade-strategy matters only with upgrade, handled there
    }
)

#: uv flags for settings that are lists (space-separated, or one per line in a file)
_LISTS = {
    "extra-index-url": "--extra-index-url",
    "find-links": "--find-links",
    "trusted-host": "--allow-insecure-host",
    "constraint": "--constraints",
}
#: uv flags for boolean settings when true
_FLAGS = {
    "no-index": ["--no-index"],
    "pre": ["--prerelease", "allow"],
    "require-hashes": ["--require-hashes"],
    "no-deps": ["--no-deps"],
    "break-system-packages": ["--break-system-packages"],
}
#: the flags of uv's command itself (``uv pip install`` in pip.py)
BASE_FLAGS = frozenset({"--no-config", "--python", "--index-strategy", "--requirements"})
#: pip's secure origins besides https and file: plain http to these is fine for pip too
_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})

_TRUE = frozenset({"y", "yes", "t", "true", "on", "1"})
_FALSE = frozenset({"n", "no", "f", "false", "off", "0"})


class Setting(t.NamedTuple):
    value: str
    source: str  # "PIP_FIND_LINKS", or "/etc/pip.conf [global]"


class Unreadable(Exception):
    """A configuration file pip would refuse to read (pip then fails: let it say so)."""


def config_files(environ: t.Mapping[str, str], prefix: str) -> list[str]:
    """pip's configuration files, lowest priority first (existing or not)."""
    env_file = environ.get("PIP_CONFIG_FILE")
    if env_file == os.devnull:
        return []
    home = os.path.expanduser("~")
    xdg_dirs = environ.get("XDG_CONFIG_DIRS", "").strip() or "/etc/xdg"
    files = [
        os.path.join(os.path.expanduser(d.rstrip(os.sep)), "pip", "pip.conf")
        for d in xdg_dirs.split(os.pathsep)
    ]
    files.append("/etc/pip.conf")
    if not (env_file and os.path.exists(env_file)):
        xdg_home = environ.get("XDG_CONFIG_HOME", "").strip() or os.path.join(home, ".config")
        files += [
            os.path.join(home, ".pip", "pip.conf"),
            os.path.join(os.path.expanduser(xdg_home), "pip", "pip.conf"),
        ]
    files.append(os.path.join(prefix, "pip.conf"))
    if env_file is not None:
        files.append(env_file)
    return files


def read(environ: t.Mapping[str, str], prefix: str) -> dict[str, Setting]:
    """The settings ``pip install`` would apply in ``prefix``'s environment, by option name."""
    merged: dict[str, Setting] = {}  # "section.name" -> setting; a later source overwrites
    for path in config_files(environ, prefix):
        if not os.path.exists(path):
            continue
        parser = configparser.RawConfigParser()
        try:
            parser.read(path, encoding=locale.getpreferredencoding(False))
        except (configparser.Error, UnicodeDecodeError, OSError) as exc:
            raise Unreadable(f"{path}: {exc}") from None
        for section in parser.sections():
            for name, value in parser.items(section):
                merged[f"{section}.{_name(name)}"] = Setting(value, f"{path} [{section}]")
    for key, value in environ.items():
        if key.startswith("PIP_") and _name(key[4:]) not in _NOT_OPTIONS:
            merged[f":env:.{_name(key[4:])}"] = Setting(value, key)
    settings: dict[str, Setting] = {}
    for section in ("global", "install", ":env:"):
        for key, setting in merged.items():
            scope, name = key.split(".", 1)
            if scope == section and setting.value:  # pip skips empty values
                settings[_ALIASES.get(name, name)] = setting
    return settings


def _name(raw: str) -> str:
    return raw.lower().replace("_", "-").removeprefix("--")


def boolean(setting: Setting) -> bool:
    """pip's reading of a yes/no setting; ``ValueError`` where pip would stop with an error."""
    value = setting.value.strip().lower()
    if value in _TRUE or value in _FALSE:
        return value in _TRUE
    raise ValueError(f"{setting.source}: {setting.value!r} is not a yes/no value")


@dataclass
class Translation:
    """uv arguments and environment for the settings, or ``refusal``: why pip has to run instead."""

    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    passed: list[str] = field(default_factory=list)  # names of the settings passed on
    refusal: str | None = None
    #: pip would byte-compile what it installs (its default, unless ``compile``/``no-compile`` say no)
    compile: bool = True


def translate(
    settings: t.Mapping[str, Setting],
    environ: t.Mapping[str, str],
    *,
    in_venv: bool,
    uv_flags: t.AbstractSet[str],
    bindir: str | None = None,
) -> Translation:
    """uv's equivalent of ``settings``, for an install into an environment (a venv when ``in_venv``).

    ``uv_flags`` are the flags the uv at hand knows; ``bindir`` is the target environment's scripts
    directory (for finding a ``keyring`` pip there would use).
    """
    out = Translation()

    def refuse(name: str, why: str) -> Translation:
        return Translation(refusal=f"pip setting {name!r} ({settings[name].source}) {why}")

    for name, setting in settings.items():
        if name in IGNORED:
            continue
        if name in _LISTS:
            for value in setting.value.split():
                out.args += [_LISTS[name], value]
        elif name in _FLAGS or name in ("upgrade", "require-virtualenv"):
            try:
                on = boolean(setting)
            except ValueError as exc:
                return Translation(refusal=f"{exc} (pip stops on it)")
            if not on:
                continue
            if name == "upgrade":
                if settings.get("upgrade-strategy", Setting("only-if-needed", "")).value.strip() != "eager":
                    return refuse(name, "upgrades only the named packages; uv's --upgrade upgrades all")
                out.args.append("--upgrade")
            elif name == "require-virtualenv":
                if not in_venv:
                    return refuse(name, "refuses an environment that is not a virtualenv")
            else:
                out.args += _FLAGS[name]
        elif name in ("compile", "no-compile"):
            # pip reads both names as the value of one switch, so PIP_NO_COMPILE=1 compiles (pip's own
            # quirk) and PIP_NO_COMPILE=0 does not; the later setting wins, as in pip
            try:
                out.compile = boolean(setting)
            except ValueError as exc:
                return Translation(refusal=f"{exc} (pip stops on it)")
        elif name == "index-url":
            out.args += ["--index-url", setting.value.strip()]
        elif name == "cert":
            out.env["SSL_CERT_FILE"] = setting.value.strip()
        elif name == "keyring-provider":
            if setting.value.strip() == "subprocess":
                out.args += ["--keyring-provider", "subprocess"]
            elif setting.value.strip() != "disabled":
                return refuse(name, "has no uv equivalent")
        else:
            return refuse(name, "has no uv equivalent")
        out.passed.append(name)
    if "cert" not in settings:
        bundle = environ.get("REQUESTS_CA_BUNDLE") or environ.get("CURL_CA_BUNDLE")
        if bundle:  # pip (through requests) verifies against it
            out.env["SSL_CERT_FILE"] = bundle
        elif "--system-certs" in uv_flags:  # pip >= 24.2 trusts the system store (truststore)
            out.args.append("--system-certs")
        elif "--native-tls" in uv_flags:  # older uv's name for it
            out.args.append("--native-tls")
    if "keyring-provider" not in settings and _keyring_available(bindir):
        return Translation(
            refusal="keyring is installed: pip would ask it for index credentials, uv would not"
        )
    insecure = _insecure_location(settings)
    if insecure:
        return Translation(
            refusal=f"pip skips the plain-http location in {insecure} (no trusted-host); uv would use it"
        )
    wanted = BASE_FLAGS | {a for a in out.args if a.startswith("--")}
    missing = sorted((wanted | ({"--compile-bytecode"} if out.compile else set())) - set(uv_flags))
    if missing:
        return Translation(refusal=f"this uv lacks {', '.join(missing)}")
    return out


def _insecure_location(settings: t.Mapping[str, Setting]) -> str | None:
    """The first index or find-links URL pip would skip: plain http to a host that is not trusted."""
    trusted = settings["trusted-host"].value.split() if "trusted-host" in settings else []
    for name in ("index-url", "extra-index-url", "find-links"):
        for location in settings[name].value.split() if name in settings else ():
            url = urllib.parse.urlsplit(location)
            if (
                url.scheme != "http"
                or (url.hostname or "") in _LOCAL_HOSTS
                or (url.hostname or "").startswith("127.")
            ):
                continue
            if url.hostname not in trusted and url.netloc.rsplit("@", 1)[-1] not in trusted:
                return settings[name].source
    return None


def _keyring_available(bindir: str | None) -> bool:
    """pip's default ``keyring-provider: auto`` uses an importable ``keyring`` or one on PATH."""
    if shutil.which("keyring") or (bindir and os.path.exists(os.path.join(bindir, "keyring"))):
        return True
    return bindir is None and importlib.util.find_spec("keyring") is not None
