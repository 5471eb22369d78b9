"""Tests for SimilarityFeatures."""

import re

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from rapidfuzz import fuzz
from rapidfuzz.distance import JaroWinkler, Levenshtein
from sklearn.base import clone
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.exceptions import NotFittedError
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from threadpoolctl import threadpool_limits

from skrecordpair import pair_frame
from skrecordpair._similarity import (
    _MIN_PAIRS_FOR_THREADS,
    SimilarityFeatures,
    _word_counts,
)

SIMILARITIES = [
    "ratio",
    "partial_ratio",
    "token_set_ratio",
    "jaro_winkler",
    "levenshtein",
    "jaccard",
    "code_jaccard",
    "tfidf_cosine",
    "char_tfidf_cosine",
]
CONTAINMENTS = [
    "left_in_right_record",
    "right_in_left_record",
    "left_chars_in_right_record",
    "right_chars_in_left_record",
]
FLAGS = ["left_missing", "right_missing"]
TEXT = SIMILARITIES + CONTAINMENTS + FLAGS  # features of a text field
NUMERIC = SIMILARITIES + CONTAINMENTS + ["num_rel_diff"] + FLAGS  # of a numeric field
REL = len(SIMILARITIES) + len(CONTAINMENTS)  # num_rel_diff in a numeric field's block
N_SIM = len(SIMILARITIES)  # the string similarities, first in every field block
CODE = SIMILARITIES.index("code_jaccard")
WORD_TFIDF = SIMILARITIES.index("tfidf_cosine")
CHAR_TFIDF = SIMILARITIES.index("char_tfidf_cosine")
# The similarities defined for any two values (code_jaccard needs digits).
ALWAYS = [i for i in range(N_SIM) if i != CODE]
K = len(TEXT)


def _frame(left, right):
    return pair_frame(pd.DataFrame(left), pd.DataFrame(right))


def _missing(v):
    return (
        v is None
        or (isinstance(v, float) and np.isnan(v))
        or (isinstance(v, str) and not v.strip())
    )


def _text(v):
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _char_wb_3grams(text):
    """scikit-learn's char_wb analyzer, n=3: 3-grams of each space-padded word."""
    grams = []
    for word in text.split():
        word = f" {word} "
        grams += [word[i : i + 3] for i in range(max(1, len(word) - 2))]
    return grams


def _tfidf_reference(left, right, lowercase=True):
    """Word and char TF-IDF cosines of every pair of a field, computed slowly.

    Documents are the present values of both sides; smooth idf
    ln((1 + n) / (1 + df)) + 1, sublinear tf 1 + ln(count), unit vectors.
    """

    def norm(v):
        t = _text(v)
        return t.lower() if lowercase else t

    docs = [norm(v) for v in list(left) + list(right) if not _missing(v)]
    out = []
    for analyze in (lambda t: re.findall(r"\w+", t), _char_wb_3grams):
        df = {}
        for doc in docs:
            for term in set(analyze(doc)):
                df[term] = df.get(term, 0) + 1

        def vector(t, analyze=analyze, df=df):
            counts = {}
            for term in analyze(t):
                if term in df:
                    counts[term] = counts.get(term, 0) + 1
            v = {
                term: (1 + np.log(c)) * (np.log((1 + len(docs)) / (1 + df[term])) + 1)
                for term, c in counts.items()
            }
            length = np.sqrt(sum(x * x for x in v.values()))
            return {term: x / length for term, x in v.items()}

        cosines = []
        for a, b in zip(left, right):
            if _missing(a) or _missing(b):
                cosines.append(np.nan)
                continue
            va, vb = vector(norm(a)), vector(norm(b))
            cosines.append(
                sum(x * vb.get(term, 0.0) for term, x in va.items())
                if va and vb
                else np.nan
            )
        out.append(cosines)
    return list(zip(*out))


