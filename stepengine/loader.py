"""YAML → plain data plus a map from every key and item to its line and column.

The file is composed once (with libyaml when available) and the node tree is turned into dicts, lists
and scalars here, so that every mapping key and sequence item gets a position, duplicate keys are
rejected (a duplicated key inside a step silently drops an argument in Prefect), and anchors, aliases
and merge keys (``<<: *defaults``) keep working.

Aliases are bounded (issue 14): a few hundred bytes of nested aliases can stand for billions of
nodes. Right after composing, before anything walks the data (building it, validating it, caching
it), the nodes each alias adds are counted over the node graph, each distinct node once; a document
whose aliases add more than ``MAX_ALIAS_NODES`` nodes is refused at the alias that crosses the
limit. A file without aliases expands to what is written, so its size is bounded by its text.
"""

from __future__ import annotations

import os
import typing as t

from stepengine.errors import YAMLSyntaxError

if t.TYPE_CHECKING:
    from yaml.constructor import BaseConstructor
    from yaml.nodes import MappingNode, Node

__all__ = ["MAX_ALIAS_NODES", "Document", "Path", "load_document", "parse_document"]

#: a location inside a document: keys and list indexes from the root, e.g. ``("pull", 0, "git_clone")``
Path = tuple[str | int, ...]

_MERGE_TAG = "tag:yaml.org,2002:merge"
_MAX_DEPTH = 200
#: how many nodes (scalars, lists, mappings) the aliases of one document may add to it, all together;
#: generous for ``<<: *defaults`` and shared ``definitions:``, far below an alias bomb
MAX_ALIAS_NODES = 100_000


class Document(t.NamedTuple):
    """Parsed YAML with positions. ``positions[path]`` is the 1-based (line, column) of that key/item."""

    data: t.Any
    positions: dict[Path, tuple[int, int]]
    file: str

    def position(self, path: t.Sequence[str | int]) -> tuple[int, int] | None:
        """The position of ``path``, or of its nearest ancestor that has one."""
        path = tuple(path)
        while True:
            if path in self.positions:
                return self.positions[path]
            if not path:
                return None
            path = path[:-1]


