"""Property-based tests: odd pair frames never break fit, predict_proba or explain.

One tiny model is fitted per module (on a fixed frame full of odd values); the
properties are checked on frames that hypothesis generates: unicode of every
category (accents, CJK, emoji, combining marks, zero-width and control
characters), empty and whitespace-only values, NaN/None/pd.NA, numbers,
booleans, 100,000-character values, duplicate rows, and categorical and
nullable pandas dtypes.

The run is bounded for CI: a fixed number of examples per test (the
``skrecordpair-ci`` profile, deterministic with ``derandomize=True``, no
deadline); set ``SKRECORDPAIR_HYPOTHESIS_EXAMPLES`` to run more.
"""

import os

import numpy as np
import pandas as pd
import pytest

from skrecordpair import RecordPairClassifier, pair_frame

from .conftest import TINY, make_people_pairs

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

N_EXAMPLES = int(os.environ.get("SKRECORDPAIR_HYPOTHESIS_EXAMPLES", 50))
settings.register_profile(
    "skrecordpair-ci",
    max_examples=N_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=True,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)
PROFILE = settings.get_profile("skrecordpair-ci")

FIELDS = ("name", "city", "year")
LONG = ("x" * 100_000, "word " * 20_000, "東京" * 50_000)
ODD_TEXT = (
    "",
    " ",
    "   ",
    "\t\n\r",
    "\u00a0",
    "\u3000",  # empty and blank
    "\u200b",
    "a\u200bb",
    "\u200c\u200d\ufeff",
    "\u2060",  # zero-width
    "e\u0301",
    "\u0301",
    "Z\u0351\u0368\u0344a\u0310lgo",  # combining marks
    "\x00",
    "a\x00b",
    "\x01\x1f\x7f",
    "\x1b[31mred",  # control characters
    "😀",
    "👍🏽",
    "👨\u200d👩\u200d👧",
    "🇩🇪",
    "🚀 rocket",  # emoji
    "東京都",
    "서울",
    "Ελλάδα",
    "ｆｕｌｌ　ｗｉｄｔｈ",
    "ﬁ",  # scripts, compatibility forms
    "İstanbul",
    "STRASSE straße",
    "\u202eevil\u202c",
    "عربى",
    "<pad>",
    "<unk>",
    "<missing>",
    "NaN",
    "None",
    "null",
    "-",
    "...",
    "12,000.50",
) + LONG
ODD_SCALARS = (
    None,
    np.nan,
    pd.NA,
    pd.NaT,
    float("inf"),
    -float("inf"),
    -0.0,
    0,
    -1,
    2**63 - 1,
    10**30,
    1e300,
    1e-300,
    3.14159,
    True,
    False,
    np.int64(7),
    np.float32(2.5),
    np.bool_(True),
    b"bytes \xff",
)

# A few characters from each interesting Unicode category, to be combined freely.
SPECIAL_CHARS = (
    "aZé東😀👍🏽\u0301\u0351\u200b\u200d\ufeff\x00\x01\x7f\u202e \t\n\u00a0-.,/'1٣"
)
text = st.one_of(
    st.text(st.characters(exclude_categories=("Cs",)), max_size=25),
    st.text(st.sampled_from(SPECIAL_CHARS), max_size=12),
    st.sampled_from(ODD_TEXT),
)
any_value = st.one_of(
    text,
    st.sampled_from(ODD_SCALARS),
    st.integers(),
    st.booleans(),
    st.none(),
    st.floats(allow_nan=True, allow_infinity=True),
)
# Each column is one of these pandas dtypes, with values that fit it.
COLUMN_KINDS = {
    "object": any_value,
    "string": st.one_of(text, st.none()),
    "category": st.one_of(text, st.none()),
    "Int64": st.one_of(st.integers(-(10**15), 10**15), st.none()),
    "boolean": st.one_of(st.booleans(), st.none()),
    "Float64": st.one_of(st.floats(allow_nan=False, allow_infinity=True), st.none()),
}


def make_column(kind, values):
    if kind == "object":
        return pd.Series(values, dtype=object)
    if kind == "category":
        return pd.Series(pd.Categorical(values))
    return pd.Series(pd.array(values, dtype=kind))


@st.composite
def pair_frames(draw, fields=FIELDS, min_rows=1, max_rows=8):
    """A pair frame with odd values, mixed dtypes and duplicate rows."""
    n = draw(st.integers(min_rows, max_rows))
    columns = {}
    for prefix in ("left_", "right_"):
        for field in fields:
            kind = draw(st.sampled_from(sorted(COLUMN_KINDS)))
            values = draw(st.lists(COLUMN_KINDS[kind], min_size=n, max_size=n))
            columns[prefix + field] = make_column(kind, values)
    X = pd.DataFrame(columns)
    duplicates = draw(st.lists(st.integers(0, n - 1), max_size=3))
    if duplicates:  # duplicate rows, with duplicate index labels
        X = X.iloc[np.r_[np.arange(n), duplicates]]
    return X


