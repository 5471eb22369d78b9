"""Score pair frames held in a :mod:`dask.dataframe`, partition by partition.

Requires the optional ``dask`` extra (``pip install "skrecordpair[dask]"``):
``dask[dataframe]`` and, for clusters, ``distributed``.

The fitted model enters the task graph once, as its own task (or, with
``client=``, as data already broadcast to every worker), and every partition's
task refers to it: it travels to each worker once, not once per partition. Each
partition is scored with :meth:`RecordPairClassifier.predict_proba
<skrecordpair.RecordPairClassifier.predict_proba>`, which itself works through
the partition in chunks, so a worker's memory stays flat whatever the partition
size. A pair's probabilities do not depend on the other pairs of its batch, so
the results equal the in-memory predictions on the whole frame.

The same code runs on a laptop's threads, a :class:`distributed.LocalCluster`,
or a multi-machine cluster: connect a :class:`distributed.Client` to the
cluster's scheduler (``Client("tcp://scheduler:8786")``) and call the functions
below; see the "Scaling" page of the documentation.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.utils.validation import check_is_fitted

from ._blocking import check_record_table
from ._linking import (
    MATCH_COLUMNS,
    _decision,
    _fitted_columns,
    _positive_column,
    kept,
    match_candidates,
)
from ._pairs import PAIR_INDEX_NAMES
from ._progress import Progress

# Shuffles (group-bys and joins of partitioned frames) through the task
# graph: with dask's default on a cluster, peer-to-peer, deduplicate stalled
# in 2 of 3 runs on the test suite's LocalCluster (dask 2026.8).
SHUFFLE = "tasks"

__all__ = ["deduplicate", "link", "predict", "predict_proba", "scatter_model"]


def _require_dask():
    try:
        import dask
        import dask.dataframe as dd
    except ImportError as exc:  # pragma: no cover - exercised without the extra
        raise ImportError(
            "skrecordpair.dask needs dask: pip install 'skrecordpair[dask]' "
            "(dask[dataframe] and distributed)."
        ) from exc
    return dask, dd


def scatter_model(clf, client=None):
    """Broadcast a fitted model to every worker of a ``distributed`` cluster.

    Useful to score several dask DataFrames with one copy of the model per
    worker: pass the result as ``model=`` to :func:`predict_proba` or
    :func:`predict`.

    Parameters
    ----------
    clf : RecordPairClassifier
        The fitted model.
    client : distributed.Client, default=None
        The client; None uses the current one (``distributed.get_client()``).

    Returns
    -------
    distributed.Future
        The model, held by every worker.

    Examples
    --------
    >>> import dask.dataframe as dd
    >>> import pandas as pd
    >>> import skrecordpair.dask
    >>> from skrecordpair import RecordPairClassifier, pair_frame
    >>> left = pd.DataFrame({"name": ["anna smith", "john doe"] * 10,
    ...                      "city": ["berlin", "paris"] * 10})
    >>> right = pd.DataFrame({"name": ["ana smith", "jane roe"] * 10,
    ...                       "city": ["berlin", "rome"] * 10})
    >>> clf = RecordPairClassifier(max_epochs=5, random_state=0)
    >>> clf = clf.fit(left, right, [1, 0] * 10)
    >>> pairs = dd.from_pandas(pair_frame(left, right), npartitions=2)
    >>> from distributed import Client
    >>> client = Client(processes=False, n_workers=2, dashboard_address=None)
    >>> model = skrecordpair.dask.scatter_model(clf, client)
    >>> len(client.who_has([model])[model.key])  # one copy on each worker
    2
    >>> skrecordpair.dask.predict(clf, pairs, model=model).compute().head(3).tolist()
    [1, 0, 1]
    >>> client.close()
    """
    check_is_fitted(clf)
    if client is None:
        from distributed import get_client

        client = get_client()
    return client.scatter(clf, broadcast=True, hash=False)


def _model_node(clf, model, client):
    return model if model is not None else _shipped((clf,), client)[0]


def _check_input(clf, X):
    _, dd = _require_dask()
    check_is_fitted(clf)
    if not isinstance(X, dd.DataFrame):
        raise TypeError(
            "skrecordpair.dask functions expect a dask.dataframe.DataFrame of pairs "
            f"(a pair frame split into partitions); got {type(X).__name__}. Score a "
            "pandas DataFrame with clf.predict_proba(X)."
        )
    # The model's own input checks (missing columns, unseen fields) run now,
    # on dask's two-row stand-in for the data, rather than in every
    # partition's task at compute time; any fitted classifier of pair frames
    # (a RecordPairClassifier, a Pipeline) checks its input this way.
    clf.predict_proba(X._meta_nonempty)


def _proba_partition(part, model, columns):
    proba = model.predict_proba(part)
    return pd.DataFrame(proba, index=part.index, columns=columns)


def _predict_partition(part, model, name):
    labels = model.predict(part)
    return pd.Series(
        labels,
        index=part.index,
        name=name,
        dtype=object if labels.dtype.kind == "U" else labels.dtype,
    )


def predict_proba(clf, X, *, client=None, model=None):
    """Class probabilities of the pairs of a dask DataFrame.

    Parameters
    ----------
    clf : RecordPairClassifier or classifier of pair frames
        The fitted model: a :class:`~skrecordpair.RecordPairClassifier`, or
        any fitted classifier that scores pair frames, such as a
        ``Pipeline`` of :class:`~skrecordpair.SimilarityFeatures` and a
        gradient boosting classifier.
    X : dask.dataframe.DataFrame
        A pair frame (``left_<field>`` / ``right_<field>`` columns), in any
        number of partitions.
    client : distributed.Client, default=None
        If given, the model is first broadcast to all its workers
        (:func:`scatter_model`); otherwise it is one task of the graph, sent
        once to each worker that needs it.
    model : distributed.Future or dask.delayed.Delayed, default=None
        The model already shipped, from :func:`scatter_model`; `clf` is then
        only used locally, for the output's metadata.

    Returns
    -------
    dask.dataframe.DataFrame
        One float64 column per class, named by ``clf.classes_``, with the index
        of `X`; ``.to_dask_array(lengths=True)`` turns it into an array of
        shape (n_pairs, n_classes). Nothing is computed until you call
        ``.compute()``, ``.to_parquet(...)``, etc.

    Examples
    --------
    >>> import dask.dataframe as dd
    >>> import pandas as pd
    >>> import skrecordpair.dask
    >>> from skrecordpair import RecordPairClassifier, pair_frame
    >>> left = pd.DataFrame({"name": ["anna smith", "john doe"] * 10,
    ...                      "city": ["berlin", "paris"] * 10})
    >>> right = pd.DataFrame({"name": ["ana smith", "jane roe"] * 10,
    ...                       "city": ["berlin", "rome"] * 10})
    >>> clf = RecordPairClassifier(max_epochs=5, random_state=0)
    >>> clf = clf.fit(left, right, [1, 0] * 10)
    >>> pairs = dd.from_pandas(pair_frame(left, right), npartitions=2)
    >>> proba = skrecordpair.dask.predict_proba(clf, pairs)
    >>> list(proba.columns)  # the classes
    [0, 1]
    >>> result = proba.compute()  # a pandas DataFrame
    >>> result.shape
    (20, 2)
    >>> (result[1] > 0.5).head(3).tolist()
    [True, False, True]

    On real data, read the pairs from storage and write the scores back::

        pairs = dd.read_parquet("candidate_pairs/")
        skrecordpair.dask.predict_proba(clf, pairs).to_parquet("scores/")
    """
    _check_input(clf, X)
    columns = pd.Index(clf.classes_, tupleize_cols=False)
    meta = pd.DataFrame({i: pd.Series(dtype=np.float64) for i in range(len(columns))})
    meta.columns = columns
    meta.index = X._meta.index
    node = _model_node(clf, model, client)
    return X.map_partitions(
        _proba_partition, node, columns, meta=meta, align_dataframes=False
    )


def predict(clf, X, *, client=None, model=None, name="prediction"):
    """Predicted labels of the pairs of a dask DataFrame.

    Parameters
    ----------
    clf : RecordPairClassifier or classifier of pair frames
        The fitted model (see :func:`predict_proba`).
    X : dask.dataframe.DataFrame
        A pair frame, in any number of partitions.
    client : distributed.Client, default=None
        See :func:`predict_proba`.
    model : distributed.Future or dask.delayed.Delayed, default=None
        See :func:`predict_proba`.
    name : str, default="prediction"
        Name of the resulting Series.

    Returns
    -------
    dask.dataframe.Series
        The label of each pair (from ``clf.classes_``), with the index of `X`.

    Examples
    --------
    >>> import dask.dataframe as dd
    >>> import pandas as pd
    >>> import skrecordpair.dask
    >>> from skrecordpair import RecordPairClassifier, pair_frame
    >>> left = pd.DataFrame({"name": ["anna smith", "john doe"] * 10,
    ...                      "city": ["berlin", "paris"] * 10})
    >>> right = pd.DataFrame({"name": ["ana smith", "jane roe"] * 10,
    ...                       "city": ["berlin", "rome"] * 10})
    >>> clf = RecordPairClassifier(max_epochs=5, random_state=0)
    >>> clf = clf.fit(left, right, [1, 0] * 10)
    >>> pairs = dd.from_pandas(pair_frame(left, right), npartitions=2)
    >>> skrecordpair.dask.predict(clf, pairs).compute().head(3).tolist()
    [1, 0, 1]
    """
    _check_input(clf, X)
    classes = np.asarray(clf.classes_)
    dtype = object if classes.dtype.kind == "U" else classes.dtype
    meta = pd.Series(np.empty(0, dtype=dtype), name=name, index=X._meta.index)
    node = _model_node(clf, model, client)
    return X.map_partitions(
        _predict_partition, node, name, meta=meta, align_dataframes=False
    )


def link(
    left, right, blocker, classifier, threshold=None, *, batch_size=20_000, client=None
):
    """Match the records of a dask DataFrame against a table, partition by partition.

    :func:`skrecordpair.link` for a left table too large for one process:
    a clone of `blocker` is fitted on `right` once, here, and travels with
    `right` and the classifier to each worker once (or, with `client`, is
    broadcast to every worker); each partition of `left` then gets its
    candidates, its pair frames and their scores in its own task, and keeps
    its matches. No step gathers the left records or the candidate pairs in
    one process. A record's candidates and a pair's probability do not
    depend on the other records, so the matches equal those of
    :func:`skrecordpair.link` on the whole table, in the same order
    (``link(left.compute(), right, ...)``; one-to-one matching needs all the
    pairs at once: apply it to the computed result).

    Parameters
    ----------
    left : dask.dataframe.DataFrame
        The records to look up, indexed by unique record ids, in any number
        of partitions; each partition's ids are checked for duplicates when
        it is computed, and with known divisions (a sorted index, e.g.
        ``set_index("id")``) ids cannot repeat across partitions either.
    right : pandas.DataFrame
        The table to search, indexed by unique record ids. Its index (the
        fitted blocker) and its records go to every worker, so it must fit
        in one worker's memory.
    blocker : estimator
        The candidate generator, as for :func:`skrecordpair.link`; it is
        cloned and fitted on `right`.
    classifier : fitted classifier
        A fitted binary classifier of pair frames, as for
        :func:`skrecordpair.link`: a
        :class:`~skrecordpair.RecordPairClassifier`, or a ``Pipeline`` of
        :class:`~skrecordpair.SimilarityFeatures` and a gradient boosting
        classifier.
    threshold : float or None, default=None
        As for :func:`skrecordpair.link`.
    batch_size : int, default=20_000
        Candidate pairs scored per ``predict_proba`` call within a partition.
    client : distributed.Client, default=None
        If given, the fitted blocker, `right` and the classifier are first
        broadcast to all its workers.

    Returns
    -------
    dask.dataframe.DataFrame
        The matched pairs, columns ``left_id``, ``right_id``, ``similarity``
        and ``probability``, one partition per partition of `left`, each
        sorted as :func:`skrecordpair.link` sorts (a fresh ``RangeIndex``
        per partition). Nothing runs until you call ``.compute()``,
        ``.to_parquet(...)``, etc.

    Raises
    ------
    TypeError
        If `left` is not a dask DataFrame or `right` not a pandas DataFrame.
    ValueError
        As :func:`skrecordpair.link`; also if `left` has unknown divisions
        (its ids could repeat across partitions unseen: ``set_index`` on the
        id column sorts them and makes the divisions known) or `right` is
        empty. A partition whose ids repeat raises when it is computed.

    Examples
    --------
    >>> import dask.dataframe as dd
    >>> import pandas as pd
    >>> from sklearn.dummy import DummyClassifier
    >>> import skrecordpair.dask
    >>> from skrecordpair import NearestNeighborBlocker, pair_frame
    >>> left = pd.DataFrame({"name": ["anna smith", "john doe"]}, index=["l1", "l2"])
    >>> right = pd.DataFrame({"name": ["ana smith", "jon doe", "jane roe"]},
    ...                      index=["r1", "r2", "r3"])
    >>> clf = DummyClassifier(strategy="prior").fit(
    ...     pair_frame(left.iloc[[0, 0, 0, 1]], right.iloc[[0, 1, 2, 1]]), [1, 1, 1, 0])
    >>> matches = skrecordpair.dask.link(
    ...     dd.from_pandas(left, npartitions=2), right, NearestNeighborBlocker(k=1), clf)
    >>> matches.compute().reset_index(drop=True)
      left_id right_id  similarity  probability
    0      l1       r1    0.939...         0.75
    1      l2       r2    0.775...         0.75
    """
    _, dd = _require_dask()
    if not isinstance(left, dd.DataFrame):
        raise TypeError(
            "skrecordpair.dask.link() expects left as a dask.dataframe.DataFrame of "
            f"records; got {type(left).__name__}. Match pandas tables with "
            "skrecordpair.link()."
        )
    _require_known_divisions(left, "skrecordpair.dask.link()", "left")
    check_record_table(right, "skrecordpair.dask.link()", "right")
    positive = _positive_column(classifier, "skrecordpair.dask.link()")
    decision = _decision(classifier, threshold)
    fitted = _fitted_columns(
        classifier, "skrecordpair.dask.link()", left=left._meta, right=right
    )
    if len(right) == 0:
        raise ValueError(
            "skrecordpair.dask.link() got an empty right table: there is nothing to "
            "match; skrecordpair.link() returns no pairs for it."
        )
    index = clone(blocker).fit(right)
    shared = _shipped((index, right[fitted["right"]], classifier), client)
    meta = _link_partition(
        left._meta,
        index,
        right[fitted["right"]],
        classifier,
        fitted["left"],
        positive,
        decision,
        batch_size,
    )
    return left.map_partitions(
        _link_partition,
        *shared,
        fitted["left"],
        positive,
        decision,
        batch_size,
        meta=meta,
        align_dataframes=False,
    )


def _link_partition(
    part, index, right, classifier, columns, positive, decision, batch_size
):
    """The matches of one partition of the left table (see :func:`link`)."""
    check_record_table(part, "skrecordpair.dask.link()", "a partition of left")
    candidates = index.candidates(part)
    matches, left_pos, _ = match_candidates(
        candidates,
        part[columns],
        right,
        classifier,
        positive,
        decision,
        batch_size,
        Progress(0, "link"),
    )
    order = np.lexsort((-matches["probability"].to_numpy(), left_pos))
    return matches.iloc[order].reset_index(drop=True)[MATCH_COLUMNS]


def deduplicate(
    table,
    blocker,
    classifier,
    threshold=None,
    *,
    batch_size=20_000,
    client=None,
    return_pairs=False,
):
    """Cluster the records of a dask DataFrame into entities, partition by partition.

    :func:`skrecordpair.deduplicate` for a table in partitions:

    1. a clone of `blocker` (a :class:`~skrecordpair.NearestNeighborBlocker`)
       is fitted on the table, in this process, and travels to each worker
       once; each partition proposes its records' candidates
       (:meth:`~skrecordpair.NearestNeighborBlocker.candidates_within`), and
       a pair proposed from two partitions is kept once (a shuffle);
    2. the pairs are joined to their two records on the workers and scored
       with ``classifier.predict_proba``, partition by partition;
    3. the matched pairs are the edges of a graph whose connected components
       are the entities, found by label propagation (each record takes the
       smallest id among its neighbours' labels, then its label's label, until
       no label changes), each round a join and a group-by on the workers.

    Only the blocker's fit sees every record: its index (the TF-IDF vectors
    of the records' text) must fit in one process, as :func:`link`'s right
    table must. The candidate pairs, the pair frames, the scores and the
    edges are never gathered. The entities are those of
    :func:`skrecordpair.deduplicate` on the whole table (and so are the
    matched pairs, to float32 rounding of a network's probabilities).

    Parameters
    ----------
    table : dask.dataframe.DataFrame
        The records, indexed by unique record ids with known divisions (a
        sorted index: ``set_index("id")``).
    blocker : NearestNeighborBlocker
        The candidate generator; it is cloned and fitted on `table`.
    classifier : fitted classifier
        A fitted binary classifier of pair frames, as for
        :func:`skrecordpair.deduplicate`.
    threshold : float or None, default=None
        As for :func:`skrecordpair.deduplicate`.
    batch_size : int, default=20_000
        Candidate pairs scored per ``predict_proba`` call within a partition.
    client : distributed.Client, default=None
        If given, the fitted blocker and the classifier are first broadcast to
        all its workers.
    return_pairs : bool, default=False
        Also return the matched pairs.

    Returns
    -------
    clusters : dask.dataframe.Series
        For every record (indexed by its id), its entity: the smallest record
        id of the entity, so two records share a value exactly when
        :func:`skrecordpair.deduplicate` puts them in one cluster (which
        numbers the entities 0, 1, ... instead). Computed once the
        propagation has converged; its partitions need not be the table's.
    pairs : dask.dataframe.DataFrame
        Only with `return_pairs`: the matched pairs, columns ``left_id``,
        ``right_id``, ``similarity`` and ``probability``.

    Raises
    ------
    TypeError
        If `table` is not a dask DataFrame, or `blocker` has no
        ``candidates_within``.
    ValueError
        As :func:`skrecordpair.deduplicate`, and if `table` has unknown
        divisions or repeats an id.

    Examples
    --------
    >>> import dask.dataframe as dd
    >>> import pandas as pd
    >>> from sklearn.dummy import DummyClassifier
    >>> import skrecordpair.dask
    >>> from skrecordpair import NearestNeighborBlocker, pair_frame
    >>> table = pd.DataFrame({"name": ["anna smith", "john doe", "ana smith"]},
    ...                      index=["a", "b", "c"])
    >>> clf = DummyClassifier(strategy="prior").fit(
    ...     pair_frame(table.iloc[[0, 0, 0, 1]], table.iloc[[1, 2, 1, 2]]),
    ...     [1, 1, 1, 0])
    >>> clusters = skrecordpair.dask.deduplicate(
    ...     dd.from_pandas(table, npartitions=2), NearestNeighborBlocker(k=1), clf)
    >>> clusters.compute().sort_index().tolist()
    ['a', 'b', 'a']
    """
    dask, dd = _require_dask()
    caller = "skrecordpair.dask.deduplicate()"
    if not isinstance(table, dd.DataFrame):
        raise TypeError(
            f"{caller} expects table as a dask.dataframe.DataFrame of records; got "
            f"{type(table).__name__}. Deduplicate a pandas table with "
            "skrecordpair.deduplicate()."
        )
    _require_known_divisions(table, caller, "table")
    if not hasattr(blocker, "candidates_within"):
        raise TypeError(
            f"{caller} needs a blocker that proposes candidates piece by piece "
            "(candidates_within), such as NearestNeighborBlocker; got "
            f"{type(blocker).__name__}."
        )
    positive = _positive_column(classifier, caller)
    decision = _decision(classifier, threshold)
    fitted = _fitted_columns(classifier, caller, table=table._meta)
    records = table.compute()
    check_record_table(records, caller, "table")
    ids = table.index.to_series()
    if len(records) == 0:
        clusters = ids.rename("cluster")
        return (clusters, _no_pairs_frame(table)) if return_pairs else clusters
    index = clone(blocker).fit(records)
    del records
    index_node, model_node = _shipped((index, classifier), client)
    # The ids were checked on the whole table above.
    candidates = ids.map_partitions(
        _candidates_partition,
        index_node,
        meta=_no_pairs_frame(table)[["left_id", "right_id", "similarity"]],
        align_dataframes=False,
    )
    # A pair proposed from two partitions once, with its largest similarity.
    candidates = (
        candidates.groupby(["left_id", "right_id"], sort=False)["similarity"]
        .max(split_out=max(table.npartitions, 1))
        .reset_index()
    )
    sides = (
        table[fitted["left"]].add_prefix("left_"),
        table[fitted["right"]].add_prefix("right_"),
    )
    pairs = candidates.merge(sides[0], left_on="left_id", right_index=True).merge(
        sides[1], left_on="right_id", right_index=True
    )
    columns = [*sides[0].columns, *sides[1].columns]
    matches = pairs.map_partitions(
        _score_partition,
        model_node,
        columns,
        positive,
        decision,
        batch_size,
        meta=_no_pairs_frame(table),
        align_dataframes=False,
    )
    # Shuffles take their method from the configuration when the graph is
    # lowered, here at persist and compute (joins ignore shuffle_method); the
    # clusters' final set_index, computed by the caller, names it.
    with dask.config.set({"dataframe.shuffle.method": SHUFFLE}):
        matches = client.persist(matches) if client is not None else matches.persist()
        clusters = _connected_components(ids, matches[["left_id", "right_id"]], client)
    return (clusters, matches) if return_pairs else clusters


def _require_known_divisions(frame, caller, name):
    if not frame.known_divisions:
        raise ValueError(
            f"{caller} needs {name} with known divisions, so that a record id cannot "
            "appear in two partitions; got a dask DataFrame whose divisions are "
            f"unknown. Index it by its ids with {name}.set_index('id') (or "
            "dd.from_pandas(table, sort=True))."
        )


def _shipped(objects, client):
    """`objects` as graph nodes: broadcast to every worker with `client`, or
    each one task that the partitions' tasks depend on (so each travels to a
    worker once, not once per partition)."""
    if client is not None:
        return tuple(client.scatter(x, broadcast=True, hash=False) for x in objects)
    dask, _ = _require_dask()
    return tuple(dask.delayed(x, pure=False, traverse=False) for x in objects)


def _no_pairs_frame(table):
    ids = table._meta.index
    return pd.DataFrame(
        {
            "left_id": pd.Series(ids[:0], dtype=ids.dtype),
            "right_id": pd.Series(ids[:0], dtype=ids.dtype),
            "similarity": pd.Series(dtype=np.float64),
            "probability": pd.Series(dtype=np.float64),
        }
    )


def _candidates_partition(ids, index):
    return index.candidates_within(ids.index)


def _score_partition(part, classifier, columns, positive, decision, batch_size):
    """The matched pairs among the scored pairs of one partition."""
    X = part[columns]
    X.index = pd.MultiIndex.from_arrays(
        [part["left_id"], part["right_id"]], names=PAIR_INDEX_NAMES
    )
    proba = np.empty(len(X), dtype=np.float64)
    for start in range(0, len(X), batch_size):
        batch = X.iloc[start : start + batch_size]
        proba[start : start + batch_size] = np.asarray(classifier.predict_proba(batch))[
            :, positive
        ]
    keep = kept(proba, decision, Progress(0, "deduplicate"))
    out = part[["left_id", "right_id", "similarity"]].assign(probability=proba)[keep]
    return out.reset_index(drop=True)


def _connected_components(ids, edges, client):
    """The smallest id of each record's connected component, by label
    propagation over `edges` (``left_id``, ``right_id``) on the workers."""
    _, dd = _require_dask()

    def persisted(frame):
        return client.persist(frame) if client is not None else frame.persist()

    labels = persisted(ids.to_frame("label").assign(node=ids)[["node", "label"]])
    labels = labels.reset_index(drop=True)
    while True:
        ends = edges.merge(
            labels.rename(columns={"node": "left_id", "label": "a"}), on="left_id"
        ).merge(
            labels.rename(columns={"node": "right_id", "label": "b"}), on="right_id"
        )
        ends = ends.map_partitions(
            _smaller_end,
            meta=ends._meta[["left_id", "right_id"]].assign(offer=ends._meta["a"]),
        )
        offers = dd.concat(
            [
                ends[["left_id", "offer"]].rename(columns={"left_id": "node"}),
                ends[["right_id", "offer"]].rename(columns={"right_id": "node"}),
            ]
        )
        best = (
            offers.groupby("node")["offer"]
            .min(split_out=labels.npartitions)
            .reset_index()
        )
        new = labels.merge(best, on="node", how="left").map_partitions(
            _take_offer, meta=labels._meta
        )
        # Pointer jumping: a record takes its label's label (shortens chains).
        new = new.merge(
            new.rename(columns={"node": "label", "label": "jump"}), on="label"
        )[["node", "jump"]].rename(columns={"jump": "label"})
        new = persisted(new)
        compared = new.merge(labels.rename(columns={"label": "old"}), on="node")
        changed = int((compared["label"] != compared["old"]).sum().compute())
        labels = new
        if changed == 0:
            return labels.set_index("node", shuffle_method=SHUFFLE)["label"].rename(
                "cluster"
            )


def _smaller_end(f):
    a, b = f["a"].to_numpy(), f["b"].to_numpy()
    return f[["left_id", "right_id"]].assign(offer=np.where(b < a, b, a))


def _take_offer(f):
    label = f["label"].to_numpy(copy=True)
    offer = f["offer"].to_numpy()
    has = ~pd.isna(offer)
    mine, theirs = label[has], offer[has]
    label[has] = np.where(theirs < mine, theirs, mine)
    return pd.DataFrame(
        {
            "node": f["node"],
            "label": pd.Series(label, index=f.index).astype(f["label"].dtype),
        }
    )
