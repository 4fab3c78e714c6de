"""Reading entry points: one pass over the installed distributions, for one group.

Returned entry points load ``module:attr`` themselves, so that nothing but the steps a run uses is
imported.

Scanning every installed distribution's metadata costs a cold run tens of milliseconds (more with
many packages installed), so the result is cached in ``$STEPENGINE_HOME/cache/entry-points/``, keyed
by the mtime of every ``sys.path`` entry: installing, upgrading or removing a distribution adds or
removes a ``*.dist-info`` directory, which changes its parent's mtime, and the next run scans again.
A listing is never cached while a ``sys.path`` directory changed in the last two seconds (an install
still in progress). ``Registry`` also rescans before reporting a step as unknown or unimportable, so a
stale listing can cost time but cannot hide a step.

The listing decides which function a step name runs, so it is read only when it is private to the
user (see ``stepengine._cache.read_private``) and has exactly the shape written here; anything else
is ignored and the distributions are scanned again.
"""

from __future__ import annotations

import typing as t

__all__ = ["EntryPointRow", "LazyEntryPoint", "read_entry_points"]


class LazyEntryPoint:
    """Loads ``module:attr`` on demand, without importlib.metadata."""

    def __init__(self, value: str) -> None:
        self.value = value

    def load(self) -> t.Any:
        import importlib

        module_name, _, attr = self.value.partition(":")
        obj = importlib.import_module(module_name.strip())
        for part in attr.strip().split("."):
            if part:
                obj = getattr(obj, part)
        return obj


#: ``(name, value, distribution, version, loadable)`` of one entry point
EntryPointRow = tuple[str, str, "str | None", "str | None", LazyEntryPoint]


def read_entry_points(group: str, *, fresh: bool = False) -> list[EntryPointRow]:
    """``(name, value, distribution, version, loadable)`` for every entry point of ``group``.

    ``fresh``: scan the installed distributions even if the cached listing looks current.
    """
    import json
    import os
    import sys
    import time

    from stepengine._cache import private_dir, read_private, sha256, write_private

    state = [_path_state(entry) for entry in sys.path]
    directory = private_dir("entry-points")
    cache_file = None
    if directory is not None:
        name = sha256("\0".join([group, sys.executable, *sys.path]).encode("utf-8", "surrogatepass"))
        cache_file = os.path.join(directory, name.hexdigest()[:32] + ".json")
    if cache_file is not None and not fresh:
        blob = read_private(cache_file)
        entries = _cached_entries(blob, state) if blob is not None else None
        if entries is not None:
            return [(n, v, d, ver, LazyEntryPoint(v)) for n, v, d, ver in entries]
    found = _scan(group)
    newest = max((s[1] for s in state if s[1] is not None), default=0)
    if cache_file is not None and time.time_ns() - newest > 2_000_000_000:
        listing = {"state": state, "entries": [list(f[:4]) for f in found]}
        write_private(cache_file, json.dumps(listing).encode("utf-8", "surrogatepass"))
    return found


def _cached_entries(blob: bytes, state: list[t.Any]) -> list[list[t.Any]] | None:
    """The entries of a cached listing made in ``state``, or ``None``: stale, damaged or of another shape."""
    import json

    try:
        cached = json.loads(blob)
    except ValueError:
        return None
    if not isinstance(cached, dict) or cached.get("state") != state:
        return None
    entries = cached.get("entries")
    if not isinstance(entries, list):
        return None
    for entry in entries:
        if not (
            isinstance(entry, list)
            and len(entry) == 4
            and all(isinstance(field, str) for field in entry[:2])
            and all(field is None or isinstance(field, str) for field in entry[2:])
        ):
            return None
    return entries


def _path_state(entry: str) -> list[t.Any]:
    """``[entry, mtime_ns, size]`` of one ``sys.path`` entry (``None`` for both when it is missing)."""
    import os

    try:
        stat = os.stat(entry or os.getcwd())
    except OSError:
        return [entry, None, None]
    return [entry, stat.st_mtime_ns, stat.st_size]


def _scan(group: str) -> list[EntryPointRow]:
    import importlib.metadata as metadata

    found: list[EntryPointRow] = []
    seen: set[tuple[str, str]] = set()
    for dist in metadata.distributions():
        try:
            eps = dist.entry_points
        except Exception:  # a broken distribution must not break every run
            continue
        name = dist.metadata["Name"] if dist.metadata else None
        for ep in eps:
            if ep.group != group:
                continue
            key = (ep.name, f"{name}")
            if key in seen:  # the same distribution seen twice on sys.path: the first wins, like imports
                continue
            seen.add(key)
            found.append((ep.name, ep.value, name, dist.version, LazyEntryPoint(ep.value)))
    return found
