"""Reading the project's YAML files (compose, Prometheus config, alert rules) in tests.

PyYAML is used when it is installed. Without it, :func:`load` reads the subset of YAML
those files are written in: block mappings and sequences, plain/single/double-quoted
scalars, one-line flow sequences, ``{}`` and literal/folded block scalars (``|``, ``>``,
with ``-``/``+`` chomping), resolved the way PyYAML (YAML 1.1) resolves them. Anything
outside the subset (anchors, aliases, tags, flow mappings, multi-line quoted scalars,
several documents) raises :class:`YamlSubsetError` with the line number, instead of
being read differently from a real YAML parser.
"""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path
from typing import Any


class YamlSubsetError(ValueError):
    """The text is outside the supported subset (or not YAML at all)."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line


_NULLS = frozenset({"", "~", "null", "Null", "NULL"})
_TRUE = frozenset({"true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON"})
_FALSE = frozenset({"false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF"})
_INT = re.compile(r"[-+]?(0|[1-9][0-9_]*)")
_FLOAT = re.compile(r"[-+]?([0-9][0-9_]*)?\.[0-9_]*([eE][-+][0-9]+)?")
# Forms PyYAML reads as octal, hex, binary or base 60: refused, they are surprises.
_SURPRISING_NUMBER = re.compile(
    r"[-+]?(0[0-7_]+|0x[0-9a-fA-F_]+|0b[01_]+|[1-9][0-9_]*(:[0-5]?[0-9])+(\.[0-9_]*)?)"
)
_INDICATORS = frozenset("&*!%@`|>{")


def pyyaml_available() -> bool:
    try:
        importlib.import_module("yaml")
    except ImportError:
        return False
    return True


def load_file(path: Path) -> Any:
    """The file's data: PyYAML's ``safe_load`` when installed, else :func:`load`."""
    text = path.read_text(encoding="utf-8")
    if pyyaml_available():
        yaml = importlib.import_module("yaml")
        return yaml.safe_load(text)
    return load(text)


def load(text: str) -> Any:
    """Parse ``text`` (one document of the subset described in the module docstring)."""
    return _Parser(text).document()


class _Parser:
    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()
        self.i = 0

    # --- lines -------------------------------------------------------------------------------

    def _significant(self) -> tuple[int, str] | None:
        """(indent, content) of the next non-blank, non-comment line; skips the others."""
        while self.i < len(self.lines):
            raw = self.lines[self.i]
            stripped = raw.strip()
            if not stripped or stripped.startswith("#"):
                self.i += 1
                continue
            head = raw[: len(raw) - len(raw.lstrip())]
            if "\t" in head:
                raise YamlSubsetError(self.i + 1, "tab in indentation")
            return len(head), raw.lstrip()
        return None

    @property
    def lineno(self) -> int:
        return self.i + 1

    # --- structure ---------------------------------------------------------------------------

    def document(self) -> Any:
        first = self._significant()
        if first is not None and first[1].rstrip() == "---":
            self.i += 1
        if self._significant() is None:
            return None
        value = self._block(0)
        rest = self._significant()
        if rest is not None:
            if rest[1].startswith("---") or rest[1].startswith("..."):
                raise YamlSubsetError(self.lineno, "only one document is supported")
            raise YamlSubsetError(self.lineno, "unexpected indentation")
        return value

    def _block(self, min_indent: int) -> Any:
        nxt = self._significant()
        if nxt is None or nxt[0] < min_indent:
            return None
        indent, content = nxt
        if content == "-" or content.startswith("- "):
            return self._sequence(indent)
        if _mapping_split(content, self.lineno) is not None:
            return self._mapping(indent)
        # A lone scalar as the whole node (e.g. a document that is one value).
        self.i += 1
        return self._inline(content)

    def _sequence(self, indent: int) -> list[Any]:
        items: list[Any] = []
        while True:
            nxt = self._significant()
            if nxt is None or nxt[0] < indent:
                return items
            if nxt[0] > indent:
                raise YamlSubsetError(self.lineno, "unexpected indentation in a sequence")
            content = nxt[1]
            if not (content == "-" or content.startswith("- ")):
                return items
            rest = content[1:].lstrip(" ")
            if not rest or rest.startswith("#"):
                self.i += 1
                child = self._significant()
                items.append(self._block(indent + 1) if child and child[0] > indent else None)
                continue
            column = indent + (len(content) - len(rest))
            if (rest == "-" or rest.startswith("- ")) or _mapping_split(rest, self.lineno):
                # The item is a block node starting on this line: re-read the line as if
                # the node began at its own column.
                self.lines[self.i] = " " * column + rest
                items.append(self._block(column))
                continue
            self.i += 1
            items.append(self._inline(rest, indent))

    def _mapping(self, indent: int) -> dict[Any, Any]:
        mapping: dict[Any, Any] = {}
        while True:
            nxt = self._significant()
            if nxt is None or nxt[0] < indent:
                return mapping
            if nxt[0] > indent:
                raise YamlSubsetError(self.lineno, "unexpected indentation in a mapping")
            content = nxt[1]
            if content == "-" or content.startswith("- "):
                return mapping
            split = _mapping_split(content, self.lineno)
            if split is None:
                raise YamlSubsetError(self.lineno, f"expected 'key: value', got {content!r}")
            key_text, rest = split
            key = _scalar(key_text, self.lineno)
            if key in mapping:
                raise YamlSubsetError(self.lineno, f"duplicate key {key!r}")
            line = self.lineno
            self.i += 1
            rest = _strip_comment(rest, line)
            if rest:
                mapping[key] = self._inline(rest, indent)
                continue
            child = self._significant()
            if child is not None and child[0] > indent:
                mapping[key] = self._block(indent + 1)
            elif child is not None and child[0] == indent and (
                child[1] == "-" or child[1].startswith("- ")
            ):
                mapping[key] = self._sequence(indent)
            else:
                mapping[key] = None

    # --- values ------------------------------------------------------------------------------

    def _inline(self, text: str, parent_indent: int = -1) -> Any:
        """A value written on the current line (already consumed), or a block scalar."""
        line = self.lineno - 1
        text = text.strip()
        if text[:1] in "|>":
            return self._block_scalar(text, parent_indent, line)
        text = _strip_comment(text, line)
        if text.startswith("["):
            return _flow_sequence(text, line)
        if text == "{}":
            return {}
        if text[:1] in _INDICATORS or text.startswith(("? ", "- ")):
            raise YamlSubsetError(line, f"unsupported YAML syntax: {text[:20]!r}")
        return _scalar(text, line)

    def _block_scalar(self, header: str, parent_indent: int, line: int) -> str:
        match = re.fullmatch(r"([|>])([-+]?)\s*(#.*)?", header)
        if match is None:
            raise YamlSubsetError(line, f"unsupported block scalar header {header!r}")
        style, chomp = match.group(1), match.group(2)
        body: list[str] = []
        block_indent: int | None = None
        while self.i < len(self.lines):
            raw = self.lines[self.i]
            if raw.strip():
                indent = len(raw) - len(raw.lstrip(" "))
                if indent <= parent_indent:
                    break
                if block_indent is None:
                    block_indent = indent
                if indent < block_indent:
                    break
                body.append(raw[block_indent:])
            else:
                body.append("")
            self.i += 1
        while body and body[-1] == "" and chomp != "+":
            body.pop()
        text = "\n".join(body) if style == "|" else _fold(body)
        if chomp == "-" or not body:
            return text
        return text + "\n"


def _fold(lines: list[str]) -> str:
    out = ""
    for index, line in enumerate(lines):
        if index == 0:
            out = line
        elif line == "":
            out += "\n"
        elif lines[index - 1] == "" or line.startswith(" ") or lines[index - 1].startswith(" "):
            out += ("" if lines[index - 1] == "" else "\n") + line
        else:
            out += " " + line
    return out


def _mapping_split(content: str, line: int) -> tuple[str, str] | None:
    """(key text, rest) when ``content`` is ``key: ...`` (outside quotes), else None."""
    if content[:1] in "\"'":
        end = _quoted_end(content, line)
        after = content[end + 1 :]
        if after.startswith(":") and (len(after) == 1 or after[1] in " \t"):
            return content[: end + 1], after[1:]
        return None
    if content[:1] in "[{":
        return None
    for index, char in enumerate(content):
        if char == "#" and index > 0 and content[index - 1] in " \t":
            return None
        if char == ":" and (index + 1 == len(content) or content[index + 1] in " \t"):
            return content[:index].rstrip(), content[index + 1 :]
    return None


def _quoted_end(text: str, line: int) -> int:
    quote = text[0]
    index = 1
    while index < len(text):
        char = text[index]
        if quote == '"' and char == "\\":
            index += 2
            continue
        if char == quote:
            if quote == "'" and text[index + 1 : index + 2] == "'":
                index += 2
                continue
            return index
        index += 1
    raise YamlSubsetError(line, "unterminated quoted scalar (multi-line quotes are unsupported)")


def _strip_comment(text: str, line: int) -> str:
    text = text.strip()
    if not text:
        return text
    if text[0] in "\"'":
        end = _quoted_end(text, line)
        rest = text[end + 1 :].strip()
        if rest and not rest.startswith("#"):
            raise YamlSubsetError(line, f"unexpected text after a quoted scalar: {rest!r}")
        return text[: end + 1]
    if text.startswith("#"):
        return ""
    match = re.search(r"[ \t]#", text)
    return text[: match.start()].rstrip() if match else text


def _flow_sequence(text: str, line: int) -> list[Any]:
    if not text.endswith("]"):
        raise YamlSubsetError(line, "a flow sequence must end on its line")
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        inner = text[1:-1].strip()
        if not inner:
            return []
        if any(c in inner for c in "[]{}\"'"):
            raise YamlSubsetError(line, "nested or quoted flow items must be JSON") from None
        return [_scalar(part.strip(), line) for part in inner.split(",")]
    if not isinstance(value, list):
        raise YamlSubsetError(line, "expected a flow sequence")
    return value


def _scalar(text: str, line: int) -> Any:
    text = text.strip()
    if text[:1] == '"':
        if _quoted_end(text, line) != len(text) - 1:
            raise YamlSubsetError(line, f"unexpected text after a quoted scalar: {text!r}")
        try:
            value: str = json.loads(text)
        except json.JSONDecodeError:
            raise YamlSubsetError(line, f"unsupported escape in {text!r}") from None
        return value
    if text[:1] == "'":
        if _quoted_end(text, line) != len(text) - 1:
            raise YamlSubsetError(line, f"unexpected text after a quoted scalar: {text!r}")
        return text[1:-1].replace("''", "'")
    if ": " in text or text.endswith(":"):
        raise YamlSubsetError(line, f"a plain scalar cannot contain ': ' ({text!r})")
    if text in _NULLS:
        return None
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    if _INT.fullmatch(text):
        return int(text.replace("_", ""))
    if _SURPRISING_NUMBER.fullmatch(text):
        raise YamlSubsetError(line, f"{text!r} is a number in YAML 1.1: quote it")
    if _FLOAT.fullmatch(text) and any(c.isdigit() for c in text):
        return float(text.replace("_", ""))
    if text.lower() in (".inf", "+.inf", "-.inf", ".nan"):
        raise YamlSubsetError(line, f"{text!r}: special floats are unsupported")
    return text
