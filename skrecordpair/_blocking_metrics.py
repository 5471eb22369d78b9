"""Quality of a candidate set: pair completeness and reduction ratio."""

from __future__ import annotations

import numbers

import numpy as np
import pandas as pd

from ._pairs import require_columns
from ._validation import POSITIVE, Interval, checked, validate_params

__all__ = ["pair_completeness", "reduction_ratio"]


@checked({"deduplicate": ["boolean"]})
def pair_completeness(candidates, true_pairs, *, deduplicate=False):
    """Share of the true matching pairs that are among the candidates.

    Pair completeness is the recall of blocking: a true match missing from the
    candidates can never be found by the classifier that scores them.

    Parameters
    ----------
    candidates : pandas.DataFrame, pandas.MultiIndex or list of tuple
        The candidate pairs: a frame with ``left_id`` and ``right_id``
        columns (as returned by
        :meth:`NearestNeighborBlocker.candidates`), a two-level MultiIndex
        (as returned by :mod:`recordlinkage` indexers) or ``(left_id,
        right_id)`` tuples.
    true_pairs : pandas.DataFrame, pandas.MultiIndex or list of tuple
        The true matching pairs, in any of the same forms. Repeated pairs
        count once.
    deduplicate : bool, default=False
        Whether the pairs are unordered, i.e. both come from one table: then
        ``(a, b)`` and ``(b, a)`` are the same pair, and pairs ``(a, a)`` are
        ignored.

    Returns
    -------
    float
        ``|candidates ∩ true_pairs| / |true_pairs|``, between 0 and 1.

    Raises
    ------
    ValueError
        If there is no true pair, or an input has the wrong shape.
    TypeError
        If the ids of one side are of different types in the two inputs
        (e.g. strings among the candidates and integers among the true
        pairs), which no pair could ever match.

    See Also
    --------
    reduction_ratio : Share of all pairs that the candidates rule out.

    Examples
    --------
    >>> import pandas as pd
    >>> from skrecordpair import pair_completeness
    >>> candidates = pd.DataFrame({"left_id": [1, 1, 2], "right_id": ["a", "b", "c"],
    ...                            "similarity": [0.9, 0.5, 0.7]})
    >>> pair_completeness(candidates, [(1, "a"), (2, "b")])
    0.5
    >>> pair_completeness([(1, 2)], [(2, 1)], deduplicate=True)
    1.0
    """
    cand = _pair_index(candidates, "candidates", deduplicate)
    true = _pair_index(true_pairs, "true_pairs", deduplicate)
    _check_id_types(cand, true, deduplicate)
    if len(true) == 0:
        raise ValueError(
            "pair_completeness() needs at least one true pair; got none (after "
            "removing repeated pairs and, with deduplicate=True, self-pairs)."
        )
    return float(true.isin(cand).sum() / len(true))


@checked({"n_left": [POSITIVE], "n_right": [POSITIVE, None]})
def reduction_ratio(candidates, n_left, n_right=None):
    """Share of all possible pairs that the candidates rule out.

    Parameters
    ----------
    candidates : pandas.DataFrame, pandas.MultiIndex or list of tuple
        The candidate pairs, as for :func:`pair_completeness`. Repeated pairs
        count once.
    n_left : int
        Number of records of the left table, or of the one table when
        deduplicating.
    n_right : int or None, default=None
        Number of records of the right table. None means deduplication of one
        table of `n_left` records, whose pairs are unordered and never pair a
        record with itself: ``n_left * (n_left - 1) / 2`` pairs in all, and
        ``(a, b)`` and ``(b, a)`` are one candidate.

    Returns
    -------
    float
        ``1 - n_candidates / n_pairs``.

    Raises
    ------
    ValueError
        If a table size is not a positive integer (at least 2 when
        deduplicating), or there are more distinct candidates than pairs.

    See Also
    --------
    pair_completeness : Share of the true matches among the candidates.

    Examples
    --------
    >>> from skrecordpair import reduction_ratio
    >>> reduction_ratio([(1, "a"), (2, "b")], n_left=2, n_right=10)
    0.9
    >>> reduction_ratio([(1, 2), (2, 1)], n_left=5)
    0.9
    """
    deduplicate = n_right is None
    if deduplicate:  # one record makes no pair
        validate_params(
            {"n_left": [Interval(numbers.Integral, 2, None, closed="left")]},
            {"n_left": n_left},
        )
    total = n_left * (n_left - 1) // 2 if deduplicate else n_left * n_right
    n_candidates = len(_pair_index(candidates, "candidates", deduplicate))
    if n_candidates > total:
        raise ValueError(
            f"There are {n_candidates} distinct candidate pairs but only {total} "
            f"possible pairs for n_left={n_left} and n_right={n_right}; are the "
            "table sizes right?"
        )
    return float(1.0 - n_candidates / total)


