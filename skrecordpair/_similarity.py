"""Classic per-field string similarity features for record pairs."""

from __future__ import annotations

import numbers
from collections import namedtuple
from functools import cached_property
from typing import ClassVar

import numpy as np
import pandas as pd
import scipy.sparse as sp
from joblib import effective_n_jobs
from rapidfuzz import fuzz, process
from rapidfuzz.distance import JaroWinkler, Levenshtein
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import normalize
from sklearn.utils.validation import check_is_fitted, validate_data

from ._matcher.tokens import code_points, map_characters, row_positions
from ._pairs import Sides, pair_texts, require_columns, resolve_fields
from ._validation import POSITIVE, Interval, validate_params

__all__ = ["SimilarityFeatures"]

# (feature name, rapidfuzz scorer, factor that maps the score to [0, 1]).
_FUZZY_SCORERS = (
    ("ratio", fuzz.ratio, 0.01),
    ("partial_ratio", fuzz.partial_ratio, 0.01),
    ("token_set_ratio", fuzz.token_set_ratio, 0.01),
    ("jaro_winkler", JaroWinkler.normalized_similarity, 1.0),
    ("levenshtein", Levenshtein.normalized_similarity, 1.0),
)
_SIMILARITIES = tuple(name for name, _, _ in _FUZZY_SCORERS) + (
    "jaccard",
    "code_jaccard",
    "tfidf_cosine",
    "char_tfidf_cosine",
)
# Whether a value's words, and its character 3-grams, occur anywhere in the
# other record: a brand or a model number given in another field there (the
# title, a description), maybe written differently ("r39-00292", "r3900292").
_CONTAINMENTS = (
    "left_in_right_record",
    "right_in_left_record",
    "left_chars_in_right_record",
    "right_chars_in_left_record",
)
_FLAGS = ("left_missing", "right_missing")
# One code point in a character n-gram's code (see _char_ngrams).
_CODE_POINT_MASK = (1 << 21) - 1
# Starting rapidfuzz's threads has a cost per call that only pays off from about
# this many pairs (measured on product titles: benchmarks/RESULTS.md, "Faster
# prediction on large calls").
_MIN_PAIRS_FOR_THREADS = 1000
# Word tokens (Jaccard indices, word TF-IDF): runs of letters, digits and underscores.
_WORD_PATTERN = r"\w+"


