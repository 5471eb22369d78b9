"""Tests for the nearest-neighbour blocker and the candidate-set metrics."""

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from skrecordpair import _blocking
from skrecordpair._blocking import NearestNeighborBlocker
from skrecordpair._blocking_metrics import pair_completeness, reduction_ratio

from .conftest import make_tables


def brute_force(left, right, blocker, k):
    """Top-k right records per left record from the dense similarity matrix."""
    sims = (blocker.transform(left) @ blocker.transform(right).T).toarray()
    out = set()
    for i in range(len(left)):
        top = np.argsort(-sims[i], kind="stable")[:k]
        out |= {(left.index[i], right.index[j]) for j in top if sims[i, j] > 0}
    return out, sims


# ----------------------------------------------------------------- blocker
def test_candidates_frame_and_recall():
    left, right, true = make_tables()
    cands = NearestNeighborBlocker(k=3).fit(right).candidates(left)
    assert list(cands.columns) == ["left_id", "right_id", "similarity"]
    assert isinstance(cands.index, pd.RangeIndex)
    assert cands["similarity"].dtype == np.float64
    assert cands["similarity"].between(0, 1 + 1e-6).all()
    assert (cands["similarity"] > 0).all()
    assert set(cands["left_id"]) <= set(left.index)
    assert set(cands["right_id"]) <= set(right.index)
    assert cands.groupby("left_id").size().max() == 3
    assert pair_completeness(cands, true) == 1.0
    # Sorted by left position, then decreasing similarity.
    pos = left.index.get_indexer(cands["left_id"])
    assert np.all(np.diff(pos) >= 0)
    for _, group in cands.groupby("left_id"):
        assert group["similarity"].is_monotonic_decreasing


def test_candidates_are_exact_top_k():
    left, right, _ = make_tables(seed=1)
    blocker = NearestNeighborBlocker(k=4, ngram_range=(2, 3)).fit(right)
    cands = blocker.candidates(left)
    expected, sims = brute_force(left, right, blocker, 4)
    got = set(zip(cands["left_id"], cands["right_id"]))
    # Ties at the k-th similarity may be broken either way: compare similarity
    # profiles, and the pairs strictly above each row's k-th similarity.
    for i, lid in enumerate(left.index):
        row = np.sort(sims[i])[::-1]
        got_row = np.sort(cands.loc[cands["left_id"] == lid, "similarity"])[::-1]
        np.testing.assert_allclose(got_row, row[: len(got_row)], rtol=1e-5)
        above = np.flatnonzero(sims[i] > row[3] + 1e-6)
        strictly = {(lid, right.index[j]) for j in above}
        assert strictly <= got
    assert len(got) == len(expected)
    # The similarity is the dot product of the unit-length record vectors.
    li = left.index.get_indexer(cands["left_id"])
    ri = right.index.get_indexer(cands["right_id"])
    np.testing.assert_allclose(cands["similarity"], sims[li, ri], rtol=1e-5)


@pytest.mark.parametrize("dense_fraction", [0.0, 2.0])
@pytest.mark.parametrize("chunk_size", [1, 7, None])
def test_chunking_and_search_paths_agree(monkeypatch, dense_fraction, chunk_size):
    left, right, _ = make_tables(seed=2)
    reference = NearestNeighborBlocker(k=5).fit(right).candidates(left)
    monkeypatch.setattr(_blocking, "_DENSE_FRACTION", dense_fraction)
    blocker = NearestNeighborBlocker(k=5, chunk_size=chunk_size)
    cands = blocker.fit(right).candidates(left)
    pd.testing.assert_frame_equal(
        cands[["left_id", "similarity"]],
        reference[["left_id", "similarity"]],
        rtol=1e-6,
    )
    assert set(zip(cands.left_id, cands.right_id)) == set(
        zip(reference.left_id, reference.right_id)
    )


def test_identical_right_records_are_taken_in_table_order():
    right = pd.DataFrame(
        {"name": ["john doe", "anna smith", "anna smith", "anna smith"]},
        index=["c", "b", "a", "d"],
    )
    left = pd.DataFrame({"name": ["ana smith"]}, index=["x"])
    # k bounds the candidates; ties between identical records go to the
    # earlier record of the fitted table.
    cands = NearestNeighborBlocker(k=1).fit(right).candidates(left)
    assert list(cands["right_id"]) == ["b"]
    cands = NearestNeighborBlocker(k=2).fit(right).candidates(left)
    assert list(cands["right_id"]) == ["b", "a"]
    assert cands["similarity"].iloc[0] == cands["similarity"].iloc[1]
    cands = NearestNeighborBlocker(k=4).fit(right).candidates(left)
    assert list(cands["right_id"]) == ["b", "a", "d"]  # "john doe": no shared n-gram
    assert NearestNeighborBlocker().fit(right).n_unique_ == 2


