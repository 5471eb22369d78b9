"""Active learning: from unlabelled tables to a trained matcher with few labels."""

from __future__ import annotations

import numbers
import os
import warnings
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone
from sklearn.cluster import KMeans
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils import check_random_state

from .._blocking import NearestNeighborBlocker, check_record_table
from .._pairs import id_positions, pairs_at, require_columns
from .._progress import Progress, count, pass_verbose
from .._similarity import SimilarityFeatures
from .._validation import POSITIVE, Condition, Interval, checked, validate_params
from .labels_file import LABEL_COLUMNS, append_labels, read_or_create, replay, short

__all__ = ["ActiveLearner", "uncertain_pairs"]


class ActiveLearner(BaseEstimator):
    """Propose the candidate pairs worth labelling, learn from the labels, repeat.

    Starting from two tables (or one, to deduplicate) and no labels, the
    learner blocks the tables once and computes the fast similarity features
    of every candidate pair once. Each round it proposes `batch_size`
    unlabelled candidates; you label them (:meth:`teach`), it refits a cheap
    *proposer* on the similarity features of the labelled pairs
    (:meth:`refit`) and reports how many labels it has and what it estimates
    about precision and recall (:attr:`history_`). When the estimates stop
    moving, :meth:`fit_estimator` trains the final model, by default a
    :class:`~skrecordpair.RecordPairClassifier`, on the labelled pairs.

    Which pairs are proposed:

    - while the labels hold no match and no non-match (the first round), the
      pairs are spread over the blocker's similarity range: equal-width
      bins from the least to the most similar candidate, one pair drawn at
      random from each, so that the first batch already holds likely
      matches (the top bins) and likely non-matches;
    - afterwards, uncertainty with diversity: the ``pool_factor *
      batch_size`` candidates whose match probability is closest to 0.5 are
      grouped into `batch_size` clusters of similar feature vectors
      (:class:`~sklearn.cluster.KMeans`), and the most uncertain pair of each
      cluster is proposed, so that one batch does not spend its labels on
      near-copies of the same question. A share `explore` of each batch can
      be drawn at random among the unlabelled pairs that the proposer calls a
      match, to catch kinds of matches the proposer is sure about and wrong;
      it is 0 by default, which measured better after 300 labels (worse on
      some data sets in the first rounds; see :ref:`start_without_labels`).

    The final model (:meth:`fit_estimator`) learns from the labels and from
    up to `pseudo_labels` candidates that the proposer is sure about, with
    the proposer's answer as their label. The labels alone are a biased
    sample, chosen near the decision boundary and half matches; without the
    sure pairs, a network fitted on a few hundred of them calls far too many
    pairs matches.

    Labels live in a plain CSV file with the header ``left_id,right_id,label``
    (label ``1``, ``0`` or ``unsure``), one pair per line; each label is
    appended and flushed to disk as it is given, so a session killed at any
    point loses nothing, and a new learner on the same file picks up where
    it ends. The file is only ever appended to: :meth:`undo` appends an
    ``undo`` line rather than cutting one, so two learners (two annotators)
    may write into one file at once, and lines added by hand are kept. The
    file can be edited by hand: when a pair appears more than once, its last
    line counts. ``unsure`` pairs are not proposed again and not trained on.
    See :ref:`the labels file <labels-file>` for its format.

    Parameters
    ----------
    blocker : estimator, default=None
        The candidate generator, see :func:`~skrecordpair.link`; cloned.
        None uses ``NearestNeighborBlocker()``.
    estimator : classifier, default=None
        The final model, fitted by :meth:`fit_estimator` on the pair frames of
        the labelled pairs (indexed by ``(left_id, right_id)``) and their
        labels 0/1; cloned. None uses ``RecordPairClassifier()``.
    proposer : classifier, default=None
        The model that proposes pairs and estimates precision and recall,
        refitted every round on the similarity features of the labelled
        pairs; it must have ``predict_proba`` and accept NaN. None uses
        ``HistGradientBoostingClassifier(min_samples_leaf=5)``, which refits
        on a few hundred pairs in a fraction of a second (leaves of 5 rather
        than the default 20 let it split on the first few dozen labels).
    features : transformer, default=None
        Turns pair frames into the proposer's features; fitted once on the
        candidate pairs. None uses ``SimilarityFeatures()``.
    labels : str, path-like or None, default=None
        The labels file. Read by :meth:`fit` if it exists (created with its
        header otherwise); every :meth:`teach` appends to it. None keeps the
        labels in memory only. The file must be a regular file (not a
        FIFO, a device or a directory).
    batch_size : int, default=10
        Number of pairs proposed per round.
    pool_factor : int, default=5
        The uncertain pool that a batch is drawn from holds ``pool_factor *
        batch_size`` pairs.
    explore : float, default=0.0
        Share of each batch drawn at random among the predicted matches.
    pseudo_labels : int, default=3000
        Number of unlabelled candidates, drawn at random among those whose
        proposer probability is at least `pseudo_confidence` or at most
        ``1 - pseudo_confidence``, that :meth:`fit_estimator` adds to the
        labelled pairs with the proposer's answer (1 above 0.5, else 0). They
        are never written to the labels file. 0 trains on the labels alone.
    pseudo_confidence : float, default=0.9
        How sure the proposer must be of a pair for it to be pseudo-labelled,
        in (0.5, 1].
    random_state : int, RandomState instance or None, default=None
        Seed of the random draws and of the clustering.
    verbose : int, default=0
        0 is silent; 1 or more says what :meth:`fit` and
        :meth:`fit_estimator` do, each step with its time, and passes the
        same `verbose` to the blocker and the final model when they have
        one and it is 0 (so the model shows its own progress while it
        trains).

    Attributes
    ----------
    candidates_ : pandas.DataFrame
        The candidate pairs: ``left_id``, ``right_id``, ``similarity`` (the
        blocker's) and ``probability`` (the proposer's match probability,
        NaN before the proposer is fitted).
    features_ : ndarray of shape (n_candidates, n_features)
        The similarity features of the candidates.
    proposer_ : Pipeline or None
        The proposer fitted by the last :meth:`refit`, on the columns of
        :attr:`features_` that hold a value for some labelled pair (a
        pipeline that selects them, then the proposer; it takes rows of
        :attr:`features_`); None while the labels do not hold both a match
        and a non-match.
    history_ : list of dict
        One report per :meth:`refit`, see :meth:`report`.
    estimator_ : classifier
        The final model, after :meth:`fit_estimator`.

    See Also
    --------
    uncertain_pairs : The matches of ``link``/``deduplicate`` worth reviewing.
    RecordPairClassifier : The default final model.

    Examples
    --------
    >>> import pandas as pd
    >>> from skrecordpair import ActiveLearner, NearestNeighborBlocker
    >>> left = pd.DataFrame({"name": ["anna smith", "john doe", "jim beam"]},
    ...                     index=["l1", "l2", "l3"])
    >>> right = pd.DataFrame({"name": ["ana smith", "jon doe", "jane roe"]},
    ...                      index=["r1", "r2", "r3"])
    >>> learner = ActiveLearner(NearestNeighborBlocker(k=2), batch_size=2,
    ...                         random_state=0).fit(left, right)
    >>> batch = learner.propose()
    >>> list(batch.columns)
    ['left_id', 'right_id', 'similarity', 'probability']
    >>> for left_id, right_id in zip(batch.left_id, batch.right_id):
    ...     _ = learner.teach(left_id, right_id, int(left_id[1:] == right_id[1:]))
    >>> learner.refit()["n_labels"]
    2
    """

    # The allowed values of the parameters (scikit-learn's declarations).
    _parameter_constraints: ClassVar[dict] = {
        # The components are cloned and fitted: they check their own parameters.
        "blocker": "no_validation",
        "estimator": "no_validation",
        "proposer": "no_validation",
        "features": "no_validation",
        "labels": [str, os.PathLike, None],
        "batch_size": [POSITIVE],
        "pool_factor": [POSITIVE],
        "explore": [Interval(numbers.Real, 0, 1, closed="both")],
        "pseudo_labels": [Interval(numbers.Integral, 0, None, closed="left")],
        "pseudo_confidence": [Interval(numbers.Real, 0.5, 1, closed="right")],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        blocker=None,
        estimator=None,
        *,
        proposer=None,
        features=None,
        labels=None,
        batch_size=10,
        pool_factor=5,
        explore=0.0,
        pseudo_labels=3000,
        pseudo_confidence=0.9,
        random_state=None,
        verbose=0,
    ):
        self.blocker = blocker
        self.estimator = estimator
        self.proposer = proposer
        self.features = features
        self.labels = labels
        self.batch_size = batch_size
        self.pool_factor = pool_factor
        self.explore = explore
        self.pseudo_labels = pseudo_labels
        self.pseudo_confidence = pseudo_confidence
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------- set-up
    def fit(self, left, right=None, *, exclude=None):
        """Block the tables, compute the candidates' features, read the labels.

        Parameters
        ----------
        left : pandas.DataFrame
            The left table (or the only one, to deduplicate), one record per
            row, indexed by unique record ids.
        right : pandas.DataFrame or None, default=None
            The right table; None deduplicates `left`.
        exclude : pandas.DataFrame or None, default=None
            Pairs never to propose, with ``left_id`` and ``right_id`` columns:
            pairs held out to measure the final model on, say. When
            deduplicating, a pair is held out in either order.

        Returns
        -------
        self : ActiveLearner
            The learner, with its candidates, their features and the labels
            of the file; the proposer is fitted if the labels allow.

        Raises
        ------
        TypeError
            If a table is not a DataFrame.
        ValueError
            If a parameter is invalid, two ids of a table are the same text
            (``1`` and ``"1"``: ids are matched by their text), the blocker
            proposes no pair, or the labels file is not a regular file, is
            malformed or names unknown records.
        """
        self._check_params()
        check_record_table(left, "ActiveLearner.fit()", "left")
        if right is not None:
            check_record_table(right, "ActiveLearner.fit()", "right")
        self.dedupe_ = right is None
        self.left_, self.right_ = left, (left if right is None else right)
        self._left_ids = _ids_by_text(self.left_.index, "left")
        self._right_ids = (
            self._left_ids if self.dedupe_ else _ids_by_text(self.right_.index, "right")
        )
        blocker = NearestNeighborBlocker() if self.blocker is None else self.blocker
        progress = Progress(self.verbose, type(self).__name__)
        with progress.step(
            f"Blocking: {count(len(left))} records"
            + ("" if right is None else f" against {count(len(right))}")
        ):
            blocker = pass_verbose(clone(blocker), self.verbose).fit(self.right_)
            candidates = (
                blocker.candidates() if self.dedupe_ else blocker.candidates(left)
            )
        if len(candidates) == 0:
            raise ValueError(
                "The blocker proposed no candidate pair: there is nothing "
                "to label. Check its fields, or raise its k."
            )
        if exclude is not None:
            candidates = _without(candidates, exclude, either_order=self.dedupe_)
        self._random = check_random_state(self.random_state)
        self.candidates_ = candidates.reset_index(drop=True).assign(probability=np.nan)
        self._left_pos = id_positions(self.left_, candidates["left_id"], "left")
        self._right_pos = id_positions(self.right_, candidates["right_id"], "right")
        X = pairs_at(self.left_, self._left_pos, self.right_, self._right_pos)
        features = SimilarityFeatures() if self.features is None else self.features
        with progress.step(f"Similarity features of {count(len(X))} candidate pairs"):
            self.features_transformer_ = clone(features).fit(X)
            self.features_ = np.asarray(
                self.features_transformer_.transform(X), dtype=np.float64
            )
        self._row = {
            pair: i
            for i, pair in enumerate(zip(candidates["left_id"], candidates["right_id"]))
        }
        # The labels in the order given, those taken back left out: a log of
        # (pair, label); the last label of a pair counts, and undo() pops the
        # last one, bringing an earlier label of its pair back.
        self._events = []
        self._labels = {}  # pair -> its current label
        self._extra = {}  # features of labelled pairs that are not candidates
        if self.labels is not None:
            self._load(Path(self.labels))
        self.proposer_ = None
        self.history_ = []
        self._fit_proposer()
        return self

    def _check_params(self):
        validate_params(self._parameter_constraints, self.get_params(deep=False))

    # ------------------------------------------------------------- labels
    def _load(self, path):
        log = read_or_create(path)
        if log is None:  # a new or empty file: its header was written
            return
        # Undo lines are matched to their labels by pair, as the learner
        # names it: a deduplication pair in either order, ids by their text.
        pairs = [
            self._pair(a, b, f"{str(path)!r}, line {line}")
            for line, a, b in zip(log.lines, log.left_ids, log.right_ids)
        ]
        for i in replay(pairs, log.labels, log.undos):
            self._set(pairs[i], log.labels[i])

    def pair(self, left_id, right_id):
        """The pair of record ids as the learner stores it.

        Ids are matched by their text, so ``7`` and ``"7"`` name the same
        record; the pair returned holds them as the tables spell them and,
        when deduplicating, in the order of the table (a pair and its
        reverse are the same pair). Front ends use it to compare the pairs
        they show with :attr:`labels_`.

        Parameters
        ----------
        left_id, right_id : object
            The record ids of the pair.

        Returns
        -------
        tuple
            ``(left_id, right_id)``.

        Raises
        ------
        ValueError
            If an id is not a record of its table, or (deduplicating) the
            two ids are the same record.
        """
        self._check_fitted()
        return self._pair(left_id, right_id, "pair()")

    def is_labelled(self, left_id, right_id):
        """Whether the pair has a label, ``unsure`` included (such a pair is
        not proposed again).

        Parameters
        ----------
        left_id, right_id : object
            The record ids of the pair, as for :meth:`pair`.

        Returns
        -------
        bool
        """
        return self.pair(left_id, right_id) in self._labels

    def _pair(self, left_id, right_id, where):
        """The pair of record ids as the tables spell them, in candidate order."""
        try:
            a = self._left_ids[str(left_id)]
            b = self._right_ids[str(right_id)]
        except KeyError as error:
            raise ValueError(
                f"{where}: the pair ({short(left_id)}, {short(right_id)}) names a "
                f"record id that the tables do not hold ({short(error.args[0])})."
            ) from None
        if self.dedupe_:
            if a == b:
                raise ValueError(
                    f"{where}: the pair ({short(left_id)}, "
                    f"{short(right_id)}) pairs a record with itself."
                )
            index = self.left_.index
            if index.get_loc(a) > index.get_loc(b):
                a, b = b, a
        return (a, b)

    def _set(self, pair, label):
        self._events.append((pair, label))
        self._labels[pair] = label

    def _ordered_pairs(self):
        """The labelled pairs, in the order of their current label."""
        order = {}
        for pair, _ in self._events:
            order.pop(pair, None)
            order[pair] = None
        return list(order)

    def _checked(self, left_id, right_id, label, where):
        """The pair as the learner stores it and the label as an int (None
        for unsure), or a ValueError."""
        if label is not None and not (
            isinstance(label, (numbers.Integral, np.bool_)) and int(label) in (0, 1)
        ):
            raise ValueError(
                f"{where}: label must be 1, 0 or None (unsure); got {short(label)}."
            )
        label = None if label is None else int(label)
        return self._pair(left_id, right_id, where), label

    def teach(self, left_id, right_id, label):
        """Record the label of one pair, and append it to the labels file.

        Parameters
        ----------
        left_id, right_id : object
            The record ids of the pair (any pair of records of the tables,
            not only a candidate; for deduplication in either order).
        label : {1, 0, None}
            1 (or True) for a match, 0 (or False) for a non-match, None for
            unsure (not proposed again, not trained on).

        Returns
        -------
        self : ActiveLearner

        Raises
        ------
        ValueError
            If the label is not one of those above, or the pair does not name
            two records of the tables. Nothing is recorded then.
        """
        self._check_fitted()
        pair, label = self._checked(left_id, right_id, label, "teach()")
        self._write([(pair, label)], undo=False)
        self._set(pair, label)
        return self

    def _write(self, events, undo):
        """Append `events` ((pair, label) tuples) to the labels file, as
        undo lines when `undo`."""
        if self.labels is None:
            return
        append_labels(self.labels, events, undo=undo)

    def teach_many(self, labels):
        """Record many labels at once, e.g. those of an annotation file.

        Parameters
        ----------
        labels : pandas.DataFrame
            ``left_id``, ``right_id`` and ``label`` columns (1, 0, or NA for
            unsure), as :func:`read_labels` and
            :func:`~skrecordpair.read_annotation_file` return.

        Returns
        -------
        self : ActiveLearner

        Raises
        ------
        ValueError
            If a column is missing, or a row holds a label other than 1, 0 or
            NA, or a pair that does not name two records of the tables. The
            rows are all checked first: on an error, none of them is
            recorded.
        """
        self._check_fitted()
        if not isinstance(labels, pd.DataFrame):
            raise TypeError(
                "teach_many() needs a DataFrame with the columns "
                f"{LABEL_COLUMNS}; got {type(labels).__name__}."
            )
        require_columns(labels, LABEL_COLUMNS, "The labels passed to teach_many()")
        events = [
            self._checked(
                left_id, right_id, _many_label(label), f"teach_many(), row {i}"
            )
            for i, (left_id, right_id, label) in enumerate(
                labels[LABEL_COLUMNS].itertuples(index=False)
            )
        ]
        self._write(events, undo=False)  # one write: all of them or none
        for pair, label in events:
            self._set(pair, label)
        return self

    def undo(self):
        """Take back the last label.

        The label is dropped from memory, and an undo line is appended to
        the labels file (nothing is cut from it: lines that another learner
        or a hand edit added meanwhile stay). An earlier label of the same
        pair, given before a correction, counts again, in memory and for a
        new learner reading the file.

        Returns
        -------
        tuple or None
            The ``(left_id, right_id)`` pair whose label was taken back, None
            when there was none.
        """
        self._check_fitted()
        if not self._events:
            return None
        pair, label = self._events[-1]
        self._write([(pair, label)], undo=True)
        self._events.pop()
        earlier = [old for p, old in self._events if p == pair]
        if earlier:
            self._labels[pair] = earlier[-1]
        else:
            del self._labels[pair]
        return pair

    @property
    def labels_(self):
        """The labels given so far, in order: ``left_id``, ``right_id``,
        ``label`` (1, 0, or NaN for unsure)."""
        self._check_fitted()
        rows = [(a, b, self._labels[(a, b)]) for a, b in self._ordered_pairs()]
        frame = pd.DataFrame(rows, columns=LABEL_COLUMNS)
        frame["label"] = frame["label"].astype("Int64")
        return frame

    # ------------------------------------------------------------ proposing
    def propose(self, n=None):
        """The next pairs to label.

        Parameters
        ----------
        n : int or None, default=None
            Number of pairs; None proposes `batch_size`.

        Returns
        -------
        pandas.DataFrame
            Unlabelled candidates, columns ``left_id``, ``right_id``,
            ``similarity`` and ``probability``; fewer than `n` rows when fewer
            are left.
        """
        self._check_fitted()
        n = self.batch_size if n is None else n
        if not isinstance(n, numbers.Integral) or n < 1:
            raise ValueError(f"n must be a positive integer; got {n!r}.")
        open_rows = np.flatnonzero(self._unlabelled())
        if self.proposer_ is None:
            chosen = self._spread(open_rows, n)
        else:
            chosen = self._uncertain(open_rows, n)
        return self.candidates_.iloc[chosen].reset_index(drop=True)

    def _spread(self, open_rows, n):
        """`n` rows spread over the similarity range, one per equal-width bin."""
        if len(open_rows) <= n:
            return open_rows
        similarity = self.candidates_["similarity"].to_numpy()[open_rows]
        edges = np.linspace(similarity.min(), similarity.max(), n + 1)
        bins = np.clip(np.searchsorted(edges, similarity, side="right") - 1, 0, n - 1)
        # A random key per row; the row with the smallest key of each bin wins.
        key = self._random.random_sample(len(open_rows))
        order = np.lexsort((key, bins))
        first = np.r_[True, bins[order][1:] != bins[order][:-1]]
        chosen = open_rows[order[first]]
        if len(chosen) < n:  # empty bins: fill up at random
            rest = np.setdiff1d(open_rows, chosen)
            chosen = np.r_[
                chosen, self._random.choice(rest, n - len(chosen), replace=False)
            ]
        return chosen

    def _unlabelled(self):
        """Boolean mask of the candidates without a label (unsure counts as one)."""
        mask = np.ones(len(self.candidates_), dtype=bool)
        mask[[self._row[pair] for pair in self._labels if pair in self._row]] = False
        return mask

    def _uncertain(self, open_rows, n):
        """Uncertainty with diversity, plus a share of exploration."""
        if len(open_rows) <= n:
            return open_rows
        proba = self.candidates_["probability"].to_numpy()[open_rows]
        n_explore = round(self.explore * n)
        explored = np.array([], dtype=np.int64)
        if n_explore:
            matches = open_rows[proba > 0.5]
            explored = self._random.choice(
                matches, min(n_explore, len(matches)), replace=False
            )
        n_rest = n - len(explored)
        keep = ~np.isin(open_rows, explored)
        open_rows, proba = open_rows[keep], proba[keep]
        # Ties (a small proposer gives many equal probabilities) broken at random.
        uncertainty = -np.abs(proba - 0.5) + 1e-9 * self._random.random_sample(
            len(proba)
        )
        pool_size = min(len(open_rows), self.pool_factor * n_rest)
        pool = np.argpartition(-uncertainty, pool_size - 1)[:pool_size]
        if pool_size <= n_rest:
            return np.r_[explored, open_rows[pool]]
        X = self.features_[open_rows[pool]]
        # Standardised, missing features as -1 (below any similarity): KMeans
        # cannot take NaN.
        with warnings.catch_warnings():
            # A feature without any value in the pool: NaN, then -1 below.
            warnings.simplefilter("ignore", RuntimeWarning)
            X = (X - np.nanmean(X, axis=0)) / (np.nanstd(X, axis=0) + 1e-9)
        X = np.nan_to_num(X, nan=-1.0)
        with warnings.catch_warnings():
            # Fewer distinct points than clusters: handled below.
            warnings.simplefilter("ignore", ConvergenceWarning)
            clusters = KMeans(
                n_clusters=n_rest,
                n_init=1,
                random_state=self._random.randint(2**31 - 1),
            ).fit_predict(X)
        order = np.lexsort((-uncertainty[pool], clusters))
        first = np.r_[True, clusters[order][1:] != clusters[order][:-1]]
        chosen = pool[order[first]]
        if len(chosen) < n_rest:  # fewer distinct clusters than asked
            rest = pool[~np.isin(pool, chosen)]
            rest = rest[np.argsort(-uncertainty[rest])][: n_rest - len(chosen)]
            chosen = np.r_[chosen, rest]
        return np.r_[explored, open_rows[chosen]]

    # -------------------------------------------------------------- learning
    def refit(self):
        """Refit the proposer on the labels so far and report.

        Returns
        -------
        dict
            The report (see :meth:`report`), also appended to
            :attr:`history_`.
        """
        self._check_fitted()
        self._fit_proposer()
        report = self.report()
        self.history_.append(report)
        return report

    def _training_set(self):
        """Features and labels of the labelled pairs (unsure ones left out)."""
        pairs = [p for p in self._ordered_pairs() if self._labels[p] is not None]
        y = np.array([self._labels[p] for p in pairs], dtype=np.int64)
        missing = [p for p in pairs if p not in self._row and p not in self._extra]
        if missing:
            left = self.left_.index.get_indexer([p[0] for p in missing])
            right = self.right_.index.get_indexer([p[1] for p in missing])
            X = self.features_transformer_.transform(
                pairs_at(self.left_, left, self.right_, right)
            )
            self._extra.update(zip(missing, np.asarray(X, dtype=np.float64)))
        X = np.array(
            [
                self.features_[self._row[p]] if p in self._row else self._extra[p]
                for p in pairs
            ]
        ).reshape(len(pairs), self.features_.shape[1])
        return X, y, pairs

    def _fit_proposer(self):
        X, y, _ = self._training_set()
        if len(np.unique(y)) < 2:
            self.proposer_ = None
            self.candidates_["probability"] = np.nan
            return
        proposer = (
            HistGradientBoostingClassifier(min_samples_leaf=5)
            if self.proposer is None
            else self.proposer
        )
        self.proposer_ = _drop_empty_columns(clone(proposer), X).fit(X, y)
        column = list(self.proposer_.classes_).index(1)
        self.candidates_["probability"] = self.proposer_.predict_proba(self.features_)[
            :, column
        ]

    def report(self):
        """How many labels there are, and the estimated precision and recall.

        The estimates come from the proposer's match probabilities ``p`` of
        all the candidates, a labelled pair counting with its label: the
        predicted matches are the pairs with ``p > 0.5``; the estimated
        precision is their mean ``p``, the estimated recall their sum of
        ``p`` over the sum of ``p`` of all candidates (the expected number of
        matches among the candidates, so matches that the blocker missed do
        not count). They are as good as the proposer's probabilities are
        calibrated: read them as a trend, and measure on a labelled sample
        before trusting a number.

        Returns
        -------
        dict
            ``n_labels`` (matches and non-matches), ``n_matches``,
            ``n_non_matches``, ``n_unsure``, ``n_candidates``,
            ``predicted_matches``, ``estimated_precision``,
            ``estimated_recall`` and ``estimated_f1`` (NaN while the proposer
            is not fitted).
        """
        self._check_fitted()
        labels = list(self._labels.values())
        n_matches, n_non = labels.count(1), labels.count(0)
        report = {
            "n_labels": n_matches + n_non,
            "n_matches": n_matches,
            "n_non_matches": n_non,
            "n_unsure": labels.count(None),
            "n_candidates": len(self.candidates_),
            "predicted_matches": 0,
            "estimated_precision": np.nan,
            "estimated_recall": np.nan,
            "estimated_f1": np.nan,
        }
        if self.proposer_ is None:
            return report
        p = self.candidates_["probability"].to_numpy().copy()
        for pair, label in self._labels.items():
            if label is not None and pair in self._row:
                p[self._row[pair]] = label
        predicted = p > 0.5
        precision = float(p[predicted].mean()) if predicted.any() else np.nan
        recall = float(p[predicted].sum() / p.sum()) if p.sum() > 0 else np.nan
        f1 = (
            2 * precision * recall / (precision + recall)
            if precision + recall > 0
            else np.nan
        )
        report.update(
            predicted_matches=int(predicted.sum()),
            estimated_precision=precision,
            estimated_recall=recall,
            estimated_f1=f1,
        )
        return report

    def training_pairs(self):
        """The pair frame and the labels of the labelled pairs (unsure ones
        left out), indexed by ``(left_id, right_id)``.

        Returns
        -------
        X : pandas.DataFrame
        y : numpy.ndarray of int
        """
        self._check_fitted()
        pairs = [p for p in self._ordered_pairs() if self._labels[p] is not None]
        left = self.left_.index.get_indexer([p[0] for p in pairs])
        right = self.right_.index.get_indexer([p[1] for p in pairs])
        X = pairs_at(
            self.left_, left.astype(np.int64), self.right_, right.astype(np.int64)
        )
        y = np.array([self._labels[p] for p in pairs], dtype=np.int64)
        return X, y

    def pseudo_labelled_pairs(self):
        """The candidates that :meth:`fit_estimator` adds to the labels, with
        the proposer's answer as their label.

        Up to `pseudo_labels` unlabelled candidates (pairs labelled unsure
        are left out too) whose match probability, by the proposer refitted
        on the labels so far, is at least `pseudo_confidence` or at most
        ``1 - pseudo_confidence``, drawn at random (seeded by
        `random_state`) so that they keep the proportion of sure matches
        and sure non-matches of the pool.

        Returns
        -------
        X : pandas.DataFrame
            Their pair frame, indexed by ``(left_id, right_id)``.
        y : numpy.ndarray of int
            1 where the proposer's probability is above 0.5, else 0.
        """
        self._check_fitted()
        self._check_params()
        self._fit_proposer()
        p = self.candidates_["probability"].to_numpy()
        if self.proposer_ is None or self.pseudo_labels == 0:
            rows = np.array([], dtype=np.int64)
        else:
            confidence = self.pseudo_confidence
            rows = np.flatnonzero(
                self._unlabelled() & ((p >= confidence) | (p <= 1 - confidence))
            )
            if len(rows) > self.pseudo_labels:
                random = check_random_state(self.random_state)
                rows = np.sort(random.choice(rows, self.pseudo_labels, replace=False))
        X = pairs_at(
            self.left_, self._left_pos[rows], self.right_, self._right_pos[rows]
        )
        return X, (p[rows] > 0.5).astype(np.int64)

    def fit_estimator(self, **fit_params):
        """Fit a clone of `estimator` on the labelled pairs and the
        pseudo-labelled ones (:meth:`pseudo_labelled_pairs`).

        Parameters
        ----------
        **fit_params : dict
            Passed to the estimator's ``fit``.

        Returns
        -------
        classifier
            The fitted final model, also stored as :attr:`estimator_`; pass it
            to :func:`~skrecordpair.link` or
            :func:`~skrecordpair.deduplicate`.

        Raises
        ------
        ValueError
            If the labels do not hold both a match and a non-match.
        """
        X, y = self.training_pairs()
        if len(np.unique(y)) < 2:
            raise ValueError(
                "fit_estimator() needs at least one match and one non-match among "
                f"the labels; got {int((y == 1).sum())} match(es) and "
                f"{int((y == 0).sum())} non-match(es)."
            )
        X_sure, y_sure = self.pseudo_labelled_pairs()
        X, y = pd.concat([X, X_sure]), np.r_[y, y_sure]
        if self.estimator is None:
            from .._matcher.classifier import RecordPairClassifier

            estimator = RecordPairClassifier()
        else:
            estimator = self.estimator
        estimator = pass_verbose(clone(estimator), self.verbose)
        progress = Progress(self.verbose, type(self).__name__)
        with progress.step(
            f"Fitting {type(estimator).__name__} on {count(len(y) - len(y_sure))} "
            f"labelled and {count(len(y_sure))} pseudo-labelled pairs"
        ):
            self.estimator_ = estimator.fit(X, y, **fit_params)
        return self.estimator_

    def record(self, record_id, side):
        """The record `record_id` of the left or right table, as a Series."""
        self._check_fitted()
        table = self.left_ if side == "left" else self.right_
        return table.loc[record_id]

    def _check_fitted(self):
        if not hasattr(self, "candidates_"):
            raise AttributeError(
                "This ActiveLearner is not fitted yet: call fit(left, right) first."
            )


