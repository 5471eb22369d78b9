"""Tests for the end-to-end link and deduplicate workflows."""

import numpy as np
import pandas as pd
import pytest
from rapidfuzz import fuzz, process
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.dummy import DummyClassifier
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from skrecordpair._blocking import NearestNeighborBlocker
from skrecordpair._blocking_metrics import pair_completeness
from skrecordpair._linking import _greedy_one_to_one, deduplicate, link
from skrecordpair._pairs import pair_frame

from .conftest import make_tables

FIELDS = ["first", "last", "city", "born"]


def _features(X):
    """Per-field normalised Indel similarity of a pair frame; 0 when missing."""
    columns = []
    for field in FIELDS:
        a = X[f"left_{field}"].fillna("").astype(str).tolist()
        b = X[f"right_{field}"].fillna("").astype(str).tolist()
        columns.append(process.cpdist(a, b, scorer=fuzz.ratio) / 100)
    return np.column_stack(columns)


def train_classifier(seed=10):
    """A small matcher trained on candidate pairs of *other* tables."""
    left, right, true = make_tables(n=80, n_extra=20, seed=seed)
    cands = NearestNeighborBlocker(k=5).fit(right).candidates(left)
    y = np.array([p in set(true) for p in zip(cands.left_id, cands.right_id)], int)
    X = pair_frame(left.loc[cands.left_id], right.loc[cands.right_id])
    clf = make_pipeline(FunctionTransformer(_features), LogisticRegression(C=10))
    return clf.fit(X, y)


@pytest.fixture(scope="module")
def classifier():
    return train_classifier()


class LastNameClassifier(ClassifierMixin, BaseEstimator):
    """Match probability = similarity of the last names (no training)."""

    def fit(self, X, y=None):
        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, X):
        p = (
            process.cpdist(
                X["left_last"].fillna("").tolist(),
                X["right_last"].fillna("").tolist(),
                scorer=fuzz.ratio,
            )
            / 100
        )
        return np.column_stack([1 - p, p])


def f1(found, true):
    found, true = set(found), set(true)
    tp = len(found & true)
    return 2 * tp / (len(found) + len(true))


# --------------------------------------------------------------------- link
def test_link_recovers_true_matches(classifier):
    left, right, true = make_tables(seed=11)
    matches = link(left, right, NearestNeighborBlocker(k=5), classifier)
    assert list(matches.columns) == ["left_id", "right_id", "similarity", "probability"]
    assert (matches["probability"] >= 0.5).all()
    assert f1(zip(matches.left_id, matches.right_id), true) >= 0.95
    # Sorted by left position, then decreasing probability.
    pos = left.index.get_indexer(matches["left_id"])
    assert np.all(np.diff(pos) >= 0)


def test_link_threshold_and_scores(classifier):
    left, right, _ = make_tables(seed=12)
    blocker = NearestNeighborBlocker(k=4)
    everything = link(left, right, blocker, classifier, threshold=0)
    cands = NearestNeighborBlocker(k=4).fit(right).candidates(left)
    assert len(everything) == len(cands)
    # The probabilities are the classifier's, column classes_[1].
    X = pair_frame(left.loc[everything.left_id], right.loc[everything.right_id])
    np.testing.assert_allclose(
        everything["probability"], classifier.predict_proba(X)[:, 1]
    )
    strict = link(left, right, blocker, classifier, threshold=0.9)
    assert 0 < len(strict) < len(everything)
    assert (strict["probability"] >= 0.9).all()
    merged = strict.merge(everything, on=["left_id", "right_id"])
    assert len(merged) == len(strict)


def test_link_batch_size_does_not_change_the_result(classifier):
    left, right, _ = make_tables(seed=13)
    blocker = NearestNeighborBlocker(k=3)
    a = link(left, right, blocker, classifier, threshold=0.2)
    b = link(left, right, blocker, classifier, threshold=0.2, batch_size=7)
    pd.testing.assert_frame_equal(a, b)