def test_identical_records_keep_k_and_memory_bounded():
    import tracemalloc

    n, k = 3000, 2
    table = pd.DataFrame({"name": ["anna smith"] * n + ["john doe"] * 5})
    tracemalloc.start()
    try:
        blocker = NearestNeighborBlocker(k=k).fit(table)
        linked = blocker.candidates(table)
        deduplicated = blocker.candidates()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert linked.groupby("left_id").size().max() == k
    assert len(linked) == k * len(table)
    # Each record's k nearest other records; every unordered pair once.
    assert len(deduplicated) <= k * len(table)
    assert not (deduplicated["left_id"] == deduplicated["right_id"]).any()
    assert not deduplicated.duplicated(["left_id", "right_id"]).any()
    degree = np.bincount(
        np.concatenate([deduplicated["left_id"], deduplicated["right_id"]])
    )
    assert degree.min() >= k
    # n**2 / 2 pairs would take about 200 MB.
    assert peak < 20 * 2**20


def test_no_shared_ngram_no_candidate():
    right = pd.DataFrame({"name": ["aaaa", "bbbb"]})
    left = pd.DataFrame({"name": ["zzzz", "aaaa", None]}, index=[10, 11, 12])
    cands = NearestNeighborBlocker(k=5).fit(right).candidates(left)
    assert list(cands["left_id"]) == [11]
    assert list(cands["right_id"]) == [0]
    assert cands["similarity"].iloc[0] == pytest.approx(1.0)


def test_empty_result_has_the_columns():
    right = pd.DataFrame({"name": ["aaaa"]})
    cands = (
        NearestNeighborBlocker().fit(right).candidates(pd.DataFrame({"name": ["zzzz"]}))
    )
    assert list(cands.columns) == ["left_id", "right_id", "similarity"]
    assert len(cands) == 0


def test_k_larger_than_table_returns_every_similar_record():
    left, right, _ = make_tables(n=10, n_extra=0)
    cands = NearestNeighborBlocker(k=100).fit(right).candidates(left)
    sims = NearestNeighborBlocker().fit(right)
    assert len(cands) == int(
        ((sims.transform(left) @ sims.transform(right).T).toarray() > 0).sum()
    )


def test_fields_views_and_weights():
    left, right, _ = make_tables(seed=3)
    whole = NearestNeighborBlocker(fields=[["first", "last", "city", "born"]], k=3)
    default = NearestNeighborBlocker(k=3)
    pd.testing.assert_frame_equal(
        whole.fit(right).candidates(left), default.fit(right).candidates(left)
    )
    # A zero weight removes a view.
    zero = NearestNeighborBlocker(
        fields=[["first", "last"], "city"], weights=[1, 0], k=3
    )
    names = NearestNeighborBlocker(fields=[["first", "last"]], k=3)
    pd.testing.assert_frame_equal(
        zero.fit(right).candidates(left), names.fit(right).candidates(left)
    )
    # Equal weights: the similarity is the mean of the views' cosines when no
    # view is empty.
    two = NearestNeighborBlocker(fields=["first", "last"], k=3).fit(right)
    first = NearestNeighborBlocker(fields=["first"]).fit(right)
    last = NearestNeighborBlocker(fields=["last"]).fit(right)
    expected = 0.5 * (
        (first.transform(left) @ first.transform(right).T).toarray()
        + (last.transform(left) @ last.transform(right).T).toarray()
    )
    got = (two.transform(left) @ two.transform(right).T).toarray()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert two.views_ == [["first"], ["last"]]
    np.testing.assert_allclose(two.weights_, [0.5, 0.5])
    assert len(two.vectorizers_) == 2


@pytest.mark.parametrize("analyzer", ["char", "char_wb", "word"])
def test_analyzers(analyzer):
    left, right, true = make_tables(seed=4)
    blocker = NearestNeighborBlocker(
        k=5, analyzer=analyzer, ngram_range=((1, 1) if analyzer == "word" else (2, 4))
    )
    cands = blocker.fit(right).candidates(left)
    assert pair_completeness(cands, true) >= 0.9
    if analyzer == "word":
        # Single-character tokens are kept.
        vocab = blocker.vectorizers_[0].vocabulary_
        assert (
            "x"
            in NearestNeighborBlocker(analyzer="word", ngram_range=(1, 1))
            .fit(pd.DataFrame({"a": ["x y", "z"]}))
            .vectorizers_[0]
            .vocabulary_
        )
        assert "anna" in vocab or "berlin" in vocab


