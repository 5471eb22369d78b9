"""Pictures of explanations: a matplotlib figure and an HTML table for notebooks.

Both take the frame returned by :meth:`RecordPairClassifier.explain` and draw one
pair: the two records side by side, field by field, each field coloured by its
attribution (red pushes towards the explained class, blue away from it).
matplotlib is needed only for :func:`plot_explanation`.
"""

from __future__ import annotations

import html

import numpy as np
import pandas as pd

__all__ = ["ExplanationView", "evidence_by_field", "explanation_html",
           "plot_evidence_by_field", "plot_explanation", "plot_waterfall",
           "waterfall_steps"]

#: The page of the documentation that explains the explanations.
DOCS_URL = "https://skrecordpair.readthedocs.io/en/latest/explanations.html"

_COLUMNS = {"pair", "side", "field", "text", "attribution", "target", "prediction",
            "probability"}


def _one_pair(explanation, pair):
    missing = _COLUMNS - set(explanation.columns)
    if missing:
        raise ValueError(
            "Expected the frame returned by RecordPairClassifier.explain(); it lacks "
            f"the columns {sorted(missing)}."
        )
    if len(explanation) == 0:
        raise ValueError("The explanation is empty: there is no pair to draw.")
    if pair is None:
        pair = explanation["pair"].iloc[0]
    rows = explanation[explanation["pair"] == pair]
    if rows.empty:
        known = list(dict.fromkeys(explanation["pair"]))
        raise ValueError(f"No pair {pair!r} in the explanation; its pairs are "
                         f"{known[:10]}{' ...' if len(known) > 10 else ''}.")
    left = rows[rows["side"] == "left"].reset_index(drop=True)
    right = rows[rows["side"] == "right"].reset_index(drop=True)
    return pair, left, right


def _limit(left, right):
    """Symmetric colour range shared by both sides, so colours compare."""
    values = np.concatenate([left["attribution"], right["attribution"]])
    return float(np.abs(values).max()) or 1.0


def _title(pair, rows):
    first = rows.iloc[0]
    return (f"pair {pair}: predicted {first['prediction']!s} "
            f"(p={first['probability']:.3f}), explaining {first['target']!s}")


def _display(text):
    return "∅ (missing)" if text is None or text != text else str(text)


def _shorten(text, max_chars):
    text = _display(text)
    return text if len(text) <= max_chars else text[: max_chars - 1] + "…"


def plot_explanation(explanation, pair=None, *, ax=None, max_chars=40, cmap="RdBu_r"):
    """Draw both records of one pair, each field coloured by its attribution.

    Parameters
    ----------
    explanation : pandas.DataFrame
        The output of :meth:`RecordPairClassifier.explain`.
    pair : hashable, default=None
        The ``pair`` label to draw; None draws the first pair.
    ax : matplotlib.axes.Axes, default=None
        Where to draw; None creates a new figure.
    max_chars : int, default=40
        Field texts are shortened to this many characters.
    cmap : str, default="RdBu_r"
        A diverging matplotlib colormap; its centre is zero attribution.

    Returns
    -------
    matplotlib.axes.Axes
        The axes with the drawing.

    Examples
    --------
    >>> import pandas as pd
    >>> from skrecordpair.plotting import plot_explanation
    >>> explanation = pd.DataFrame({
    ...     "pair": [0, 0, 0, 0], "side": ["left", "left", "right", "right"],
    ...     "field": ["name", "city"] * 2,
    ...     "text": ["anna smith", "berlin", "ana smith", "berlin"],
    ...     "attribution": [0.9, 0.1, 0.8, -0.2], "target": 1, "prediction": 1,
    ...     "probability": 0.97})
    >>> ax = plot_explanation(explanation)
    >>> ax.get_title()
    'pair 0: predicted 1 (p=0.970), explaining 1'
    """
    import matplotlib.pyplot as plt
    from matplotlib.colors import TwoSlopeNorm

    pair, left, right = _one_pair(explanation, pair)
    limit = _limit(left, right)
    norm = TwoSlopeNorm(vcenter=0.0, vmin=-limit, vmax=limit)
    colormap = plt.get_cmap(cmap)
    n_rows = max(len(left), len(right))
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 0.55 * n_rows + 1.2))

    for column, side in enumerate((left, right)):
        for row, record in side.iterrows():
            y = n_rows - 1 - row
            value = record["attribution"]
            ax.add_patch(plt.Rectangle((column * 1.05, y), 1.0, 0.9,
                                       color=colormap(norm(value))))
            # Dark cells (strong attributions) need light text to stay readable.
            ink = "white" if abs(value) > 0.6 * limit else "black"
            ax.text(column * 1.05 + 0.02, y + 0.45,
                    f"{record['field']}: {_shorten(record['text'], max_chars)}", va="center",
                    ha="left", fontsize=9, color=ink)
            ax.text(column * 1.05 + 0.98, y + 0.45, f"{value:+.2f}", va="center",
                    ha="right", fontsize=8, color=ink)
    ax.set_xlim(0, 2.05)
    ax.set_ylim(0, n_rows)
    ax.set_xticks([0.5, 1.55], ["left record", "right record"])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_title(_title(pair, left))
    mappable = plt.cm.ScalarMappable(norm=norm, cmap=colormap)
    ax.figure.colorbar(mappable, ax=ax, label="attribution", fraction=0.04, pad=0.02)
    return ax


