"""Scoring dask DataFrames of pairs (``skrecordpair.dask``), on a real LocalCluster."""

import numpy as np
import pandas as pd
import pytest

from skrecordpair import RecordPairClassifier, pair_frame
from skrecordpair._matcher.classifier import CHUNK_SIZE

from .conftest import TINY, make_people_pairs

dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")

import skrecordpair.dask as skd  # noqa: E402  (after the importorskip)


@pytest.fixture(scope="module")
def client():
    """Two worker processes, one thread each; closed at the end of the module."""
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        worker_dashboard_address=None,
    )
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


@pytest.fixture(scope="module")
def pairs():
    left, right, _ = make_people_pairs(600, seed=3)
    X = pair_frame(left, right)
    X.index = [f"pair-{i}" for i in range(len(X))]  # the index must be kept
    return X


def _model_nodes(collection, clf):
    """Graph nodes holding `clf` itself."""
    graph = dict(collection.__dask_graph__())
    return [k for k, v in graph.items() if getattr(v, "value", None) is clf]


@pytest.mark.slow
def test_predict_proba_on_a_local_cluster_equals_in_memory(fitted, pairs, client):
    # Partitions aligned with predict_proba's chunks (CHUNK_SIZE pairs) hold the
    # same prediction batches as in memory: the results are identical, bit for bit.
    X = pairs.iloc[np.arange(2 * CHUNK_SIZE + 100) % len(pairs)]
    ddf = dd.from_pandas(X, chunksize=CHUNK_SIZE, sort=False)
    assert ddf.npartitions == 3
    result = skd.predict_proba(fitted, ddf)
    assert len(_model_nodes(result, fitted)) == 1  # the model is in the graph once
    assert list(result.columns) == fitted.classes_.tolist()
    proba = result.compute()
    assert list(proba.index) == list(X.index)
    np.testing.assert_array_equal(proba.to_numpy(), fitted.predict_proba(X))


@pytest.mark.slow
def test_any_partitioning_equals_partition_wise_in_memory(fitted, pairs, client):
    ddf = dd.from_pandas(pairs, npartitions=7, sort=False)
    proba = skd.predict_proba(fitted, ddf).compute().to_numpy()
    per_partition = np.concatenate(
        [fitted.predict_proba(p.compute()) for p in ddf.partitions]
    )
    np.testing.assert_array_equal(proba, per_partition)
    np.testing.assert_allclose(proba, fitted.predict_proba(pairs), rtol=0, atol=1e-6)
    labels = skd.predict(fitted, ddf).compute()
    assert labels.name == "prediction" and list(labels.index) == list(pairs.index)
    np.testing.assert_array_equal(labels.to_numpy(), fitted.predict(pairs))


@pytest.mark.slow
def test_model_scattered_once_to_all_workers(fitted, pairs, client):
    future = skd.scatter_model(fitted, client)
    assert len(client.who_has([future])[future.key]) == 2  # on both workers
    ddf = dd.from_pandas(pairs, npartitions=3, sort=False)
    expected = np.concatenate(
        [fitted.predict_proba(p.compute()) for p in ddf.partitions]
    )
    for kwargs in ({"model": future}, {"client": client}):
        result = skd.predict_proba(fitted, ddf, **kwargs)
        assert not _model_nodes(result, fitted)  # the graph refers to the future
        np.testing.assert_array_equal(result.compute().to_numpy(), expected)


def test_string_labels_and_local_scheduler(pairs):
    left, right, y = make_people_pairs(80, seed=4)
    labels = np.where(y == 1, "match", "distinct")
    clf = RecordPairClassifier(
        **TINY, max_epochs=1, early_stopping=False, random_state=0
    ).fit(left, right, labels)
    ddf = dd.from_pandas(pairs.iloc[:300], npartitions=2, sort=False)
    proba = skd.predict_proba(clf, ddf).compute(scheduler="sync")
    assert list(proba.columns) == ["distinct", "match"]
    np.testing.assert_array_equal(
        proba.to_numpy(),
        np.concatenate([clf.predict_proba(p.compute()) for p in ddf.partitions]),
    )
    predicted = skd.predict(clf, ddf).compute(scheduler="threads")
    np.testing.assert_array_equal(predicted.to_numpy(), clf.predict(pairs.iloc[:300]))