def test_link_one_to_one(classifier):
    left, right, true = make_tables(seed=14)
    many = link(left, right, NearestNeighborBlocker(k=5), classifier, threshold=0.05)
    assert many["left_id"].duplicated().any()  # the test is not vacuous
    one = link(
        left,
        right,
        NearestNeighborBlocker(k=5),
        classifier,
        threshold=0.05,
        one_to_one=True,
    )
    assert not one["left_id"].duplicated().any()
    assert not one["right_id"].duplicated().any()
    assert set(zip(one.left_id, one.right_id)) <= set(zip(many.left_id, many.right_id))
    assert f1(zip(one.left_id, one.right_id), true) >= f1(
        zip(many.left_id, many.right_id), true
    )


def test_greedy_one_to_one_takes_best_pairs_first():
    # left 0 - right 0 (0.9) is taken; left 1 then gets right 1, not right 0.
    left = np.array([0, 1, 1, 2])
    right = np.array([0, 0, 1, 1])
    proba = np.array([0.9, 0.95, 0.6, 0.7])
    sim = np.zeros(4)
    assert list(_greedy_one_to_one(left, right, proba, sim)) == [1, 3]
    # Equal probabilities: the more similar pair wins.
    assert list(
        _greedy_one_to_one(
            np.array([0, 0]),
            np.array([0, 1]),
            np.array([0.5, 0.5]),
            np.array([0.1, 0.2]),
        )
    ) == [1]


def test_link_leaves_the_blocker_untouched(classifier):
    left, right, _ = make_tables(seed=15)
    blocker = NearestNeighborBlocker(k=2)
    link(left, right, blocker, classifier)
    assert not hasattr(blocker, "vectorizers_")


def test_link_errors(classifier):
    left, right, _ = make_tables(n=10, n_extra=0)
    blocker = NearestNeighborBlocker(k=2)
    with pytest.raises(TypeError, match="expects left to be a pandas DataFrame"):
        link(left.to_numpy(), right, blocker, classifier)
    with pytest.raises(ValueError, match="index labels of right .* must be unique"):
        link(left, right.set_axis([0] * len(right)), blocker, classifier)
    with pytest.raises(
        ValueError,
        match=r"threshold must be a number in \[0, 1\] or "
        r"None; got 1.5\.",
    ):
        link(left, right, blocker, classifier, threshold=1.5)
    with pytest.raises(ValueError, match="verbose must be"):
        link(left, right, blocker, classifier, verbose=-1)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        link(left, right, blocker, classifier, batch_size=0)
    with pytest.raises(TypeError, match="one_to_one must be a bool"):
        link(left, right, blocker, classifier, one_to_one="yes")
    with pytest.raises(NotFittedError):
        link(left, right, blocker, LogisticRegression())
    with pytest.raises(TypeError, match="must have a predict_proba method"):
        link(left, right, blocker, object())
    X = pair_frame(left.iloc[:3], right.iloc[:3])
    three = DummyClassifier().fit(X, [0, 1, 2])
    with pytest.raises(
        ValueError, match=r"must be binary .* got classes_=array\(\[0, 1, 2\]\)"
    ):
        link(left, right, blocker, three)


class IndexRecorder(ClassifierMixin, BaseEstimator):
    """Match probability 0.75 for every pair; keeps the pair frames it scores."""

    def fit(self, X, y=None):
        self.classes_ = np.array([0, 1])
        self.seen_ = []
        return self

    def predict_proba(self, X):
        self.seen_.append(X)
        return np.tile([0.25, 0.75], (len(X), 1))


# The stand-in classifier calls every candidate a match, which link() warns of.
@pytest.mark.filterwarnings("ignore:link\\(\\) matched:UserWarning")
def test_link_pair_frames_carry_the_record_ids():
    left, right, _ = make_tables(n=20, n_extra=5, seed=17)
    clf = IndexRecorder().fit(None)
    matches = link(left, right, NearestNeighborBlocker(k=3), clf, batch_size=7)
    assert len(clf.seen_) > 1
    X = pd.concat(clf.seen_)
    assert isinstance(X.index, pd.MultiIndex)
    assert list(X.index.names) == ["left_id", "right_id"]
    assert list(X.index) == list(zip(matches.left_id, matches.right_id))
    # Each row holds the two records its index names.
    for (a, b), row in X.iloc[::9].iterrows():
        assert row["left_last"] == left.loc[a, "last"]
        assert row["right_last"] == right.loc[b, "last"]
        assert row["left_first"] == left.loc[a, "first"]