def test_max_df_absolute_cap_drops_common_ngrams():
    right = pd.DataFrame({"name": ["smith anna", "smith bob", "smith carl", "zoe"]})
    blocker = NearestNeighborBlocker(analyzer="word", ngram_range=(1, 1), max_df=2).fit(
        right
    )
    assert "smith" not in blocker.vectorizers_[0].vocabulary_
    cands = blocker.candidates(pd.DataFrame({"name": ["smith dora"]}))
    assert len(cands) == 0


def test_blocking_keys():
    left, right, true = make_tables(seed=5)
    blocker = NearestNeighborBlocker(k=3, blocking_keys="city").fit(right)
    cands = blocker.candidates(left)
    l_city = left.loc[cands["left_id"], "city"].to_numpy()
    r_city = right.loc[cands["right_id"], "city"].to_numpy()
    assert (l_city == r_city).all()
    assert right.loc[cands["right_id"], "city"].notna().all()
    # Within each block, the result is the exact top 3 of that block.
    for city in ["berlin", "oslo"]:
        lb, rb = left[left.city == city], right[right.city == city]
        sims = (blocker.transform(lb) @ blocker.transform(rb).T).toarray()
        expected = np.sort(np.concatenate([np.sort(row)[::-1][:3] for row in sims]))
        got = cands[cands["left_id"].isin(lb.index)]
        np.testing.assert_allclose(np.sort(got["similarity"]), expected, rtol=1e-5)
    # A true pair whose city went missing on the right cannot be found.
    lost = [(a, b) for a, b in true if pd.isna(right.loc[b, "city"])]
    assert lost
    assert pair_completeness(cands, true) <= 1 - len(lost) / len(true) + 1e-12
    # Several keys: candidates agree on all.
    two = NearestNeighborBlocker(k=3, blocking_keys=["city", "born"]).fit(right)
    c2 = two.candidates(left)
    assert (
        left.loc[c2.left_id, "born"].to_numpy()
        == right.loc[c2.right_id, "born"].to_numpy()
    ).all()
    assert len(c2) < len(cands)


def test_unknown_key_value_gets_no_candidate():
    right = pd.DataFrame({"name": ["anna", "anna"], "k": ["a", "b"]})
    left = pd.DataFrame({"name": ["anna", "anna"], "k": ["c", "b"]})
    cands = NearestNeighborBlocker(blocking_keys="k").fit(right).candidates(left)
    assert list(zip(cands.left_id, cands.right_id)) == [(1, 1)]


def test_records_without_key_values_get_no_candidates():
    right = pd.DataFrame({"name": ["anna", "bob", "carl"], "city": ["x", "y", None]})
    left = pd.DataFrame(
        {"name": ["anna", "bobby"], "city": [None, None]}, index=["l1", "l2"]
    )
    blocker = NearestNeighborBlocker(k=2, blocking_keys="city").fit(right)
    cands = blocker.candidates(left)
    assert len(cands) == 0
    assert list(cands.columns) == ["left_id", "right_id", "similarity"]
    assert cands["left_id"].dtype == object and cands["right_id"].dtype == np.int64
    assert cands["similarity"].dtype == np.float64
    # Some records with keys, some without.
    mixed = left.assign(city=["x", None])
    assert list(zip(*blocker.candidates(mixed)[["left_id", "right_id"]].T.values)) == [
        ("l1", 0)
    ]
    # Deduplication of a table whose keys are all missing.
    dup = NearestNeighborBlocker(k=2, blocking_keys="city").fit(left).candidates()
    assert len(dup) == 0 and list(dup.columns) == ["left_id", "right_id", "similarity"]


def test_empty_query_table_gives_no_candidates():
    right = pd.DataFrame({"name": ["anna", "bob"]}, index=["r1", "r2"])
    empty = pd.DataFrame(
        {"name": pd.Series([], dtype=object)}, index=pd.Index([], dtype=object)
    )
    blocker = NearestNeighborBlocker(k=2).fit(right)
    cands = blocker.candidates(empty)
    assert len(cands) == 0
    assert list(cands.columns) == ["left_id", "right_id", "similarity"]
    assert cands["right_id"].dtype == object
    assert cands["similarity"].dtype == np.float64
    assert blocker.transform(empty).shape == (0, blocker.transform(right).shape[1])
    keyed = NearestNeighborBlocker(blocking_keys="name").fit(right)
    assert len(keyed.candidates(empty)) == 0