def test_empty_partitions(fitted, pairs):
    ddf = dd.from_pandas(pairs.iloc[:10], npartitions=2, sort=False)
    empty = ddf[ddf["left_year"] < 0]  # every partition is empty
    out = skd.predict_proba(fitted, empty).compute(scheduler="sync")
    assert out.shape == (0, 2)


def test_refuses_pandas_and_missing_columns(fitted, pairs):
    with pytest.raises(TypeError, match="dask.dataframe.DataFrame"):
        skd.predict_proba(fitted, pairs)
    ddf = dd.from_pandas(pairs.drop(columns="right_city"), npartitions=2)
    # The message of the model's own check, as predict_proba gives it in memory.
    with pytest.raises(ValueError, match="missing:\n- right_city") as error:
        skd.predict(fitted, ddf)
    with pytest.raises(ValueError) as in_memory:
        fitted.predict_proba(pairs.drop(columns="right_city"))
    assert str(error.value) == str(in_memory.value)
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        skd.predict_proba(RecordPairClassifier(), dd.from_pandas(pairs, npartitions=1))


def test_a_pipeline_of_similarity_features_scores_like_in_memory(pairs):
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import make_pipeline

    from skrecordpair import SimilarityFeatures

    left, right, y = make_people_pairs(200, seed=4)
    pipe = make_pipeline(
        SimilarityFeatures(), HistGradientBoostingClassifier(random_state=0)
    ).fit(pair_frame(left, right), y)
    ddf = dd.from_pandas(pairs, npartitions=3, sort=False)
    proba = skd.predict_proba(pipe, ddf).compute(scheduler="sync")
    np.testing.assert_allclose(proba.to_numpy(), pipe.predict_proba(pairs))
    assert list(proba.index) == list(pairs.index)
    labels = skd.predict(pipe, ddf).compute(scheduler="sync")
    assert labels.tolist() == pipe.predict(pairs).tolist()
    with pytest.raises(ValueError, match="right_city"):
        skd.predict(
            pipe, dd.from_pandas(pairs.drop(columns="right_city"), npartitions=2)
        )


def test_scoring_candidate_ids_keeps_the_ids(fitted):
    # The recipe of docs/scaling.rst: candidate ids merged with the two tables
    # (indexed by id) on the workers, scored, the ids kept beside the scores.
    from skrecordpair import NearestNeighborBlocker

    left, right, _ = make_people_pairs(60, seed=5)
    left.index = pd.Index([f"a{i}" for i in range(len(left))], name="id")
    right.index = pd.Index([f"b{i}" for i in range(len(right))], name="id")
    cands = NearestNeighborBlocker(k=3).fit(right).candidates(left)
    candidates = dd.from_pandas(cands[["left_id", "right_id"]], npartitions=3)

    pairs = candidates.merge(
        left.add_prefix("left_"), left_on="left_id", right_index=True
    ).merge(right.add_prefix("right_"), left_on="right_id", right_index=True)
    proba = skd.predict_proba(fitted, pairs[list(fitted.feature_names_in_)])
    scores = pairs[["left_id", "right_id"]].assign(probability=proba[1])
    result = scores.compute(scheduler="sync")

    assert list(result.columns) == ["left_id", "right_id", "probability"]
    assert len(result) == len(cands)
    result = result.set_index(["left_id", "right_id"]).loc[
        list(zip(cands.left_id, cands.right_id))
    ]
    expected = fitted.predict_proba(left.loc[cands.left_id], right.loc[cands.right_id])
    np.testing.assert_allclose(result["probability"], expected[:, 1], atol=1e-6)
    labels = skd.predict(fitted, pairs[list(fitted.feature_names_in_)])
    both = pairs[["left_id", "right_id"]].assign(label=labels).compute(scheduler="sync")
    assert both["left_id"].notna().all() and len(both) == len(cands)


# ------------------------------------------------------------------------ link
@pytest.fixture(scope="module")
def tables():
    from .conftest import make_tables

    left, right, truth = make_tables(n=80, n_extra=30, seed=4)
    left.iloc[::9, 2] = np.nan  # missing cities
    return left, right, truth