def test_deduplicate_pair_frames_carry_the_record_ids():
    left, _, _ = make_tables(n=20, seed=18)
    clf = IndexRecorder().fit(None)
    _, pairs = deduplicate(left, NearestNeighborBlocker(k=2), clf, return_pairs=True)
    X = pd.concat(clf.seen_)
    assert list(X.index.names) == ["left_id", "right_id"]
    assert list(X.index) == list(zip(pairs.left_id, pairs.right_id))
    a, b = X.index[0]
    assert X["left_last"].iloc[0] == left.loc[a, "last"]
    assert X["right_last"].iloc[0] == left.loc[b, "last"]


def test_link_and_deduplicate_without_candidates(classifier):
    left, right, _ = make_tables(n=10, n_extra=0, seed=19)
    # No left record has a city: blocking on it proposes nothing.
    blocker = NearestNeighborBlocker(k=2, blocking_keys="city")
    matches = link(left.assign(city=None), right, blocker, classifier)
    assert len(matches) == 0
    assert list(matches.columns) == ["left_id", "right_id", "similarity", "probability"]
    assert matches["probability"].dtype == np.float64
    one = link(left.assign(city=None), right, blocker, classifier, one_to_one=True)
    assert len(one) == 0
    clusters = deduplicate(left.assign(city=None), blocker, classifier)
    assert list(clusters) == list(range(len(left)))
    # An empty left table.
    empty = link(left.iloc[:0], right, NearestNeighborBlocker(k=2), classifier)
    assert len(empty) == 0 and list(empty.columns) == list(matches.columns)


def test_link_and_deduplicate_of_empty_tables_give_no_pair(classifier):
    # A blocker cannot be fitted on no record; there is no pair to find.
    left, right, _ = make_tables(n=10, n_extra=0, seed=19)
    usual = link(left, right, NearestNeighborBlocker(k=2), classifier)
    for one_to_one in (False, True):
        empty = link(
            left,
            right.iloc[:0],
            NearestNeighborBlocker(k=2),
            classifier,
            one_to_one=one_to_one,
        )
        assert len(empty) == 0
        pd.testing.assert_series_equal(empty.dtypes, usual.dtypes)
    clusters, pairs = deduplicate(
        left.iloc[:0], NearestNeighborBlocker(k=2), classifier, return_pairs=True
    )
    assert len(clusters) == 0 and clusters.name == "cluster"
    assert clusters.dtype == np.int64 and clusters.index.equals(left.index[:0])
    assert len(pairs) == 0
    pd.testing.assert_series_equal(pairs.dtypes, usual.dtypes)


# -------------------------------------------------------------- deduplicate
def test_deduplicate_clusters(classifier):
    left, right, true = make_tables(seed=16)
    table = pd.concat([left, right])
    clusters, pairs = deduplicate(
        table, NearestNeighborBlocker(k=5), classifier, return_pairs=True
    )
    assert isinstance(clusters, pd.Series)
    assert clusters.name == "cluster"
    assert clusters.index.equals(table.index)
    # Ids from 0 in order of first appearance.
    first = clusters.drop_duplicates().to_numpy()
    np.testing.assert_array_equal(first, np.arange(len(first)))
    # The true duplicates end up together, strangers apart.
    together = [clusters[a] == clusters[b] for a, b in true]
    assert np.mean(together) >= 0.95
    sizes = clusters.value_counts()
    assert sizes.max() <= 3
    assert (sizes == 1).sum() >= 15  # the 20 strangers, mostly alone
    # The pairs are the graph's edges: each joins two records of one cluster.
    assert (pairs["probability"] >= 0.5).all()
    assert (
        clusters[pairs.left_id].to_numpy() == clusters[pairs.right_id].to_numpy()
    ).all()
    assert pair_completeness(pairs, true, deduplicate=True) >= 0.95