def _is_band(band):
    """Whether `band` is two numbers ``low <= high`` in [0, 1]."""
    try:
        low, high = (float(b) for b in band)
    except (TypeError, ValueError):
        return False
    return 0 <= low <= high <= 1


@checked(
    {
        "band": [
            Condition(
                _is_band, "a pair (low, high) of numbers with 0 <= low <= high <= 1"
            )
        ]
    }
)
def uncertain_pairs(pairs, band=(0.2, 0.8)):
    """The pairs whose match probability lies in `band`: the ones to review.

    Parameters
    ----------
    pairs : pandas.DataFrame
        Scored pairs with ``left_id``, ``right_id`` and ``probability``
        columns, such as :func:`~skrecordpair.link` returns with
        ``threshold=0`` (every scored candidate) or the pairs of
        :func:`~skrecordpair.deduplicate` with ``return_pairs="all"`` (with
        ``return_pairs=True``, only the matches: no uncertain non-match).
    band : tuple of (float, float), default=(0.2, 0.8)
        The lowest and highest probability of a pair to review, inclusive.

    Returns
    -------
    pandas.DataFrame
        Those rows, the most uncertain (closest to 0.5) first.

    Examples
    --------
    >>> import pandas as pd
    >>> from skrecordpair import uncertain_pairs
    >>> pairs = pd.DataFrame({"left_id": [1, 2, 3], "right_id": [7, 8, 9],
    ...                       "probability": [0.95, 0.45, 0.7]})
    >>> uncertain_pairs(pairs)
       left_id  right_id  probability
    0        2         8         0.45
    1        3         9         0.70
    """
    require_columns(
        pairs,
        ("left_id", "right_id", "probability"),
        "The pairs passed to uncertain_pairs()",
    )
    low, high = (float(b) for b in band)
    p = pairs["probability"].to_numpy(dtype=float)
    inside = pairs[(p >= low) & (p <= high)]
    order = np.argsort(
        np.abs(inside["probability"].to_numpy(dtype=float) - 0.5), kind="stable"
    )
    return inside.iloc[order].reset_index(drop=True)


