"""Pictures of explanations: a matplotlib figure and an HTML table for notebooks.

Both take the frame returned by :meth:`RecordPairClassifier.explain` and draw one
pair: the two records side by side, field by field, each field coloured by its
attribution (red pushes towards the explained class, blue away from it).
matplotlib is needed only for :func:`plot_explanation`.
"""

from __future__ import annotations

import html

import numpy as np

__all__ = ["ExplanationView", "explanation_html", "plot_explanation"]

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

    def short(text):
        text = _display(text)
        return text if len(text) <= max_chars else text[: max_chars - 1] + "…"

    for column, side in enumerate((left, right)):
        for row, record in side.iterrows():
            y = n_rows - 1 - row
            value = record["attribution"]
            ax.add_patch(plt.Rectangle((column * 1.05, y), 1.0, 0.9,
                                       color=colormap(norm(value))))
            # Dark cells (strong attributions) need light text to stay readable.
            ink = "white" if abs(value) > 0.6 * limit else "black"
            ax.text(column * 1.05 + 0.02, y + 0.45,
                    f"{record['field']}: {short(record['text'])}", va="center",
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
        f"<caption>{html.escape(_title(pair, left))}</caption>"
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
