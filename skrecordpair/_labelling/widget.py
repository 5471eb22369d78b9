"""A notebook widget over :class:`ActiveLearner` (needs ``ipywidgets``)."""

from __future__ import annotations

import html

from .session import LabellingSession, PairView, pair_text

__all__ = ["LabelWidget"]


class LabelWidget:
    """Label pairs in a Jupyter notebook: the records side by side, one button
    per answer.

    The notebook counterpart of :func:`~skrecordpair.label_session`, over the
    same loop: it shows the learner's proposed batch (or the pairs of
    `pairs`) one pair at a time, the two records field by field with the
    fields that differ highlighted, and buttons *Match*, *Non-match*,
    *Unsure* and *Undo*. Each click is a label, written through to the
    learner's labels file at once; between batches, and only then, the
    learner refits, and the progress bar and the estimates of precision and
    recall are updated. Display it as the last expression of a cell (or with
    ``IPython.display.display(widget.widget)``).

    Needs the optional ``ipywidgets`` (``pip install skrecordpair[widgets]``).

    Parameters
    ----------
    learner : ActiveLearner
        A fitted learner; its labels file (if any) receives the labels.
    pairs : pandas.DataFrame or None, default=None
        Pairs to review (``left_id`` and ``right_id`` columns, e.g. from
        :func:`~skrecordpair.uncertain_pairs`) instead of the learner's
        proposals; the pairs already labelled are skipped.
    target : int or None, default=None
        The number of labels to aim for, the length of the progress bar;
        None uses 300, or the number of pairs of `pairs`.

    Attributes
    ----------
    widget : ipywidgets.VBox
        The whole widget.
    match_button, non_match_button, unsure_button, undo_button : ipywidgets.Button
        The buttons; calling their ``click()`` labels as a click does.
    record_view : ipywidgets.HTML
        The two records of the current pair.
    progress : ipywidgets.IntProgress
        The number of labels (matches and non-matches).
    status : ipywidgets.HTML
        The learner's last report, or what happened last.
    current : tuple or None
        The ``(left_id, right_id)`` pair shown; None when nothing is left.
    given : list of tuple
        The pairs labelled through the widget, in order (undone ones
        removed).

    Examples
    --------
    Clicks simulated by calling the buttons' ``click()``:

    >>> import pandas as pd
    >>> from skrecordpair import ActiveLearner, LabelWidget, NearestNeighborBlocker
    >>> left = pd.DataFrame({"name": ["anna smith", "john doe"]}, index=["l1", "l2"])
    >>> right = pd.DataFrame({"name": ["ana smith", "jon doe"]}, index=["r1", "r2"])
    >>> learner = ActiveLearner(NearestNeighborBlocker(k=1)).fit(left, right)
    >>> widget = LabelWidget(learner)
    >>> widget.match_button.click()
    >>> widget.non_match_button.click()
    >>> learner.labels_["label"].tolist()
    [1, 0]
    """

    def __init__(self, learner, *, pairs=None, target=None):
        try:
            import ipywidgets as w
        except ImportError:  # pragma: no cover - depends on the environment
            raise ImportError(
                "LabelWidget needs ipywidgets: pip install 'skrecordpair[widgets]' "
                "(or pip install ipywidgets)."
            ) from None
        self.learner = learner
        self._session = LabellingSession(learner, pairs)
        if target is None:
            target = 300 if pairs is None else learner.report()["n_labels"] + len(pairs)

        self.record_view = w.HTML()
        self.match_button = w.Button(
            description="Match",
            button_style="success",
            tooltip="The two records are the same entity",
        )
        self.non_match_button = w.Button(
            description="Non-match",
            button_style="danger",
            tooltip="The two records are different entities",
        )
        self.unsure_button = w.Button(
            description="Unsure", tooltip="Skip: not asked again, not trained on"
        )
        self.undo_button = w.Button(
            description="Undo", icon="undo", tooltip="Take the last label back"
        )
        self.match_button.on_click(lambda _: self._label(1))
        self.non_match_button.on_click(lambda _: self._label(0))
        self.unsure_button.on_click(lambda _: self._label(None))
        self.undo_button.on_click(lambda _: self._undo())
        self.progress = w.IntProgress(
            min=0, max=max(int(target), 1), description="labels"
        )
        self.status = w.HTML()
        buttons = w.HBox(
            [
                self.match_button,
                self.non_match_button,
                self.unsure_button,
                self.undo_button,
            ]
        )
        self.widget = w.VBox([self.record_view, buttons, self.progress, self.status])
        self._update_status(self._session.report_line())
        self._next()

    @property
    def current(self):
        """The ``(left_id, right_id)`` pair shown; None when nothing is left."""
        return self._session.current

    @property
    def given(self):
        """The pairs labelled through the widget, in order (undone ones removed)."""
        return self._session.given

    # ------------------------------------------------------------ the loop
    def _next(self):
        """Show the current pair, starting the next batch when one is done."""
        if self.current is None and not self._session.next_batch():
            self.record_view.value = "<p><b>Nothing left to label.</b></p>"
            self._enable(False)
            return
        left = self.learner.record(self.current[0], "left")
        right = self.learner.record(self.current[1], "right")
        self.record_view.value = pair_html(left, right)
        self._enable(True)

    def _enable(self, on):
        for button in (self.match_button, self.non_match_button, self.unsure_button):
            button.disabled = not on
        self.undo_button.disabled = not self.given

    def _label(self, label):
        if self.current is None:
            return
        self._session.teach(label)
        if self.current is None:  # the batch is done: refit between batches only
            self._update_status(self._session.refit())
        else:
            self._update_status(self._session.report_line())
        self._next()

    def _undo(self):
        undone = self._session.undo()
        if undone is None:
            self._update_status("Nothing to take back.")
            return
        self._next()
        self._update_status(
            f"Took back the label of {html.escape(pair_text(undone))}. "
            + self._session.report_line()
        )

    def _update_status(self, text):
        report = self.learner.report()
        self.progress.value = min(report["n_labels"], self.progress.max)
        self.progress.description = f"{report['n_labels']} labels"
        self.status.value = f"<p>{text}</p>"

    def _ipython_display_(self):  # pragma: no cover - needs a notebook front end
        from IPython.display import display

        display(self.widget)


def pair_html(left, right):
    """The two records as an HTML table, one row per field, the rows whose
    values differ highlighted.

    Values, field names and ids are HTML-escaped, and their control and
    invisible formatting characters (bidirectional overrides among them)
    are shown as escapes such as ``\\u202e``, as in the terminal.

    Parameters
    ----------
    left, right : pandas.Series
        The two records (a row of each table).

    Returns
    -------
    str
    """
    view = PairView(left, right)
    rows = []
    for field, a, b, same in view.rows:
        style = "" if same else ' style="background-color:#fff3b0"'
        cells = "".join(f"<td>{html.escape(v)}</td>" for v in (a, b))
        rows.append(f"<tr{style}><th>{html.escape(field)}</th>{cells}</tr>")
    head = (
        f"<tr><th></th><th>left {html.escape(view.left_id)}</th>"
        f"<th>right {html.escape(view.right_id)}</th></tr>"
    )
    return f"<table>{head}{''.join(rows)}</table>"