class SimilarityFeatures(TransformerMixin, BaseEstimator):
    """Per-field string similarity features of record pairs.

    The classic entity-matching feature set: for every field, compare the left
    and the right value with several string similarity measures, a numeric
    difference and missing-value flags. Followed by a tree ensemble it is a
    strong, fast baseline matcher::

        make_pipeline(SimilarityFeatures(), HistGradientBoostingClassifier())

    The input is a pair frame (see :func:`~skrecordpair.pair_frame`): one row
    per pair, with the columns ``<left_prefix><field>`` and
    ``<right_prefix><field>``. Values are compared as text: numbers are
    written as strings (``1999.0`` becomes ``"1999"``), and NaN, None, empty
    and whitespace-only strings count as missing.

    For every field the output has these columns, in this order:

    - ``<field>__ratio``: :func:`rapidfuzz.fuzz.ratio` / 100, the normalised
      Indel similarity.
    - ``<field>__partial_ratio``: :func:`rapidfuzz.fuzz.partial_ratio` / 100,
      the best ratio of the shorter value against a substring of the longer.
    - ``<field>__token_set_ratio``: :func:`rapidfuzz.fuzz.token_set_ratio` /
      100, insensitive to word order and repeated words.
    - ``<field>__jaro_winkler``: the Jaro-Winkler similarity.
    - ``<field>__levenshtein``: ``1 - distance / max(len(left), len(right))``
      with the Levenshtein distance.
    - ``<field>__jaccard``: Jaccard index of the sets of word tokens (runs of
      letters, digits and underscores); 1 when neither value has a token.
    - ``<field>__code_jaccard``: Jaccard index of the sets of word tokens
      that hold a digit (model numbers, versions, years: "cs3", "2007"); 1
      when neither value has such a token, NaN when only one has.
    - ``<field>__tfidf_cosine``: cosine similarity of the TF-IDF vectors of
      the word tokens (sublinear term frequencies), with document
      frequencies learnt in :meth:`fit` from the field's values on both
      sides; a shared rare word (a model number) counts more than a shared
      common one. NaN when either value has no word seen during fit.
    - ``<field>__char_tfidf_cosine``: the same over character 3-grams within
      words (``TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 3))``),
      which tolerates spelling variants.
    - ``<field>__left_in_right_record``: the share of the left value's word
      tokens that occur in any compared field of the right record (a brand
      given in the right record's title, say); NaN when the left value has
      no token. ``<field>__right_in_left_record``: the same from right to
      left.
    - ``<field>__left_chars_in_right_record``,
      ``<field>__right_chars_in_left_record``: the same shares over the
      character 3-grams of the values' letters and digits (spaces and
      punctuation dropped, so "r39-00292" and "R3900292" share all theirs);
      NaN for a value with fewer than three letters and digits.
    - ``<field>__num_rel_diff``, for numeric fields only (see
      `numeric_fields`): ``|a - b| / max(|a|, |b|)``, between 0 and 2 (0
      when both are 0), when both values parse as finite numbers, else NaN
      (also for numbers too large for a float, such as ``"1e400"``).
    - ``<field>__left_missing``, ``<field>__right_missing``: 1.0 when that
      side's value is missing, else 0.0.

    A field that exists on one side only (see `fields`) gets the two flags
    only, the flag of the absent side being always 1.

    All similarities lie in [0, 1], 1 meaning equal. When either side is
    missing, the similarities and the numeric difference are NaN and the
    flags say which side is missing. Estimators that handle NaN natively,
    such as :class:`~sklearn.ensemble.HistGradientBoostingClassifier`, use
    this directly; for others put a
    :class:`~sklearn.impute.SimpleImputer` after this transformer.

    Parameters
    ----------
    fields : None, list of str or list of tuple, default=None
        The fields to compare. None compares every field present on both
        sides, in the order of the left columns. A list of names compares
        ``<left_prefix><name>`` with ``<right_prefix><name>``. A
        ``(left_field, right_field)`` tuple compares two differently named
        fields (named ``"<left_field>|<right_field>"`` in the output); one of
        the two may be None for a field that exists on one side only, which
        then gets the two missing flags only.
    left_prefix : str, default="left_"
        Prefix of the left columns of the pair frame.
    right_prefix : str, default="right_"
        Prefix of the right columns of the pair frame.
    numeric_fields : "auto", None or list of str, default="auto"
        The fields that get the ``num_rel_diff`` feature. "auto" picks,
        during :meth:`fit`, the fields present on both sides where at least
        half of the non-missing values (both sides pooled) parse as finite
        numbers and at least one pair has two numbers. None gives no field the
        feature; a list names the fields (as in `fields_`).
    lowercase : bool, default=True
        Whether to lowercase the values before the string comparisons.
    max_length : int, default=1000
        Compare the first `max_length` characters of each value. Some
        measures take time quadratic in the length (``partial_ratio`` of two
        equal 100,000-character values runs for minutes); the cut bounds the
        cost of a pair to milliseconds.
    n_jobs : int, default=None
        Number of threads for the rapidfuzz similarity computations. None
        means 1 unless in a :obj:`joblib.parallel_backend` context, -1 means
        all processors.

    Attributes
    ----------
    fields_ : list of Field
        The compared fields as ``Field(name, left, right)`` named tuples of
        the name and the two columns, a column being None for a field absent
        on that side.
    numeric_fields_ : list of str
        The names of the fields that get the ``num_rel_diff`` feature.
    tfidf_ : dict of str to dict of str to TfidfVectorizer or None
        For every field present on both sides, the fitted
        :class:`~sklearn.feature_extraction.text.TfidfVectorizer` of
        ``"tfidf_cosine"`` and of ``"char_tfidf_cosine"``; None when the
        training values hold no token.
    n_features_in_ : int
        Number of columns seen during :meth:`fit`.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of the columns seen during :meth:`fit`.

    See Also
    --------
    pair_frame : Build a pair frame from a left and a right table.

    Notes
    -----
    The transformation is computed column by column with rapidfuzz's
    :func:`rapidfuzz.process.cpdist` and sparse token matrices, without a
    Python loop over pairs; each distinct value is TF-IDF-vectorised once.
    `fit` validates the parameters, resolves the fields, picks the numeric
    ones and learns the TF-IDF weights.

    The numeric difference is not computed for text fields, and one-sided
    fields get no similarities, because such columns would be entirely NaN,
    which :class:`~sklearn.ensemble.HistGradientBoostingClassifier` cannot
    fit on (it raises "window shape cannot be larger than input array
    shape"). A field missing on one side in every training pair leads to the
    same error, and so does ``code_jaccard`` for a field whose values hold
    digits on one side only in every pair. :class:`RecordPairClassifier`'s
    similarity prior guards against both; in a pipeline of your own, drop
    such columns or impute them.

    Examples
    --------
    >>> import pandas as pd
    >>> from skrecordpair import pair_frame
    >>> from skrecordpair import SimilarityFeatures
    >>> left = pd.DataFrame({"name": ["Hans Muller", "Anna"], "year": [1999, 2001]})
    >>> right = pd.DataFrame({"name": ["hans muller", None], "year": [2000, 2001]})
    >>> X = pair_frame(left, right)
    >>> features = SimilarityFeatures().fit(X)
    >>> features.get_feature_names_out()[:3]
    array(['name__ratio', 'name__partial_ratio', 'name__token_set_ratio'],
          dtype=object)
    >>> Xt = features.transform(X)
    >>> Xt.shape
    (2, 31)
    >>> Xt[:, :6]
    array([[ 1.,  1.,  1.,  1.,  1.,  1.],
           [nan, nan, nan, nan, nan, nan]])
    >>> features.numeric_fields_
    ['year']
    >>> Xt[:, 28].round(4)  # year__num_rel_diff
    array([0.0005, 0.    ])
    """

    _parameter_constraints: ClassVar[dict] = {
        "fields": "no_validation",  # resolved against the columns in fit
        "left_prefix": [str],
        "right_prefix": [str],
        "numeric_fields": "no_validation",  # checked against the fields in fit
        "lowercase": ["boolean"],
        "max_length": [POSITIVE],
        "n_jobs": [
            Interval(numbers.Integral, None, -1, closed="right"),
            POSITIVE,
            None,
        ],
    }

    def __init__(
        self,
        fields=None,
        *,
        left_prefix="left_",
        right_prefix="right_",
        numeric_fields="auto",
        lowercase=True,
        max_length=1000,
        n_jobs=None,
    ):
        self.fields = fields
        self.left_prefix = left_prefix
        self.right_prefix = right_prefix
        self.numeric_fields = numeric_fields
        self.lowercase = lowercase
        self.max_length = max_length
        self.n_jobs = n_jobs

    def fit(self, X, y=None):
        """Validate the parameters, resolve the fields and learn the TF-IDF weights.

        Parameters
        ----------
        X : pandas.DataFrame of shape (n_pairs, n_columns)
            The pair frame.
        y : None
            Ignored.

        Returns
        -------
        self : SimilarityFeatures
            The fitted transformer.
        """
        _check_pair_frame(X, "fit")
        validate_params(self._parameter_constraints, self.get_params(deep=False))
        validate_data(self, X, skip_check_array=True)
        self.fields_ = resolve_fields(
            X.columns, self.fields, self.left_prefix, self.right_prefix
        )
        texts = pair_texts(X, [c for f in self.fields_ for c in f.columns])
        self.numeric_fields_ = self._resolve_numeric_fields(texts)
        self.tfidf_ = fit_tfidf(
            texts,
            self._field_plan(),
            lowercase=self.lowercase,
            max_length=self.max_length,
        )
        return self

    def _resolve_numeric_fields(self, texts):
        two_sided = [f for f in self.fields_ if f.two_sided]
        if self.numeric_fields is None:
            return []
        if isinstance(self.numeric_fields, str) and self.numeric_fields == "auto":
            return auto_numeric_fields(texts, self.fields_)
        if isinstance(self.numeric_fields, (str, bytes)) or not isinstance(
            self.numeric_fields, (list, tuple, np.ndarray)
        ):
            raise TypeError(
                'numeric_fields must be "auto", None or a list of field names; '
                f"got {self.numeric_fields!r}."
            )
        allowed = [field.name for field in two_sided]
        unknown = [f for f in self.numeric_fields if f not in allowed]
        if unknown:
            raise ValueError(
                f"numeric_fields names {unknown}, which are not fields present on "
                f"both sides; those are {allowed}."
            )
        return [name for name in allowed if name in set(self.numeric_fields)]

    def _field_plan(self):
        """The :class:`FieldFeatures` of every field."""
        return field_plan(self.fields_, self.numeric_fields_)

    def transform(self, X):
        """Compute the similarity features of every pair.

        Parameters
        ----------
        X : pandas.DataFrame of shape (n_pairs, n_columns)
            The pair frame, with the columns seen during :meth:`fit`, in the
            same order.

        Returns
        -------
        ndarray of shape (n_pairs, n_features_out), dtype float64
            The features, field by field, named by
            :meth:`get_feature_names_out`: 15 per text field, 16 per numeric
            field and 2 per one-sided field.

        Raises
        ------
        TypeError
            If `X` is not a DataFrame.
        ValueError
            If `X` lacks columns used during fit, or its columns differ from
            those seen during fit in any other way (extra columns, order).
        """
        check_is_fitted(self)
        _check_pair_frame(X, "transform")
        require_columns(
            [str(c) for c in X.columns],
            [c for field in self.fields_ for c in field.columns],
            "The pair frame passed to SimilarityFeatures.transform() (the "
            "columns used during fit)",
        )
        validate_data(self, X, skip_check_array=True, reset=False)
        return pair_similarities(
            X,
            self._field_plan(),
            self.tfidf_,
            lowercase=self.lowercase,
            max_length=self.max_length,
            workers=effective_n_jobs(self.n_jobs),
        )

    def get_feature_names_out(self, input_features=None):
        """Get the output feature names.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Ignored apart from validation: if given, it must equal
            `feature_names_in_`.

        Returns
        -------
        feature_names_out : ndarray of str objects
            ``<field>__<feature>`` for every field and its features, in the
            order of the columns of :meth:`transform`.
        """
        check_is_fitted(self)
        if input_features is not None:
            input_features = np.asarray(input_features, dtype=object)
            expected = getattr(self, "feature_names_in_", None)
            if expected is not None and (
                len(input_features) != len(expected)
                or np.any(input_features != expected)
            ):
                raise ValueError("input_features is not equal to feature_names_in_.")
        return np.asarray(
            [
                f"{field.name}__{feature}"
                for field in self._field_plan()
                for feature in field.features
            ],
            dtype=object,
        )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.input_tags.allow_nan = True
        tags.target_tags.required = False
        return tags


