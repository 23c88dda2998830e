"""Routing-rule language: parsing, evaluation, validation, rule sets."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from frontoffice.domain.rules import (
    MAX_LIST_ITEMS,
    MAX_NESTING_DEPTH,
    MAX_PATTERN_LENGTH,
    MAX_RULE_LENGTH,
    RuleSet,
    RuleSyntaxError,
    parse_rule,
)

CONTEXT: dict[str, object] = {
    "channel": "email",
    "direction": "inbound",
    "language": "uk",
    "subject": "RE: Invoice 42 overdue",
    "priority": 7,
    "project": "acme",
    "ivr": {"choice": "2", "digits": "2"},
    "customer": {
        "id": 15,
        "tags": ["vip", "wholesale"],
        "vip": True,
        "known": True,
        "company": "Romashka LLC",
        "custom": {"contract": "C-1", "limit": 1.5},
    },
    "from": "anna@example.ru",
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('channel == "email" and subject contains "invoice"', True),
        ('"vip" in customer.tags', True),
        ("customer.vip", True),
        ('ivr.choice == "2" or language in ["ru", "uk"]', True),
        ('not (project == "acme")', False),
        ("priority >= 5", True),
        ('subject matches "^(RE|FW):"', True),
        ('subject startswith "Order"', False),
        ('customer.custom.contract != ""', True),
        ('subject startswith "re:"', True),
        ('subject endswith "OVERDUE"', True),
        ('subject contains "INVOICE"', True),
        ('"invoice" in subject', True),
        ('language not in ["ru", "en"]', True),
        ('"gold" not in customer.tags', True),
        ('customer.tags contains "vip"', True),
        ('"contract" in customer.custom', True),
        ("priority < 5 or priority > 6", True),
        ("priority == 7.0", True),
        ("customer.custom.limit >= 1.5", True),
        ("customer.custom.limit == 1.5", True),
        ("priority != 7", False),
        ("not customer.missing", True),
        ("customer.missing == null", True),
        ("customer.known == true and customer.vip != false", True),
        ('channel == "email" and (language == "ru" or language == "uk") and not priority < 3', True),
        ("-3 < priority", True),
        ('from endswith "@example.ru"', True),
        ('attributes.campaign == "spring"', False),
        ("true", True),
        ("null", False),
        ("[]", False),
        ('subject matches "(?i)^re:"', True),
        ('subject matches "invoice"', False),
    ],
)
def test_rule_examples_evaluate_as_documented(text: str, expected: bool) -> None:
    assert parse_rule(text).evaluate(CONTEXT) is expected


def test_equality_is_case_sensitive_but_contains_is_not() -> None:
    assert not parse_rule('channel == "EMAIL"').evaluate(CONTEXT)
    assert parse_rule('channel contains "EMAIL"').evaluate(CONTEXT)


def test_list_membership_uses_exact_equality() -> None:
    assert not parse_rule('"VIP" in customer.tags').evaluate(CONTEXT)


@pytest.mark.parametrize(
    "text",
    [
        'priority > "high"',
        'priority contains "7"',
        "subject > 5",
        'customer.vip == "true"',
        "customer.tags startswith 1",
        'priority matches "7"',
        "customer.nothing.deeper > 1",
    ],
)
def test_incompatible_types_compare_false(text: str) -> None:
    assert parse_rule(text).evaluate(CONTEXT) is False


def test_missing_attributes_read_as_null() -> None:
    rule = parse_rule('customer.custom.region == "north"')
    assert rule.evaluate({}) is False
    assert rule.evaluate({"customer": None}) is False
    assert rule.evaluate({"customer": {"custom": "not a mapping"}}) is False
    assert parse_rule("customer.custom.region == null").evaluate({}) is True


def test_not_equal_and_not_in_are_exact_negations() -> None:
    assert parse_rule('customer.custom.contract != ""').evaluate({}) is True
    assert parse_rule('5 not in "abc"').evaluate({}) is True


def test_bool_is_not_a_number() -> None:
    assert parse_rule("flag == 1").evaluate({"flag": True}) is False
    assert parse_rule("flag == true").evaluate({"flag": True}) is True


def test_string_escapes_are_decoded() -> None:
    rule = parse_rule(r'subject == "say \"hi\"\n\u0410\\"')
    assert rule.evaluate({"subject": 'say "hi"\nА\\'})


def test_decimal_literals_are_exact() -> None:
    assert parse_rule("amount == 0.1").evaluate({"amount": Decimal("0.1")})
    assert parse_rule("amount == 0.1").evaluate({"amount": 0.1})


def test_matches_only_searches_a_bounded_prefix_of_the_value() -> None:
    rule = parse_rule('body matches "needle"')
    assert not rule.evaluate({"body": "x" * 5_000 + "needle"})
    assert rule.evaluate({"body": "needle" + "x" * 5_000})


@pytest.mark.parametrize(
    ("text", "position", "fragment"),
    [
        ('channel = "email"', 8, "=="),
        ('channel == "email', 11, "Unterminated"),
        ("(priority > 1", 0, "Missing ')'"),
        ("priority > 1)", 12, "Unbalanced"),
        ("priority >", 10, "end of rule"),
        ("priority > 1 priority", 13, "Expected 'and'"),
        ("a && b", 2, "and"),
        ("'x' == a", 0, "double quotes"),
        ('a == "\\q"', 6, "escape"),
        ("a in [1, b]", 9, "Lists"),
        ("a in [1 2]", 8, "','"),
        ("a matches b", 10, "pattern in double quotes"),
        ('a matches "("', 10, "Invalid pattern"),
        ('a matches "(a+)+$"', 10, "repeats"),
        ('a matches "(\\\\w*)*"', 10, "repeats"),
        ("customer. vip", 9, "attribute name"),
        ("12abc == 1", 2, "number"),
        ("", 0, "empty"),
        ("   ", 0, "empty"),
        ("a == #", 5, "Unexpected character"),
        ("and", 0, "Expected a value"),
        ("a == (1)", 5, "Parentheses"),
        ("not", 3, "end of rule"),
    ],
)
def test_syntax_errors_report_position(text: str, position: int, fragment: str) -> None:
    with pytest.raises(RuleSyntaxError) as info:
        parse_rule(text)
    assert info.value.position == position
    assert info.value.column == position + 1
    assert fragment in info.value.message


def test_syntax_error_caret_points_at_the_problem() -> None:
    with pytest.raises(RuleSyntaxError) as info:
        parse_rule('channel = "email"')
    assert info.value.caret() == 'channel = "email"\n        ^'


def test_limits_are_enforced() -> None:
    with pytest.raises(RuleSyntaxError, match="longer than"):
        parse_rule("a" * (MAX_RULE_LENGTH + 1))
    deep = "(" * (MAX_NESTING_DEPTH + 1) + "a" + ")" * (MAX_NESTING_DEPTH + 1)
    with pytest.raises(RuleSyntaxError, match="nested too deeply"):
        parse_rule(deep)
    assert parse_rule("(" * MAX_NESTING_DEPTH + "a" + ")" * MAX_NESTING_DEPTH).evaluate({"a": 1})
    with pytest.raises(RuleSyntaxError, match="nested too deeply"):
        parse_rule("not " * (MAX_NESTING_DEPTH + 1) + "a")
    with pytest.raises(RuleSyntaxError, match="more than"):
        parse_rule("a in [" + ",".join(["1"] * (MAX_LIST_ITEMS + 1)) + "]")
    with pytest.raises(RuleSyntaxError, match="Pattern is longer"):
        parse_rule('a matches "' + "x" * (MAX_PATTERN_LENGTH + 1) + '"')


def test_keywords_are_allowed_as_nested_attribute_names() -> None:
    assert parse_rule("attributes.in == 1").evaluate({"attributes": {"in": 1}})


def test_validate_reports_unknown_attributes_with_positions() -> None:
    rule = parse_rule(
        'custmer.vip or customer.vipp or customer.custom.a.b or attributes.x or ivr.choice == "1"'
    )
    issues = rule.validate()
    assert [(i.path, i.position) for i in issues] == [("custmer.vip", 0), ("customer.vipp", 15)]
    assert "custmer" in issues[0].message


def test_validate_accepts_all_documented_attributes() -> None:
    text = (
        'channel == "x" or direction == "x" or language == "x" or subject == "x" or priority == 1 '
        'or project == "x" or entry_point == "x" or ivr.choice == "1" or ivr.digits == "1" '
        "or customer.id == 1 or customer.tags or customer.vip or customer.custom.anything "
        'or customer.company == "x" or customer.known or from == "x" or to == "x" or attributes.k'
    )
    assert parse_rule(text).validate() == []


def test_validate_accepts_a_custom_known_set() -> None:
    assert parse_rule("queue.size > 3").validate({"queue.size"}) == []
    assert parse_rule("queue.size > 3").validate({"queue.name"})


def test_rule_set_first_match_wins_and_falls_back_to_default() -> None:
    rules = RuleSet.from_texts(
        [("customer.vip", 10), ('channel == "email"', 20), ('language == "ru"', 30)], default_queue_id=99
    )
    assert rules.route(CONTEXT) == 10
    assert rules.route({"channel": "email", "language": "ru"}) == 20
    assert rules.match({"language": "ru"}) == (30, 2)
    assert rules.route({}) == 99
    assert RuleSet().route(CONTEXT) is None


def test_rule_set_reports_the_bad_rule() -> None:
    with pytest.raises(RuleSyntaxError):
        RuleSet.from_texts([("a ==", 1)])


_ALPHABET = st.sampled_from(
    [*list('abcxyz._ ()[],"\\=!<>-0123456789'), "and ", "or ", "not ", "in ", "matches ", "contains ", "true"]
)


@settings(max_examples=600, deadline=None)
@given(st.one_of(st.text(max_size=80), st.lists(_ALPHABET, max_size=40).map("".join)))
def test_parsing_random_text_raises_only_rule_syntax_error(text: str) -> None:
    try:
        rule = parse_rule(text)
    except RuleSyntaxError as exc:
        assert 0 <= exc.position <= len(text)
    else:
        rule.evaluate(CONTEXT)


_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True)
    | st.decimals(allow_nan=True)
    | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=20,
)
_contexts = st.dictionaries(
    st.sampled_from(["channel", "subject", "priority", "customer", "ivr", "language", "x"]), _json, max_size=6
)

_RULES = [
    parse_rule(text)
    for text in [
        'channel == "email" and subject contains "invoice"',
        '"vip" in customer.tags',
        "customer.vip",
        'ivr.choice == "2" or language in ["ru", "uk", 1, 2.5, null, true]',
        "not (priority >= 5) or priority < 1.5 or priority != x",
        'subject matches "^(RE|FW):" or subject startswith "Order" or subject endswith "x"',
        'customer.custom.contract != "" and x in customer and customer contains x',
        "x == customer and x <= subject and x > priority",
    ]
]


@settings(max_examples=400, deadline=None)
@given(_contexts)
def test_random_contexts_never_make_evaluate_raise(context: dict[str, object]) -> None:
    for rule in _RULES:
        assert isinstance(rule.evaluate(context), bool)
