"""What the labelling front ends share: the session over a learner (which
pair to show next, labelling it, taking a label back, the report line) and the
view of a pair's two records side by side. The terminal renders the view as
text, the notebook widget as HTML."""

from __future__ import annotations

import unicodedata

import numpy as np
import pandas as pd

from .._pairs import as_text, require_columns


class LabellingSession:
    """One labelling session over a fitted learner, whatever shows it.

    The session hands out the learner's proposed batch (or the next pairs of
    `pairs`) one pair at a time: :attr:`current` is the pair to show,
    :meth:`teach` labels it (written through to the learner's labels file at
    once), :meth:`undo` takes the last label back and shows its pair again.
    When a batch is done, :meth:`next_batch` starts the next one; the front
    end refits the learner (:meth:`refit`) between batches, and only then.

    Parameters
    ----------
    learner : ActiveLearner
        A fitted learner.
    pairs : pandas.DataFrame or None, default=None
        Pairs to review instead of the learner's proposals, see
        :class:`PairQueue`.

    Attributes
    ----------
    learner : ActiveLearner
        The learner.
    queue : PairQueue
        Where the batches come from.
    batch : list of tuple
        The ``(left_id, right_id)`` pairs of the batch not labelled yet, the
        one shown first.
    given : list of tuple
        The pairs labelled in this session, in order, as the learner stores
        them (undone ones removed).

    Raises
    ------
    AttributeError
        If the learner is not fitted.
    ValueError
        If `pairs` lacks a column or names a record that the tables do not
        hold; raised before anything is shown.
    """

    def __init__(self, learner, pairs=None):
        learner.report()  # an unfitted learner says so, before anything is shown
        self.learner = learner
        self.queue = PairQueue(learner, pairs)
        self.batch = []
        self.given = []

    @property
    def current(self):
        """The ``(left_id, right_id)`` pair to show, None when the batch is done."""
        return self.batch[0] if self.batch else None

    def next_batch(self):
        """Start the next batch; False when nothing is left to label."""
        self.batch = self.queue.next_batch()
        return bool(self.batch)

    def teach(self, label):
        """Label the current pair: 1, 0, or None for unsure."""
        pair = self.batch[0]
        self.learner.teach(pair[0], pair[1], label)
        self.given.append(self.learner.pair(*pair))
        self.batch.pop(0)

    def undo(self):
        """Take the learner's last label back; its pair becomes the current
        one again. Returns the pair, or None when there was no label."""
        undone = self.learner.undo()
        if undone is None:
            return None
        # The label may be older than this session (resumed from the file).
        if self.given and self.given[-1] == undone:
            self.given.pop()
        self.batch.insert(0, undone)
        return undone

    def probability(self, pair):
        """The probability listed with `pair` in the pairs to review, or None."""
        return self.queue.probability(pair)

    def refit(self):
        """Refit the learner on the labels so far; its report as one line."""
        return _report_line(self.learner.refit())

    def report_line(self):
        """The learner's report as one line: the labels, and the estimates
        of precision and recall once there are some."""
        return _report_line(self.learner.report())


def _report_line(report):
    line = (
        f"{report['n_labels']} labels ({report['n_matches']} matches, "
        f"{report['n_non_matches']} non-matches, {report['n_unsure']} unsure)"
    )
    if not np.isnan(report["estimated_precision"]):
        line += (
            f"; {report['predicted_matches']} predicted matches, estimated "
            f"precision {report['estimated_precision']:.2f}, recall "
            f"{report['estimated_recall']:.2f}"
        )
    return line