class FieldFeatures(
    Sides, namedtuple("FieldFeatures", ["name", "left", "right", "features"])
):
    """A field and the names of its similarity features, in output order."""

    __slots__ = ()


def auto_numeric_fields(texts, fields):
    """The names of the two-sided `fields` whose values are mostly numbers.

    Those where at least half of the present values (both sides pooled) parse
    as finite numbers and at least one pair has two numbers; `texts` are the
    :class:`~skrecordpair._pairs.PairTexts` of the fields' columns.
    """
    numeric = []
    for field in fields:
        if not field.two_sided:
            continue
        present, parsed = [], []
        for column in field.columns:
            text = texts[column]
            present.append(~pd.isna(text))
            parsed.append(np.isfinite(_to_number(text)))
        n_present = present[0].sum() + present[1].sum()
        n_parsed = parsed[0].sum() + parsed[1].sum()
        if (parsed[0] & parsed[1]).any() and 2 * n_parsed >= n_present:
            numeric.append(field.name)
    return numeric


def field_plan(fields, numeric_fields):
    """The :class:`FieldFeatures` of every field.

    `fields` are :class:`~skrecordpair._pairs.Field` triples (see
    ``resolve_fields``); `numeric_fields` names those that get ``num_rel_diff``.
    """
    numeric = set(numeric_fields)
    plan = []
    for field in fields:
        if not field.two_sided:
            features = _FLAGS
        elif field.name in numeric:
            features = _SIMILARITIES + _CONTAINMENTS + ("num_rel_diff",) + _FLAGS
        else:
            features = _SIMILARITIES + _CONTAINMENTS + _FLAGS
        plan.append(FieldFeatures(*field, features))
    return plan