def _css_colour(value, limit):
    """Red for positive, blue for negative, white for zero; alpha by magnitude."""
    strength = min(1.0, abs(value) / limit)
    rgb = "214, 39, 40" if value > 0 else "31, 119, 180"
    return f"rgba({rgb}, {0.85 * strength:.3f})"


def explanation_html(explanation, pair=None):
    """HTML table of one pair's records, each field highlighted by its attribution.

    Parameters
    ----------
    explanation : pandas.DataFrame
        The output of :meth:`RecordPairClassifier.explain`.
    pair : hashable, default=None
        The ``pair`` label to render; None renders the first pair.

    Returns
    -------
    str
        A self-contained ``<table>`` (inline styles only); all text is escaped.

    Examples
    --------
    >>> import pandas as pd
    >>> from skrecordpair.plotting import explanation_html
    >>> explanation = pd.DataFrame({
    ...     "pair": [0, 0], "side": ["left", "right"], "field": ["name", "name"],
    ...     "text": ["<b>anna</b>", "anna"], "attribution": [1.0, -1.0],
    ...     "target": 1, "prediction": 1, "probability": 0.9})
    >>> html_table = explanation_html(explanation)
    >>> "&lt;b&gt;anna&lt;/b&gt;" in html_table and "<b>anna</b>" not in html_table
    True
    """
    pair, left, right = _one_pair(explanation, pair)
    limit = _limit(left, right)
    cell = "padding:4px 8px;border:1px solid #ddd;"
    rows = []
    for i in range(max(len(left), len(right))):
        cells = []
        for side in (left, right):
            if i >= len(side):
                cells.append(f'<td style="{cell}"></td>')
                continue
            record = side.iloc[i]
            value = float(record["attribution"])
            cells.append(
                f'<td style="{cell}background:{_css_colour(value, limit)}" '
                f'title="attribution {value:+.3f}"><b>{html.escape(str(record["field"]))}'
                f"</b>: {html.escape(_display(record['text']))} "
                f'<small>({value:+.2f})</small></td>'
            )
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return (
        '<table style="border-collapse:collapse;font-family:sans-serif;font-size:13px">'
        f"<caption>{html.escape(_title(pair, left))} "
        f'(<a href="{DOCS_URL}" target="_blank">how to read this</a>)</caption>'
        f'<tr><th style="{cell}">left record</th><th style="{cell}">right record</th></tr>'
        + "".join(rows) + "</table>"
    )


class ExplanationView:
    """Notebook display of explanations: one highlighted table per pair.

    Parameters
    ----------
    explanation : pandas.DataFrame
        The output of :meth:`RecordPairClassifier.explain`.
    max_pairs : int, default=10
        Render at most this many pairs.

    Examples
    --------
    >>> import pandas as pd
    >>> from skrecordpair.plotting import ExplanationView
    >>> explanation = pd.DataFrame({
    ...     "pair": [0, 0], "side": ["left", "right"], "field": ["name", "name"],
    ...     "text": ["anna", "ana"], "attribution": [1.0, 1.0],
    ...     "target": 1, "prediction": 1, "probability": 0.9})
    >>> ExplanationView(explanation)._repr_html_().count("<table")
    1
    """

    def __init__(self, explanation, max_pairs=10):
        self.explanation = explanation
        self.max_pairs = max_pairs

    def _repr_html_(self):
        pairs = list(dict.fromkeys(self.explanation["pair"]))
        shown = "<br>".join(explanation_html(self.explanation, pair)
                            for pair in pairs[: self.max_pairs])
        if len(pairs) > self.max_pairs:
            shown += f"<p>… {len(pairs) - self.max_pairs} more pairs not shown.</p>"
        return shown


# ------------------------------------------------------------ evidence views


def _check_evidence(explanation):
    needed = {"pair", "side", "field", "text", "prediction", "probability",
              "evidence_for_match", "baseline_log_odds"}
    missing = needed - set(explanation.columns)
    if missing:
        raise ValueError(
            "Expected the frame returned by RecordPairClassifier.explain(); it lacks "
            f"the columns {sorted(missing)}."
        )
    if len(explanation) and explanation["evidence_for_match"].isna().all():
        raise ValueError(
            "The explanation has no evidence for a match (more than two classes, or "
            "a match class the model does not know: pass pos_label)."
        )


