"""End-to-end workflows: link two tables, deduplicate one table."""

from __future__ import annotations

import numbers
import warnings

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components
from sklearn.base import clone
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from ._blocking import _frame, check_record_table
from ._matcher.classes import positive_index
from ._pairs import id_positions, pairs_at, require_columns
from ._progress import Progress, count, pass_verbose
from ._validation import POSITIVE, Interval, StrOptions, checked

__all__ = ["deduplicate", "link"]

MATCH_COLUMNS = ["left_id", "right_id", "similarity", "probability"]
# Index levels of the pair frames that link and deduplicate score.
# The arguments that link and deduplicate check before any work.
_THRESHOLD = [Interval(numbers.Real, 0, 1, closed="both"), None]
_BATCH_SIZE = [POSITIVE]


@checked(
    {
        "threshold": _THRESHOLD,
        "one_to_one": ["boolean"],
        "batch_size": _BATCH_SIZE,
        "verbose": ["verbose"],
    }
)
def link(
    left,
    right,
    blocker,
    classifier,
    threshold=None,
    *,
    one_to_one=False,
    batch_size=20_000,
    verbose=0,
):
    """Match the records of two tables: blocking, then pair classification.

    1. A clone of `blocker` is fitted on `right` and proposes candidate pairs
       for the records of `left` (see
       :meth:`NearestNeighborBlocker.candidates`);
    2. each candidate is turned into a pair-frame row,
       ``pair_frame(left.loc[left_id], right.loc[right_id])`` indexed by the
       two record ids (a MultiIndex with the levels ``left_id`` and
       ``right_id``), and scored with ``classifier.predict_proba``,
       `batch_size` pairs at a time;
    3. the pairs that the classifier calls a match are kept (or those whose
       match probability is at least `threshold`), and with `one_to_one`
       reduced to a one-to-one matching.

    Parameters
    ----------
    left, right : pandas.DataFrame
        The two tables, one record per row, with unique index labels (the
        record ids). The classifier sees their columns as ``left_<column>``
        and ``right_<column>``.
    blocker : estimator
        The candidate generator, such as
        :class:`~skrecordpair.NearestNeighborBlocker`: an object with
        ``fit(right)`` and ``candidates(left)`` returning ``left_id``,
        ``right_id`` and ``similarity`` columns. It is cloned, so a fitted
        blocker is left untouched (and refitted on `right`).
    classifier : fitted classifier
        A binary classifier of pair frames with ``predict_proba`` and
        ``classes_``, fitted on pairs built the same way, e.g.
        ``make_pipeline(SimilarityFeatures(), HistGradientBoostingClassifier())``
        or a :class:`~skrecordpair.RecordPairClassifier`. The match
        probability is the column of the classifier's ``pos_label`` (the
        parameter of :class:`~skrecordpair.RecordPairClassifier`, or of the
        last step of a pipeline); without one, of 1 for the labels {0, 1} or
        {-1, 1} and of True for {False, True}. Other labels need
        ``pos_label``.
    threshold : float or None, default=None
        Smallest match probability of a returned pair, in [0, 1]; 0 returns
        every scored candidate. None uses the classifier's own decision: the
        pairs whose match probability exceeds its ``threshold_`` (that of a
        :class:`~skrecordpair.RecordPairClassifier`), or 0.5 for a classifier
        without one, so the pairs returned are those that its ``predict``
        calls a match.
    one_to_one : bool, default=False
        Whether each record may appear in at most one returned pair. The
        matching is greedy: pairs are taken by decreasing probability (ties
        by decreasing similarity) and a pair is dropped when either record is
        already matched. Greedy matching costs ``O(n log n)`` and keeps every
        pair that is the best for both of its records; it does not maximise
        the total probability the way an assignment solver would, which
        rarely matters with confident classifiers and scales to any number of
        pairs.
    batch_size : int, default=20_000
        Number of candidate pairs scored per ``predict_proba`` call, which
        bounds the memory of the pair frames.
    verbose : int, default=0
        0 is silent; 1 or more says what each step does (and the blocker
        shows its progress, if it has a `verbose` parameter) and shows a
        progress bar of the candidate pairs scored, batch by batch.

    Returns
    -------
    pandas.DataFrame
        The matched pairs, columns ``left_id``, ``right_id``, ``similarity``
        (the blocker's) and ``probability`` (the classifier's), sorted by the
        position of the left record and decreasing probability.

    Raises
    ------
    TypeError
        If a table is not a DataFrame, or the classifier has no
        ``predict_proba``.
    ValueError
        If `threshold` or `batch_size` is invalid, the classifier is not
        binary, which class is the match is unknown (see ``pos_label``), or
        a table lacks a column that the classifier was fitted on (the
        ``left_<column>`` and ``right_<column>`` of its
        ``feature_names_in_``).
    sklearn.exceptions.NotFittedError
        If the classifier is not fitted.

    See Also
    --------
    deduplicate : Cluster the records of one table.
    NearestNeighborBlocker : The candidate generator.

    Examples
    --------
    >>> import pandas as pd
    >>> from sklearn.dummy import DummyClassifier
    >>> from skrecordpair import NearestNeighborBlocker, link, pair_frame
    >>> left = pd.DataFrame({"name": ["anna smith", "john doe"]}, index=["l1", "l2"])
    >>> right = pd.DataFrame({"name": ["ana smith", "jon doe", "jane roe"]},
    ...                      index=["r1", "r2", "r3"])
    >>> # A stand-in classifier that calls every pair a match with probability 0.75:
    >>> clf = DummyClassifier(strategy="prior").fit(
    ...     pair_frame(left.iloc[[0, 0, 0, 1]], right.iloc[[0, 1, 2, 1]]), [1, 1, 1, 0])
    >>> link(left, right, NearestNeighborBlocker(k=2), clf, one_to_one=True)
      left_id right_id  similarity  probability
    0      l1       r1    0.939...         0.75
    1      l2       r2    0.775...         0.75
    """
    for name, table in (("left", left), ("right", right)):
        check_record_table(table, "link()", name)
    positive = _positive_column(classifier, "link()")
    threshold, strict = _decision(classifier, threshold)
    fitted = _fitted_columns(classifier, "link()", left=left, right=right)
    progress = Progress(verbose, "link")
    with progress.step(
        f"Blocking: {count(len(left))} left records against "
        f"{count(len(right))} right records"
    ):
        if len(right):
            candidates = (
                pass_verbose(clone(blocker), verbose).fit(right).candidates(left)
            )
        else:  # a blocker cannot be fitted on no records, and there is no pair
            candidates = _no_candidates(left.index, right.index)
    matches, left_pos, right_pos = match_candidates(
        candidates,
        left[fitted["left"]],
        right[fitted["right"]],
        classifier,
        positive,
        (threshold, strict),
        batch_size,
        progress,
    )
    if not one_to_one and threshold > 0:  # threshold 0 asks for every candidate
        _warn_many_matches(matches, len(left), len(right))
    if one_to_one:
        chosen = _greedy_one_to_one(
            left_pos,
            right_pos,
            matches["probability"].to_numpy(),
            matches["similarity"].to_numpy(),
        )
        matches, left_pos = matches.iloc[chosen], left_pos[chosen]
    order = np.lexsort((-matches["probability"].to_numpy(), left_pos))
    return matches.iloc[order].reset_index(drop=True)


