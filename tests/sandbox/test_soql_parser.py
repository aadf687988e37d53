"""The sandbox's SOQL grammar: what it builds from valid queries and how it refuses invalid ones."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from syncd.sandbox import soql


def where(query: str) -> soql.Condition:
    parsed = soql.parse(query)
    assert parsed.where is not None
    return parsed.where


def refusal(query: str) -> soql.SoqlError:
    with pytest.raises(soql.SoqlError) as caught:
        soql.parse(query)
    return caught.value


def test_select_list_keeps_relationship_paths_in_order() -> None:
    parsed = soql.parse("SELECT Id, Owner.Name, Account.Owner.Email FROM Contact")
    assert [s.parts for s in parsed.select if isinstance(s, soql.FieldPath)] == [
        ("Id",),
        ("Owner", "Name"),
        ("Account", "Owner", "Email"),
    ]
    assert parsed.sobject == "Contact"


def test_keywords_are_case_insensitive_and_object_names_may_be_keywords_elsewhere() -> None:
    parsed = soql.parse("select Id from Order order by OrderNumber desc limit 5")
    assert parsed.sobject == "Order"
    assert parsed.order == (soql.OrderBy(soql.FieldPath(("OrderNumber",), 31), True, True),)
    assert parsed.limit == 5


def test_count_forms() -> None:
    assert soql.parse("SELECT COUNT() FROM Account").select == (soql.Count(None, None),)
    counted = soql.parse("SELECT COUNT(Id) total FROM Account").select[0]
    assert isinstance(counted, soql.Count) and counted.alias == "total"


def test_string_escapes_decode_to_the_characters_they_stand_for() -> None:
    condition = where(r"SELECT Id FROM Account WHERE Name = 'a\'b\\c\"d\ne\u00e9'")
    assert condition == soql.Compare(
        soql.FieldPath(("Name",), 30), "=", soql.Literal("string", "a'b\\c\"d\neé")
    )


def test_escaped_wildcards_are_literal_only_inside_like() -> None:
    condition = where(r"SELECT Id FROM Account WHERE Name LIKE '50\%\_off%'")
    assert isinstance(condition, soql.Compare)
    pattern = soql.like_to_regex(condition.value.value)  # type: ignore[union-attr]
    assert pattern.fullmatch("50%_off today")
    assert not pattern.fullmatch("50X_off today")
    assert not pattern.fullmatch("50%Xoff")


def test_escaped_wildcard_outside_like_is_malformed() -> None:
    error = refusal(r"SELECT Id FROM Account WHERE Name = '50\%'")
    assert error.error_code == "MALFORMED_QUERY"
    assert "Illegal character sequence" in error.message


def test_like_wildcards_match_any_run_and_one_character_case_insensitively() -> None:
    pattern = soql.like_to_regex("ac_e%")
    assert pattern.fullmatch("ACME Corp")
    assert pattern.fullmatch("acme")
    assert not pattern.fullmatch("ace")


def test_literals_of_every_kind() -> None:
    condition = where(
        "SELECT Id FROM Opportunity WHERE Amount >= -1.5 AND IsWon = TRUE AND CloseDate = 2024-02-29 "
        "AND CreatedDate < 2024-01-01T10:00:00+02:00 AND Name != null AND CloseDate = LAST_N_DAYS:7"
    )
    assert isinstance(condition, soql.BoolOp) and condition.op == "AND"
    values = [c.value for c in condition.items if isinstance(c, soql.Compare)]
    assert values == [
        soql.Literal("number", Decimal("-1.5")),
        soql.Literal("boolean", True),
        soql.Literal("date", date(2024, 2, 29)),
        soql.Literal("datetime", datetime(2024, 1, 1, 8, 0, tzinfo=UTC)),
        soql.Literal("null", None),
        soql.Literal("dateliteral", soql.DateLiteral("LAST_N_DAYS", 7)),
    ]


def test_date_literals_cover_whole_days() -> None:
    today = date(2024, 3, 10)
    assert soql.DateLiteral("YESTERDAY").day_range(today) == (date(2024, 3, 9), date(2024, 3, 9))
    assert soql.DateLiteral("LAST_N_DAYS", 3).day_range(today) == (date(2024, 3, 7), today)


def test_in_and_not_in_take_value_lists() -> None:
    condition = where("SELECT Id FROM Account WHERE Type NOT IN ('A', 'B')")
    assert condition == soql.Compare(
        soql.FieldPath(("Type",), 30), "NOT IN", (soql.Literal("string", "A"), soql.Literal("string", "B"))
    )


def test_not_and_parentheses_nest() -> None:
    condition = where("SELECT Id FROM Account WHERE NOT (Name = 'a' OR Name = 'b') AND Phone != null")
    assert isinstance(condition, soql.BoolOp) and condition.op == "AND"
    negated = condition.items[0]
    assert isinstance(negated, soql.Not) and isinstance(negated.item, soql.BoolOp) and negated.item.op == "OR"


def test_mixing_and_with_or_without_parentheses_is_malformed() -> None:
    error = refusal("SELECT Id FROM Account WHERE Name = 'a' AND Phone = 'b' OR Fax = 'c'")
    assert error.error_code == "MALFORMED_QUERY"
    assert error.message.endswith("unexpected token: 'OR'")


def test_order_by_defaults_nulls_first_ascending_and_last_descending() -> None:
    parsed = soql.parse("SELECT Id FROM Account ORDER BY Name, Phone DESC, Fax ASC NULLS LAST")
    assert [(o.descending, o.nulls_last) for o in parsed.order] == [
        (False, False),
        (True, True),
        (False, True),
    ]


def test_offset_and_child_subquery() -> None:
    parsed = soql.parse("SELECT Name, (SELECT LastName FROM Contacts) FROM Account LIMIT 10 OFFSET 20")
    assert parsed.offset == 20
    assert isinstance(parsed.select[1], soql.SubQuery) and parsed.select[1].query.sobject == "Contacts"


def test_truncated_query_points_at_its_end_like_salesforce() -> None:
    error = refusal("SELECT Id FROM Account WHERE")
    assert error.message == (
        "\nSELECT Id FROM Account WHERE\n"
        + " " * 28
        + "^\nERROR at Row:1:Column:29\nunexpected token: '<EOF>'"
    )


@pytest.mark.parametrize(
    "query",
    [
        "SELECT FROM Account",
        "SELECT Id,, Name FROM Account",
        "SELECT Id FROM Account WHERE Name = 'unterminated",
        "SELECT Id FROM Account WHERE CloseDate = 2024-13-01",
        "SELECT Id FROM Account LIMIT -1",
        "SELECT Id FROM Account WHERE Name == 'x'",
        "SELECT Id FROM Account WHERE Name = 'x' ORDER Name",
    ],
)
def test_malformed_queries_are_refused(query: str) -> None:
    assert refusal(query).error_code == "MALFORMED_QUERY"