def _ids_by_text(index, side):
    """``{str(id): id}`` of a table's index; the labels file stores ids as
    text, so two ids of one text (``1`` and ``"1"``) would be one record."""
    ids = {}
    for record_id in index:
        text = str(record_id)
        if text in ids:
            raise ValueError(
                f"ActiveLearner.fit(): the ids of the {side} table must be distinct "
                f"as text, since the labels file stores them as text; "
                f"{short(ids[text])} and {short(record_id)} both read "
                f"{short(text)}. Give the table ids of one type (e.g. "
                "table.index.astype(str), if the texts are then distinct)."
            )
        ids[text] = record_id
    return ids


def _many_label(value):
    """A label of a teach_many() frame as teach() takes it: NA (None, NaN,
    pd.NA) is unsure, and 1.0/0.0 are 1/0, since a column of labels with
    NA in it is often of floats."""
    if isinstance(value, (float, np.floating)):
        return None if np.isnan(value) else (int(value) if value in (0, 1) else value)
    return None if value is None or value is pd.NA else value


def _drop_empty_columns(classifier, X):
    """`classifier` behind a step that drops the columns of `X` without a
    value: a few labelled pairs can leave a feature all NaN (no pair with a
    model number on both sides), on which HistGradientBoostingClassifier
    cannot fit."""
    keep = np.flatnonzero(~np.isnan(X).all(axis=0))
    select = FunctionTransformer(np.take, kw_args={"indices": keep, "axis": 1})
    return make_pipeline(select, classifier)


def _without(candidates, exclude, either_order=False):
    """The candidates that are not among the pairs `exclude` (in either order
    of the two ids when `either_order`: deduplication's pairs are unordered)."""
    require_columns(exclude, ["left_id", "right_id"], "exclude")
    drop = pd.MultiIndex.from_arrays(
        [exclude["left_id"].astype(str), exclude["right_id"].astype(str)]
    )
    pairs = pd.MultiIndex.from_arrays(
        [candidates["left_id"].astype(str), candidates["right_id"].astype(str)]
    )
    dropped = pairs.isin(drop)
    if either_order:
        dropped |= pairs.swaplevel().isin(drop)
    return candidates[~dropped]