class PairQueue:
    """What a labelling front end shows next, a batch at a time: the
    learner's proposals, or the given `pairs` not labelled yet.

    Parameters
    ----------
    learner : ActiveLearner
        The fitted learner.
    pairs : pandas.DataFrame or None, default=None
        Pairs to review, with ``left_id`` and ``right_id`` columns (and
        optionally ``probability``); a pair listed more than once (in either
        order, when deduplicating) is kept once, at its first place.

    Raises
    ------
    ValueError
        If `pairs` lacks a column, or a pair names a record id that the
        tables do not hold (checked here, before anything is shown).
    """

    def __init__(self, learner, pairs=None):
        self.learner = learner
        self.pairs = None
        self._probability = {}
        if pairs is None:
            return
        require_columns(pairs, ["left_id", "right_id"], "The pairs to review")
        probability = (
            pairs["probability"] if "probability" in pairs else [None] * len(pairs)
        )
        # Each pair as the learner stores it (ids as the tables spell them,
        # in table order when deduplicating), so that a pair listed twice,
        # or in both orders when deduplicating, is asked once.
        self.pairs, bad = [], []
        for left_id, right_id, p in zip(
            pairs["left_id"], pairs["right_id"], probability
        ):
            try:
                pair = learner.pair(left_id, right_id)
            except ValueError:
                bad.append((left_id, right_id))
                continue
            if pair not in self._probability:
                self.pairs.append(pair)
                self._probability[pair] = _number(p)
        if bad:
            shown = ", ".join(pair_text(b) for b in bad[:3])
            raise ValueError(
                f"{len(bad)} of the {len(pairs)} pairs to review name a record id that "
                f"the tables do not hold, or pair a record with itself: {shown}"
                f"{', ...' if len(bad) > 3 else ''}. Are they pairs of these tables, "
                "with the same id column?"
            )

    def next_batch(self):
        """The next ``(left_id, right_id)`` pairs, at most the learner's
        batch size; empty when nothing is left."""
        if self.pairs is None:
            batch = self.learner.propose()
            return list(zip(batch["left_id"], batch["right_id"]))
        self.pairs = [p for p in self.pairs if not self.learner.is_labelled(*p)]
        size = self.learner.batch_size
        batch, self.pairs = self.pairs[:size], self.pairs[size:]
        return batch

    def probability(self, pair):
        """The probability given with `pair` in the pairs to review, or None."""
        return self._probability.get(pair)


def _number(value):
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return None if np.isnan(value) else value


# ------------------------------------------------------------ the pair view
class PairView:
    r"""A pair's two records side by side, field by field, as a front end
    shows them: what the terminal renders as text and the widget as HTML.

    Every text of the view (ids, field names, values) is on one line, its
    white space collapsed, and its control characters (escape sequences
    among them), invisible formatting characters and bidirectional
    overrides written as escapes such as ``\x1b`` or ``\u202e`` (see
    :func:`visible`): data that may be anyone's cannot act on a terminal,
    nor hide or reorder what it shows.

    Parameters
    ----------
    left, right : pandas.Series
        The two records (a row of each table), named by their ids.

    Attributes
    ----------
    left_id, right_id : str
        The records' ids.
    rows : list of tuple
        ``(field, left_text, right_text, same)`` for each field of either
        record, in order: the values are ``""`` where missing, and `same`
        says whether they are equal but for case and surrounding white
        space. It is computed on the values themselves, never on what is
        shown of them, so a value cut short by a renderer, or holding
        characters shown as escapes, still differs from another.

    Examples
    --------
    >>> import pandas as pd
    >>> from skrecordpair._labelling.session import PairView
    >>> left = pd.Series({"name": "Anna Smith", "city": "Berlin"}, name="l1")
    >>> right = pd.Series({"name": "anna smith", "city": "Paris\x1b]0;x\x07"},
    ...                   name="r9")
    >>> view = PairView(left, right)
    >>> view.left_id, view.right_id
    ('l1', 'r9')
    >>> for row in view.rows:
    ...     print(row)
    ('name', 'Anna Smith', 'anna smith', True)
    ('city', 'Berlin', 'Paris\\x1b]0;x\\x07', False)
    """

    def __init__(self, left, right):
        fields = list(dict.fromkeys([*left.index, *right.index]))
        values = [
            as_text(pd.Series([record.get(f) for f in fields], dtype=object))
            for record in (left, right)
        ]
        self.left_id, self.right_id = shown(str(left.name)), shown(str(right.name))
        self.rows = [
            (shown(str(field)), shown(a or ""), shown(b or ""), _same(a, b))
            for field, a, b in zip(fields, *values)
        ]


def _same(a, b):
    """Whether two values (text or None) are equal but for case and
    surrounding white space."""
    return (a or "").strip().lower() == (b or "").strip().lower()


def shown(text):
    """`text` on one line, its white space collapsed, the characters that
    could act on a terminal or hide themselves escaped (:func:`visible`)."""
    return visible(" ".join(text.split()))


# Shown as escapes: C0 and C1 controls and DEL (category Cc: escape sequences
# start with them), and the invisible format characters (Cf: bidirectional
# overrides and isolates, zero-width spaces and joiners, the BOM), which can
# reorder or hide what a value shows.
_INVISIBLE = {"Cc", "Cf"}


def visible(text):
    """`text` with each character that could act on a terminal or hide itself
    written as a Python-style escape (``\\x1b``, ``\\u202e``, ``\\U000e0001``)."""
    if text.isprintable():  # the usual case, fast: none of those characters
        return text
    return "".join(
        _escape(c) if unicodedata.category(c) in _INVISIBLE else c for c in text
    )


def _escape(char):
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def pair_text(pair):
    """A pair of ids as text to show: ``(l1, r7)``, control characters escaped."""
    return f"({visible(str(pair[0]))}, {visible(str(pair[1]))})"
