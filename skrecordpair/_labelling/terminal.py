"""The terminal labelling session: the records side by side as text, one key
per pair."""

from __future__ import annotations

import shutil
import sys
import unicodedata

from .session import LabellingSession, PairView, pair_text

__all__ = ["label_session"]

# Key -> label (None: unsure); and the keys of the other actions.
_KEYS = {"m": 1, "y": 1, "n": 0, "u": None, "?": None}
_UNDO, _QUIT = ("b", "z"), ("q",)
HELP = "[m]atch  [n]on-match  [u]nsure  [b]ack (undo)  [q]uit"
SHORT_HELP = "m n u b q"  # for narrow terminals
_HIGHLIGHT, _RESET = "\033[1;33m", "\033[0m"


def format_pair(left, right, *, color=False, width=36, columns=None):
    r"""The two records side by side, one line per field, differences marked.

    Values are shown as text that cannot act on the terminal: control
    characters (escape sequences among them), invisible formatting
    characters and bidirectional overrides are written as escapes such as
    ``\x1b`` or ``\u202e``. Columns are aligned by display width, so wide
    (CJK) characters and emoji count as two columns.

    Parameters
    ----------
    left, right : pandas.Series
        The two records (a row of each table).
    color : bool, default=False
        Whether to highlight the fields that differ with ANSI colours; they
        are always marked with ``*`` in the first column.
    width : int, default=36
        Largest number of columns shown of a value; ignored when `columns`
        is given.
    columns : int or None, default=None
        The width of the terminal to fit: the values get the columns that
        the field names leave, and below 48 columns each field takes three
        lines (its name, then the left and the right value) instead of one.
        None lays the values out `width` columns wide.

    Returns
    -------
    str

    Examples
    --------
    >>> import pandas as pd
    >>> from skrecordpair._labelling.terminal import format_pair
    >>> left = pd.Series({"name": "Anna Smith", "city": "Berlin"}, name="l1")
    >>> right = pd.Series({"name": "anna smith", "city": "Paris\x1b]0;x\x07"},
    ...                   name="r9")
    >>> print(format_pair(left, right, width=18))
            left l1             right r9
      name  Anna Smith          anna smith
    * city  Berlin              Paris\x1b]0;x\x07
    """
    view = PairView(left, right)
    stacked = columns is not None and columns < 48
    name_width = max(_display_width(row[0]) for row in view.rows)
    if columns is not None:
        # Long field names are cut to a fifth of the line: the values matter more.
        name_width = min(name_width, max(8, columns // 5))
        width = max(4, (columns - 1 - name_width - 6) // 2)
    if stacked:
        width = max(4, columns - 5)
        lines = [
            f"  {_cut('left ' + view.left_id, width + 2)}",
            f"  {_cut('right ' + view.right_id, width + 2)}",
        ]
    else:
        lines = [
            f"  {'':<{name_width}}  {_pad(_cut('left ' + view.left_id, width), width)}"
            f"  {_cut('right ' + view.right_id, width)}"
        ]
    for name, a, b, same in view.rows:
        mark = " " if same else "*"
        shown = [_cut(v, width) for v in (a, b)]
        if stacked:
            rows = [
                f"{mark} {_cut(name, width + 2)}",
                f"  < {shown[0]}",
                f"  > {shown[1]}",
            ]
        else:
            rows = [
                f"{mark} {_pad(_cut(name, name_width), name_width)}  "
                f"{_pad(shown[0], width)}  {shown[1]}"
            ]
        lines.extend(
            row if same or not color else _HIGHLIGHT + row + _RESET for row in rows
        )
    return "\n".join(lines)


def _char_width(char):
    """Columns a terminal gives `char`: 2 for wide (East Asian wide and full
    width, most emoji), 0 for combining marks, else 1."""
    if unicodedata.combining(char) or unicodedata.category(char) in ("Mn", "Me"):
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def _display_width(text):
    if text.isascii():
        return len(text)
    return sum(_char_width(c) for c in text)


def _cut(text, width):
    """`text` (as a :class:`PairView` shows it) cut to `width` display
    columns, with an ellipsis when longer."""
    if _display_width(text) <= width:
        return text
    kept, used = [], 0
    for char in text:
        w = _char_width(char)
        if used + w > width - 1:
            break
        kept.append(char)
        used += w
    return "".join(kept) + "…"


def _pad(text, width):
    """`text` padded with spaces to `width` display columns."""
    return text + " " * max(0, width - _display_width(text))


_CSI_END = range(0x40, 0x7F)


def read_key(prompt=""):
    """One key press from the terminal (no Enter needed), or one line's first
    character when the input is not a terminal; ``"q"`` at the end of input.

    A key that sends several bytes (an arrow or function key: an escape
    sequence; a non-ASCII character) is returned whole, as one string. Keys
    typed before the prompt are dropped, so that no key labels a pair that
    was not on screen yet.
    """
    sys.stdout.write(prompt)
    sys.stdout.flush()
    if sys.stdin.isatty():
        import termios
        import tty

        fd = sys.stdin.fileno()
        old = termios.tcgetattr(fd)
        try:
            tty.setcbreak(fd)
            key = _read_tty_key(fd)
        finally:
            termios.tcsetattr(fd, termios.TCSADRAIN, old)
        # Only a printable key is echoed: an escape sequence echoed raw would
        # act on the terminal (and eat the start of the next line).
        sys.stdout.write((key if key.isprintable() else "") + "\n")
        sys.stdout.flush()
        return "q" if key in ("\x03", "\x04", "") else key
    line = sys.stdin.readline()
    return line.strip()[:1].lower() if line else "q"


def _read_tty_key(fd):
    """One key from the terminal `fd` in cbreak mode, read byte by byte with
    ``os.read`` (not through ``sys.stdin``'s buffer, which would keep the
    rest of an escape sequence and hand it out as further keys)."""
    import codecs
    import os
    import select

    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    key = ""
    while not key:  # a multi-byte character: until it is whole
        byte = os.read(fd, 1)
        if not byte:
            return ""
        key = decoder.decode(byte)
    if key != "\x1b":
        return key
    # An escape sequence arrives at once; a lone Esc key has nothing after it.
    sequence = b""
    while len(sequence) < 32 and select.select([fd], [], [], 0.05)[0]:
        byte = os.read(fd, 1)
        if not byte:
            break
        sequence += byte
        if (
            len(sequence) > 1
            and sequence[:1] in (b"[", b"O")
            and sequence[-1] in _CSI_END
        ):
            break  # the final byte of a CSI or SS3 sequence
        if len(sequence) == 1 and sequence not in (b"[", b"O"):
            break  # Alt and a key
    return key + sequence.decode("utf-8", errors="replace")


def label_session(
    learner,
    *,
    pairs=None,
    max_labels=None,
    read=None,
    write=None,
    color=False,
    columns=None,
):
    """Label pairs in the terminal: the records side by side, one key per pair.

    Each round shows the learner's proposed batch (or the next pairs of
    `pairs`) one pair at a time; each key press is a label, written through
    to the learner's labels file at once. Between rounds, and only then, the
    learner refits and its report is printed, so that waiting between two
    pairs is only the time to draw them.

    Keys: ``m`` (or ``y``) match, ``n`` non-match, ``u`` (or ``?``) unsure,
    ``b`` (or ``z``) back: take the last label back and show its pair again,
    ``q`` quit (also the end of the input). Any other key shows the help.

    Parameters
    ----------
    learner : ActiveLearner
        A fitted learner; its labels file (if any) receives the labels.
    pairs : pandas.DataFrame or None, default=None
        Pairs to review (``left_id`` and ``right_id`` columns, e.g. from
        :func:`~skrecordpair.uncertain_pairs`) instead of the learner's
        proposals; the pairs already labelled are skipped, a pair listed
        twice is asked once, and a ``probability`` column is shown with each
        pair.
    max_labels : int or None, default=None
        Stop after this many labels in this session; None goes on until
        ``q``, the end of the input, or nothing is left to label.
    read : callable or None, default=None
        ``read(prompt) -> str``, the next key; None reads the terminal.
    write : callable or None, default=None
        ``write(text)`` shows text; None prints it.
    color : bool, default=False
        Whether to highlight differing fields with ANSI colours.
    columns : int or None, default=None
        The width of the terminal, which the records are laid out to fit
        (see :func:`~skrecordpair._labelling.terminal.format_pair`); None asks the
        terminal, and takes 100 when it cannot tell.

    Returns
    -------
    int
        The number of labels given in this session (undone ones not counted).

    Raises
    ------
    ValueError
        If a pair of `pairs` names a record that the tables do not hold;
        raised before the first pair is shown.

    Examples
    --------
    Driven by scripted keys instead of a keyboard:

    >>> import pandas as pd
    >>> from skrecordpair import ActiveLearner, NearestNeighborBlocker, label_session
    >>> left = pd.DataFrame({"name": ["anna smith", "john doe"]}, index=["l1", "l2"])
    >>> right = pd.DataFrame({"name": ["ana smith", "jon doe"]}, index=["r1", "r2"])
    >>> learner = ActiveLearner(NearestNeighborBlocker(k=1)).fit(left, right)
    >>> keys = iter(["m", "n"])
    >>> label_session(learner, read=lambda prompt: next(keys), write=lambda text: None)
    2
    >>> learner.labels_["label"].tolist()
    [1, 0]
    """
    read = read_key if read is None else read
    write = print if write is None else write
    session = LabellingSession(learner, pairs)
    if columns is None:
        columns = shutil.get_terminal_size((100, 24)).columns
    prompt = f"{HELP} > " if columns > len(HELP) + 3 else f"{SHORT_HELP} > "

    def room():
        return max_labels is None or len(session.given) < max_labels

    while room():
        if not session.next_batch():
            write("Nothing left to label.")
            break
        quit_ = False
        while session.current is not None and room():
            pair = session.current
            n = learner.report()["n_labels"]
            p = session.probability(pair)
            write(
                f"\n--- pair {n + 1} ({len(session.given)} in this session"
                f"{'' if p is None else f'; p={p:.2f}'}) ---"
            )
            write(
                format_pair(
                    learner.record(pair[0], "left"),
                    learner.record(pair[1], "right"),
                    color=color,
                    columns=columns,
                )
            )
            key = read(prompt)
            if key in _QUIT:
                quit_ = True
                break
            if key in _UNDO:
                undone = session.undo()
                write(
                    "Nothing to take back."
                    if undone is None
                    else f"Took back the label of {pair_text(undone)}."
                )
                continue
            if key not in _KEYS:
                write(HELP if prompt.startswith(HELP) else SHORT_HELP)
                continue
            session.teach(_KEYS[key])
        # Between batches (or on leaving), and only then: refitting takes a while.
        write(session.refit())
        if quit_:
            break
    return len(session.given)