def n_features(plan):
    """The number of similarity features of `plan`."""
    return sum(len(field.features) for field in plan)


def feature_fields(plan):
    """The index in `plan` of the field of each similarity feature."""
    return np.repeat(np.arange(len(plan)), [len(field.features) for field in plan])


# The TF-IDF cosines weigh a shared rare word (a model number, a brand) above
# a shared common one, which the fuzzy scores cannot; word tokens as for the
# Jaccard index, and character 3-grams within words for spelling variants.
_TFIDF_SETTINGS = {
    "tfidf_cosine": dict(token_pattern=_WORD_PATTERN),
    "char_tfidf_cosine": dict(analyzer="char_wb", ngram_range=(3, 3)),
}


def _tfidf_vectorizer(feature, vocabulary=None):
    return TfidfVectorizer(
        lowercase=False,
        sublinear_tf=True,
        dtype=np.float64,
        vocabulary=vocabulary,
        **_TFIDF_SETTINGS[feature],
    )


def fit_tfidf(X, plan, *, lowercase=True, max_length=1000):
    """Learn the TF-IDF weights of every two-sided field from the pair frame `X`
    (or its :class:`~skrecordpair._pairs.PairTexts`).

    The documents are the field's present values on both sides of every pair.

    Returns
    -------
    dict of str to dict of str to TfidfVectorizer or None
        For each field name, the fitted vectorizer of each TF-IDF feature;
        None when the values hold no token (the feature is then NaN).
    """
    tfidf = {}
    texts = pair_texts(
        X, [c for field in plan if field.two_sided for c in field.columns]
    )
    for field in plan:
        if not set(_TFIDF_SETTINGS) <= set(field.features):
            continue
        values = np.concatenate(
            [
                _column_text(texts, column, max_length)
                for column in (field.left, field.right)
            ]
        )
        values = values[~pd.isna(values)]
        values = _lower(values) if lowercase else list(values)
        tfidf[field.name] = {}
        for feature in _TFIDF_SETTINGS:
            try:
                tfidf[field.name][feature] = _tfidf_vectorizer(feature).fit(values)
            except ValueError:  # no value holds a token
                tfidf[field.name][feature] = None
    return tfidf