# ------------------------------------------------------------ deduplication
def test_deduplicate_mode():
    left, right, _ = make_tables(seed=6)
    table = pd.concat([left, right])
    blocker = NearestNeighborBlocker(k=3).fit(table)
    cands = blocker.candidates()
    pos_l = table.index.get_indexer(cands["left_id"])
    pos_r = table.index.get_indexer(cands["right_id"])
    assert (pos_l < pos_r).all()  # no self-pair, earlier record on the left
    pairs = set(zip(pos_l, pos_r))
    assert len(pairs) == len(cands)  # every unordered pair once
    # Every record's exact 3 nearest other records are there (no ties here).
    sims = (blocker.transform(table) @ blocker.transform(table).T).toarray()
    np.fill_diagonal(sims, -1)
    for i in range(len(table)):
        top = np.argsort(-sims[i])[:3]
        for j in top:
            if sims[i, j] > np.sort(sims[i])[-4] + 1e-6:
                assert (min(i, j), max(i, j)) in pairs
    # Each record appears with at least k partners (its own k nearest).
    degree = np.bincount(np.concatenate([pos_l, pos_r]), minlength=len(table))
    assert degree.min() >= 3


def test_deduplicate_pairs_exact_duplicates():
    table = pd.DataFrame(
        {
            "name": [
                "anna smith",
                "john doe",
                "anna smith",
                "anna smith",
                "jon doe",
                None,
                None,
            ]
        },
        index=list("abcdefg"),
    )
    cands = NearestNeighborBlocker(k=1).fit(table).candidates()
    pairs = set(zip(cands.left_id, cands.right_id))
    # With k=1, each copy of "anna smith" takes the first other copy.
    assert {("a", "c"), ("a", "d"), ("b", "e")} == pairs
    dup = cands[cands.left_id.eq("a") & cands.right_id.isin(["c", "d"])]
    np.testing.assert_allclose(dup["similarity"], 1.0, rtol=1e-6)


def test_deduplicate_with_blocking_keys():
    table = pd.DataFrame(
        {
            "name": ["anna smith", "ana smith", "anna smith"],
            "city": ["rome", "oslo", "rome"],
        }
    )
    cands = (
        NearestNeighborBlocker(fields=["name"], blocking_keys="city")
        .fit(table)
        .candidates()
    )
    assert list(zip(cands.left_id, cands.right_id)) == [(0, 2)]


# ------------------------------------------------------------------ errors
def test_clone_and_params():
    blocker = NearestNeighborBlocker(k=7, fields=["a"], max_df=100)
    cloned = clone(blocker)
    assert cloned.get_params() == blocker.get_params()
    assert not hasattr(cloned, "vectorizers_")


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(k=0), "k must be a positive integer; got 0"),
        (dict(k=2.5), "k must be a positive integer"),
        (dict(analyzer="chars"), "analyzer must be one of"),
        (dict(ngram_range=(3, 2)), "ngram_range must be a pair"),
        (dict(ngram_range=3), "ngram_range must be a pair"),
        (
            dict(max_df=0),
            r"max_df must be a number in \(0, 1\] or a positive integer; "
            r"got 0\.",
        ),
        (
            dict(max_df=1.5),
            r"max_df must be a number in \(0, 1\] or a positive integer",
        ),
        (dict(chunk_size=0), "chunk_size must be a positive integer or None; got 0."),
        (dict(sublinear_tf="yes"), "sublinear_tf must be a bool; got 'yes'."),
        (dict(verbose=-1), "verbose must be"),
        (
            dict(fields=[]),
            "fields must be None or a non-empty list whose entries are "
            r"column names or non-empty lists of column names; got \[\]\.",
        ),
        (
            dict(fields=[[]]),
            r"fields must be None or a non-empty list .*; got \[\[\]\]\.",
        ),
        (
            dict(blocking_keys=3),
            "blocking_keys must be None or a column name or a "
            "non-empty list of column names; got 3.",
        ),
        (dict(fields=["name"], weights=[1, 1]), "one entry per view"),
        (dict(fields=["name"], weights=[0]), "not all zero"),
        (
            dict(fields=["nom"]),
            r"fit\(\) must have the columns \['nom'\]; it lacks "
            r"\['nom'\] \(its columns are \['name'\]\)\.",
        ),
        (dict(blocking_keys=["town"]), r"it lacks \['town'\]"),
    ],
)
def test_invalid_params(params, match):
    table = pd.DataFrame({"name": ["anna", "bob"]})
    with pytest.raises(ValueError, match=match):
        NearestNeighborBlocker(**params).fit(table)