@pytest.fixture(scope="module")
def similarity_model(tables):
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import make_pipeline

    from skrecordpair import NearestNeighborBlocker, SimilarityFeatures

    left, right, truth = tables
    c = NearestNeighborBlocker(k=5).fit(right).candidates(left)
    y = [p in truth for p in zip(c.left_id, c.right_id)]
    X = pair_frame(left.loc[c.left_id], right.loc[c.right_id])
    model = make_pipeline(
        SimilarityFeatures(), HistGradientBoostingClassifier(random_state=0)
    )
    return model.fit(X, y), X, y


@pytest.mark.slow
def test_link_on_a_local_cluster_equals_link_in_memory(
    tables, similarity_model, client
):
    from skrecordpair import NearestNeighborBlocker, link

    left, right, _ = tables
    model = similarity_model[0]
    expected = link(left, right, NearestNeighborBlocker(k=5), model)
    assert len(expected) > 40  # matches to compare, with string ids
    ddf = dd.from_pandas(left, npartitions=3, sort=True)
    got = skd.link(ddf, right, NearestNeighborBlocker(k=5), model, client=client)
    assert list(got.columns) == ["left_id", "right_id", "similarity", "probability"]
    # One partition of matches per partition of records, and no gathering:
    # each partition's task needs only its own records.
    assert got.npartitions == 3
    # dask holds strings as pyarrow strings: the same ids, another dtype.
    in_order = got.compute().astype({"left_id": object, "right_id": object})
    # dd.from_pandas(sort=True) sorts the ids: the same matches, ordered by id.
    expected = expected.set_index("left_id").loc[sorted(set(expected.left_id))]
    pd.testing.assert_frame_equal(
        in_order.set_index("left_id"), expected, check_exact=True
    )
    # With a threshold, and without a client (local scheduler).
    low = skd.link(ddf, right, NearestNeighborBlocker(k=5), model, threshold=0.0)
    assert len(low.compute()) == len(
        NearestNeighborBlocker(k=5).fit(right).candidates(left)
    )