def tfidf_state(tfidf):
    """The fitted TF-IDF weights as plain data (JSON): vocabulary and idf."""
    return {
        name: {
            feature: None
            if v is None
            else {
                "vocabulary": {str(k): int(i) for k, i in v.vocabulary_.items()},
                "idf": v.idf_.tolist(),
            }
            for feature, v in vectorizers.items()
        }
        for name, vectorizers in tfidf.items()
    }


def tfidf_from_state(state):
    """Rebuild the output of `fit_tfidf` from `tfidf_state`; ValueError if malformed."""
    tfidf = {}
    for name, vectorizers in state.items():
        if set(vectorizers) != set(_TFIDF_SETTINGS):
            raise ValueError(
                f"field {name!r} must have the TF-IDF features "
                f"{sorted(_TFIDF_SETTINGS)}; got {sorted(vectorizers)}"
            )
        tfidf[name] = {}
        for feature, saved in vectorizers.items():
            if saved is None:
                tfidf[name][feature] = None
                continue
            vocabulary, idf = (
                saved["vocabulary"],
                np.asarray(saved["idf"], dtype=np.float64),
            )
            if not (
                isinstance(vocabulary, dict)
                and idf.shape == (len(vocabulary),)
                and np.isfinite(idf).all()
                and sorted(vocabulary.values()) == list(range(len(vocabulary)))
            ):
                raise ValueError(
                    f"the {feature} weights of field {name!r} need a "
                    "vocabulary numbered 0..n-1 and n finite idf values"
                )
            vectorizer = _tfidf_vectorizer(feature, vocabulary)
            vectorizer.idf_ = idf
            tfidf[name][feature] = vectorizer
    return tfidf


def pair_similarities(X, plan, tfidf, *, lowercase=True, max_length=1000, workers=1):
    """The similarity features of the pair frame `X` (or its
    :class:`~skrecordpair._pairs.PairTexts`), field by field.

    `plan` comes from `field_plan`, `tfidf` from `fit_tfidf`.
    """
    texts = pair_texts(X, [c for field in plan for c in field.columns])
    values = _PairValues(
        [
            _column_text(texts, column, max_length)
            for field in plan
            for column in (field.left, field.right)
        ],
        lowercase,
    )
    blocks = [
        _field_features(
            values, 2 * i, 2 * i + 1, field.features, tfidf.get(field.name), workers
        )
        for i, field in enumerate(plan)
    ]
    if any(_CONTAINMENTS[0] in field.features for field in plan):
        for block, field, shares in zip(blocks, plan, _record_shares(values)):
            if _CONTAINMENTS[0] in field.features:
                start = field.features.index(_CONTAINMENTS[0])
                block[:, start : start + len(_CONTAINMENTS)] = shares
    return np.hstack(blocks) if blocks else np.empty((texts.n_pairs, 0))


