"""A1 notation: what the Sheets API accepts, how it echoes ranges back, and what it refuses."""

from __future__ import annotations

import pytest

from syncd.sandbox.a1 import (
    A1Error,
    A1Range,
    Bounded,
    bound,
    column_index,
    column_letters,
    parse_range,
    quote_sheet_title,
    split_sheet,
)


@pytest.mark.parametrize(("index", "letters"), [(0, "A"), (25, "Z"), (26, "AA"), (701, "ZZ"), (702, "AAA")])
def test_column_letters_and_index_are_inverse(index: int, letters: str) -> None:
    assert column_letters(index) == letters
    assert column_index(letters) == index
    assert column_index(letters.lower()) == index


def test_quoted_sheet_name_unescapes_doubled_quotes() -> None:
    assert split_sheet("'It''s'!A1") == ("It's", "A1")


def test_quoted_sheet_name_may_hold_spaces_and_bangs() -> None:
    assert split_sheet("'Q1 ! totals'!B2:C") == ("Q1 ! totals", "B2:C")


def test_unquoted_sheet_name_with_spaces_splits_at_last_bang() -> None:
    assert split_sheet("My sheet!A1:B2") == ("My sheet", "A1:B2")


def test_text_without_bang_names_no_sheet() -> None:
    assert split_sheet("A1:B2") == (None, "A1:B2")


def test_unterminated_quote_is_refused_like_google() -> None:
    with pytest.raises(A1Error, match=r"^Unable to parse range: 'Oops!A1$"):
        parse_range("'Oops!A1")


def test_sheet_name_alone_means_the_whole_sheet() -> None:
    rng = parse_range("'Sheet 1'")
    assert rng == A1Range("Sheet 1")
    assert rng.whole_sheet


def test_closed_range_is_zero_based_half_open() -> None:
    assert parse_range("Sheet1!B2:D5") == A1Range("Sheet1", 1, 5, 1, 4)


def test_swapped_corners_are_normalised() -> None:
    assert parse_range("Sheet1!D4:A1") == A1Range("Sheet1", 0, 4, 0, 4)


def test_range_open_at_the_bottom() -> None:
    assert parse_range("Sheet1!A2:C") == A1Range("Sheet1", 1, None, 0, 3)


def test_whole_columns() -> None:
    assert parse_range("Sheet1!A:A") == A1Range("Sheet1", None, None, 0, 1)


def test_whole_rows() -> None:
    assert parse_range("Sheet1!2:5") == A1Range("Sheet1", 1, 5, None, None)


def test_row_open_to_the_right() -> None:
    assert parse_range("Sheet1!A1:1") == A1Range("Sheet1", 0, 1, 0, None)


def test_absolute_references_are_accepted() -> None:
    assert parse_range("Sheet1!$A$1:$B$2") == A1Range("Sheet1", 0, 2, 0, 2)


def test_non_cell_text_after_bang_is_left_for_named_range_lookup() -> None:
    assert parse_range("Sheet1!Totals") == A1Range("Sheet1", name="Totals")


@pytest.mark.parametrize("text", ["Sheet1!A0", "Sheet1!A1:B2:C3", "Sheet1!#", "!A1", "", "Sheet1!A1:?"])
def test_garbage_is_refused_with_googles_message(text: str) -> None:
    with pytest.raises(A1Error, match=r"^Unable to parse range: "):
        parse_range(text)


def test_open_sides_close_on_the_grid() -> None:
    assert bound(parse_range("Sheet1!B:B"), "Sheet1", 1000, 26) == Bounded("Sheet1", 0, 1000, 1, 2)


def test_range_past_the_grid_exceeds_grid_limits() -> None:
    with pytest.raises(A1Error, match=r"exceeds grid limits\. Max rows: 1000, max columns: 26"):
        bound(parse_range("Sheet1!A1:AA2"), "Sheet1", 1000, 26)


def test_echoed_range_quotes_titles_that_need_it() -> None:
    assert Bounded("Sheet1", 0, 1000, 0, 26).a1() == "Sheet1!A1:Z1000"
    assert Bounded("It's", 3, 4, 3, 4).a1() == "'It''s'!D4"
    assert quote_sheet_title("My sheet") == "'My sheet'"
    assert quote_sheet_title("A1") == "'A1'"