def test_deduplicate_is_transitive():
    # a~b and b~c are matches, a and c are no candidates (k=1): one cluster.
    table = pd.DataFrame(
        {
            "last": ["smithsonian", "smithsonia", "smithsoni", "zzyzx"],
            "first": ["a", "b", "c", "d"],
        },
        index=list("abcd"),
    )
    clf = LastNameClassifier().fit(None)
    blocker = NearestNeighborBlocker(fields=["last"], k=1, ngram_range=(2, 2))
    clusters = deduplicate(table, blocker, clf, threshold=0.9)
    assert list(clusters) == [0, 0, 0, 1]
    # A stricter threshold cuts the chain.
    strict = deduplicate(table, blocker, clf, threshold=0.97)
    assert strict["a"] != strict["c"]


def test_deduplicate_without_matches_gives_singletons():
    table = pd.DataFrame({"last": ["smith", "smyth", "jones"], "first": list("abc")})
    clusters = deduplicate(
        table,
        NearestNeighborBlocker(k=2),
        LastNameClassifier().fit(None),
        threshold=1.0,
    )
    assert list(clusters) == [0, 1, 2]


def test_deduplicate_return_pairs_all_keeps_the_uncertain_non_matches():
    from skrecordpair import uncertain_pairs

    table = pd.DataFrame(
        {
            "last": ["smithsonian", "smithsonia", "smythsonean", "jones", "jonas"],
            "first": list("abcde"),
        },
        index=list("abcde"),
    )
    clf = LastNameClassifier().fit(None)
    blocker = NearestNeighborBlocker(fields=["last"], k=4, ngram_range=(2, 2))
    clusters, matched = deduplicate(
        table, blocker, clf, threshold=0.9, return_pairs=True
    )
    same, scored = deduplicate(table, blocker, clf, threshold=0.9, return_pairs="all")
    # The clusters still come from the matches only ...
    pd.testing.assert_series_equal(same, clusters)
    assert (matched["probability"] >= 0.9).all()
    # ... and the pairs are every scored candidate, those below the threshold too.
    assert len(scored) > len(matched)
    assert (scored["probability"] < 0.9).any()
    assert list(scored.columns) == list(matched.columns)
    kept = scored[scored["probability"] >= 0.9].reset_index(drop=True)
    pd.testing.assert_frame_equal(kept, matched)
    band = (0.5, 0.95)
    review = uncertain_pairs(scored, band)
    below = review["probability"] < 0.9
    assert (
        below.any() and not uncertain_pairs(matched, band)["probability"].lt(0.9).any()
    )
    with pytest.raises(
        ValueError, match="return_pairs must be a bool or 'all'; got 'yes'."
    ):
        deduplicate(table, blocker, clf, return_pairs="yes")


def test_deduplicate_errors(classifier):
    table = pd.DataFrame({"first": ["a", "b"], "last": ["x", "y"]})
    with pytest.raises(TypeError, match="expects table to be a pandas DataFrame"):
        deduplicate([1, 2], NearestNeighborBlocker(), classifier)
    with pytest.raises(ValueError, match="threshold must be a number"):
        deduplicate(table, NearestNeighborBlocker(), classifier, threshold=-0.1)
    with pytest.raises(NotFittedError):
        deduplicate(table, NearestNeighborBlocker(), LastNameClassifier())


class ForeignIdBlocker:
    """A blocker that proposes an id the left table does not have."""

    def get_params(self, deep=True):
        return {}

    def set_params(self, **params):
        return self

    def fit(self, right):
        self.right_ = right
        return self

    def candidates(self, left=None):
        return pd.DataFrame(
            {
                "left_id": ["nobody"],
                "right_id": [self.right_.index[0]],
                "similarity": [1.0],
            }
        )


def test_link_rejects_unknown_ids(classifier):
    left, right, _ = make_tables(n=5, n_extra=0)
    with pytest.raises(ValueError, match=r"not index labels of left: \['nobody'\]"):
        link(left, right, ForeignIdBlocker(), classifier)
