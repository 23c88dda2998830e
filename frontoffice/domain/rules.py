"""A small, safe filter language for entry-point routing rules.

Administrators write rules such as::

    channel == "email" and subject contains "invoice"
    "vip" in customer.tags
    ivr.choice == "2" or language in ["ru", "uk"]
    subject matches "^(RE|FW):"

A rule is parsed once (:func:`parse_rule`) by a hand-written tokenizer and recursive-descent parser
into an AST of frozen dataclasses, and then evaluated against a nested mapping describing the contact
(:meth:`Rule.evaluate`). Nothing is ever handed to ``eval``/``exec`` or Python's own parser, so a rule
can read the context and nothing else.

Grammar (keywords are lower case; ``path`` is ``name ('.' name)*``)::

    rule       := or_expr EOF
    or_expr    := and_expr ("or" and_expr)*
    and_expr   := not_expr ("and" not_expr)*
    not_expr   := "not" not_expr | primary
    primary    := "(" or_expr ")" | comparison
    comparison := value [operator value]
    operator   := "==" | "!=" | "<" | "<=" | ">" | ">=" | "in" | "not" "in"
                | "contains" | "startswith" | "endswith" | "matches"
    value      := string | number | "true" | "false" | "null" | list | path
    list       := "[" [literal ("," literal)*] "]"

Evaluation never raises:

* a missing attribute is ``null``;
* a comparison between values of incompatible types (``priority > "high"``) is false;
* a bare value is tested for truthiness (``null``, ``false``, ``0``, ``""`` and empty lists are false);
* ``!=`` and ``not in`` are exactly ``not (a == b)`` and ``not (a in b)``;
* ``==`` is case-sensitive; ``contains``, ``startswith``, ``endswith`` and ``in`` on two strings are
  case-insensitive (Unicode case folding), because subjects and addresses are typed by people;
* ``x in list`` / ``list contains x`` test membership with ``==``; ``key in mapping`` tests for a key;
* ``matches`` is a Python regular-expression *search* (anchor with ``^``/``$``), case-sensitive unless
  the pattern says ``(?i)``; its right side must be a string literal so it is compiled and checked
  when the rule is saved, not when a contact arrives.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Final, TypeAlias

__all__ = [
    "DEFAULT_KNOWN_PATHS",
    "MAX_LIST_ITEMS",
    "MAX_MATCH_SUBJECT_LENGTH",
    "MAX_NESTING_DEPTH",
    "MAX_PATTERN_LENGTH",
    "MAX_RULES_PER_SET",
    "MAX_RULE_LENGTH",
    "And",
    "Comparison",
    "ListLiteral",
    "Literal",
    "Node",
    "Not",
    "Or",
    "Path",
    "Rule",
    "RuleIssue",
    "RuleRoute",
    "RuleSet",
    "RuleSyntaxError",
    "Truthy",
    "parse_rule",
]

# --- limits -----------------------------------------------------------------------------------------

# A routing rule is typed into an admin form; real rules are a line or two. 2,000 characters leaves
# room for long lists of keywords while keeping parsing and evaluation trivially cheap per contact.
MAX_RULE_LENGTH: Final = 2_000
# Parentheses and ``not`` nest recursively in the parser and the evaluator; 32 levels is far beyond
# what a person writes and keeps well clear of Python's recursion limit (1,000).
MAX_NESTING_DEPTH: Final = 32
# ``language in [...]`` lists are short; 500 items bounds the cost of one membership test.
MAX_LIST_ITEMS: Final = 500
# Python's ``re`` has no timeout. Short patterns plus the nested-quantifier check below keep
# backtracking bounded; 200 characters fits any sensible subject/address pattern.
MAX_PATTERN_LENGTH: Final = 200
# Only the first 1,000 characters of a value are searched by ``matches``: enough for any subject
# line or header, and it caps the work even for a pattern that backtracks.
MAX_MATCH_SUBJECT_LENGTH: Final = 1_000
# An entry point with more than 1,000 rules is a configuration mistake, and a linear first-match
# scan over that many rules is still cheap.
MAX_RULES_PER_SET: Final = 1_000

# The attributes the services put into a routing context. ``name.*`` admits any deeper path.
DEFAULT_KNOWN_PATHS: Final[frozenset[str]] = frozenset(
    {
        "channel",
        "direction",
        "language",
        "subject",
        "priority",
        "project",
        "entry_point",
        "ivr.choice",
        "ivr.digits",
        "customer.id",
        "customer.tags",
        "customer.vip",
        "customer.custom.*",
        "customer.company",
        "customer.known",
        "from",
        "to",
        "attributes.*",
    }
)

_KEYWORDS: Final = frozenset(
    {"and", "or", "not", "in", "contains", "startswith", "endswith", "matches", "true", "false", "null"}
)
_WORD_OPERATORS: Final = frozenset({"in", "contains", "startswith", "endswith", "matches"})
_SYMBOL_OPERATORS: Final = ("==", "!=", "<=", ">=", "<", ">")  # two-character ones first
_ESCAPES: Final = {'"': '"', "\\": "\\", "/": "/", "n": "\n", "t": "\t", "r": "\r"}

LiteralValue: TypeAlias = "str | int | Decimal | bool | None"


class RuleSyntaxError(ValueError):
    """A rule could not be parsed. ``position`` is the 0-based offset of the offending character.

    ``column`` is 1-based; :meth:`caret` renders the text with a ``^`` under the problem, for the
    admin UI and for logs.
    """

    error_id = "invalid-routing-rule"

    def __init__(self, message: str, position: int, text: str = "") -> None:
        super().__init__(f"{message} (at column {position + 1})")
        self.message = message
        self.position = position
        self.text = text

    @property
    def column(self) -> int:
        """1-based column of the problem."""
        return self.position + 1

    def caret(self) -> str:
        """The rule text on one line and a caret under the problem on the next."""
        line = self.text.replace("\n", " ").replace("\t", " ")
        return f"{line}\n{' ' * self.position}^"


# --- tokens -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # "string", "number", "word", "path", "op", "punct", "end"
    value: object
    position: int


_IDENT_START = re.compile(r"[A-Za-z_]")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch in " \t\r\n":
            i += 1
        elif ch == '"':
            start = i
            value, i = _read_string(text, i)
            tokens.append(_Token("string", value, start))
        elif (m := _NUMBER.match(text, i)) is not None:
            literal = m.group(0)
            end = m.end()
            if end < n and (text[end] == "." or _IDENT_START.match(text[end])):
                raise RuleSyntaxError("Malformed number", end, text)
            number: int | Decimal = Decimal(literal) if "." in literal else int(literal)
            tokens.append(_Token("number", number, i))
            i = end
        elif _IDENT_START.match(ch):
            start = i
            parts: list[str] = []
            while True:
                m = _IDENT.match(text, i)
                if m is None:
                    raise RuleSyntaxError("Expected an attribute name after '.'", i, text)
                parts.append(m.group(0))
                i = m.end()
                if i < n and text[i] == ".":
                    i += 1
                    continue
                break
            if len(parts) == 1 and parts[0] in _KEYWORDS:
                tokens.append(_Token("word", parts[0], start))
            else:
                tokens.append(_Token("path", tuple(parts), start))
        elif text.startswith(_SYMBOL_OPERATORS, i):
            op = next(o for o in _SYMBOL_OPERATORS if text.startswith(o, i))
            tokens.append(_Token("op", op, i))
            i += len(op)
        elif ch in "()[],":
            tokens.append(_Token("punct", ch, i))
            i += 1
        elif ch == "=":
            raise RuleSyntaxError("Use '==' to compare", i, text)
        elif ch in "&|!":
            raise RuleSyntaxError("Use 'and', 'or', 'not' instead of symbols", i, text)
        elif ch == "'":
            raise RuleSyntaxError('Strings are written in double quotes ("...")', i, text)
        else:
            raise RuleSyntaxError(f"Unexpected character {ch!r}", i, text)
    tokens.append(_Token("end", None, n))
    return tokens


def _read_string(text: str, start: int) -> tuple[str, int]:
    """Read a double-quoted string starting at ``start``; return (value, index after closing quote)."""
    out: list[str] = []
    i = start + 1
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == '"':
            return "".join(out), i + 1
        if ch == "\\":
            if i + 1 >= n:
                break
            esc = text[i + 1]
            if esc in _ESCAPES:
                out.append(_ESCAPES[esc])
                i += 2
            elif esc == "u":
                digits = text[i + 2 : i + 6]
                if len(digits) != 4 or any(c not in "0123456789abcdefABCDEF" for c in digits):
                    raise RuleSyntaxError("Expected four hex digits after '\\u'", i, text)
                out.append(chr(int(digits, 16)))
                i += 6
            else:
                raise RuleSyntaxError(f"Unknown escape '\\{esc}'", i, text)
        elif ch == "\n":
            raise RuleSyntaxError("Line break inside a string", i, text)
        else:
            out.append(ch)
            i += 1
    raise RuleSyntaxError("Unterminated string", start, text)


# --- AST --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Literal:
    """A constant: string, integer, decimal, boolean or null."""

    value: LiteralValue


@dataclass(frozen=True, slots=True)
class ListLiteral:
    """A list of constants, e.g. ``["ru", "uk"]``."""

    items: tuple[LiteralValue, ...]


@dataclass(frozen=True, slots=True)
class Path:
    """A dotted attribute path into the context, e.g. ``customer.custom.contract``."""

    parts: tuple[str, ...]
    position: int = field(default=0, compare=False)

    @property
    def dotted(self) -> str:
        return ".".join(self.parts)


Value: TypeAlias = "Literal | ListLiteral | Path"


@dataclass(frozen=True, slots=True)
class Comparison:
    """``left <op> right``. For ``matches`` the compiled pattern is kept in ``pattern``."""

    op: str
    left: Value
    right: Value
    pattern: re.Pattern[str] | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Truthy:
    """A bare value used as a condition: true unless null, false, 0, "" or empty."""

    operand: Value


@dataclass(frozen=True, slots=True)
class Not:
    operand: Node


@dataclass(frozen=True, slots=True)
class And:
    operands: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    operands: tuple[Node, ...]


Node: TypeAlias = "Comparison | Truthy | Not | And | Or"


# --- parser -----------------------------------------------------------------------------------------


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.index = 0
        self.depth = 0

    def error(self, message: str, token: _Token | None = None) -> RuleSyntaxError:
        position = (token or self.peek()).position
        return RuleSyntaxError(message, position, self.text)

    def peek(self, ahead: int = 0) -> _Token:
        return self.tokens[min(self.index + ahead, len(self.tokens) - 1)]

    def advance(self) -> _Token:
        token = self.tokens[self.index]
        if token.kind != "end":
            self.index += 1
        return token

    def at_word(self, word: str, ahead: int = 0) -> bool:
        token = self.peek(ahead)
        return token.kind == "word" and token.value == word

    def at_punct(self, ch: str) -> bool:
        token = self.peek()
        return token.kind == "punct" and token.value == ch

    def parse(self) -> Node:
        node = self.or_expr()
        token = self.peek()
        if token.kind != "end":
            if token.kind == "punct" and token.value == ")":
                raise self.error("Unbalanced ')'")
            raise self.error("Expected 'and', 'or' or the end of the rule")
        return node

    def enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_NESTING_DEPTH:
            raise self.error(f"Rule is nested too deeply (more than {MAX_NESTING_DEPTH} levels)")

    def or_expr(self) -> Node:
        operands = [self.and_expr()]
        while self.at_word("or"):
            self.advance()
            operands.append(self.and_expr())
        return operands[0] if len(operands) == 1 else Or(tuple(operands))

    def and_expr(self) -> Node:
        operands = [self.not_expr()]
        while self.at_word("and"):
            self.advance()
            operands.append(self.not_expr())
        return operands[0] if len(operands) == 1 else And(tuple(operands))

    def not_expr(self) -> Node:
        if self.at_word("not"):
            self.advance()
            self.enter()
            operand = self.not_expr()
            self.depth -= 1
            return Not(operand)
        return self.primary()

    def primary(self) -> Node:
        if self.at_punct("("):
            opening = self.advance()
            self.enter()
            node = self.or_expr()
            if not self.at_punct(")"):
                if self.peek().kind == "end":
                    raise self.error("Missing ')' for this '('", opening)
                raise self.error("Expected ')'")
            self.advance()
            self.depth -= 1
            return node
        return self.comparison()

    def comparison(self) -> Node:
        left = self.value()
        token = self.peek()
        op: str | None = None
        if token.kind == "op" or (token.kind == "word" and token.value in _WORD_OPERATORS):
            op = str(token.value)
            self.advance()
        elif token.kind == "word" and token.value == "not" and self.at_word("in", 1):
            op = "not in"
            self.advance()
            self.advance()
        if op is None:
            return Truthy(left)
        right_token = self.peek()
        right = self.value()
        if op == "matches":
            return Comparison(op, left, right, self.compile_pattern(right, right_token))
        return Comparison(op, left, right)

    def compile_pattern(self, right: Value, token: _Token) -> re.Pattern[str]:
        if not isinstance(right, Literal) or not isinstance(right.value, str):
            raise self.error("'matches' needs a pattern in double quotes", token)
        pattern = right.value
        if len(pattern) > MAX_PATTERN_LENGTH:
            raise self.error(f"Pattern is longer than {MAX_PATTERN_LENGTH} characters", token)
        problem = _risky_pattern(pattern)
        if problem:
            raise self.error(problem, token)
        try:
            return re.compile(pattern)
        except (re.error, OverflowError, RecursionError, ValueError) as exc:
            raise self.error(f"Invalid pattern: {exc}", token) from None

    def value(self) -> Value:
        token = self.peek()
        if token.kind == "string" or token.kind == "number":
            self.advance()
            return Literal(token.value)  # type: ignore[arg-type]
        if token.kind == "path":
            self.advance()
            parts = token.value
            assert isinstance(parts, tuple)
            return Path(tuple(str(p) for p in parts), token.position)
        if token.kind == "word" and token.value in ("true", "false", "null"):
            self.advance()
            return Literal({"true": True, "false": False, "null": None}[str(token.value)])
        if token.kind == "punct" and token.value == "[":
            return self.list_literal()
        if token.kind == "end":
            raise self.error("Unexpected end of rule: expected a value")
        if token.kind == "punct" and token.value == "(":
            raise self.error("Parentheses group conditions, not values")
        raise self.error(f"Expected a value, found {_describe(token)}")

    def list_literal(self) -> ListLiteral:
        self.advance()  # "["
        items: list[LiteralValue] = []
        if self.at_punct("]"):
            self.advance()
            return ListLiteral(())
        while True:
            token = self.peek()
            item = self.value()
            if not isinstance(item, Literal):
                raise self.error("Lists may hold only strings, numbers, true, false and null", token)
            items.append(item.value)
            if len(items) > MAX_LIST_ITEMS:
                raise self.error(f"List has more than {MAX_LIST_ITEMS} items", token)
            if self.at_punct(","):
                self.advance()
                continue
            if self.at_punct("]"):
                self.advance()
                return ListLiteral(tuple(items))
            raise self.error("Expected ',' or ']' in a list")


def _describe(token: _Token) -> str:
    if token.kind == "word":
        return f"'{token.value}'"
    if token.kind in ("op", "punct"):
        return f"'{token.value}'"
    return token.kind


def _risky_pattern(pattern: str) -> str | None:
    """Reject the classic catastrophic-backtracking shape: a repeated group that itself repeats.

    ``(a+)+``, ``(\\w*)*`` and ``(x|y+){2,}`` can take exponential time on a crafted subject.
    This is a conservative syntactic check over the pattern text (escapes and character classes
    are skipped), not a full analysis; together with the length caps it bounds the damage.
    """
    # Stack of "this group contains a quantifier" flags, one per open group.
    stack: list[bool] = [False]
    i = 0
    n = len(pattern)
    just_closed_inner_repeat = False
    while i < n:
        ch = pattern[i]
        closed_repeat = False
        if ch == "\\":
            i += 2
        elif ch == "[":
            i += 1
            if i < n and pattern[i] == "^":
                i += 1
            if i < n and pattern[i] == "]":
                i += 1
            while i < n and pattern[i] != "]":
                i += 2 if pattern[i] == "\\" else 1
            i += 1
        elif ch == "(":
            stack.append(False)
            i += 1
        elif ch == ")":
            inner = stack.pop() if len(stack) > 1 else False
            closed_repeat = inner
            i += 1
        elif ch in "*+?{":
            is_unbounded = ch in "*+" or (ch == "{" and re.match(r"\{\d*,\}", pattern[i:]) is not None)
            is_quantifier = ch != "{" or re.match(r"\{\d*(,\d*)?\}", pattern[i:]) is not None
            if is_quantifier and just_closed_inner_repeat and (is_unbounded or ch == "{"):
                return "Pattern repeats a group that itself repeats (risk of catastrophic backtracking)"
            if is_quantifier and ch != "?":
                stack[-1] = True
            i += 1
        else:
            i += 1
        just_closed_inner_repeat = closed_repeat
        if closed_repeat:
            # A group with a quantifier inside makes its parent "contain a quantifier" too.
            stack[-1] = True
    return None


# --- evaluation -------------------------------------------------------------------------------------

_MISSING: Final = None


def _resolve(path: Path, context: Mapping[str, object]) -> object:
    current: object = context
    for part in path.parts:
        if isinstance(current, Mapping):
            try:
                current = current.get(part, _MISSING)
            except Exception:  # an exotic mapping must not break routing
                return _MISSING
        else:
            return _MISSING
    return current


def _value_of(value: Value, context: Mapping[str, object]) -> object:
    if isinstance(value, Literal):
        return value.value
    if isinstance(value, ListLiteral):
        return list(value.items)
    return _resolve(value, context)


def _is_number(x: object) -> bool:
    return isinstance(x, int | float | Decimal) and not isinstance(x, bool)


def _is_sequence(x: object) -> bool:
    return isinstance(x, list | tuple | set | frozenset)


def _truthy(x: object) -> bool:
    if x is None or x is False:
        return False
    if _is_number(x):
        return x != 0
    if isinstance(x, str | list | tuple | set | frozenset | dict):
        return len(x) > 0
    if isinstance(x, Mapping):
        return len(x) > 0
    return x is not None


def _numbers(a: object, b: object) -> tuple[float, float] | tuple[Decimal, Decimal]:
    # Decimal literals meet JSON floats: compare as floats then, exactly otherwise.
    if isinstance(a, float) or isinstance(b, float):
        return float(a), float(b)  # type: ignore[arg-type]
    return Decimal(a), Decimal(b)  # type: ignore[arg-type]


def _equal(a: object, b: object) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if _is_number(a) and _is_number(b):
        x, y = _numbers(a, b)
        return x == y
    if isinstance(a, str) and isinstance(b, str):
        return a == b
    if _is_sequence(a) and _is_sequence(b):
        la, lb = list(a), list(b)  # type: ignore[call-overload]
        return len(la) == len(lb) and all(_equal(x, y) for x, y in zip(la, lb, strict=True))
    return False


def _order(op: str, a: object, b: object) -> bool:
    if _is_number(a) and _is_number(b):
        x, y = _numbers(a, b)
    elif isinstance(a, str) and isinstance(b, str):
        x, y = a, b  # type: ignore[assignment]
    else:
        return False
    if op == "<":
        return x < y
    if op == "<=":
        return x <= y
    if op == ">":
        return x > y
    return x >= y


def _contains(container: object, item: object) -> bool:
    if isinstance(container, str):
        return isinstance(item, str) and item.casefold() in container.casefold()
    if _is_sequence(container):
        return any(_equal(element, item) for element in container)  # type: ignore[attr-defined]
    if isinstance(container, Mapping):
        return isinstance(item, str) and item in container
    return False


def _affix(op: str, a: object, b: object) -> bool:
    if not (isinstance(a, str) and isinstance(b, str)):
        return False
    if op == "startswith":
        return a.casefold().startswith(b.casefold())
    return a.casefold().endswith(b.casefold())


def _compare(node: Comparison, context: Mapping[str, object]) -> bool:
    a = _value_of(node.left, context)
    b = _value_of(node.right, context)
    op = node.op
    if op == "==":
        return _equal(a, b)
    if op == "!=":
        return not _equal(a, b)
    if op in ("<", "<=", ">", ">="):
        return _order(op, a, b)
    if op == "in":
        return _contains(b, a)
    if op == "not in":
        return not _contains(b, a)
    if op == "contains":
        return _contains(a, b)
    if op in ("startswith", "endswith"):
        return _affix(op, a, b)
    if op == "matches":
        return (
            isinstance(a, str)
            and node.pattern is not None
            and node.pattern.search(a[:MAX_MATCH_SUBJECT_LENGTH]) is not None
        )
    return False


def _evaluate(node: Node, context: Mapping[str, object]) -> bool:
    if isinstance(node, Comparison):
        try:
            return _compare(node, context)
        except Exception:
            # Context values come from customers and integrations (custom fields, webhooks):
            # an exotic value (a NaN Decimal, an object with a broken __eq__) makes the
            # comparison false rather than stopping the contact from being routed.
            return False
    if isinstance(node, Truthy):
        try:
            return _truthy(_value_of(node.operand, context))
        except Exception:
            return False
    if isinstance(node, Not):
        return not _evaluate(node.operand, context)
    if isinstance(node, And):
        return all(_evaluate(op, context) for op in node.operands)
    return any(_evaluate(op, context) for op in node.operands)


def _paths(node: Node) -> Iterable[Path]:
    if isinstance(node, Comparison):
        for side in (node.left, node.right):
            if isinstance(side, Path):
                yield side
    elif isinstance(node, Truthy):
        if isinstance(node.operand, Path):
            yield node.operand
    elif isinstance(node, Not):
        yield from _paths(node.operand)
    else:
        for operand in node.operands:
            yield from _paths(operand)


def _path_is_known(parts: Sequence[str], known: Collection[str]) -> bool:
    dotted = ".".join(parts)
    for pattern in known:
        if pattern.endswith(".*"):
            prefix = pattern[:-2]
            # "customer.custom.*" admits "customer", "customer.custom" and anything below it.
            if dotted == prefix or dotted.startswith(prefix + ".") or prefix.startswith(dotted + "."):
                return True
        elif pattern == dotted or pattern.startswith(dotted + "."):
            return True
    return False


# --- public API -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RuleIssue:
    """A problem found by :meth:`Rule.validate`: an attribute the routing context never has."""

    message: str
    path: str
    position: int


@dataclass(frozen=True, slots=True)
class Rule:
    """A parsed routing rule. Build it with :func:`parse_rule`."""

    text: str
    root: Node

    def evaluate(self, context: Mapping[str, object]) -> bool:
        """True when the contact described by ``context`` satisfies the rule. Never raises."""
        return _evaluate(self.root, context)

    def paths(self) -> tuple[str, ...]:
        """Every attribute path the rule reads, in order of appearance, without repeats."""
        return tuple(dict.fromkeys(p.dotted for p in _paths(self.root)))

    def validate(self, known_paths: Collection[str] = DEFAULT_KNOWN_PATHS) -> list[RuleIssue]:
        """Report attribute paths the context does not have (likely typos such as ``custmer.vip``).

        ``known_paths`` holds dotted names; a name ending in ``.*`` admits any path below it. An
        unknown path is not a syntax error — it simply reads as null — so this is advice for the
        admin UI, returned as a list rather than raised.
        """
        issues: list[RuleIssue] = []
        for path in _paths(self.root):
            if not _path_is_known(path.parts, known_paths):
                top = path.parts[0]
                known_top = any(p.split(".", 1)[0] == top for p in known_paths)
                message = (
                    f"Unknown attribute '{path.dotted}'"
                    if known_top
                    else f"Unknown attribute '{top}' (in '{path.dotted}')"
                )
                issues.append(RuleIssue(message, path.dotted, path.position))
        return issues


def parse_rule(text: str) -> Rule:
    """Parse ``text`` into a :class:`Rule`; raise :class:`RuleSyntaxError` with a position if invalid."""
    if len(text) > MAX_RULE_LENGTH:
        raise RuleSyntaxError(f"Rule is longer than {MAX_RULE_LENGTH} characters", MAX_RULE_LENGTH, text)
    if not text.strip():
        raise RuleSyntaxError("Rule is empty", 0, text)
    return Rule(text, _Parser(text).parse())


@dataclass(frozen=True, slots=True)
class RuleRoute:
    """One line of an entry point's routing table: when ``rule`` matches, go to ``queue_id``."""

    rule: Rule
    queue_id: int


@dataclass(frozen=True, slots=True)
class RuleSet:
    """An ordered routing table with a default queue; the first matching rule wins."""

    routes: tuple[RuleRoute, ...] = ()
    default_queue_id: int | None = None

    def __post_init__(self) -> None:
        if len(self.routes) > MAX_RULES_PER_SET:
            raise ValueError(f"A rule set holds at most {MAX_RULES_PER_SET} rules")

    @classmethod
    def from_texts(cls, routes: Iterable[tuple[str, int]], default_queue_id: int | None = None) -> RuleSet:
        """Parse ``(rule text, queue id)`` pairs; raises :class:`RuleSyntaxError` on the first bad one."""
        return cls(tuple(RuleRoute(parse_rule(text), queue) for text, queue in routes), default_queue_id)

    def route(self, context: Mapping[str, object]) -> int | None:
        """The queue for this contact: the first matching rule's queue, else the default."""
        return self.match(context)[0]

    def match(self, context: Mapping[str, object]) -> tuple[int | None, int | None]:
        """``(queue_id, index of the matching rule)``; the index is None when the default applied."""
        for index, route in enumerate(self.routes):
            if route.rule.evaluate(context):
                return route.queue_id, index
        return self.default_queue_id, None