def _containment_reference(left, right, field, lowercase=True):
    """The shares of the left value's words and character 3-grams found in the
    right record, and the reverse, for `field` of one pair (in the order of
    CONTAINMENTS); `left` and `right` map fields to values."""

    def text(v):
        t = _text(v)
        return t.lower() if lowercase else t

    def words(v):
        return set() if _missing(v) else set(re.findall(r"\w+", text(v)))

    def grams(v):
        if _missing(v):
            return set()
        letters = "".join(c for c in text(v) if c.isalnum())
        return {letters[i : i + 3] for i in range(len(letters) - 2)}

    def share(held, value, record):
        found = set().union(*map(held, record.values()))
        mine = held(value)
        return len(mine & found) / len(mine) if mine else np.nan

    return (
        share(words, left[field], right),
        share(words, right[field], left),
        share(grams, left[field], right),
        share(grams, right[field], left),
    )


def _reference(
    left, right, lowercase=True, tfidf=(np.nan, np.nan), containment=(np.nan,) * 4
):
    """The features of one pair, computed slowly and independently; `tfidf`
    gives the pair's two TF-IDF cosines (see `_tfidf_reference`), `containment`
    its four record shares (see `_containment_reference`)."""
    missing, text = _missing, _text

    def number(s):
        try:
            x = float(s)
        except ValueError:
            return np.nan
        return x if np.isfinite(x) else np.nan

    lm, rm = missing(left), missing(right)
    if lm or rm:
        return [np.nan] * 9 + [*containment, np.nan, float(lm), float(rm)]
    a, b = text(left), text(right)
    x, y = number(a), number(b)
    if np.isnan(x) or np.isnan(y):
        rel = np.nan
    else:
        scale = max(abs(x), abs(y))
        rel = 0.0 if scale == 0 else abs(x - y) / scale
    if lowercase:
        a, b = a.lower(), b.lower()
    ta, tb = set(re.findall(r"\w+", a)), set(re.findall(r"\w+", b))
    jaccard = len(ta & tb) / len(ta | tb) if ta | tb else 1.0
    ca = {t for t in ta if any(c.isdigit() for c in t)}
    cb = {t for t in tb if any(c.isdigit() for c in t)}
    code_jaccard = (
        len(ca & cb) / len(ca | cb) if ca and cb else 1.0 if not (ca or cb) else np.nan
    )
    return [
        fuzz.ratio(a, b) / 100,
        fuzz.partial_ratio(a, b) / 100,
        fuzz.token_set_ratio(a, b) / 100,
        JaroWinkler.normalized_similarity(a, b),
        Levenshtein.normalized_similarity(a, b),
        jaccard,
        code_jaccard,
        *tfidf,
        *containment,
        rel,
        0.0,
        0.0,
    ]


LEFT = {
    "title": [
        "Apple iPhone 12 Pro (128GB)",
        "Microsoft Office 2007 Basic",
        "Crème Brûlée Kit",
        None,
        "  ",
        "Adobe Photoshop CS3",
        "東京 タワー",
        "Sony WH-1000XM4",
        "x",
        "!!!",
    ],
    "price": [999.0, 149.99, np.nan, 5.0, 0.0, 649, 12.5, "300", "abc", -2.0],
    "maker": [
        "Apple",
        "microsoft",
        "Chef's",
        "acme",
        "",
        "adobe",
        "JP",
        "sony",
        "X",
        "??",
    ],
}
RIGHT = {
    "title": [
        "apple iphone 12 pro 128 gb",
        "Office Basic 2007 by Microsoft",
        "creme brulee kit",
        "Widget",
        "Gadget",
        None,
        "東京タワー",
        "sony wh1000xm4 headphones",
        "y",
        "???",
    ],
    "price": [989.0, 149.99, 10.0, np.nan, 0.0, 700, -12.5, "300.0", "1", "2e0"],
    "maker": [
        "APPLE",
        "Microsoft Corp.",
        "chefs",
        None,
        "x",
        "Adobe Systems",
        "jp",
        "SONY",
        "x",
        "!!",
    ],
}


@pytest.fixture
def X():
    return _frame(LEFT, RIGHT)


