"""Pictures of explanations: a matplotlib figure and an HTML table for notebooks.

They take the frame returned by :meth:`RecordPairClassifier.explain`. Every
picture uses one colour meaning: red is evidence for a match, blue evidence
against it (the ``evidence_for_match`` column). Only when the explanation has
no evidence for a match (more than two classes, or a match class the model
does not know) do :func:`plot_explanation` and :func:`explanation_html`
colour the attribution towards the explained class instead, and say so.
matplotlib is needed only for the ``plot_*`` functions.
"""

from __future__ import annotations

import html

import numpy as np
import pandas as pd

from ._pairs import require_columns

__all__ = [
    "ExplanationView",
    "evidence_by_field",
    "explanation_html",
    "plot_evidence_by_field",
    "plot_explanation",
    "plot_waterfall",
    "waterfall_steps",
]

#: The page of the documentation that explains the explanations.
DOCS_URL = "https://skrecordpair.readthedocs.io/en/latest/explanations.html"

# How the errors name the frame that the functions draw.
_EXPLANATION = "The explanation (the frame returned by RecordPairClassifier.explain())"
_COLUMNS = {
    "pair",
    "side",
    "field",
    "text",
    "attribution",
    "target",
    "prediction",
    "probability",
}

#: The colours of evidence for a match and against it, in every picture.
FOR_MATCH = "#d62728"
AGAINST_MATCH = "#1f77b4"
# Log-odds that round to zero at the two decimals written: no step shown for
# the integration error below it.
_SHOWN = 0.005


def _one_pair(explanation, pair):
    require_columns(explanation, sorted(_COLUMNS), _EXPLANATION)
    if len(explanation) == 0:
        raise ValueError("The explanation is empty: there is no pair to draw.")
    if pair is None:
        pair = explanation["pair"].iloc[0]
    rows = explanation[explanation["pair"] == pair]
    if rows.empty:
        known = list(dict.fromkeys(explanation["pair"]))
        raise ValueError(
            f"No pair {pair!r} in the explanation; its pairs are "
            f"{known[:10]}{' ...' if len(known) > 10 else ''}."
        )
    left = rows[rows["side"] == "left"].reset_index(drop=True)
    right = rows[rows["side"] == "right"].reset_index(drop=True)
    return pair, left, right


def _coloured(rows):
    """``(column, what)``: the column the pictures colour, evidence for a
    match when the explanation has it, else the attribution towards the
    explained class, and its name in words."""
    if "evidence_for_match" in rows and rows["evidence_for_match"].notna().all():
        return "evidence_for_match", "evidence for a match (log-odds)"
    return "attribution", f"attribution towards {rows['target'].iloc[0]!s}"


def _limit(left, right, column):
    """Symmetric colour range shared by both sides, so colours compare."""
    values = np.concatenate([left[column], right[column]])
    return float(np.abs(values).max()) or 1.0


def _evidence_cmap():
    from matplotlib.colors import LinearSegmentedColormap

    return LinearSegmentedColormap.from_list(
        "skrecordpair_evidence", [AGAINST_MATCH, "#ffffff", FOR_MATCH]
    )


def _signed(value):
    """``+1.23`` / ``-1.23``, and ``0.00`` rather than ``-0.00``."""
    text = f"{value:+.2f}"
    return "0.00" if text in ("+0.00", "-0.00") else text


def _title(pair, rows):
    first = rows.iloc[0]
    return (
        f"pair {pair}: predicted {first['prediction']!s} "
        f"(p={first['probability']:.3f}), explaining {first['target']!s}"
    )


def _display(text):
    return "∅ (missing)" if text is None or text != text else str(text)


def _shorten(text, max_chars):
    text = _display(text)
    return text if len(text) <= max_chars else text[: max_chars - 1] + "…"


def _renderer(figure):
    """The figure's renderer, to measure texts; None where the backend has none."""
    get = getattr(figure.canvas, "get_renderer", None)
    try:
        return get() if get is not None else None
    except (AttributeError, TypeError, NotImplementedError):
        return None