def evidence_by_field(explanation):
    """Mean evidence for a match of each field, by predicted class.

    Which fields drive the model's decisions over a set of pairs: the mean of
    ``evidence_for_match`` over the pairs predicted in each class and the two
    sides, in log-odds of a match.

    Parameters
    ----------
    explanation : pandas.DataFrame
        The output of :meth:`RecordPairClassifier.explain` on several pairs.

    Returns
    -------
    pandas.DataFrame
        One row per field (in the model's order), one column per predicted
        label, and the column ``pairs`` can be read from ``attrs["pairs"]``:
        the number of pairs predicted in each class.

    Examples
    --------
    >>> import pandas as pd
    >>> from skrecordpair.plotting import evidence_by_field
    >>> explanation = pd.DataFrame({
    ...     "pair": [0, 0, 1, 1], "side": ["left", "right"] * 2,
    ...     "field": ["name"] * 4, "text": ["a", "a", "b", "c"],
    ...     "prediction": [1, 1, 0, 0], "probability": [0.9, 0.9, 0.8, 0.8],
    ...     "evidence_for_match": [2.0, 1.0, -3.0, -1.0],
    ...     "baseline_log_odds": [-5.0, -5.0, 4.0, 4.0]})
    >>> evidence_by_field(explanation)
    prediction    0    1
    field
    name       -2.0  1.5
    """
    _check_evidence(explanation)
    fields = list(dict.fromkeys(explanation["field"]))
    table = explanation.pivot_table(index="field", columns="prediction",
                                    values="evidence_for_match", aggfunc="mean")
    table = table.reindex(fields)
    table.attrs["pairs"] = explanation.groupby("prediction")["pair"].nunique().to_dict()
    return table


def plot_evidence_by_field(explanation, *, ax=None):
    """Bar chart of :func:`evidence_by_field`: one group of bars per field.

    Parameters
    ----------
    explanation : pandas.DataFrame
        The output of :meth:`RecordPairClassifier.explain` on several pairs.
    ax : matplotlib.axes.Axes, default=None
        Where to draw; None creates a new figure.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import pandas as pd
    >>> from skrecordpair.plotting import plot_evidence_by_field
    >>> explanation = pd.DataFrame({
    ...     "pair": [0, 0, 0, 0], "side": ["left", "left", "right", "right"],
    ...     "field": ["name", "city"] * 2, "text": ["anna", "berlin", "ana", "berlin"],
    ...     "prediction": 1, "probability": 0.9, "target": 1, "attribution": 0.0,
    ...     "evidence_for_match": [3.0, 2.0, 2.0, 2.0], "baseline_log_odds": -3.0})
    >>> len(plot_evidence_by_field(explanation).patches)
    2
    """
    import matplotlib.pyplot as plt

    table = evidence_by_field(explanation)
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 0.5 * len(table) * max(1, table.shape[1]) + 1.5))
    height = 0.8 / max(1, table.shape[1])
    y = np.arange(len(table))[::-1]
    colours = plt.get_cmap("tab10")
    for k, label in enumerate(table.columns):
        n = table.attrs["pairs"].get(label, 0)
        ax.barh(y + (k - (table.shape[1] - 1) / 2) * height, table[label].fillna(0),
                height=height, color=colours(k), label=f"predicted {label} ({n} pairs)")
    ax.set_yticks(y, table.index)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlabel("mean evidence for a match (log-odds)")
    ax.legend(loc="best", fontsize=8)
    ax.set_title("Which fields drive the decisions")
    return ax


