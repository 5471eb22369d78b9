from collections import Counter

import numpy as np
import pandas as pd

from skrecordpair import pair_frame
from skrecordpair._matcher.tokens import (
    MISSING_ID,
    UNK_ID,
    PairEncoder,
    Vocabulary,
    tokenize,
)
from skrecordpair._pairs import resolve_fields


def test_tokenize_normalises_and_splits():
    assert tokenize("Ｆｕｌｌ-width ＡＢＣ") == ["full", "-", "width", "abc"]
    assert tokenize("STRASSE Straße") == ["strasse", "strasse"]
    assert tokenize("price: $1,299.99 (new)") == [
        "price",
        ":",
        "$",
        "1,299.99",
        "(",
        "new",
        ")",
    ]
    assert tokenize("o'brien_jr") == ["o", "'", "brien", "_", "jr"]
    assert tokenize("東京 tower") == ["東京", "tower"]
    assert tokenize("   ") == []


def test_tokenize_keeps_combining_marks_with_their_letter():
    # "e" + COMBINING ACUTE ACCENT is composed by NFKC into one letter.
    assert tokenize("cafe\u0301") == ["café"]


def test_vocabulary_frequency_cut_and_deterministic_order():
    counts = Counter({"b": 3, "a": 3, "c": 1, "d": 2})
    vocab = Vocabulary.build(counts, min_frequency=2, max_vocabulary=None)
    assert list(vocab.words)[3:] == ["a", "b", "d"]
    capped = Vocabulary.build(counts, min_frequency=1, max_vocabulary=5)
    assert list(capped.words)[3:] == ["a", "b"]
    assert set(vocab.chars) >= {"a", "b", "c", "d"}


def _encoder(X, **kwargs):
    fields = resolve_fields(X.columns, None, "left_", "right_")
    params = dict(
        max_tokens_per_field=4, max_chars_per_token=5, prepend_field_names=False
    )
    params.update(kwargs)
    return PairEncoder(fields, **params).fit(X, min_frequency=1, max_vocabulary=None)


def test_encoder_missing_values_truncation_and_unknown_words():
    left = pd.DataFrame({"name": ["anna smith", None], "bio": ["a b c d e f", "   "]})
    right = pd.DataFrame({"name": ["anna", "bob"], "bio": [np.nan, "x"]})
    X = pair_frame(left, right)
    enc = _encoder(X)
    out = enc.transform(X)
    assert out.left.shape == (2, 2, 4)  # bio truncated to 4 tokens
    words = out.token_words
    # Missing values become exactly one missing-value token.
    assert words[out.left[1, 0, 0]] == MISSING_ID and out.left[1, 0, 1] == 0
    assert words[out.left[1, 1, 0]] == MISSING_ID
    assert words[out.right[0, 1, 0]] == MISSING_ID
    assert list(out.tokens[out.left[0, 1]]) == ["a", "b", "c", "d"]
    # Words never seen in fit become UNK, but keep their characters.
    new = pair_frame(
        pd.DataFrame({"name": ["bathzzz"], "bio": ["a"]}),
        pd.DataFrame({"name": ["anna"], "bio": ["a"]}),
    )
    enc_new = enc.transform(new)
    unseen = enc_new.left[0, 0, 0]
    assert enc_new.token_words[unseen] == UNK_ID
    chars = enc.vocabulary.chars
    # Truncated to 5 characters; "z" was never seen, so it is the unknown char 1.
    assert list(enc_new.token_chars[unseen]) == [
        chars["b"],
        chars["a"],
        chars["t"],
        chars["h"],
        1,
    ]


def test_encoder_prepends_field_names():
    X = pair_frame(
        pd.DataFrame({"first_name": ["hans"]}), pd.DataFrame({"first_name": [None]})
    )
    out = _encoder(X, prepend_field_names=True).transform(X)
    assert list(out.tokens[out.left[0, 0][out.left[0, 0] > 0]]) == [
        "first",
        "_",
        "name",
        "hans",
    ]
    assert list(out.tokens[out.right[0, 0][out.right[0, 0] > 0]]) == [
        "first",
        "_",
        "name",
        "<missing>",
    ]


def test_encoder_one_sided_fields_give_different_field_counts():
    X = pd.DataFrame({"left_a": ["x"], "left_b": ["y"], "right_a": ["x"]})
    fields = resolve_fields(X.columns, ["a", ("b", None)], "left_", "right_")
    enc = PairEncoder(
        fields, max_tokens_per_field=8, max_chars_per_token=8, prepend_field_names=False
    ).fit(X, min_frequency=1, max_vocabulary=None)
    out = enc.transform(X)
    assert out.left.shape[1] == 2 and out.right.shape[1] == 1