def odd_training_frame():
    """People pairs plus rows of odd values in every column."""
    left, right, y = make_people_pairs(120, seed=0)
    X = pair_frame(left, right).astype(object)
    odd = list(ODD_TEXT) + list(ODD_SCALARS)
    rows = {
        c: [odd[(i * 7 + j) % len(odd)] for i in range(len(odd))]
        for j, c in enumerate(X.columns)
    }
    X = pd.concat([X, pd.DataFrame(rows, dtype=object)], ignore_index=True)
    y = np.r_[y, np.arange(len(odd)) % 2]
    return X, y


# The near misses' search meets the generated values too.
AUTO_NEAR_MISSES = {**TINY, "candidate_nonmatches": "auto"}


@pytest.fixture(scope="module")
def model():
    X, y = odd_training_frame()
    return RecordPairClassifier(
        **TINY, max_epochs=2, early_stopping=False, random_state=0
    ).fit(X, y)


def check_distribution(proba, n, n_classes=2):
    assert proba.shape == (n, n_classes)
    assert proba.dtype == np.float64
    assert np.isfinite(proba).all()
    assert ((proba >= 0) & (proba <= 1)).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=0, atol=1e-6)


# ------------------------------------------------------------------ properties


@settings(PROFILE)
@given(X=pair_frames())
def test_probabilities_are_finite_and_sum_to_one(model, X):
    proba = model.predict_proba(X)
    check_distribution(proba, len(X))
    assert set(model.predict(X)) <= set(model.classes_)


@pytest.mark.slow
@settings(PROFILE)
@given(X=pair_frames(min_rows=2, max_rows=6))
def test_probability_does_not_depend_on_the_batch(model, X):
    together = model.predict_proba(X)
    for i in range(len(X)):
        alone = model.predict_proba(X.iloc[[i]])
        np.testing.assert_allclose(alone[0], together[i], rtol=0, atol=1e-5)
    # The same pair scores the same wherever it sits in the batch.
    reversed_ = model.predict_proba(X.iloc[::-1])[::-1]
    np.testing.assert_allclose(reversed_, together, rtol=0, atol=1e-5)


@settings(PROFILE)
@given(X=pair_frames(max_rows=5))
def test_explain_never_crashes_and_is_finite(model, X):
    out = model.explain(X, n_steps=4)
    assert len(out) == len(X) * 2 * len(FIELDS)
    for column in (
        "attribution",
        "raw_attribution",
        "probability",
        "convergence_delta",
    ):
        assert np.isfinite(out[column].to_numpy()).all(), column
    assert (out["probability"].between(0, 1)).all()
    assert set(out["prediction"]) <= set(model.classes_)
    # Missing values show as None, everything else as text.
    assert all(t is None or (isinstance(t, str) and t.strip()) for t in out["text"])


@settings(PROFILE)
@given(X=pair_frames())
def test_nullable_and_categorical_dtypes_equal_their_object_values(model, X):
    as_object = X.astype(object)
    np.testing.assert_array_equal(
        model.predict_proba(X), model.predict_proba(as_object)
    )


@settings(PROFILE, max_examples=min(N_EXAMPLES, 5))
@given(data=st.data())
def test_fit_on_generated_frames(data):
    fields = data.draw(
        st.sampled_from([("a", "b"), ("name", "city", "year")]), label="fields"
    )
    X = data.draw(pair_frames(fields=fields, min_rows=4, max_rows=12), label="X")
    y = np.arange(len(X)) % 2  # both classes, whatever the frame
    clf = RecordPairClassifier(
        **AUTO_NEAR_MISSES, max_epochs=1, early_stopping=False, random_state=0
    ).fit(X, y)
    check_distribution(clf.predict_proba(X), len(X))
    out = clf.explain(X.iloc[:3], n_steps=2)
    assert np.isfinite(out["raw_attribution"].to_numpy()).all()


# ------------------------------------------------------------- fixed examples


def test_every_odd_value_alone(model):
    # Each odd value in every column, against an ordinary record.
    values = list(ODD_TEXT) + list(ODD_SCALARS)
    X = pd.DataFrame(
        {
            c: pd.Series(values, dtype=object)
            for c in [p + f for p in ("left_", "right_") for f in FIELDS]
        }
    )
    X["right_name"] = "anna smith"
    check_distribution(model.predict_proba(X), len(X))
    out = model.explain(X, n_steps=2)
    assert np.isfinite(out["raw_attribution"].to_numpy()).all()


def test_fit_on_categorical_and_nullable_dtypes():
    left, right, y = make_people_pairs(60, seed=5)
    X = pair_frame(left, right).astype(
        {
            "left_name": "string",
            "right_name": "category",
            "left_city": "category",
            "right_city": "string",
            "left_year": "Int64",
            "right_year": "Float64",
        }
    )
    X.loc[3, "left_year"] = pd.NA
    X["left_flag"] = pd.array([True, False, None] * 20, dtype="boolean")
    X["right_flag"] = pd.array([True, None, False] * 20, dtype="boolean")
    clf = RecordPairClassifier(
        **AUTO_NEAR_MISSES, max_epochs=1, early_stopping=False, random_state=0
    ).fit(X, y)
    assert [f[0] for f in clf.fields_] == ["name", "city", "year", "flag"]
    proba = clf.predict_proba(X)
    check_distribution(proba, len(X))
    np.testing.assert_array_equal(proba, clf.predict_proba(X.astype(object)))