def test_invalid_inputs():
    table = pd.DataFrame({"name": ["anna", "bob"]})
    with pytest.raises(
        TypeError, match="expects a pandas DataFrame of records; got list"
    ):
        NearestNeighborBlocker().fit([["anna"]])
    with pytest.raises(TypeError, match="fields must be None or a non-empty list"):
        NearestNeighborBlocker(fields="name").fit(table)
    with pytest.raises(ValueError, match=r"must be unique.*repeats \[0\]"):
        NearestNeighborBlocker().fit(table.set_axis([0, 0]))
    with pytest.raises(ValueError, match="has no n-gram to index"):
        NearestNeighborBlocker().fit(pd.DataFrame({"name": [None, None]}))
    fitted = NearestNeighborBlocker().fit(table)
    with pytest.raises(
        ValueError,
        match=r"candidates\(\) must have the columns \['name'\]; "
        r"it lacks \['name'\]",
    ):
        fitted.candidates(pd.DataFrame({"nom": ["anna"]}))
    with pytest.raises(TypeError, match="got ndarray"):
        fitted.candidates(np.array([["anna"]]))
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        NearestNeighborBlocker().candidates(table)


# ------------------------------------------------------------------ metrics
def test_pair_completeness_inputs():
    cands = pd.DataFrame(
        {
            "left_id": [1, 1, 2, 3],
            "right_id": ["a", "b", "c", "a"],
            "similarity": [0.9, 0.5, 0.7, 0.1],
        }
    )
    true = [(1, "a"), (2, "b"), (3, "a"), (3, "a")]  # repeated pair counts once
    assert pair_completeness(cands, true) == pytest.approx(2 / 3)
    as_index = pd.MultiIndex.from_tuples([(1, "a"), (2, "b"), (3, "a")])
    assert pair_completeness(cands, as_index) == pytest.approx(2 / 3)
    as_frame = pd.DataFrame({"left_id": [1, 2, 3], "right_id": ["a", "b", "a"]})
    assert pair_completeness(cands, as_frame) == pytest.approx(2 / 3)
    cand_index = pd.MultiIndex.from_frame(cands[["left_id", "right_id"]])
    assert pair_completeness(cand_index, true) == pytest.approx(2 / 3)
    assert pair_completeness(
        list(zip(cands.left_id, cands.right_id)), true
    ) == pytest.approx(2 / 3)
    # Ordered pairs: the reverse does not count.
    assert pair_completeness([(2, 1)], [(1, 2)]) == 0.0


def test_pair_completeness_unordered():
    cands = [(1, 2), (3, 2), (4, 4)]
    assert pair_completeness(cands, [(2, 1), (2, 3)], deduplicate=True) == 1.0
    assert pair_completeness(cands, [(2, 1), (2, 3)]) == 0.0
    assert pair_completeness(cands, [(2, 1), (4, 5), (5, 5)], deduplicate=True) == 0.5


def test_pair_completeness_errors():
    with pytest.raises(ValueError, match="needs at least one true pair"):
        pair_completeness([(1, 2)], [])
    with pytest.raises(ValueError, match="needs at least one true pair"):
        pair_completeness([(1, 2)], [(3, 3)], deduplicate=True)
    with pytest.raises(
        ValueError,
        match=r"candidates must have the columns "
        r"\['left_id', 'right_id'\]; it lacks "
        r"\['right_id'\] \(its columns are \['left_id'\]\)\.",
    ):
        pair_completeness(pd.DataFrame({"left_id": [1]}), [(1, 2)])
    with pytest.raises(ValueError, match="deduplicate must be a bool; got 'yes'."):
        pair_completeness([(1, 2)], [(1, 2)], deduplicate="yes")
    with pytest.raises(
        ValueError, match="must hold .left_id, right_id. pairs; got the entry 5"
    ):
        pair_completeness([5], [(1, 2)])
    with pytest.raises(ValueError, match="must have two levels"):
        pair_completeness(pd.MultiIndex.from_tuples([(1, 2, 3)]), [(1, 2)])
    with pytest.raises(TypeError, match="got int"):
        pair_completeness(3, [(1, 2)])


