import numpy as np
import pandas as pd
import pytest

from skrecordpair import pair_frame
from skrecordpair._pairs import as_text, resolve_fields, resolve_pair_args


def test_pair_frame_aligns_by_position_and_ignores_index():
    left = pd.DataFrame({"a": ["x", "y"], "b": [1, 2]}, index=[10, 3])
    right = pd.DataFrame({"a": ["p", "q"], "b": [3, 4]}, index=["u", "v"])
    X = pair_frame(left, right)
    assert list(X.columns) == ["left_a", "left_b", "right_a", "right_b"]
    assert list(X.index) == [0, 1]
    assert X.loc[0, "left_a"] == "x" and X.loc[0, "right_a"] == "p"
    assert X.loc[1, "left_b"] == 2 and X.loc[1, "right_b"] == 4


def test_pair_frame_custom_prefixes():
    X = pair_frame(
        pd.DataFrame({"a": [1]}),
        pd.DataFrame({"a": [2]}),
        left_prefix="l.",
        right_prefix="r.",
    )
    assert list(X.columns) == ["l.a", "r.a"]


def test_pair_frame_refuses_different_lengths():
    with pytest.raises(ValueError, match="3 left rows and 2 right rows"):
        pair_frame(pd.DataFrame({"a": [1, 2, 3]}), pd.DataFrame({"a": [1, 2]}))


@pytest.mark.parametrize("bad", [np.zeros((2, 1)), [["a"]], None])
def test_pair_frame_refuses_non_frames(bad):
    with pytest.raises(TypeError, match="expects pandas DataFrames"):
        pair_frame(bad, pd.DataFrame({"a": [1, 2]}))


@pytest.mark.parametrize("prefixes", [("", "r_"), ("x_", "x_")])
def test_pair_frame_refuses_bad_prefixes(prefixes):
    with pytest.raises(ValueError, match="two different non-empty strings"):
        pair_frame(
            pd.DataFrame({"a": [1]}),
            pd.DataFrame({"a": [1]}),
            left_prefix=prefixes[0],
            right_prefix=prefixes[1],
        )


COLUMNS = [
    "left_name",
    "left_city",
    "left_only",
    "right_city",
    "right_name",
    "right_title",
]


def test_resolve_fields_auto_detects_paired_fields_in_left_order():
    assert resolve_fields(COLUMNS, None, "left_", "right_") == [
        ("name", "left_name", "right_name"),
        ("city", "left_city", "right_city"),
    ]


def test_resolve_fields_names_tuples_and_one_sided():
    fields = ["city", ("name", "title"), ("only", None)]
    assert resolve_fields(COLUMNS, fields, "left_", "right_") == [
        ("city", "left_city", "right_city"),
        ("name|title", "left_name", "right_title"),
        ("only", "left_only", None),
    ]


def test_resolve_fields_errors():
    with pytest.raises(ValueError, match="No paired columns found.*'left_<field>'"):
        resolve_fields(["a", "b"], None, "left_", "right_")
    with pytest.raises(
        ValueError, match=r"needs the column\(s\) \['left_zip', 'right_zip'\]"
    ):
        resolve_fields(COLUMNS, ["zip"], "left_", "right_")
    with pytest.raises(TypeError, match="fields must be None, a list"):
        resolve_fields(COLUMNS, "name", "left_", "right_")
    with pytest.raises(TypeError, match="Each entry of fields"):
        resolve_fields(COLUMNS, [("a", "b", "c")], "left_", "right_")
    with pytest.raises(ValueError, match="more than once"):
        resolve_fields(COLUMNS, ["name", "name"], "left_", "right_")
    with pytest.raises(ValueError, match="at least one field"):
        resolve_fields(COLUMNS, [], "left_", "right_")
    with pytest.raises(ValueError, match=r"\(None, None\)"):
        resolve_fields(COLUMNS, [(None, None)], "left_", "right_")


def test_resolve_pair_args_call_shapes():
    left, right = pd.DataFrame({"a": [1, 2]}), pd.DataFrame({"a": [3, 4]})
    X, y = resolve_pair_args(
        "fit", (left, right, [0, 1]), "left_", "right_", with_y=True
    )
    assert list(X.columns) == ["left_a", "right_a"] and y == [0, 1]
    with pytest.raises(
        TypeError, match="received a DataFrame as y.*fit\\(X_left, X_right, y\\)"
    ):
        resolve_pair_args("fit", (left, right), "left_", "right_", with_y=True)
    with pytest.raises(TypeError, match="got 4 positional"):
        resolve_pair_args(
            "fit", (left, right, [0, 1], 1), "left_", "right_", with_y=True
        )
    with pytest.raises(TypeError, match="expects two DataFrames before y; got ndarray"):
        resolve_pair_args(
            "fit", (np.zeros((2, 1)), right, [0, 1]), "left_", "right_", with_y=True
        )
    with pytest.raises(
        TypeError, match="expects two DataFrames; got DataFrame and list"
    ):
        resolve_pair_args("predict", (left, [1, 2]), "left_", "right_", with_y=False)


def test_as_text_missing_numbers_and_unicode():
    values = pd.Series(
        [
            np.nan,
            None,
            "",
            "   ",
            "Zürich",
            1999.0,
            2.5,
            7,
            True,
            pd.NA,
            b"bytes",
            "東京",
        ],
        dtype=object,
    )
    assert list(as_text(values)) == [
        None,
        None,
        None,
        None,
        "Zürich",
        "1999",
        "2.5",
        "7",
        "True",
        None,
        "bytes",
        "東京",
    ]


def test_as_text_rejects_lone_surrogates():
    # pandas hashes all strings holding lone surrogates alike, so "a\ud800" and
    # "b\udfff" would become one value; they are refused instead.
    values = pd.Series(["fine", "a\ud800", "b\udfff"], name="left_name")
    with pytest.raises(
        ValueError,
        match=r"Column 'left_name': 2 value\(s\) are not "
        r"valid Unicode text .* e\.g\. 'a\\ud800'",
    ):
        as_text(values)


def test_as_text_nullable_and_categorical_dtypes():
    assert list(as_text(pd.array([1, None, 3], dtype="Int64"))) == ["1", None, "3"]
    assert list(as_text(pd.Categorical(["a", None, "b"]))) == ["a", None, "b"]


@pytest.mark.parametrize("dtype", [object, "string"])
def test_as_text_of_strings_only_blanks_whitespace_values(dtype):
    # Columns of strings take a path without a Python loop per value.
    values = pd.Series(
        ["a", " b ", "", " ", "\t\n", "\u3000", "\xa0", None, "東京"], dtype=dtype
    )
    assert list(as_text(values)) == [
        "a",
        " b ",
        None,
        None,
        None,
        None,
        None,
        None,
        "東京",
    ]