class _PairValues:
    """The values of the compared columns of a pair frame, each distinct value
    processed once.

    Records recur across pairs and a value often recurs across fields (a
    brand in its own field and in the title), so the features work on the
    distinct values (`text`, lower-cased when `lowercase`) and index the
    results back to the pairs through `codes`: one row per column of
    `columns` (object arrays, None where missing), -1 for a missing value.
    """

    def __init__(self, columns, lowercase):
        self.n_pairs = len(columns[0]) if columns else 0
        raw_codes, raw = pd.factorize(
            np.concatenate(columns) if columns else np.empty(0, dtype=object)
        )
        text = _lower(raw) if lowercase else list(raw)
        # Values equal once lower-cased are one value: their similarities are
        # those of equal strings, exactly.
        text_codes, text = pd.factorize(pd.Series(text, dtype=object))
        self.text = np.asarray(text, dtype=object)
        # A missing value (-1) picks the appended -1, even when no value is present.
        self.codes = np.append(text_codes, -1)[raw_codes].reshape(
            len(columns), self.n_pairs
        )
        self._raw_codes = raw_codes.reshape(len(columns), self.n_pairs)
        self._raw = raw

    def numbers(self, column):
        """The values of `column` parsed as floats; NaN where no number."""
        codes = self._raw_codes[column]
        return np.where(codes < 0, np.nan, self._raw_numbers[codes])

    @cached_property
    def _raw_numbers(self):
        # Parsed from the values as given: lower-casing is for the text features.
        return _to_number(self._raw)

    @cached_property
    def word_counts(self):
        """`_word_counts` of `text`: (n_values, n_words) CSR and the words."""
        return _word_counts(self.text)

    @cached_property
    def word_sets(self):
        """Which words each of `text` holds, binary CSR."""
        counts, _ = self.word_counts
        return (counts > 0).astype(np.float64)

    @cached_property
    def code_words(self):
        """Which words hold a digit: codes such as model numbers and years."""
        _, words = self.word_counts
        return np.fromiter(
            (any(map(str.isdigit, word)) for word in words), bool, len(words)
        )

    @cached_property
    def char_sets(self):
        """Which character 3-grams of its letters and digits each of `text`
        holds, binary CSR (spaces and punctuation dropped first)."""
        doc, codes = _char_ngrams(self.text, 3, keep=str.isalnum)
        gram_ids, grams = pd.factorize(codes)
        held = sp.csr_matrix(
            (np.ones(len(gram_ids)), (doc, gram_ids)),
            shape=(len(self.text), len(grams)),
        )
        held.sum_duplicates()
        held.data[:] = 1.0
        return held


def _record_shares(values):
    """For every field, the share of the left value's words that occur in any
    field of the right record, the same from right to left, and both again
    over character 3-grams of the letters and digits.

    `values` is the `_PairValues` of the fields' left and right columns, in
    turn. Returns one (n_pairs, 4) array per field, columns in the order of
    `_CONTAINMENTS`: NaN where that side's value is missing or has no word
    (no 3-gram).
    """
    n_fields = len(values.codes) // 2
    shares = [[] for _ in range(n_fields)]
    if values.n_pairs == 0:
        return [np.empty((0, len(_CONTAINMENTS)))] * n_fields
    # Missing values (code -1) pick the last, empty row.
    codes = np.where(values.codes < 0, len(values.text), values.codes)
    for held in (values.word_sets, values.char_sets):
        held = sp.vstack([held, sp.csr_matrix((1, held.shape[1]))]).tocsr()
        rows = [held[c] for c in codes]
        left_record = sum(rows[0::2]) > 0
        right_record = sum(rows[1::2]) > 0
        for field, (left, right) in enumerate(zip(rows[0::2], rows[1::2])):
            shares[field] += [
                _share_found(left, right_record),
                _share_found(right, left_record),
            ]
    return [np.column_stack(field) for field in shares]


def _share_found(part, record):
    """Row-wise share of the entries of binary `part` also set in `record`."""
    size = np.asarray(part.sum(axis=1)).ravel()
    found = np.asarray(part.multiply(record).sum(axis=1)).ravel()
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(size > 0, found / size, np.nan)


def _field_features(values, left_column, right_column, features, tfidf, workers):
    """The `features` of one field: its values are the columns `left_column`
    and `right_column` of the `_PairValues` `values`."""
    left, right = values.codes[left_column], values.codes[right_column]
    out = np.full((len(left), len(features)), np.nan)
    out[:, -2] = left < 0
    out[:, -1] = right < 0
    both = (left >= 0) & (right >= 0)
    if len(features) == len(_FLAGS) or not both.any():
        return out
    left, right = left[both], right[both]
    column = {feature: j for j, feature in enumerate(features)}
    a_text, b_text = values.text[left].tolist(), values.text[right].tolist()
    if len(a_text) < _MIN_PAIRS_FOR_THREADS:
        workers = 1
    for name, scorer, scale in _FUZZY_SCORERS:
        scores = process.cpdist(
            a_text, b_text, scorer=scorer, dtype=np.float64, workers=workers
        )
        out[both, column[name]] = scores * scale
    out[both, column["jaccard"]], out[both, column["code_jaccard"]] = _jaccard(
        values.word_sets[left], values.word_sets[right], values.code_words
    )
    # The TF-IDF vectors of this field's distinct values only.
    distinct, pair_rows = np.unique(np.concatenate([left, right]), return_inverse=True)
    left_rows, right_rows = pair_rows[: len(left)], pair_rows[len(left) :]
    for feature, vectorizer in tfidf.items():
        if vectorizer is None:
            continue
        if feature == "char_tfidf_cosine":
            counts = _char_ngram_counts(values.text[distinct], vectorizer.vocabulary_)
        else:
            word_counts, words = values.word_counts
            counts = _in_vocabulary(
                word_counts[distinct], words, vectorizer.vocabulary_
            )
        out[both, column[feature]] = _tfidf_cosine(
            _tfidf_weights(counts, vectorizer.idf_), left_rows, right_rows
        )
    if "num_rel_diff" in features:
        out[:, column["num_rel_diff"]] = _relative_difference(
            values.numbers(left_column), values.numbers(right_column)
        )
    return out