def test_pair_completeness_refuses_ids_of_different_types():
    cands = pd.DataFrame(
        {"left_id": ["1", "2"], "right_id": ["10", "20"], "similarity": [0.9, 0.8]}
    )
    with pytest.raises(
        TypeError,
        match=r"left ids of true_pairs are integer.*"
        r"those of candidates are string",
    ):
        pair_completeness(cands, [(1, 10), (2, 20)])
    with pytest.raises(
        TypeError,
        match=r"right ids of true_pairs are string.*"
        r"those of candidates are integer",
    ):
        pair_completeness([(1, 10)], [(1, "10")])
    with pytest.raises(TypeError, match="ids of true_pairs are integer"):
        pair_completeness([("1", "2")], [(1, 2)], deduplicate=True)
    # Same kind of ids: numpy and Python integers, ints and floats, compare.
    assert (
        pair_completeness(
            pd.MultiIndex.from_arrays([np.array([1]), np.array([2])]), [(1, 2)]
        )
        == 1.0
    )
    assert pair_completeness([(1.0, 2)], [(1, 2)]) == 1.0
    # Ids of mixed types on one side are compared as they are.
    assert pair_completeness([(1, "a"), ("b", 2)], [("b", 2)]) == 1.0


def test_reduction_ratio():
    cands = [(1, "a"), (2, "b"), (2, "b")]
    assert reduction_ratio(cands, 2, 10) == pytest.approx(1 - 2 / 20)
    # Deduplication: unordered pairs, self-pairs ignored, n(n-1)/2 in all.
    assert reduction_ratio([(1, 2), (2, 1), (3, 3)], 5) == pytest.approx(0.9)
    assert reduction_ratio([], 3, 3) == 1.0
    frame = pd.DataFrame({"left_id": [0, 1], "right_id": [1, 0]})
    assert reduction_ratio(frame, 2, 2) == 0.5
    with pytest.raises(ValueError, match="n_left must be an integer >= 2; got 1"):
        reduction_ratio([], 1)
    with pytest.raises(
        ValueError, match="n_right must be a positive integer or None; got 0."
    ):
        reduction_ratio([], 3, 0)
    with pytest.raises(ValueError, match="n_left must be a positive integer; got 0."):
        reduction_ratio([], 0, 3)
    with pytest.raises(
        ValueError, match="n_left must be a positive integer; got True."
    ):
        reduction_ratio([], True, 3)
    with pytest.raises(ValueError, match="3 distinct candidate pairs but only 2"):
        reduction_ratio([(1, 1), (1, 2), (1, 3)], 1, 2)


def test_metrics_on_blocker_output():
    left, right, true = make_tables(seed=7)
    cands = NearestNeighborBlocker(k=2).fit(right).candidates(left)
    assert reduction_ratio(cands, len(left), len(right)) == pytest.approx(
        1 - len(cands) / (len(left) * len(right))
    )
    pc = pair_completeness(cands, true)
    hits = sum(p in set(zip(cands.left_id, cands.right_id)) for p in true)
    assert pc == hits / len(true)


@pytest.mark.parametrize(
    "params", [{"k": 5}, {"k": 3, "blocking_keys": ["born"]}, {"k": 12}]
)
def test_candidates_within_pieces_add_up_to_candidates(params):
    from .conftest import make_tables

    left, right, _ = make_tables(n=200, n_extra=60, seed=1)
    # Exact copies too: identical records are one indexed row.
    table = pd.concat([left, right, left.iloc[:15].rename(lambda i: f"{i}-copy")])
    blocker = NearestNeighborBlocker(**params).fit(table)
    whole = blocker.candidates()
    pieces = np.array_split(np.random.default_rng(0).permutation(table.index), 4)
    parts = pd.concat([blocker.candidates_within(ids) for ids in pieces])
    assert len(parts) > len(whole)  # pairs proposed from two pieces
    union = parts.groupby(["left_id", "right_id"], as_index=False)["similarity"].max()
    key = ["left_id", "right_id"]
    pd.testing.assert_frame_equal(
        union.sort_values(key).reset_index(drop=True),
        whole.sort_values(key).reset_index(drop=True),
    )
    with pytest.raises(ValueError, match=r"not: \['nobody'\]"):
        blocker.candidates_within(["l1", "nobody"])
