"""Training pairs that look like what ``link`` scores: the blocker's other
candidates of each record with a known match, labelled non-matches.

Labelled pairs usually come from somewhere else than the blocker that ``link``
uses (another candidate generator, a sample, a benchmark's split). A model
fitted on them never sees the near misses that the blocker proposes (a laptop
case and a flash drive of the same brand) and calls many of them matches. In a
task where a left record matches at most one right record, a left record with a
known match is not a match of its other candidates: those pairs are free
non-matches of exactly the kind ``link`` will score.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import clone

from ._blocking import NearestNeighborBlocker, check_record_table
from ._pairs import as_text, require_columns
from ._validation import checked

__all__ = ["add_candidate_nonmatches", "near_miss_pairs"]

LABEL_COLUMNS = ["left_id", "right_id", "label"]


@checked({"one_to_one": ["boolean"]})
def add_candidate_nonmatches(
    left, right, labels, blocker, *, one_to_one=False, pos_label=None, neg_label=None
):
    """Add the blocker's other candidates of each matched left record as non-matches.

    For every left record with exactly one labelled match, a clone of
    `blocker` (fitted on `right`) proposes its candidates; those that are not
    its match and carry no label yet are appended with the non-match label.

    This encodes an assumption, which the caller makes by calling it: **a left
    record matches at most one right record** (the right table holds no
    duplicates), as in most linkage of two deduplicated sources. Left records
    with several labelled matches contradict it, so their candidates are left
    out. With `one_to_one`, also **a right record matches at most one left
    record** (the left table holds no duplicates either): every left record
    whose candidates include a right record with exactly one labelled match
    gets that pair as a non-match too, so the model also sees the records
    whose own match is missing from the right table.

    Where the assumption is false (a right table with duplicates, a benchmark
    whose labels call some same-entity pairs non-matches), the added pairs
    teach the model wrong answers: measure with and without.

    Parameters
    ----------
    left, right : pandas.DataFrame
        The two tables, one record per row, indexed by unique record ids: the
        tables that :func:`~skrecordpair.link` will match.
    labels : pandas.DataFrame
        The labelled pairs, with the columns ``left_id`` (an index label of
        `left`), ``right_id`` (of `right`) and ``label``, as
        :func:`~skrecordpair.read_labels` returns them. Unsure labels (NaN)
        are kept as they are and never count as a match.
    blocker : estimator
        The candidate generator that :func:`~skrecordpair.link` will use, such
        as :class:`~skrecordpair.NearestNeighborBlocker`. It is cloned.
    one_to_one : bool, default=False
        Whether to also assume that a right record matches at most one left
        record, and add the other candidate pairs of matched right records
        (this queries the blocker with the whole left table).
    pos_label : scalar or None, default=None
        The label of a match. None infers it as scikit-learn's metrics do: 1
        for the labels {0, 1} or {-1, 1}, True for {False, True}.
    neg_label : scalar or None, default=None
        The label given to the added pairs. None uses the other class of
        ``labels["label"]``, or 0 / -1 / False next to a lone 1 / True.

    Returns
    -------
    pandas.DataFrame
        `labels`' three columns followed by the added pairs (columns
        ``left_id``, ``right_id``, ``label``), with a fresh index. Fit a
        classifier on it with
        ``clf.fit(left.loc[out.left_id], right.loc[out.right_id], out.label)``.

    Raises
    ------
    TypeError
        If a table or `labels` is not a DataFrame.
    ValueError
        If `labels` lacks a column, names ids that are not in the tables, or
        its classes do not say which one is the match.

    See Also
    --------
    link : Match two tables end to end.
    ActiveLearner : Choose the pairs worth labelling among the candidates.

    Examples
    --------
    >>> import pandas as pd
    >>> from skrecordpair import NearestNeighborBlocker, add_candidate_nonmatches
    >>> left = pd.DataFrame({"name": ["anna smith", "john doe"]}, index=["l1", "l2"])
    >>> right = pd.DataFrame({"name": ["ana smith", "anna smyth", "jon doe"]},
    ...                      index=["r1", "r2", "r3"])
    >>> labels = pd.DataFrame({"left_id": ["l1"], "right_id": ["r1"], "label": [1]})
    >>> add_candidate_nonmatches(left, right, labels, NearestNeighborBlocker(k=2))
      left_id right_id  label
    0      l1       r1      1
    1      l1       r2      0
    """
    for name, table in (("left", left), ("right", right)):
        check_record_table(table, "add_candidate_nonmatches()", name)
    labels = _check_labels(labels, left, right)
    pos_label, neg_label = _match_labels(labels["label"], pos_label, neg_label)
    is_match = (labels["label"] == pos_label).to_numpy()
    matches = labels[is_match]
    single_left = _matched_once(matches, "left_id")
    if one_to_one:
        single_right = _matched_once(matches, "right_id")
        candidates = clone(blocker).fit(right).candidates(left)
        candidates = candidates[
            candidates["left_id"].isin(single_left)
            | candidates["right_id"].isin(single_right)
        ]
    elif len(single_left):
        candidates = clone(blocker).fit(right).candidates(left.loc[single_left])
    else:
        return labels.reset_index(drop=True)
    # Drop the known matches and every pair that already carries a label.
    known = pd.MultiIndex.from_frame(labels[["left_id", "right_id"]])
    proposed = pd.MultiIndex.from_frame(candidates[["left_id", "right_id"]])
    new = candidates.loc[~proposed.isin(known), ["left_id", "right_id"]]
    new = new.assign(label=np.full(len(new), neg_label, dtype=object))
    out = pd.concat([labels, new], ignore_index=True)
    out["label"] = out["label"].astype(labels["label"].dtype, errors="ignore")
    return out


def _matched_once(matches, side):
    """The ids of `side` with exactly one labelled match (a pair labelled
    twice is one match)."""
    distinct = matches.drop_duplicates(["left_id", "right_id"])
    per_record = distinct.groupby(side, sort=False).size()
    return per_record.index[per_record.to_numpy() == 1]


def _check_labels(labels, left, right):
    if not isinstance(labels, pd.DataFrame):
        raise TypeError(
            "add_candidate_nonmatches() expects labels as a DataFrame with the columns "
            f"{LABEL_COLUMNS}; got {type(labels).__name__}."
        )
    require_columns(
        labels, LABEL_COLUMNS, "The labels passed to add_candidate_nonmatches()"
    )
    labels = labels[LABEL_COLUMNS]
    for side, table in (("left", left), ("right", right)):
        ids = labels[f"{side}_id"]
        unknown = ids[~ids.isin(table.index)].unique()
        if len(unknown):
            raise ValueError(
                f"{len(unknown)} {side}_id value(s) of the labels are not index labels "
                f"of the {side} table, e.g. {unknown[:5].tolist()}; the ids must be the "
                f"tables' index labels (read them with index_col=...)."
            )
    return labels


def _match_labels(y, pos_label, neg_label):
    classes = pd.unique(y.dropna())
    if pos_label is None:
        known = set(classes.tolist())
        if known <= {0, 1} or known <= {-1, 1}:
            pos_label = (
                True
                if known <= {False, True}
                and any(isinstance(c, (bool, np.bool_)) for c in classes)
                else 1
            )
        else:
            raise ValueError(
                f"Which label is the match is not known for the labels "
                f"{sorted(map(str, classes))}; pass pos_label."
            )
    if neg_label is None:
        others = [c for c in classes if c != pos_label]
        if len(others) == 1:
            neg_label = others[0]
        elif not others and pos_label in (1, True):
            neg_label = False if isinstance(pos_label, (bool, np.bool_)) else 0
        else:
            raise ValueError(
                f"The non-match label is not known for the labels "
                f"{sorted(map(str, classes))} with pos_label={pos_label!r}; pass "
                "neg_label."
            )
    return pos_label, neg_label


def near_miss_pairs(X, is_match, fields):
    """The blocker's near misses among the records of the training pairs `X`.

    What :class:`~skrecordpair.RecordPairClassifier` adds to its training
    pairs with ``candidate_nonmatches``: :func:`add_candidate_nonmatches`
    with the default :class:`~skrecordpair.NearestNeighborBlocker`, where the
    two tables are the distinct left and right records of `X` (a record is
    its values: pair frames carry no record ids).

    Parameters
    ----------
    X : pandas.DataFrame
        The training pair frame.
    is_match : numpy.ndarray of bool, shape (n_pairs,)
        Whether each pair of `X` is labelled a match.
    fields : list of Field
        The resolved fields; those with a column on both sides are compared.

    Returns
    -------
    pandas.DataFrame
        The pairs to add as non-matches, with `X`'s columns (no pair of
        identical records, none already in `X`), possibly empty. When there
        are more than the pairs of `X`, each left record keeps its nearest
        ones only, as many for every record, so that they number at most
        ``len(X)`` (at least one per record).
    """
    paired = [f for f in fields if f.left is not None and f.right is not None]
    if not paired or not is_match.any():
        return X.iloc[:0]
    names = [f.name for f in paired]
    left_columns = [c for c in X.columns if c not in {f.right for f in fields}]
    right_columns = [f.right for f in fields if f.right is not None]
    left_rows, left = _distinct(X, [f.left for f in paired], names, left_columns)
    right_rows, right = _distinct(X, [f.right for f in paired], names, right_columns)
    labels = pd.DataFrame(
        {
            "left_id": left_rows.codes,
            "right_id": right_rows.codes,
            "label": is_match.astype(int),
        }
    )
    added = add_candidate_nonmatches(
        left, right, labels, NearestNeighborBlocker(), pos_label=1, neg_label=0
    ).iloc[len(labels) :]
    # A pair of two identical records is never a non-match, whatever the
    # labels say about the records' other candidates.
    same = np.column_stack(
        [
            as_text(left[name].to_numpy()[added.left_id.to_numpy()])
            == as_text(right[name].to_numpy()[added.right_id.to_numpy()])
            for name in names
        ]
    )
    added = _nearest(added[~same.all(axis=1)], len(X))
    sides = [
        X[columns].iloc[rows.first[ids.to_numpy()]].reset_index(drop=True)
        for columns, rows, ids in (
            (left_columns, left_rows, added.left_id),
            (right_columns, right_rows, added.right_id),
        )
    ]
    return pd.concat(sides, axis=1)[list(X.columns)]


def _nearest(added, limit):
    """At most `limit` of the `added` pairs: each left record's nearest
    candidates first (the blocker lists them by decreasing similarity), the
    same number for every record, so that training grows at most twofold."""
    if len(added) <= limit:
        return added
    rank = added.groupby("left_id", sort=False).cumcount().to_numpy()
    per_rank = np.bincount(rank)
    keep_ranks = int(np.searchsorted(np.cumsum(per_rank), limit, side="right"))
    return added[rank < max(keep_ranks, 1)]


class _Rows:
    """Each pair's record number (`codes`) and each record's first pair (`first`)."""

    def __init__(self, codes):
        self.codes = codes
        _, self.first = np.unique(codes, return_index=True)


def _distinct(X, compared, names, identity):
    """The distinct records of one side of `X`: a record is the values of its
    `identity` columns; the returned table holds its `compared` columns under
    the field `names`, indexed by record number."""
    hashes = pd.util.hash_pandas_object(X[identity], index=False).to_numpy()
    codes = pd.factorize(hashes)[0]
    rows = _Rows(codes)
    table = X[compared].iloc[rows.first]
    table.columns = names
    table.index = pd.Index(np.arange(len(table)))
    return rows, table