def test_link_with_a_record_pair_classifier_equals_link_in_memory(
    tables, similarity_model
):
    from skrecordpair import NearestNeighborBlocker, link

    left, right, _ = tables
    _, X, y = similarity_model
    clf = RecordPairClassifier(**TINY, max_epochs=2, random_state=0).fit(X, y)
    ddf = dd.from_pandas(left, npartitions=2, sort=True)
    got = skd.link(ddf, right, NearestNeighborBlocker(k=5), clf, threshold=0.2)
    expected = link(left, right, NearestNeighborBlocker(k=5), clf, threshold=0.2)
    got = got.compute().astype({"left_id": object, "right_id": object})
    got = got.sort_values(["left_id", "right_id"]).reset_index(drop=True)
    expected = expected.sort_values(["left_id", "right_id"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(
        got[["left_id", "right_id"]], expected[["left_id", "right_id"]]
    )
    # The network batches pairs differently per partition: float32 rounding.
    np.testing.assert_allclose(got.probability, expected.probability, atol=1e-5)


def test_link_errors_say_what_was_expected(tables, similarity_model):
    from skrecordpair import NearestNeighborBlocker

    left, right, _ = tables
    model = similarity_model[0]
    blocker = NearestNeighborBlocker(k=5)
    with pytest.raises(TypeError, match="expects left as a dask.dataframe.DataFrame"):
        skd.link(left, right, blocker, model)
    unknown = dd.from_pandas(left, npartitions=2, sort=False)
    with pytest.raises(ValueError, match="known divisions"):
        skd.link(unknown, right, blocker, model)
    repeated = pd.concat([left.iloc[:5], left.iloc[:5]]).sort_index()
    ddf = dd.from_pandas(repeated, npartitions=1, sort=True)
    with pytest.raises(ValueError, match="must be unique; it repeats"):
        skd.link(ddf, right, blocker, model).compute()
    with pytest.raises(ValueError, match="lacks|columns"):
        skd.link(dd.from_pandas(left[["first"]], npartitions=1), right, blocker, model)
    with pytest.raises(ValueError, match="empty right table"):
        skd.link(dd.from_pandas(left, npartitions=1), right.iloc[:0], blocker, model)


# ----------------------------------------------------------------- deduplicate
def _same_entities(a, b):
    """Whether the cluster labels `a` and `b` (Series by record id) group the
    records alike."""
    both = pd.DataFrame({"a": a, "b": b.reindex(a.index)})
    assert both.notna().all().all()
    return (both.groupby("a")["b"].nunique() == 1).all() and (
        both.groupby("b")["a"].nunique() == 1
    ).all()


@pytest.fixture(scope="module")
def people_table(tables):
    left, right, _ = tables
    table = pd.concat([left, right])
    table = pd.concat([table, table.iloc[:7].rename(lambda i: f"{i}-copy")])
    return table.sort_index()


@pytest.mark.slow
def test_deduplicate_on_a_local_cluster_equals_deduplicate_in_memory(
    people_table, similarity_model, client
):
    from skrecordpair import NearestNeighborBlocker, deduplicate

    model = similarity_model[0]
    blocker = NearestNeighborBlocker(k=5)
    expected, expected_pairs = deduplicate(
        people_table, blocker, model, return_pairs=True
    )
    assert expected.nunique() < len(people_table) - 50  # entities to find
    ddf = dd.from_pandas(people_table, npartitions=4, sort=True)
    clusters, pairs = skd.deduplicate(
        ddf, blocker, model, client=client, return_pairs=True
    )
    got = clusters.compute()
    got.index = got.index.astype(object)
    assert sorted(got.index) == sorted(people_table.index)
    assert _same_entities(expected, got)
    # Each entity is named by its smallest record id.
    smallest = pd.Series(got.index, index=got.index).groupby(got).min()
    assert (smallest.index == smallest.to_numpy()).all()
    pairs = pairs.compute().astype({"left_id": object, "right_id": object})
    key = ["left_id", "right_id"]
    pd.testing.assert_frame_equal(
        pairs.sort_values(key).reset_index(drop=True),
        expected_pairs.sort_values(key).reset_index(drop=True),
    )


def test_deduplicate_follows_long_chains_of_matches():
    from sklearn.dummy import DummyClassifier

    from skrecordpair import NearestNeighborBlocker, deduplicate

    # A chain: each name differs from the next by one letter, so k=1 links
    # neighbours only; every pair is a match for the stand-in classifier.
    names = ["aaaaaaaaaaaa"]
    for i in range(1, 12):
        names.append(names[-1][:i] + "b" + names[-1][i + 1 :])
    table = pd.DataFrame({"name": names + ["zzzz qqqq", "zzzz qqqx"]})
    table.index = [f"r{i:02d}" for i in range(len(table))]
    clf = DummyClassifier(strategy="constant", constant=1).fit(
        pair_frame(table.iloc[[0, 1]], table.iloc[[1, 0]]), [1, 0]
    )
    expected = deduplicate(table, NearestNeighborBlocker(k=1), clf)
    got = skd.deduplicate(
        dd.from_pandas(table, npartitions=3, sort=True),
        NearestNeighborBlocker(k=1),
        clf,
    ).compute()
    assert expected.value_counts().max() >= 8  # a long chain
    assert _same_entities(expected, got)


def test_deduplicate_of_no_records_returns_no_clusters(people_table, similarity_model):
    from skrecordpair import NearestNeighborBlocker

    ddf = dd.from_pandas(people_table, npartitions=2)
    empty = ddf[ddf["first"] == "nobody has this name"]  # divisions stay known
    clusters, pairs = skd.deduplicate(
        empty, NearestNeighborBlocker(), similarity_model[0], return_pairs=True
    )
    assert clusters.name == "cluster"
    assert len(clusters.compute()) == 0
    assert list(pairs.columns) == ["left_id", "right_id", "similarity", "probability"]


def test_deduplicate_errors_say_what_was_expected(people_table, similarity_model):
    from skrecordpair import NearestNeighborBlocker

    model = similarity_model[0]
    with pytest.raises(TypeError, match="expects table as a dask.dataframe.DataFrame"):
        skd.deduplicate(people_table, NearestNeighborBlocker(), model)
    with pytest.raises(ValueError, match="known divisions"):
        skd.deduplicate(
            dd.from_pandas(
                people_table.sample(frac=1, random_state=0), npartitions=2, sort=False
            ),
            NearestNeighborBlocker(),
            model,
        )
    with pytest.raises(TypeError, match="candidates_within"):
        skd.deduplicate(dd.from_pandas(people_table, npartitions=2), object(), model)
    repeated = pd.concat([people_table.iloc[:5], people_table.iloc[:5]]).sort_index()
    with pytest.raises(ValueError, match="must be unique; it repeats"):
        skd.deduplicate(
            dd.from_pandas(repeated, npartitions=1), NearestNeighborBlocker(), model
        )