# Kinds of ids (pandas.api.types.infer_dtype) that compare equal by value.
_NUMBER_KINDS = {"integer", "integer-na", "floating", "mixed-integer-float", "decimal"}
# Kinds that hold ids of several types: compared as they are.
_MIXED_KINDS = {"mixed", "mixed-integer", "unknown-array", "empty"}


def _check_id_types(cand, true, deduplicate):
    """Refuse to compare ids of different types, e.g. "1" and 1: they never match."""
    for level, side in enumerate(("left", "right")):
        kinds = []
        for pairs in (true, cand):
            values = pairs.levels[level]
            kind = pd.api.types.infer_dtype(values, skipna=True)
            kinds.append(
                (
                    kind,
                    "number" if kind in _NUMBER_KINDS else kind,
                    values[0] if len(values) else None,
                )
            )
        (
            (true_kind, true_family, true_example),
            (cand_kind, cand_family, cand_example),
        ) = kinds
        if (
            true_family != cand_family
            and true_kind not in _MIXED_KINDS
            and cand_kind not in _MIXED_KINDS
        ):
            which = "" if deduplicate else f"{side} "
            raise TypeError(
                "pair_completeness() compares ids by value, so the candidates and "
                f"the true pairs must use ids of the same type; the {which}ids of "
                f"true_pairs are {true_kind} (e.g. {true_example!r}) but those of "
                f"candidates are {cand_kind} (e.g. {cand_example!r}). Convert one "
                "of them, e.g. with .astype(str)."
            )


def _pair_index(pairs, name, deduplicate):
    """Distinct pairs as a two-level MultiIndex; ordered ``(min, max)`` if unordered."""
    if isinstance(pairs, pd.DataFrame):
        require_columns(pairs, ("left_id", "right_id"), name)
        left, right = pairs["left_id"].to_numpy(), pairs["right_id"].to_numpy()
    elif isinstance(pairs, pd.MultiIndex):
        if pairs.nlevels != 2:
            raise ValueError(
                f"{name} as a MultiIndex must have two levels (left id, right id); "
                f"got {pairs.nlevels}."
            )
        left = pairs.get_level_values(0).to_numpy()
        right = pairs.get_level_values(1).to_numpy()
    else:
        try:
            pairs = list(pairs)
        except TypeError:
            raise TypeError(
                f"{name} must be a DataFrame with left_id and right_id columns, a "
                f"two-level MultiIndex or a list of (left_id, right_id) tuples; got "
                f"{type(pairs).__name__}."
            ) from None
        bad = next(
            (p for p in pairs if not isinstance(p, (tuple, list)) or len(p) != 2), None
        )
        if bad is not None:
            raise ValueError(
                f"{name} as a list must hold (left_id, right_id) pairs; got the "
                f"entry {bad!r}."
            )
        left = np.array([p[0] for p in pairs], dtype=object)
        right = np.array([p[1] for p in pairs], dtype=object)
    if deduplicate:
        keep = pd.Series(left, dtype=object).ne(pd.Series(right, dtype=object))
        keep = keep.to_numpy()
        left, right = left[keep], right[keep]
        # Order each pair with a total order on the ids (their repr when the
        # ids are not comparable with each other).
        try:
            swap = np.array([a > b for a, b in zip(left, right)], dtype=bool)
        except TypeError:
            swap = np.array(
                [repr(a) > repr(b) for a, b in zip(left, right)], dtype=bool
            )
        left, right = np.where(swap, right, left), np.where(swap, left, right)
    return pd.MultiIndex.from_arrays(
        [pd.Index(left, dtype=object), pd.Index(right, dtype=object)]
    ).unique()