@pytest.mark.parametrize("numeric_fields", ["auto", ["title", "price", "maker"]])
def test_matches_per_pair_reference(X, numeric_fields):
    est = SimilarityFeatures(numeric_fields=numeric_fields).fit(X)
    Xt = est.transform(X)
    fields = ["title", "price", "maker"]
    numeric = ["price"] if numeric_fields == "auto" else fields
    assert est.numeric_fields_ == numeric
    assert Xt.shape == (len(X), 3 * K + len(numeric))
    assert Xt.dtype == np.float64
    tfidf = {f: _tfidf_reference(LEFT[f], RIGHT[f]) for f in fields}
    for i in range(len(X)):
        expected = []
        left = {f: LEFT[f][i] for f in fields}
        right = {f: RIGHT[f][i] for f in fields}
        for field in fields:
            ref = _reference(
                left[field],
                right[field],
                tfidf=tfidf[field][i],
                containment=_containment_reference(left, right, field),
            )
            expected += ref if field in numeric else ref[:REL] + ref[REL + 1 :]
        assert_allclose(
            Xt[i], expected, rtol=1e-12, atol=1e-12, equal_nan=True, err_msg=f"row {i}"
        )


def test_matches_reference_without_lowercase(X):
    Xt = SimilarityFeatures(fields=["maker"], lowercase=False).fit_transform(X)
    tfidf = _tfidf_reference(LEFT["maker"], RIGHT["maker"], lowercase=False)
    for i in range(len(X)):
        left, right = {"maker": LEFT["maker"][i]}, {"maker": RIGHT["maker"][i]}
        ref = _reference(
            left["maker"],
            right["maker"],
            lowercase=False,
            tfidf=tfidf[i],
            containment=_containment_reference(left, right, "maker", lowercase=False),
        )
        assert_allclose(
            Xt[i], ref[:REL] + ref[REL + 1 :], rtol=1e-12, atol=1e-12, equal_nan=True
        )
    # "Apple" vs "APPLE": equal only when lowercased.
    lowered = SimilarityFeatures(fields=["maker"]).fit_transform(X)
    assert_array_equal(lowered[0, :N_SIM], 1.0)
    assert (Xt[0, ALWAYS] < 1).all()
    assert Xt[0, CODE] == 1.0  # no code on either side


def test_identical_values_give_ones_and_disjoint_low():
    X = _frame(
        {"a": ["john smith", "Zürich 8001", "abc"]},
        {"a": ["john smith", "Zürich 8001", "xyz"]},
    )
    Xt = SimilarityFeatures().fit_transform(X)
    assert Xt.shape == (3, K)  # a text field: no numeric difference
    assert_array_equal(Xt[:2, :N_SIM], 1.0)
    assert_array_equal(Xt[:2, -2:], 0.0)
    assert_array_equal(Xt[2, ALWAYS], 0.0)
    assert Xt[2, CODE] == 1.0  # no code on either side
    assert ((Xt[:, :N_SIM] >= 0) & (Xt[:, :N_SIM] <= 1)).all()


def test_missing_values_give_nan_and_flags():
    X = _frame(
        {"a": ["x", None, np.nan, "", "  ", "y"]},
        {"a": [None, "x", np.nan, "z", "q", "y"]},
    )
    Xt = SimilarityFeatures().fit_transform(X)
    assert np.isnan(Xt[:5, :N_SIM]).all()
    assert_array_equal(Xt[:, -2], [0, 1, 1, 1, 1, 0])  # left_missing
    assert_array_equal(Xt[:, -1], [1, 0, 1, 0, 0, 0])  # right_missing
    assert_array_equal(Xt[5, :N_SIM], 1.0)


def test_pairs_without_any_value_give_nan_and_flags():
    model = SimilarityFeatures().fit(_frame({"a": ["x", "y"]}, {"a": ["x", "z"]}))
    Xt = model.transform(_frame({"a": [None, "", np.nan]}, {"a": [np.nan, None, " "]}))
    assert np.isnan(Xt[:, :N_SIM]).all()
    assert_array_equal(Xt[:, -2:], 1.0)


def test_numbers():
    X = _frame(
        {"price": [100, 0, 1999.0, -5, 3.5, np.nan], "year": [1999, 2000, 1, 2, 3, 4]},
        {"price": ["50", "0", 1999, 5, "n/a", 1.0], "year": [2001, 2000, 1, 2, 3, 4]},
    )
    est = SimilarityFeatures().fit(X)
    assert est.numeric_fields_ == ["price", "year"]
    Xt = est.transform(X)
    assert list(est.get_feature_names_out()[: len(NUMERIC)]) == [
        f"price__{k}" for k in NUMERIC
    ]
    rel = Xt[:, REL]
    assert_allclose(rel[:3], [0.5, 0.0, 0.0])
    assert rel[3] == 2.0  # |-5 - 5| / 5
    assert np.isnan(rel[4:]).all()
    # 1999.0 is written as "1999", so it equals the integer 1999 as text too.
    assert_array_equal(Xt[2, :N_SIM], 1.0)