def _fit_label(artist, field, text, max_chars, right_px, renderer):
    """Shorten the text of `artist`, ``"<field>: <text>"``, until it ends left
    of `right_px` (display pixels): the longest prefix of the value that fits,
    with an ellipsis; the whole label shortened when the field name alone does
    not fit."""

    def fits(label):
        artist.set_text(label)
        return artist.get_window_extent(renderer).x1 <= right_px

    full = _shorten(text, max_chars)
    if fits(f"{field}: {full}"):
        return
    label = f"{field}: {full}"
    low, high = 1, len(full) - 1  # characters of the value kept
    best = None
    while low <= high:
        middle = (low + high) // 2
        candidate = f"{field}: {_shorten(full, middle)}"
        if fits(candidate):
            best, low = candidate, middle + 1
        else:
            high = middle - 1
    if best is None:  # the field name itself is too long
        low, high = 1, len(label) - 1
        best = "…"
        while low <= high:
            middle = (low + high) // 2
            if fits(_shorten(label, middle)):
                best, low = _shorten(label, middle), middle + 1
            else:
                high = middle - 1
    artist.set_text(best)


def plot_explanation(explanation, pair=None, *, ax=None, max_chars=40, cmap=None):
    """Draw both records of one pair, each field coloured by its evidence.

    Red is evidence for a match and blue against it, as in every picture of
    this module; each cell's number is the field's ``evidence_for_match``
    (log-odds). Without evidence for a match (more than two classes, or an
    unknown match class) the cells show and colour the ``attribution``
    towards the explained class, and the colour bar says so. Field texts are
    shortened with an ellipsis to `max_chars` characters, and further so that
    they end before the cell's number.

    Parameters
    ----------
    explanation : pandas.DataFrame
        The output of :meth:`RecordPairClassifier.explain`.
    pair : hashable, default=None
        The ``pair`` label to draw; None draws the first pair.
    ax : matplotlib.axes.Axes, default=None
        Where to draw; None creates a new figure.
    max_chars : int, default=40
        Field texts are shortened to at most this many characters.
    cmap : str or matplotlib colormap, default=None
        A diverging colormap whose centre is zero; None is the package's
        blue-white-red map, with the colours of :func:`plot_waterfall`.

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
    column, what = _coloured(pd.concat([left, right]))
    limit = _limit(left, right, column)
    norm = TwoSlopeNorm(vcenter=0.0, vmin=-limit, vmax=limit)
    colormap = _evidence_cmap() if cmap is None else plt.get_cmap(cmap)
    n_rows = max(len(left), len(right))
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 0.55 * n_rows + 1.2))

    cells = []
    for column_index, side in enumerate((left, right)):
        for row, record in side.iterrows():
            y = n_rows - 1 - row
            value = record[column]
            ax.add_patch(
                plt.Rectangle(
                    (column_index * 1.05, y), 1.0, 0.9, color=colormap(norm(value))
                )
            )
            # Dark cells (strong values) need light text to stay readable.
            ink = "white" if abs(value) > 0.6 * limit else "black"
            label = ax.text(
                column_index * 1.05 + 0.02,
                y + 0.45,
                f"{record['field']}: {_shorten(record['text'], max_chars)}",
                va="center",
                ha="left",
                fontsize=9,
                color=ink,
            )
            number = ax.text(
                column_index * 1.05 + 0.98,
                y + 0.45,
                _signed(value),
                va="center",
                ha="right",
                fontsize=8,
                color=ink,
            )
            cells.append((label, number, record))
    ax.set_xlim(0, 2.05)
    ax.set_ylim(0, n_rows)
    ax.set_xticks([0.5, 1.55], ["left record", "right record"])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_title(_title(pair, left))
    mappable = plt.cm.ScalarMappable(norm=norm, cmap=colormap)
    ax.figure.colorbar(mappable, ax=ax, label=what, fraction=0.04, pad=0.02)
    # Long values would run over the numbers: shorten each label until it
    # ends before its number (measured once the colour bar took its room).
    renderer = _renderer(ax.figure)
    if renderer is not None:
        gap = 4 * ax.figure.dpi / 72  # 4 points
        for label, number, record in cells:
            right_px = number.get_window_extent(renderer).x0 - gap
            _fit_label(
                label, record["field"], record["text"], max_chars, right_px, renderer
            )
    return ax


def _rgb(colour):
    return ", ".join(str(int(colour[i : i + 2], 16)) for i in (1, 3, 5))


def _css_colour(value, limit):
    """Red (FOR_MATCH) for positive, blue (AGAINST_MATCH) for negative, white
    for zero; alpha by magnitude."""
    strength = min(1.0, abs(value) / limit)
    rgb = _rgb(FOR_MATCH if value > 0 else AGAINST_MATCH)
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
    column, what = _coloured(pd.concat([left, right]))
    limit = _limit(left, right, column)
    legend = (
        "red: for a match, blue: against it"
        if column == "evidence_for_match"
        else f"red: towards {left['target'].iloc[0]!s}, blue: away from it"
    )
    cell = "padding:4px 8px;border:1px solid #ddd;"
    rows = []
    for i in range(max(len(left), len(right))):
        cells = []
        for side in (left, right):
            if i >= len(side):
                cells.append(f'<td style="{cell}"></td>')
                continue
            record = side.iloc[i]
            value = float(record[column])
            cells.append(
                f'<td style="{cell}background:{_css_colour(value, limit)}" '
                f'title="{html.escape(what)}: {value:+.3f}">'
                f"<b>{html.escape(str(record['field']))}"
                f"</b>: {html.escape(_display(record['text']))} "
                f"<small>({_signed(value)})</small></td>"
            )
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return (
        '<table style="border-collapse:collapse;font-family:sans-serif;font-size:13px">'
        f"<caption>{html.escape(_title(pair, left))}; {html.escape(legend)} "
        f'(<a href="{DOCS_URL}" target="_blank">how to read this</a>)</caption>'
        f'<tr><th style="{cell}">left record</th><th style="{cell}">right record</th></tr>'
        + "".join(rows)
        + "</table>"
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
        shown = "<br>".join(
            explanation_html(self.explanation, pair) for pair in pairs[: self.max_pairs]
        )
        if len(pairs) > self.max_pairs:
            shown += f"<p>… {len(pairs) - self.max_pairs} more pairs not shown.</p>"
        return shown


# ------------------------------------------------------------ evidence views


def _check_evidence(explanation):
    needed = {
        "pair",
        "side",
        "field",
        "text",
        "prediction",
        "probability",
        "evidence_for_match",
        "baseline_log_odds",
    }
    require_columns(explanation, sorted(needed), _EXPLANATION)
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
    table = explanation.pivot_table(
        index="field", columns="prediction", values="evidence_for_match", aggfunc="mean"
    )
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
    from matplotlib.patches import Patch

    table = evidence_by_field(explanation)
    if ax is None:
        _, ax = plt.subplots(
            figsize=(7, 0.5 * len(table) * max(1, table.shape[1]) + 1.5)
        )
    height = 0.8 / max(1, table.shape[1])
    y = np.arange(len(table))[::-1]
    # Red for a match and blue against, as in every picture; the predicted
    # classes differ by their hatching.
    hatches = ["", "//", "..", "xx", "\\\\", "++", "oo", "--"]
    handles = []
    for k, label in enumerate(table.columns):
        n = table.attrs["pairs"].get(label, 0)
        values = table[label].fillna(0).to_numpy()
        ax.barh(
            y + (k - (table.shape[1] - 1) / 2) * height,
            values,
            height=height,
            color=np.where(values > 0, FOR_MATCH, AGAINST_MATCH).tolist(),
            edgecolor="black",
            linewidth=0.5,
            hatch=hatches[k % len(hatches)],
        )
        handles.append(
            Patch(
                facecolor="white",
                edgecolor="black",
                linewidth=0.5,
                hatch=hatches[k % len(hatches)],
                label=f"predicted {label} ({n} pairs)",
            )
        )
    handles += [
        Patch(color=FOR_MATCH, label="for a match"),
        Patch(color=AGAINST_MATCH, label="against a match"),
    ]
    ax.set_yticks(y, table.index)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlabel("mean evidence for a match (log-odds)")
    ax.legend(handles=handles, loc="best", fontsize=8)
    ax.set_title("Which fields drive the decisions")
    return ax


def _match_log_odds(rows):
    """The model's log-odds of a match for the pair of `rows`, from its
    ``probability`` (of the predicted class) and whether that class is the
    match: a predicted match is the pair measured from the reference."""
    first = rows.iloc[0]
    p = float(np.clip(first["probability"], 1e-300, 1 - np.finfo(float).epsneg))
    log_odds = np.log(p) - np.log1p(-p)
    return log_odds if first["baseline"] == "reference" else -log_odds


def waterfall_steps(explanation, pair=None, *, max_chars=30):
    """The steps of one pair's waterfall chart, from the baseline to the pair.

    Each field's evidence for a match is the mean of its two sides
    (``left_evidence`` and ``right_evidence``), and the start the mean of the
    two sides' ``baseline_log_odds``. The chart ends at the model's log-odds
    of a match for the pair, the probability that ``predict_proba`` gives:
    the fields' evidence reaches it up to the integration error (the mean
    ``convergence_delta``), which gets a step of its own, ``"integration
    error"``, when it is at least 0.005 (it would show as ``0.00``
    otherwise).

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
        for the integration error when it shows, and one for the pair, with
        columns ``step`` (``"baseline"``, the field's name, ``"integration
        error"`` or ``"pair"``), ``label``, ``evidence`` (the step's
        log-odds; NaN for the first and last rows), ``left_evidence`` and
        ``right_evidence`` (each side's, for the fields), ``start`` and
        ``end`` (log-odds of a match before and after the step), and
        ``probability`` (of a match after the step: for the pair, the
        model's). ``attrs["integration_error"]`` holds the gap between the
        fields' sum and the pair, whether shown or not.

    Examples
    --------
    >>> import pandas as pd
    >>> from skrecordpair.plotting import waterfall_steps
    >>> explanation = pd.DataFrame({
    ...     "pair": [0, 0, 0, 0], "side": ["left", "left", "right", "right"],
    ...     "field": ["name", "city"] * 2, "text": ["anna", "berlin", "ana", "berlin"],
    ...     "prediction": 1, "probability": 0.8, "target": 1, "attribution": 0.0,
    ...     "evidence_for_match": [3.0, 2.0, 2.0, 2.0], "baseline": "reference",
    ...     "baseline_log_odds": -3.0})
    >>> steps = waterfall_steps(explanation)
    >>> list(steps["step"])
    ['baseline', 'name', 'city', 'integration error', 'pair']
    >>> steps["end"].round(3).tolist()
    [-3.0, -0.5, 1.5, 1.386, 1.386]
    """
    _check_evidence(explanation)
    # Its 'baseline' column says whether the pair is a predicted match.
    require_columns(explanation, ["baseline"], _EXPLANATION)
    pair, left, right = _one_pair(explanation, pair)
    sides = (
        left["evidence_for_match"].to_numpy(dtype=float),
        right["evidence_for_match"].to_numpy(dtype=float),
    )
    evidence = (sides[0] + sides[1]) / 2
    start = float(
        (left["baseline_log_odds"].iloc[0] + right["baseline_log_odds"].iloc[0]) / 2
    )
    ends = start + np.cumsum(evidence)
    reached = float(ends[-1]) if len(ends) else start
    model = _match_log_odds(left)
    gap = model - reached
    labels = [
        f"{field}: {_shorten(a, max_chars)} | {_shorten(b, max_chars)}"
        for field, a, b in zip(left["field"], left["text"], right["text"])
    ]
    rest = abs(gap) >= _SHOWN
    steps = pd.DataFrame(
        {
            "step": [
                "baseline",
                *left["field"],
                *(["integration error"] if rest else []),
                "pair",
            ],
            "label": [
                "baseline",
                *labels,
                *(["integration error"] if rest else []),
                "pair",
            ],
            "evidence": [np.nan, *evidence, *([gap] if rest else []), np.nan],
            "left_evidence": [np.nan, *sides[0], *([np.nan] if rest else []), np.nan],
            "right_evidence": [np.nan, *sides[1], *([np.nan] if rest else []), np.nan],
            "start": [start, start, *ends[:-1], *([reached] if rest else []), start],
            "end": [start, *ends, *([model] if rest else []), model],
        }
    )
    steps["probability"] = 1 / (1 + np.exp(-steps["end"]))
    steps.attrs["pair"] = pair
    steps.attrs["integration_error"] = gap
    return steps


def plot_waterfall(explanation, pair=None, *, ax=None, max_chars=30):
    """Waterfall chart of one pair: from the baseline's probability of a match,
    one bar per field, to the pair's.

    The bars are in log-odds of a match (where the fields' evidence adds up),
    red for a match and blue against, as in every picture of this module;
    the baseline's and the pair's probabilities are written beside their
    bars. The pair's is the model's (``predict_proba``): what the fields'
    evidence leaves of it, the integration error, is a hatched grey step of
    its own. A field whose two sides disagree in sign shows both: two thin
    bars inside its row and both numbers beside it. Field texts are shortened
    with an ellipsis (`max_chars`) and written left of the axes, the numbers
    beside the bars, inside the axes, so they never overlap.

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
    ...     "prediction": 1, "probability": 0.8175744761936437, "target": 1,
    ...     "attribution": 0.0, "evidence_for_match": [3.0, 2.0, 2.0, 2.0],
    ...     "baseline": "reference", "baseline_log_odds": -3.0})
    >>> len(plot_waterfall(explanation).patches)
    4
    """
    import matplotlib.pyplot as plt

    steps = waterfall_steps(explanation, pair, max_chars=max_chars)
    n = len(steps)
    created = ax is None
    if created:
        _, ax = plt.subplots(figsize=(8, 0.45 * n + 1.4))
    y = np.arange(n)[::-1].astype(float)
    start, end = steps["start"].to_numpy(), steps["end"].to_numpy()
    low, width = np.minimum(start, end), np.abs(end - start)
    evidence = steps["evidence"].to_numpy()
    colours = np.where(evidence > 0, FOR_MATCH, AGAINST_MATCH).astype(object)
    ends = [0, n - 1]
    # The baseline and the pair: a bar from 0 to their log-odds.
    low[ends] = np.minimum(0, end[ends])
    width[ends] = np.abs(end[ends])
    colours[ends] = "grey"
    rest = (steps["step"] == "integration error").to_numpy()
    colours[rest] = "lightgrey"
    bars = ax.barh(y, width, left=low, color=list(colours), height=0.6)
    for i in np.flatnonzero(rest):
        bars[i].set_hatch("//")
    # Each row's extent, its side bars included: the numbers go right of it.
    row_low, row_high = low.copy(), low + width
    notes = []
    for i, row in steps.iterrows():
        if row["step"] in ("baseline", "pair"):
            note = f"{_signed(row['end'])}  (p={row['probability']:.3f})"
        elif row["step"] == "integration error":
            note = f"{_signed(row['evidence'])}  (integration error)"
        else:
            note = _signed(row["evidence"])
            a, b = row["left_evidence"], row["right_evidence"]
            if a * b < 0:
                # The mean hides sides that disagree: draw and write both.
                note += f"  (left {_signed(a)}, right {_signed(b)})"
                for offset, value in ((0.2, a), (-0.2, b)):
                    ax.barh(
                        y[i] + offset,
                        abs(value),
                        left=min(row["start"], row["start"] + value),
                        height=0.12,
                        color=FOR_MATCH if value > 0 else AGAINST_MATCH,
                        edgecolor="black",
                        linewidth=0.4,
                    )
                row_low[i] = min(row_low[i], row["start"] + min(a, b))
                row_high[i] = max(row_high[i], row["start"] + max(a, b))
        notes.append(note)
    left_edge, right_edge = float(np.min(row_low)), float(np.max(row_high))
    span = max(right_edge - left_edge, 1e-9)
    texts = [
        ax.text(
            row_high[i] + 0.01 * span,
            y[i],
            notes[i],
            va="center",
            ha="left",
            fontsize=8,
        )
        for i in range(n)
    ]
    ax.set_yticks(y, steps["label"], fontsize=8)
    ax.axvline(0, color="black", linewidth=0.6)
    ax.set_xlabel("log-odds of a match")
    ax.set_title(f"pair {steps.attrs['pair']}: evidence for a match, field by field")
    ax.set_xlim(left_edge - 0.05 * span, right_edge + 0.3 * span)
    _make_room(ax, texts)
    if created:
        # The labels left of the axes need room in the figure; the numbers,
        # now inside the axes, keep their place in the narrower axes.
        ax.figure.tight_layout()
        _make_room(ax, texts)
    return ax


def _make_room(ax, texts):
    """Widen the x axis on the right until every text ends inside the axes."""
    renderer = _renderer(ax.figure)
    if renderer is None:
        return
    for _ in range(5):
        box = ax.get_window_extent(renderer)
        overrun = max(t.get_window_extent(renderer).x1 for t in texts) - box.x1
        if overrun <= 0:
            return
        low, high = ax.get_xlim()
        per_pixel = (high - low) / box.width
        ax.set_xlim(low, high + (overrun + 6) * per_pixel * 1.05)