def load_document(path: str | os.PathLike[str], *, cache: bool = True) -> Document:
    """Read and parse a YAML file. Raises ``YAMLSyntaxError`` (or ``ConfigError`` if unreadable).

    ``cache=False``: neither read nor write the parsed-document cache; for files that hold secrets
    (``--values``), since nothing but the store may write a secret to disk. Even with ``cache=True``
    a parse is not stored when the text holds a secret known to the current masker or listed by
    the environment (``STEPENGINE_SECRET_ENV``, ``PREFECT_API_KEY``, ...).
    """
    from stepengine.errors import ConfigError

    name = os.fspath(path)
    try:
        with open(name, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        raise ConfigError(f"{name}: no such file") from None
    except IsADirectoryError:
        raise ConfigError(f"{name}: is a directory, expected a YAML file") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{name}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise ConfigError(f"{name}: cannot read: {exc.strerror}") from None
    if not cache:
        return parse_document(text, name)
    from stepengine import _cache

    entry = _cache.parsed_entry(text)
    cached = _cache.load_parsed(entry)
    if cached is not None:
        return Document(cached[0], cached[1], name)
    document = parse_document(text, name)
    if entry is not None and not _holds_secret(text):
        _cache.store_parsed(entry, document.data, document.positions)
    return document


def _holds_secret(text: str) -> bool:
    """Whether ``text`` contains a secret the current masker or the environment knows of."""
    from stepengine.masking import Masker, current_masker
    from stepengine.stores.env import env_secrets

    masker = Masker(parent=current_masker())
    masker.add(env_secrets())
    return masker.mask(text) != text


def parse_document(text: str, file: str = "<string>") -> Document:
    """Parse YAML text. An empty document is ``None``."""
    import yaml

    loader_class = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    loader = loader_class(text)
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or "invalid YAML"
        if exc.context:
            problem = f"{problem} ({exc.context})"
        raise YAMLSyntaxError(
            problem,
            file=file,
            line=mark.line + 1 if mark else None,
            col=mark.column + 1 if mark else None,
        ) from None
    except yaml.YAMLError as exc:
        raise YAMLSyntaxError(str(exc), file=file) from None
    finally:
        loader.dispose()
    positions: dict[Path, tuple[int, int]] = {(): (1, 1)}
    if node is None:
        return Document(None, positions, file)
    _check_alias_expansion(node, text, file)
    builder = _Builder(loader, file, positions)
    positions[()] = _pos(node)
    return Document(builder.build(node, (), 0), positions, file)


def _pos(node: Node) -> tuple[int, int]:
    mark = node.start_mark
    return (mark.line + 1, mark.column + 1)


class _AliasBomb(Exception):
    def __init__(self, alias_number: int) -> None:
        self.alias_number = alias_number


def _check_alias_expansion(root: Node, text: str, file: str) -> None:
    """Refuse a document whose aliases add more than ``MAX_ALIAS_NODES`` nodes (see the module doc).

    Composing already shares one node object between an anchor and its aliases, so walking the graph
    in document order and descending into each node only the first time it is met visits the text
    once; meeting a node again is an alias, which adds that node's expanded size (memoised).
    """
    import yaml

    sizes: dict[int, int] = {}
    active: set[int] = set()
    aliases = 0
    added = 0

    def size(node: Node, depth: int) -> int:
        nonlocal aliases, added
        key = id(node)
        if key in sizes or key in active:
            aliases += 1
            if key in active:  # the builder reports it, with its own message
                return 1
            added += sizes[key]
            if added > MAX_ALIAS_NODES:
                raise _AliasBomb(aliases)
            return sizes[key]
        if depth > _MAX_DEPTH:
            line, col = _pos(node)
            raise YAMLSyntaxError("document nested too deeply", file=file, line=line, col=col)
        total = 1
        active.add(key)
        if isinstance(node, yaml.SequenceNode):
            for child in node.value:
                total += size(child, depth + 1)
        elif isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                total += size(key_node, depth + 1) + size(value_node, depth + 1)
        active.discard(key)
        sizes[key] = total
        return total

    try:
        size(root, 0)
    except _AliasBomb as bomb:
        line, col = _alias_position(text, bomb.alias_number)
        first = _alias_position(text, 1) if bomb.alias_number > 1 else (line, col)
        where = "" if first == (line, col) else f"; the first alias is at {first[0]}:{first[1]}"
        raise YAMLSyntaxError(
            f"aliases in this document add more than {MAX_ALIAS_NODES:,} nodes (the limit), passed at "
            f"this alias{where}",
            file=file,
            line=line,
            col=col,
            hint="write the repeated data out, or share less of it through anchors and aliases",
        ) from None


def _alias_position(text: str, number: int) -> tuple[int | None, int | None]:
    """(line, column) of the ``number``-th alias (1-based) in ``text``: the event stream keeps marks
    the composed graph has lost. Only on the error path."""
    import yaml

    seen = 0
    for event in yaml.parse(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
        if isinstance(event, yaml.AliasEvent):
            seen += 1
            mark = event.start_mark
            if seen == number and mark is not None:
                return mark.line + 1, mark.column + 1
    return None, None


class _Builder:
    def __init__(self, loader: BaseConstructor, file: str, positions: dict[Path, tuple[int, int]]) -> None:
        self._loader = loader
        self._file = file
        self._positions = positions
        self._active: set[int] = set()

    def _error(self, message: str, node: Node) -> YAMLSyntaxError:
        line, col = _pos(node)
        return YAMLSyntaxError(message, file=self._file, line=line, col=col)

    def build(self, node: Node, path: Path, depth: int) -> t.Any:
        import yaml

        if depth > _MAX_DEPTH:
            raise self._error("document nested too deeply", node)
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node)
        if id(node) in self._active:
            raise self._error("an alias refers to a node that contains it (recursive alias)", node)
        self._active.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                items = []
                for index, child in enumerate(node.value):
                    self._positions[path + (index,)] = _pos(child)
                    items.append(self.build(child, path + (index,), depth + 1))
                return items
            if isinstance(node, yaml.MappingNode):
                return self._mapping(node, path, depth)
        finally:
            self._active.discard(id(node))
        raise self._error(f"unsupported YAML node {type(node).__name__}", node)

    def _scalar(self, node: Node) -> t.Any:
        """The value of a scalar node (a key or a value), or a located error: an unknown tag (``!foo``,
        ``=``), an integer too long for Python (over 4,300 digits), an impossible date..."""
        import yaml

        try:
            return self._loader.construct_object(node, deep=True)
        except yaml.constructor.ConstructorError as exc:
            error = self._error(exc.problem or "cannot construct value", node)
            if node.tag == "tag:yaml.org,2002:value":  # a plain '=' (YAML's value key)
                error.hint = "quote it ('=') to keep it as text"
            else:
                error.hint = f"remove the tag {node.tag}: only YAML's standard tags are read"
        except Exception as exc:  # PyYAML's constructors fail in many ways on odd text (!!timestamp z)
            if node.tag.endswith(":int") and "digits" in str(exc):
                problem = (
                    f"an integer of {len(node.value):,} characters is longer than Python reads (4,300 digits)"
                )
            elif isinstance(exc, ValueError):
                problem = f"cannot read this value ({node.tag.rsplit(':', 1)[-1]}): {exc}"
            else:
                problem = f"cannot read {node.value!r} as a {node.tag.rsplit(':', 1)[-1]}"
            error = self._error(problem, node)
            error.hint = "quote it to keep it as text"
        raise error

    def _mapping(self, node: MappingNode, path: Path, depth: int) -> dict[t.Any, t.Any]:
        import yaml

        explicit: dict[t.Any, t.Any] = {}
        seen: dict[t.Any, t.Any] = {}
        merged: dict[t.Any, t.Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
                # Earlier merge sources win over later ones; explicit keys win over all of them.
                for source in reversed(sources):
                    if not isinstance(source, yaml.MappingNode):
                        raise self._error("a merge key (<<) needs a mapping or a list of mappings", key_node)
                    merged.update(self.build(source, path, depth + 1))
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                raise self._error("a mapping key must be a plain value, not a list or mapping", key_node)
            key = self._scalar(key_node)
            if key in seen:
                first_line = seen[key].start_mark.line + 1
                raise self._error(
                    f"duplicate key {key!r} (first defined on line {first_line}); "
                    "the later value would silently replace the earlier one",
                    key_node,
                )
            seen[key] = key_node
            self._positions[path + (key,)] = _pos(key_node)
            explicit[key] = self.build(value_node, path + (key,), depth + 1)
        if not merged:
            return explicit
        for key in merged:
            if key not in explicit:
                self._positions.setdefault(path + (key,), _pos(node))
        return {**merged, **explicit}
