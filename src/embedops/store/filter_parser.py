"""Parser for the short string form of payload filters (see ``embedops.store.filters``).

Grammar (``and`` binds tighter than ``or``)::

    expr  := term ("or" term)*
    term  := unary ("and" unary)*
    unary := "not" unary | "(" expr ")" | cmp
    cmp   := FIELD ("=" | "==" | "!=" | ">" | ">=" | "<" | "<=") VALUE
           | FIELD "in" "[" VALUE ("," VALUE)* "]"
           | FIELD "exists" | FIELD "not" "exists"
    VALUE := "string" | 'string' | number | true | false
"""

from __future__ import annotations

import json
import re
from typing import Any

from embedops.errors import InvalidFilter

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
      | (?P<num>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)(?![A-Za-z_.])
      | (?P<op>==|!=|>=|<=|=|>|<|\(|\)|\[|\]|,)
      | (?P<word>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
    )""",
    re.VERBOSE,
)
_CMP = {"=": "eq", "==": "eq", "!=": "ne", ">": "gt", ">=": "gte", "<": "lt", "<=": "lte"}
_KEYWORDS = {"and", "or", "not", "in", "exists", "true", "false"}


def _tokenize(text: str) -> list[tuple[str, Any]]:
    tokens: list[tuple[str, Any]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        if len(tokens) >= MAX_TOKENS:
            raise InvalidFilter(f"filter is longer than {MAX_TOKENS} tokens")
        match = _TOKEN.match(text, pos)
        if not match:
            raise InvalidFilter(f"cannot parse filter at position {pos}: {text[pos:pos + 20]!r}")
        pos = match.end()
        kind = match.lastgroup or ""
        raw = match.group(kind)
        tokens.append((kind, _token_value(kind, raw)))
    return tokens


def _token_value(kind: str, raw: str) -> Any:
    if kind == "num":
        return float(raw) if any(c in raw for c in ".eE") else int(raw)
    if kind == "str":
        body = raw[1:-1]
        if raw[0] == "'":
            body = body.replace("\\'", "'").replace('"', '\\"')
        try:
            return json.loads(f'"{body}"')
        except json.JSONDecodeError as exc:
            raise InvalidFilter(f"bad string literal {raw}: {exc.msg}") from exc
    if kind == "word" and raw.lower() in _KEYWORDS:
        return raw.lower()
    return raw


MAX_DEPTH = 64  # nesting of not/parentheses; deeper filters are refused, not recursed into
MAX_TOKENS = 100_000  # a filter of MAX_TERMS comparisons fits; longer text is not tokenized


class _Parser:
    def __init__(self, tokens: list[tuple[str, Any]]) -> None:
        self.tokens = tokens
        self.pos = 0
        self.depth = 0

    def nested(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise InvalidFilter(f"filter nests deeper than {MAX_DEPTH} levels")

    def peek(self) -> tuple[str, Any]:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else ("end", None)

    def take(self, kind: str, value: Any = None) -> Any:
        tok_kind, tok_value = self.peek()
        if tok_kind != kind or (value is not None and tok_value != value):
            want = value if value is not None else kind
            raise InvalidFilter(f"expected {want!r} in filter, got {tok_value!r}")
        self.pos += 1
        return tok_value

    def is_word(self, word: str) -> bool:
        return self.peek() == ("word", word)

    def expr(self) -> dict[str, Any]:
        items = [self.term()]
        while self.is_word("or"):
            self.pos += 1
            items.append(self.term())
        return items[0] if len(items) == 1 else {"or": items}

    def term(self) -> dict[str, Any]:
        items = [self.unary()]
        while self.is_word("and"):
            self.pos += 1
            items.append(self.unary())
        return items[0] if len(items) == 1 else {"and": items}

    def unary(self) -> dict[str, Any]:
        if self.is_word("not"):
            self.pos += 1
            self.nested()
            inner = {"not": self.unary()}
            self.depth -= 1
            return inner
        if self.peek() == ("op", "("):
            self.pos += 1
            self.nested()
            inner = self.expr()
            self.take("op", ")")
            self.depth -= 1
            return inner
        return self.comparison()

    def comparison(self) -> dict[str, Any]:
        field = self.take("word")
        if field in _KEYWORDS:
            raise InvalidFilter(f"expected a field name, got keyword {field!r}")
        kind, value = self.peek()
        if kind == "op" and value in _CMP:
            self.pos += 1
            return {"field": field, _CMP[value]: self.value()}
        self.pos += 1
        if (kind, value) == ("word", "exists"):
            return {"field": field, "exists": True}
        if (kind, value) == ("word", "not"):
            self.take("word", "exists")
            return {"field": field, "exists": False}
        if (kind, value) == ("word", "in"):
            return {"field": field, "in": self.value_list()}
        raise InvalidFilter(f"expected an operator after {field!r}, got {value!r}")

    def value_list(self) -> list[Any]:
        self.take("op", "[")
        values = [self.value()]
        while self.peek() == ("op", ","):
            self.pos += 1
            values.append(self.value())
        self.take("op", "]")
        return values

    def value(self) -> Any:
        kind, value = self.peek()
        self.pos += 1
        if kind in ("str", "num"):
            return value
        if (kind, value) == ("word", "true"):
            return True
        if (kind, value) == ("word", "false"):
            return False
        raise InvalidFilter(f"expected a value (string, number, true, false), got {value!r}")


def parse_expression(text: str) -> dict[str, Any]:
    """Parse the string form into the dict form; raises ``InvalidFilter`` with the position."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidFilter("empty filter expression")
    parser = _Parser(_tokenize(text))
    result = parser.expr()
    if parser.peek()[0] != "end":
        raise InvalidFilter(f"unexpected {parser.peek()[1]!r} after the end of the filter")
    return result