def _check_pair_frame(X, method):
    if not isinstance(X, pd.DataFrame):
        raise TypeError(
            f"SimilarityFeatures.{method}() expected a pair frame (a pandas "
            f"DataFrame with left_<field> and right_<field> columns, see "
            f"skrecordpair.pair_frame); got {type(X).__name__}."
        )


def _column_text(texts, column, max_length):
    """The text of `column` (all None when the field lacks that side), cut to
    `max_length` characters."""
    if column is None:
        return np.full(texts.n_pairs, None, dtype=object)
    text = texts[column]
    long = np.fromiter(
        (t is not None and len(t) > max_length for t in text), bool, len(text)
    )
    if long.any():
        text = text.copy()
        text[long] = [t[:max_length] for t in text[long]]
    return text


def _lower(values):
    return pd.Series(values, dtype=object).str.lower().tolist()


def _word_counts(docs):
    """Word-token counts of `docs`, (n_docs, n_words) CSR, and the words (sorted).

    The counts of ``CountVectorizer(token_pattern=_WORD_PATTERN,
    lowercase=False)``, from one regex pass per value and array operations
    rather than scikit-learn's Python loop over the tokens.
    """
    tokens = (
        pd.Series(docs, dtype=object)
        .reset_index(drop=True)
        .str.findall(_WORD_PATTERN)
        .explode()
    )
    tokens = tokens[tokens.notna()]
    word_ids, words = pd.factorize(tokens, sort=True)
    counts = sp.csr_matrix(
        (np.ones(len(word_ids)), (tokens.index.to_numpy(), word_ids)),
        shape=(len(docs), len(words)),
    )
    counts.sum_duplicates()
    return counts, np.asarray(words, dtype=object)


def _jaccard(left, right, is_code):
    """Jaccard indices of the word sets of each pair of values.

    `left` and `right` are binary (n_pairs, n_words) sparse matrices, the words
    of each pair's left and right value; `is_code` marks the words holding a
    digit, codes such as model numbers, versions and years. Returns the index
    over all words and over the codes. Both are 1 when neither value has such
    a word; the code index is NaN when only one value has a code, since "no
    code given" is not "a different code".
    """
    overall = _set_jaccard(left, right)
    left, right = left[:, is_code], right[:, is_code]
    code = _set_jaccard(left, right)
    code[(left.getnnz(axis=1) == 0) != (right.getnnz(axis=1) == 0)] = np.nan
    return overall, code


def _set_jaccard(left, right):
    """Row-wise Jaccard index of two binary sparse matrices; 1 for two empty rows."""
    inter = np.asarray(left.multiply(right).sum(axis=1)).ravel()
    union = (
        np.asarray(left.sum(axis=1)).ravel()
        + np.asarray(right.sum(axis=1)).ravel()
        - inter
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 1.0)


def _in_vocabulary(counts, words, vocabulary):
    """The columns of `counts` (one per word of `words`) renumbered into the
    fitted `vocabulary`; words outside it are dropped, as a fitted
    ``TfidfVectorizer`` drops them."""
    counts = counts.tocsr()
    used = np.unique(counts.indices)  # look up only the words these rows hold
    target = np.full(len(words), -1, dtype=np.int64)
    target[used] = np.fromiter(
        (vocabulary.get(w, -1) for w in words[used]), np.int64, len(used)
    )
    columns = target[counts.indices]
    known = columns >= 0
    rows = np.repeat(np.arange(counts.shape[0]), np.diff(counts.indptr))
    return sp.csr_matrix(
        (counts.data[known], (rows[known], columns[known])),
        shape=(counts.shape[0], len(vocabulary)),
    )