def test_extreme_numbers_give_a_finite_difference_or_nan():
    a = [1e308, -1e308, 1e308, 5e-324, 0, 5e-324, "1" + "0" * 400, "1e400", "9" * 30]
    b = [-1e308, 1e308, 1e308, 0, 5e-324, -5e-324, 7, 7, "1"]
    X = _frame({"n": a + [1] * 10}, {"n": b + [1] * 10})
    est = SimilarityFeatures(numeric_fields=["n"]).fit(X)
    rel = est.transform(X)[: len(a), REL]
    # 1e308 - -1e308 overflows; the relative difference is 2 all the same.
    assert_array_equal(rel[:6], [2.0, 2.0, 0.0, 1.0, 1.0, 2.0])
    # Numbers beyond float64 are no numbers: missing, not infinite.
    assert np.isnan(rel[6:8]).all()
    assert rel[8] == pytest.approx(1.0)


def test_unicode():
    X = _frame(
        {"name": ["ÉCOLE Müller", "naïve café", "北京大学", "😀 smile"]},
        {"name": ["école müller", "naive cafe", "北京大學", "😀 smile"]},
    )
    Xt = SimilarityFeatures().fit_transform(X)
    assert_array_equal(Xt[0, :N_SIM], 1.0)  # case-folded non-ASCII
    assert_array_equal(Xt[3, :N_SIM], 1.0)
    assert (Xt[1, :5] < 1).all() and (Xt[1, :5] > 0.5).all()
    assert Xt[1, 5] == 0.0  # no word token in common
    assert_allclose(Xt[2, 0], 0.75)  # one of four characters differs
    assert Xt[2, 5] == 0.0  # one token each, different


def test_feature_names_out():
    X = _frame({"b": ["1"], "a": ["2"], "only_left": ["3"]}, {"a": ["2"], "b": ["1"]})
    est = SimilarityFeatures().fit(X)
    names = est.get_feature_names_out()
    assert names.dtype == object
    assert list(names) == [f"{f}__{k}" for f in ("b", "a") for k in NUMERIC]
    assert est.transform(X).shape[1] == len(names)
    assert_array_equal(est.get_feature_names_out(X.columns), names)
    with pytest.raises(ValueError, match="input_features"):
        est.get_feature_names_out(["x"])
    out = est.set_output(transform="pandas").transform(X)
    assert isinstance(out, pd.DataFrame)
    assert list(out.columns) == list(names)


def test_fields_tuples_and_one_sided():
    X = _frame(
        {"name": ["Ann", "Bob"], "extra": ["e", None]}, {"full_name": ["ann", "Rob"]}
    )
    est = SimilarityFeatures(fields=[("name", "full_name"), ("extra", None)]).fit(X)
    assert est.fields_ == [
        ("name|full_name", "left_name", "right_full_name"),
        ("extra", "left_extra", None),
    ]
    Xt = est.transform(X)
    assert list(est.get_feature_names_out()) == (
        [f"name|full_name__{k}" for k in TEXT] + [f"extra__{k}" for k in FLAGS]
    )
    assert Xt.shape == (2, K + 2)
    assert_array_equal(Xt[0, :N_SIM], 1.0)
    assert_array_equal(Xt[:, -2], [0, 1])  # extra__left_missing
    assert_array_equal(Xt[:, -1], [1, 1])  # extra__right_missing: absent side


def test_row_order_invariance(X):
    est = SimilarityFeatures().fit(X)
    perm = np.random.default_rng(0).permutation(len(X))
    assert_array_equal(est.transform(X.iloc[perm]), est.transform(X)[perm])
    # The index is irrelevant too.
    assert_array_equal(est.transform(X.set_axis(perm[::-1])), est.transform(X))