def waterfall_steps(explanation, pair=None, *, max_chars=30):
    """The steps of one pair's waterfall chart, from the baseline to the pair.

    Each field's evidence for a match is the mean of its two sides, and the
    start the mean of the two sides' ``baseline_log_odds``: the steps then add
    up from the baseline's log-odds of a match to the pair's (up to the
    integration error, the mean ``convergence_delta``).

    Parameters
    ----------
    explanation : pandas.DataFrame
        The output of :meth:`RecordPairClassifier.explain`.
    pair : hashable, default=None
        The ``pair`` label; None takes the first pair.
    max_chars : int, default=30
        Each side's text in the ``label`` is shortened to this many
        characters, with an ellipsis.

    Returns
    -------
    pandas.DataFrame
        One row for the baseline, one per field (in the model's order), one
        for the pair, with columns ``step`` (``"baseline"``, the field's name
        or ``"pair"``), ``label``, ``evidence`` (NaN for the first and last
        rows), ``start`` and ``end`` (log-odds of a match before and after
        the step), and ``probability`` (of a match after the step).

    Examples
    --------
    >>> import pandas as pd
    >>> from skrecordpair.plotting import waterfall_steps
    >>> explanation = pd.DataFrame({
    ...     "pair": [0, 0, 0, 0], "side": ["left", "left", "right", "right"],
    ...     "field": ["name", "city"] * 2, "text": ["anna", "berlin", "ana", "berlin"],
    ...     "prediction": 1, "probability": 0.9, "target": 1, "attribution": 0.0,
    ...     "evidence_for_match": [3.0, 2.0, 2.0, 2.0], "baseline_log_odds": -3.0})
    >>> list(waterfall_steps(explanation)["end"])
    [-3.0, -0.5, 1.5, 1.5]
    """
    _check_evidence(explanation)
    pair, left, right = _one_pair(explanation, pair)
    evidence = (left["evidence_for_match"].to_numpy()
                + right["evidence_for_match"].to_numpy()) / 2
    start = float((left["baseline_log_odds"].iloc[0]
                   + right["baseline_log_odds"].iloc[0]) / 2)
    ends = start + np.cumsum(evidence)
    labels = [f"{field}: {_shorten(a, max_chars)} | {_shorten(b, max_chars)}"
              for field, a, b in zip(left["field"], left["text"], right["text"])]
    steps = pd.DataFrame({
        "step": ["baseline", *left["field"], "pair"],
        "label": ["baseline", *labels, "pair"],
        "evidence": [np.nan, *evidence, np.nan],
        "start": [start, start, *ends[:-1], start],
        "end": [start, *ends, ends[-1] if len(ends) else start],
    })
    steps["probability"] = 1 / (1 + np.exp(-steps["end"]))
    steps.attrs["pair"] = pair
    return steps


def plot_waterfall(explanation, pair=None, *, ax=None, max_chars=30):
    """Waterfall chart of one pair: from the baseline's probability of a match,
    one bar per field, to the pair's.

    The bars are in log-odds of a match (where the fields' evidence adds up);
    the baseline's and the pair's probabilities are written beside their
    bars. Field texts are shortened with an ellipsis (`max_chars`) and
    written in the margin left of the axes, the numbers beside the bars, so
    they never overlap.

    Parameters
    ----------
    explanation : pandas.DataFrame
        The output of :meth:`RecordPairClassifier.explain`.
    pair : hashable, default=None
        The ``pair`` label to draw; None draws the first pair.
    ax : matplotlib.axes.Axes, default=None
        Where to draw; None creates a new figure.
    max_chars : int, default=30
        Field texts are shortened to this many characters.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import pandas as pd
    >>> from skrecordpair.plotting import plot_waterfall
    >>> explanation = pd.DataFrame({
    ...     "pair": [0, 0, 0, 0], "side": ["left", "left", "right", "right"],
    ...     "field": ["name", "city"] * 2, "text": ["anna", "berlin", "ana", "berlin"],
    ...     "prediction": 1, "probability": 0.9, "target": 1, "attribution": 0.0,
    ...     "evidence_for_match": [3.0, 2.0, 2.0, 2.0], "baseline_log_odds": -3.0})
    >>> len(plot_waterfall(explanation).patches)
    4
    """
    import matplotlib.pyplot as plt

    steps = waterfall_steps(explanation, pair, max_chars=max_chars)
    n = len(steps)
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 0.45 * n + 1.4))
    y = np.arange(n)[::-1]
    low = np.minimum(steps["start"], steps["end"])
    width = np.abs(steps["end"] - steps["start"])
    colours = np.where(steps["evidence"] > 0, "tab:red", "tab:blue").astype(object)
    ends = [0, n - 1]
    # The baseline and the pair: a bar from 0 to their log-odds.
    low[ends] = np.minimum(0, steps["end"][ends])
    width[ends] = np.abs(steps["end"][ends])
    colours[ends] = "grey"
    ax.barh(y, width, left=low, color=list(colours), height=0.6)
    span = max(float(np.max(low + width) - np.min(low)), 1e-9)
    for i, row in steps.iterrows():
        if row["step"] in ("baseline", "pair"):
            note = f"{row['end']:+.2f}  (p={row['probability']:.3f})"
        else:
            note = f"{row['evidence']:+.2f}"
        ax.text(low[i] + width[i] + 0.01 * span, y[i], note, va="center", ha="left",
                fontsize=8)
    ax.set_yticks(y, steps["label"], fontsize=8)
    ax.axvline(0, color="black", linewidth=0.6)
    # Room on the right for the numbers written beside the bars.
    left_edge, right_edge = float(np.min(low)), float(np.max(low + width))
    ax.set_xlim(left_edge - 0.05 * span, right_edge + 0.3 * span)
    ax.set_xlabel("log-odds of a match")
    ax.set_title(f"pair {steps.attrs['pair']}: evidence for a match, field by field")
    return ax
