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
from sklearn.utils.validation import check_is_fitted

__all__ = ["predict", "predict_proba", "scatter_model"]


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
    dask, _ = _require_dask()
    if model is not None:
        return model
    if client is not None:
        return scatter_model(clf, client)
    # One task holds the model; the partitions' tasks depend on its key.
    return dask.delayed(clf, pure=False, traverse=False)


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