def test_n_jobs_gives_same_result(X):
    # Threads start from _MIN_PAIRS_FOR_THREADS pairs (fewer run on one).
    many = pd.concat([X] * (_MIN_PAIRS_FOR_THREADS // len(X) + 1), ignore_index=True)
    assert len(many) >= _MIN_PAIRS_FOR_THREADS
    for pairs in (X, many):
        assert_array_equal(
            SimilarityFeatures(n_jobs=-1).fit_transform(pairs),
            SimilarityFeatures().fit_transform(pairs),
        )


def test_clone_and_params():
    est = SimilarityFeatures(fields=["a"], lowercase=False, n_jobs=2)
    params = est.get_params()
    assert params == {
        "fields": ["a"],
        "left_prefix": "left_",
        "right_prefix": "right_",
        "numeric_fields": "auto",
        "lowercase": False,
        "max_length": 1000,
        "n_jobs": 2,
    }
    cloned = clone(est)
    assert cloned.get_params() == params
    assert not hasattr(cloned, "fields_")
    tags = est.__sklearn_tags__()
    assert tags.input_tags.string and tags.input_tags.allow_nan
    assert not tags.target_tags.required


def test_custom_prefixes():
    X = pd.DataFrame({"l.a": ["x"], "r.a": ["x"], "id": [1]})
    est = SimilarityFeatures(left_prefix="l.", right_prefix="r.").fit(X)
    assert est.fields_ == [("a", "l.a", "r.a")]
    assert_array_equal(est.transform(X)[0, :N_SIM], 1.0)


def test_errors(X):
    est = SimilarityFeatures()
    with pytest.raises(NotFittedError):
        est.transform(X)
    with pytest.raises(TypeError, match="expected a pair frame"):
        est.fit(X.to_numpy())
    est.fit(X)
    with pytest.raises(TypeError, match="expected a pair frame"):
        est.transform(X.to_numpy())
    with pytest.raises(
        ValueError,
        match=r"SimilarityFeatures.transform\(\) .* must "
        r"have the columns .*; it lacks \['right_price'\]",
    ):
        est.transform(X.drop(columns="right_price"))
    with pytest.raises(ValueError, match="feature names"):
        est.transform(X.assign(other=1))
    with pytest.raises(ValueError, match="No paired columns"):
        SimilarityFeatures().fit(pd.DataFrame({"a": [1]}))
    with pytest.raises(ValueError, match="does not have"):
        SimilarityFeatures(fields=["nope"]).fit(X)
    with pytest.raises(TypeError, match="lowercase"):
        SimilarityFeatures(lowercase="yes").fit(X)
    with pytest.raises(ValueError, match="n_jobs"):
        SimilarityFeatures(n_jobs=0).fit(X)
    with pytest.raises(ValueError, match=r"numeric_fields names \['nope'\]"):
        SimilarityFeatures(numeric_fields=["nope"]).fit(X)
    with pytest.raises(TypeError, match="numeric_fields"):
        SimilarityFeatures(numeric_fields="price").fit(X)


def test_empty_frame(X):
    est = SimilarityFeatures().fit(X)
    assert est.transform(X.iloc[:0]).shape == (0, 3 * K + 1)


def test_numeric_fields_none_and_auto_rules():
    X = _frame(
        {
            "title": ["2007", "office", "word", "excel"],
            "n": ["1", "2", None, "x"],
            "half": ["1", None, None, None],
        },
        {
            "title": ["2008", "office 2007", "word", "access"],
            "n": ["1", "3", "4", "5"],
            "half": [None, "2", None, None],
        },
    )
    # title: 2 of 8 values are numbers; n: 6 of 7; half: numbers but never in
    # the same pair (the feature would be all NaN).
    assert SimilarityFeatures().fit(X).numeric_fields_ == ["n"]
    est = SimilarityFeatures(numeric_fields=None).fit(X)
    assert est.numeric_fields_ == []
    assert est.transform(X).shape == (4, 3 * K)
    assert SimilarityFeatures(numeric_fields=["half", "title"]).fit(
        X
    ).numeric_fields_ == ["title", "half"]


def _synthetic_pairs(n=300, seed=0):
    rng = np.random.default_rng(seed)
    first = [
        "anna",
        "bernd",
        "clara",
        "dieter",
        "eva",
        "felix",
        "greta",
        "hans",
        "ida",
        "jonas",
        "karla",
        "lukas",
    ]
    last = [
        "meier",
        "schmidt",
        "huber",
        "wagner",
        "becker",
        "hoffmann",
        "koch",
        "richter",
        "klein",
        "wolf",
    ]
    cities = ["berlin", "hamburg", "munich", "cologne", "bremen", "dresden"]

    def record():
        return {
            "name": f"{rng.choice(first)} {rng.choice(last)}",
            "city": str(rng.choice(cities)),
            "year": int(rng.integers(1940, 2005)),
        }

    def typo(s):
        i = int(rng.integers(len(s)))
        return s[:i] + s[i + 1 :]

    left, right, y = [], [], []
    for i in range(n):
        a = record()
        if i % 2:
            b = dict(
                a, name=typo(a["name"]).upper() if rng.random() < 0.5 else a["name"]
            )
            if rng.random() < 0.3:
                b["city"] = None
        else:
            b = record()
        left.append(a)
        right.append(b)
        y.append(i % 2)
    return _frame(left, right), np.array(y)


def test_classic_matcher_pipeline():
    X, y = _synthetic_pairs()
    pipe = make_pipeline(
        SimilarityFeatures(),
        HistGradientBoostingClassifier(max_iter=50, random_state=0),
    )
    # One OpenMP thread: on a small, busy machine HGB's threads mostly spin.
    with threadpool_limits(limits=1, user_api="openmp"):
        scores = cross_val_score(pipe, X, y, cv=3, scoring="f1")
    assert scores.mean() > 0.9


def test_values_without_tokens_and_pickle():
    import pickle

    X = _frame({"a": ["!!!", "--", "?"]}, {"a": ["!!!", "++", "x"]})
    est = SimilarityFeatures().fit(X)
    Xt = est.transform(X)
    assert_array_equal(Xt[:, 5], [1.0, 1.0, 0.0])  # jaccard: empty sets are equal
    assert_array_equal(Xt[:2, 5], SimilarityFeatures().fit_transform(X.iloc[:2])[:, 5])
    assert_array_equal(pickle.loads(pickle.dumps(est)).transform(X), Xt)


def test_long_values_compare_their_first_max_length_characters():
    """Two equal 100,000-character values: partial_ratio alone would run for
    minutes; the cut makes them cost what their first characters cost."""
    huge = "ab c" * 25_000
    long_a, long_b = "ab c" * 375, "ab c" * 374 + "xyz!"  # 1,500 characters
    X = pair_frame(
        pd.DataFrame({"text": [huge, long_a]}), pd.DataFrame({"text": [huge, long_b]})
    )
    features = SimilarityFeatures().fit(X)
    assert features.max_length == 1000
    cut = X.apply(lambda column: column.str[:1000])
    assert_array_equal(features.transform(X), features.transform(cut))
    # The cut hides the difference at the end of the second pair.
    assert_array_equal(features.transform(X)[:, :6], np.ones((2, 6)))
    whole = SimilarityFeatures(max_length=2000).fit(X).transform(X.iloc[1:])
    assert whole[0, 0] < 1


@pytest.mark.parametrize("max_length", [0, -5, 2.5, True])
def test_max_length_must_be_a_positive_integer(X, max_length):
    with pytest.raises(ValueError, match="max_length must be a positive integer"):
        SimilarityFeatures(max_length=max_length).fit(X)


def test_tfidf_weighs_rare_shared_words_above_common_ones():
    # "camera" is in every value, "x100" in two: sharing the rare word counts more.
    left = [
        "sony x100 camera",
        "nikon d50 camera",
        "canon g7 camera",
        "leica q2 camera",
    ]
    right = [
        "fuji x100 photo",
        "pentax k1 camera",
        "olympus e5 camera",
        "ricoh gr camera",
    ]
    X = _frame({"title": left}, {"title": right})
    est = SimilarityFeatures().fit(X)
    word = list(est.get_feature_names_out()).index("title__tfidf_cosine")
    Xt = est.transform(X)
    assert Xt[0, word] > Xt[1, word] > 0
    # The token Jaccard index cannot tell the two apart.
    jaccard = list(est.get_feature_names_out()).index("title__jaccard")
    assert Xt[0, jaccard] == Xt[1, jaccard] == 0.2


def test_tfidf_weights_come_from_fit_only():
    train = _frame({"a": ["red apple", "green pear"]}, {"a": ["red apple", "pear"]})
    est = SimilarityFeatures().fit(train)
    assert sorted(est.tfidf_["a"]["tfidf_cosine"].vocabulary_) == [
        "apple",
        "green",
        "pear",
        "red",
    ]
    new = _frame(
        {"a": ["blue plum", "red plum", "red apple"]},
        {"a": ["blue plum", "blue plum", "apple red"]},
    )
    Xt = est.transform(new)
    word = WORD_TFIDF
    # No word seen during fit: NaN, even for equal values; then as fitted.
    assert np.isnan(Xt[0, word]) and np.isnan(Xt[1, word])
    assert Xt[2, word] == pytest.approx(1.0)
    # The same pair gets the same features whatever else is transformed with it.
    assert_array_equal(est.transform(new.iloc[2:]), Xt[2:])


def test_tfidf_cosines_equal_scikit_learn_on_awkward_text():
    # The TF-IDF vectors are computed without scikit-learn's transform (faster);
    # they must equal its output on whitespace runs, tabs, non-breaking spaces,
    # characters beyond the BMP, long words and words unseen during fit.
    left = [
        "a  b\tc\nd",
        "😀x😀 ok 😀",
        "Über  Straße",
        "x" * 300 + " y",
        "  lead trail  ",
        "\u00a0nbsp\u2003em",
        "a",
        "東京 タワー",
        "ab cd ab",
        "new words only",
    ]
    right = [
        "a b c d",
        "x😀 ok",
        "uber strasse",
        "x" * 299,
        "lead",
        "nbsp em",
        "b",
        "東京タワー",
        "cd ab cd",
        "other unseen",
    ]
    X = _frame({"t": left}, {"t": right})
    est = SimilarityFeatures().fit(X.iloc[:-1])
    Xt = est.transform(X)
    for feature, column in (
        ("tfidf_cosine", WORD_TFIDF),
        ("char_tfidf_cosine", CHAR_TFIDF),
    ):
        vectorizer = est.tfidf_["t"][feature]
        a = vectorizer.transform([v.lower() for v in left])
        b = vectorizer.transform([v.lower() for v in right])
        expected = np.asarray(a.multiply(b).sum(axis=1)).ravel()
        expected[(a.getnnz(axis=1) == 0) | (b.getnnz(axis=1) == 0)] = np.nan
        assert_allclose(Xt[:, column], expected, rtol=0, atol=1e-12)
    assert np.isnan(Xt[-1, WORD_TFIDF])  # no word seen during fit


def test_word_counts_equal_scikit_learn():
    # Counted with pandas rather than scikit-learn's tokeniser loop: the same
    # words and counts, also for values without any token.
    docs = [
        "a  b\ta a",
        "😀x😀 ok_ok 😀",
        "über straße über",
        "--",
        "",
        "x" * 300,
        "東京 タワー 東京",
        "B b",
        "12-34 12",
    ]
    counts, words = _word_counts(docs)
    vectorizer = CountVectorizer(token_pattern=r"\w+", lowercase=False)
    expected = vectorizer.fit_transform(docs)
    assert_array_equal(words, vectorizer.get_feature_names_out())
    assert_array_equal(counts.toarray(), expected.toarray())
    counts, words = _word_counts(["--", "!"])
    assert counts.shape == (2, 0) and len(words) == 0


def test_record_containment_finds_words_in_any_compared_field():
    X = _frame(
        {
            "title": ["WH-1000XM4 headphones", "ThinkPad X1", None],
            "maker": ["Sony", "!!!", "acme"],
            "note": ["sony", "x", "y"],
        },
        {
            "title": ["sony wh-1000xm4", "lenovo thinkpad", "acme widget"],
            "maker": [None, "Lenovo", "ACME Corp"],
            "note": ["z", "z", "z"],
        },
    )
    est = SimilarityFeatures(fields=["title", "maker"]).fit(X)
    out = est.set_output(transform="pandas").transform(X)
    # The left brand is in the right title although the right brand is missing.
    assert out.loc[0, "maker__left_in_right_record"] == 1.0
    assert np.isnan(out.loc[0, "maker__ratio"])
    # 2 of the 3 left title words ("wh", "1000xm4"; not "headphones").
    assert_allclose(out.loc[0, "title__left_in_right_record"], 2 / 3)
    # Right to left: "sony" is in the left maker; the left note is not compared.
    assert out.loc[0, "title__right_in_left_record"] == 1.0
    assert out.loc[1, "maker__right_in_left_record"] == 0.0
    # NaN where the value is missing or has no word; the flags tell which.
    assert np.isnan(out.loc[1, "maker__left_in_right_record"])
    assert np.isnan(out.loc[2, "title__left_in_right_record"])
    assert out.loc[2, "title__right_in_left_record"] == 0.5  # "acme" in the left maker
    assert out.loc[2, "maker__right_in_left_record"] == 0.5  # not "corp"


def test_character_shares_ignore_spaces_and_punctuation():
    X = _frame(
        {
            "title": ["r39-00292 open win", "print shop", "xy"],
            "code": ["R3900292", None, "zz"],
        },
        {
            "title": ["Microsoft R39-00292", "the printshop", "x y z"],
            "code": [None, "P-S", "x"],
        },
    )
    out = SimilarityFeatures().fit(X).set_output(transform="pandas").transform(X)
    # Every 3-gram of "r3900292" is in the right title, but not the word.
    assert out.loc[0, "code__left_chars_in_right_record"] == 1.0
    assert out.loc[0, "code__left_in_right_record"] == 0.0
    # "printshop" holds all 3-grams of "printshop" (from "print shop").
    assert out.loc[1, "title__left_chars_in_right_record"] == 1.0
    # "r39-00292 open win": 3-grams of "r3900292openwin"; those spanning a word
    # boundary ("92o", "2op", "enw", "nwi") are not in the right record.
    assert_allclose(out.loc[0, "title__left_chars_in_right_record"], 6 / 13)
    # Fewer than three letters and digits: no 3-gram, NaN.
    assert np.isnan(out.loc[2, "title__left_chars_in_right_record"])
    assert np.isnan(out.loc[1, "code__right_chars_in_left_record"])  # "ps"


def test_record_containment_counts_one_sided_fields():
    X = _frame(
        {"name": ["anna smith"], "email": ["anna.smith@example.org"]},
        {"name": ["smith org"]},
    )
    est = SimilarityFeatures(fields=["name", ("email", None)]).fit(X)
    out = est.set_output(transform="pandas").transform(X)
    # "org" is in the left email, a field of the left record only.
    with_email = out.loc[0, "name__right_in_left_record"]
    without = (
        SimilarityFeatures(fields=["name"])
        .fit(X)
        .set_output(transform="pandas")
        .transform(X)
        .loc[0, "name__right_in_left_record"]
    )
    assert (with_email, without) == (1.0, 0.5)


def test_tfidf_of_a_field_without_any_token():
    X = _frame({"code": ["--", "!!", None]}, {"code": ["--", "??", "+"]})
    est = SimilarityFeatures().fit(X)
    assert est.tfidf_["code"]["tfidf_cosine"] is None  # no word at all
    Xt = est.transform(X)
    assert np.isnan(Xt[:, WORD_TFIDF]).all()
    assert Xt[0, CHAR_TFIDF] == 1.0 and Xt[1, CHAR_TFIDF] == 0.0  # char 3-grams exist


def test_code_jaccard_compares_tokens_with_digits():
    X = _frame(
        {"t": ["photoshop cs3 mac", "office 2007", "word", "x200 b3 kit"]},
        {"t": ["photoshop cs4 mac", "office 2007 pro", "word 2", "kit x200"]},
    )
    Xt = SimilarityFeatures().fit_transform(X)
    # A different version, the same year, a code on one side only, one of two codes.
    assert_array_equal(Xt[:, CODE], [0.0, 1.0, np.nan, 0.5])
    # The overall token Jaccard index hardly sees the version change.
    assert Xt[0, SIMILARITIES.index("jaccard")] == 0.5