def match_candidates(
    candidates, left, right, classifier, positive, decision, batch_size, progress
):
    """Score the blocker's `candidates` of `left` in `right` and keep the matches.

    `decision` is ``(threshold, strict)`` from ``_decision``; the tables hold
    the columns the classifier reads. Returns the matched rows of
    `candidates` with their ``probability``, and the positions of their left
    and right records.
    """
    left_pos = id_positions(left, candidates["left_id"], "left")
    right_pos = id_positions(right, candidates["right_id"], "right")
    proba = _score(
        left, left_pos, right, right_pos, classifier, positive, batch_size, progress
    )
    keep = kept(proba, decision, progress)
    matches = candidates.assign(probability=proba)[keep]
    return matches, left_pos[keep], right_pos[keep]


@checked(
    {
        "threshold": _THRESHOLD,
        "batch_size": _BATCH_SIZE,
        "return_pairs": ["boolean", StrOptions({"all"})],
        "verbose": ["verbose"],
    }
)
def deduplicate(
    table,
    blocker,
    classifier,
    threshold=None,
    *,
    batch_size=20_000,
    return_pairs=False,
    verbose=0,
):
    """Cluster the records of one table into entities.

    1. A clone of `blocker` is fitted on `table` and proposes candidate pairs
       within it (``candidates()`` without a table: no self-pairs, each
       unordered pair once, the earlier record on the left);
    2. each pair is scored with ``classifier.predict_proba`` on
       ``pair_frame(table.loc[left_id], table.loc[right_id])``, indexed by the
       two record ids as in :func:`link`;
    3. the records are the nodes of a graph whose edges are the pairs that
       the classifier calls a match (or with match probability at least
       `threshold`), and each connected component is one entity.

    Connected components are the transitive closure of the matches: if a
    matches b and b matches c, all three are one entity even when a and c
    were never compared or were scored as a non-match. This finds every
    record of an entity whose duplicates are only matched in a chain, but a
    single false match merges two entities; raise `threshold` when clusters
    come out too large.

    Parameters
    ----------
    table : pandas.DataFrame
        The records, one per row, with unique index labels (the record ids).
    blocker : estimator
        The candidate generator, such as
        :class:`~skrecordpair.NearestNeighborBlocker`: an object with
        ``fit(table)`` and ``candidates()`` (deduplication mode). It is
        cloned.
    classifier : fitted classifier
        A binary classifier of pair frames, see :func:`link`; the match
        probability is the column of its ``pos_label``.
    threshold : float or None, default=None
        Smallest match probability of an edge, in [0, 1]. None uses the
        classifier's own decision, as in :func:`link`: match probability
        above its ``threshold_``, or above 0.5 without one.
    batch_size : int, default=20_000
        Number of candidate pairs scored per ``predict_proba`` call.
    return_pairs : bool or "all", default=False
        Whether to also return the matched pairs (the edges); ``"all"``
        returns every scored candidate pair instead, matches or not, while
        the clusters are still built from the matches only. Pass ``"all"`` to
        review the uncertain pairs on both sides of the threshold with
        :func:`~skrecordpair.uncertain_pairs`: the matched pairs alone hold
        no uncertain non-match.
    verbose : int, default=0
        0 is silent; 1 or more reports each step, as in :func:`link`.

    Returns
    -------
    clusters : pandas.Series of int
        The entity id of every record, indexed like `table` and named
        ``"cluster"``; ids run from 0 in the order of first appearance, and a
        record without a match is an entity of its own.
    pairs : pandas.DataFrame
        Only with `return_pairs`: the matched pairs (with ``"all"``, every
        scored pair), columns ``left_id``, ``right_id``, ``similarity`` and
        ``probability``.

    Raises
    ------
    TypeError
        If `table` is not a DataFrame or the classifier has no
        ``predict_proba``.
    ValueError
        If `threshold`, `batch_size` or `return_pairs` is invalid, the
        classifier is not binary, which class is the match is unknown (see
        ``pos_label``), or `table` lacks a column that the classifier was
        fitted on.
    sklearn.exceptions.NotFittedError
        If the classifier is not fitted.

    See Also
    --------
    link : Match the records of two tables.

    Examples
    --------
    >>> import pandas as pd
    >>> from sklearn.dummy import DummyClassifier
    >>> from skrecordpair import NearestNeighborBlocker, deduplicate, pair_frame
    >>> table = pd.DataFrame({"name": ["anna smith", "john doe", "ana smith"]})
    >>> # A stand-in classifier that calls every pair a match with probability 0.75:
    >>> clf = DummyClassifier(strategy="prior").fit(
    ...     pair_frame(table.iloc[[0, 0, 0, 1]], table.iloc[[1, 2, 1, 2]]),
    ...     [1, 1, 1, 0])
    >>> # With k=1, "anna smith" and "ana smith" are each other's only candidate.
    >>> deduplicate(table, NearestNeighborBlocker(k=1), clf)
    0    0
    1    1
    2    0
    Name: cluster, dtype: int64
    """
    check_record_table(table, "deduplicate()", "table")
    positive = _positive_column(classifier, "deduplicate()")
    threshold, strict = _decision(classifier, threshold)
    fitted = _fitted_columns(classifier, "deduplicate()", table=table)
    progress = Progress(verbose, "deduplicate")
    with progress.step(f"Blocking: {count(len(table))} records"):
        if len(table):
            candidates = pass_verbose(clone(blocker), verbose).fit(table).candidates()
        else:  # a blocker cannot be fitted on no records, and there is no pair
            candidates = _no_candidates(table.index, table.index)
    a = id_positions(table, candidates["left_id"], "table")
    b = id_positions(table, candidates["right_id"], "table")
    proba = _score(
        table[fitted["left"]],
        a,
        table[fitted["right"]],
        b,
        classifier,
        positive,
        batch_size,
        progress,
    )
    keep = kept(proba, (threshold, strict), progress)
    n = len(table)
    graph = sp.coo_matrix((np.ones(int(keep.sum())), (a[keep], b[keep])), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    _warn_large_clusters(labels, int(keep.sum()))
    clusters = pd.Series(_first_appearance(labels), index=table.index, name="cluster")
    if return_pairs:
        pairs = candidates.assign(probability=proba)
        if return_pairs != "all":
            pairs = pairs[keep]
        return clusters, pairs.reset_index(drop=True)
    return clusters


# ---------------------------------------------------------------- helpers
# Above this share of matched records with several matches, the matching is
# unlikely to be what the task is (see _warn_many_matches).
MANY_MATCHES_SHARE = 0.5


def _warn_many_matches(matches, n_left, n_right):
    """Warn when most matched records of the smaller table have several matches.

    Two tables of distinct entities each (the usual linkage task) have at most
    one match per record; a classifier fitted on pairs from another candidate
    generator than the blocker's calls many near misses matches, and this is
    how that shows.
    """
    side = "left_id" if n_left <= n_right else "right_id"
    counts = matches[side].value_counts()
    several = int((counts > 1).sum())
    if len(counts) >= 10 and several > MANY_MATCHES_SHARE * len(counts):
        name = side.removesuffix("_id")
        warnings.warn(
            f"link() matched {several} of the {len(counts)} matched {name} records "
            f"({several / len(counts):.0%}) with several records of the other table "
            f"({len(matches)} pairs in all). If each record has at most one match "
            "in the other table, pass one_to_one=True; if the classifier was "
            "fitted on pairs from another candidate generator than this blocker, "
            "add the blocker's candidates to its training pairs "
            "(add_candidate_nonmatches) or label some (ActiveLearner).",
            UserWarning,
            stacklevel=4,
        )  # the caller of link, past @checked


def _warn_large_clusters(labels, n_edges):
    """Warn when one entity swallows a large share of the table: a chain of
    false matches merges entities (connected components)."""
    sizes = np.bincount(labels)
    largest = int(sizes.max()) if sizes.size else 0
    if largest > max(50, 0.05 * len(labels)):
        warnings.warn(
            f"deduplicate() put {largest} of the {len(labels)} records in one "
            f"entity ({n_edges} matched pairs in all): a chain of false matches "
            "merges entities. Raise threshold, or fit the classifier also on the "
            "blocker's candidates (ActiveLearner).",
            UserWarning,
            stacklevel=4,
        )  # the caller, past @checked


def _no_candidates(left_index, right_index):
    """The blocker's frame of no candidate pair, with the usual columns and
    the ids' dtypes."""
    none = np.empty(0, dtype=np.int64)
    return _frame(left_index, none, right_index, none, np.empty(0, dtype=np.float64))


def _final_step(classifier):
    # A pipeline predicts with its last step's pos_label and threshold_.
    return classifier.steps[-1][1] if isinstance(classifier, Pipeline) else classifier


def _decision(classifier, threshold):
    """``(threshold, strict)``: the caller's threshold, which a kept pair's
    probability reaches; or the classifier's, which it exceeds, as in its
    ``predict``."""
    if threshold is not None:
        return float(threshold), False
    own = getattr(_final_step(classifier), "threshold_", None)
    return (0.5 if own is None else float(own)), True


def _positive_column(classifier, method):
    """Column of ``predict_proba`` that holds the match probability."""
    if not hasattr(classifier, "predict_proba"):
        raise TypeError(
            "The classifier must have a predict_proba method (a probabilistic "
            f"scikit-learn classifier); got {type(classifier).__name__}."
        )
    check_is_fitted(classifier)
    classes = getattr(classifier, "classes_", None)
    if classes is None or len(classes) != 2:
        raise ValueError(
            "The classifier must be binary (match / non-match) with two classes_; "
            f"got classes_={classes!r}."
        )
    return positive_index(
        classes, getattr(_final_step(classifier), "pos_label", None), method
    )


def kept(proba, decision, progress):
    """Which match probabilities pass `decision`, ``(threshold, strict)`` from
    ``_decision``: above the classifier's own threshold, or at least the
    caller's; `progress` says how many."""
    threshold, strict = decision
    keep = proba > threshold if strict else proba >= threshold
    progress.say(
        f"{count(keep.sum())} of {count(len(keep))} candidate pairs are "
        f"matches (probability {'>' if strict else '>='} {threshold:g})."
    )
    return keep


def _score(left, left_pos, right, right_pos, classifier, column, batch_size, progress):
    proba = np.empty(len(left_pos), dtype=np.float64)
    with progress.bar(len(left_pos), "Scoring candidate pairs") as bar:
        for start in range(0, len(left_pos), batch_size):
            stop = start + batch_size
            X = pairs_at(left, left_pos[start:stop], right, right_pos[start:stop])
            proba[start:stop] = np.asarray(classifier.predict_proba(X))[:, column]
            bar.update(len(X))
    return proba


def _fitted_columns(classifier, caller, **tables):
    """The columns of the tables that the classifier's pair frames hold, per
    side (``{"left": [...], "right": [...]}``): those of its
    ``feature_names_in_`` (``left_<column>``, ``right_<column>``), or every
    column when it has none.

    A column the classifier was fitted on that a table lacks raises a
    ValueError now, rather than after the blocking.
    """
    names = [str(n) for n in getattr(classifier, "feature_names_in_", [])]
    sides = {"left": "left_", "right": "right_"}
    out = {}
    for side, prefix in sides.items():
        name, table = (
            next(iter(tables.items())) if len(tables) == 1 else (side, tables[side])
        )
        if not names or not all(n.startswith(tuple(sides.values())) for n in names):
            out[side] = list(table.columns)
            continue
        expected = [n[len(prefix) :] for n in names if n.startswith(prefix)]
        require_columns(
            table,
            expected,
            f"{name} passed to {caller} (the classifier "
            f"was fitted on {side} records with these columns)",
        )
        out[side] = expected
    return out


def _greedy_one_to_one(left_pos, right_pos, probability, similarity):
    """Positions of the pairs kept by greedy max-probability matching."""
    order = np.lexsort((-similarity, -probability))
    used_left, used_right, chosen = set(), set(), []
    for i in order:
        a, b = left_pos[i], right_pos[i]
        if a in used_left or b in used_right:
            continue
        used_left.add(a)
        used_right.add(b)
        chosen.append(i)
    return np.sort(np.asarray(chosen, dtype=np.int64))


def _first_appearance(labels):
    """Renumber labels 0, 1, ... in the order in which they first appear."""
    _, first = np.unique(labels, return_index=True)
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(first)] = np.arange(len(first))
    return rank[labels]