def _char_ngram_counts(docs, vocabulary):
    """Counts of the character 3-grams of `vocabulary` within the words of `docs`.

    The counts of ``TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 3))``:
    each whitespace-separated word, padded with a space on both sides, gives
    its 3-grams. Computed on the code points of the docs, each padded with a
    space on both sides and its white space made spaces: the 3-grams of the
    padded words are those whose middle character is not a space. Tests check
    that this agrees with scikit-learn.
    """
    doc, codes = _char_ngrams([" " + d + " " for d in docs], 3, spaces=True)
    within_word = ((codes >> 21) & _CODE_POINT_MASK) != ord(" ")
    doc, codes = doc[within_word], codes[within_word]
    known_strings = list(vocabulary)
    columns = np.fromiter(vocabulary.values(), np.int64, len(known_strings))
    sizes = np.fromiter(map(len, known_strings), np.int64, len(known_strings))
    if (sizes != 3).any():  # a loaded vocabulary may hold other strings
        known_strings = [g for g, size in zip(known_strings, sizes) if size == 3]
        columns = columns[sizes == 3]
    _, known = _char_ngrams(known_strings, 3)
    # A hash lookup: a binary search of a million unsorted codes misses the cache.
    slot = pd.Index(known).get_indexer(codes)
    hit = slot >= 0
    return sp.csr_matrix(
        (np.ones(hit.sum()), (doc[hit], columns[slot[hit]])),
        shape=(len(docs), len(vocabulary)),
    )


def _char_ngrams(docs, n, keep=None, spaces=False):
    """Every character n-gram of every one of `docs`.

    Returns two arrays, one entry per n-gram: the index of its doc and its
    code, its n code points 21 bits each (n <= 3 fits in an int64). With
    `keep`, a test of a character such as `str.isalnum`, the other characters
    are dropped first, so n-grams span them. With `spaces`, white space
    characters count as spaces.
    """
    points, lengths = code_points(docs)
    if spaces:
        points = np.where(map_characters(points, str.isspace, bool), ord(" "), points)
    if keep is not None:
        kept = map_characters(points, keep, bool)
        points = points[kept]
        lengths = np.bincount(
            np.repeat(np.arange(len(docs)), lengths)[kept], minlength=len(docs)
        )
    points = points.astype(np.int64)
    m = max(len(points) - n + 1, 0)
    codes = np.zeros(m, dtype=np.int64)
    for k in range(n):
        codes = (codes << 21) | points[k : k + m]
    # The n-gram starting at a character counts if it ends within that
    # character's doc.
    doc, position = (a[:m] for a in row_positions(lengths))
    inside = position <= lengths[doc] - n
    return doc[inside], codes[inside]


def _tfidf_weights(counts, idf):
    """Unit-norm TF-IDF vectors from term counts, weighted as the fitted
    ``TfidfVectorizer`` weighs them: sublinear tf (``1 + log(tf)``) times idf."""
    counts = counts.tocsr(copy=True)
    # Rows in column order, so that a value's vector, down to the last bit, does
    # not depend on the other values transformed with it.
    counts.sort_indices()
    counts.data = (1.0 + np.log(counts.data)) * idf[counts.indices]
    return normalize(counts)


def _tfidf_cosine(vectors, left, right):
    """Cosine of the unit-norm `vectors` of each pair: rows `left` and `right`
    of `vectors`; NaN where one has no known token."""
    left_vectors, right_vectors = vectors[left], vectors[right]
    cosine = np.minimum(
        np.asarray(left_vectors.multiply(right_vectors).sum(axis=1)).ravel(), 1.0
    )
    cosine[left == right] = 1.0  # exactly, not up to rounding
    cosine[(left_vectors.getnnz(axis=1) == 0) | (right_vectors.getnnz(axis=1) == 0)] = (
        np.nan
    )
    return cosine


def _to_number(text):
    """Parse an object array of str/None as floats; NaN where it is no number."""
    return pd.to_numeric(pd.Series(text, dtype=object), errors="coerce").to_numpy(
        dtype=np.float64, na_value=np.nan
    )


def _relative_difference(x, y):
    """``|x - y| / max(|x|, |y|)`` where both are finite, else NaN.

    Computed as ``|x / scale - y / scale|``: both quotients lie in [-1, 1],
    so the result lies in [0, 2] for any finite numbers, where ``x - y``
    itself would overflow (``1e308 - -1e308``) and give inf.
    """
    scale = np.maximum(np.abs(x), np.abs(y))
    with np.errstate(invalid="ignore", divide="ignore"):
        diff = np.abs(x / scale - y / scale)
    diff = np.where(scale == 0, 0.0, diff)
    return np.where(np.isfinite(x) & np.isfinite(y), diff, np.nan)
