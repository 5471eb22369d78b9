"""Labelling front ends over :class:`ActiveLearner`: a terminal session and
recordlinkage's annotation files."""

from __future__ import annotations

import json
import shutil
import sys
import unicodedata

import numpy as np
import pandas as pd

from .._pairs import as_text
from .learner import LABEL_COLUMNS, _short

__all__ = ["label_session", "read_annotation_file", "write_annotation_file"]

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
    fields = list(dict.fromkeys([*left.index, *right.index]))
    values = {side: as_text(pd.Series([record.get(f) for f in fields], dtype=object))
              for side, record in (("left", left), ("right", right))}
    names = [_cut(str(f), 10**9) for f in fields]
    ids = [_cut(str(left.name), 10**9), _cut(str(right.name), 10**9)]
    stacked = columns is not None and columns < 48
    name_width = max(_display_width(n) for n in names)
    if columns is not None:
        # Long field names are cut to a fifth of the line: the values matter more.
        name_width = min(name_width, max(8, columns // 5))
        width = max(4, (columns - 1 - name_width - 6) // 2)
    if stacked:
        width = max(4, columns - 5)
        lines = [f"  {_cut('left ' + ids[0], width + 2)}",
                 f"  {_cut('right ' + ids[1], width + 2)}"]
    else:
        lines = [f"  {'':<{name_width}}  {_pad(_cut('left ' + ids[0], width), width)}  "
                 f"{_cut('right ' + ids[1], width)}"]
    for i, name in enumerate(names):
        a, b = values["left"][i], values["right"][i]
        same = not _differ(a, b)
        mark = " " if same else "*"
        shown = [_cut("" if v is None else v, width) for v in (a, b)]
        if stacked:
            rows = [f"{mark} {_cut(name, width + 2)}", f"  < {shown[0]}", f"  > {shown[1]}"]
        else:
            rows = [f"{mark} {_pad(_cut(name, name_width), name_width)}  "
                    f"{_pad(shown[0], width)}  {shown[1]}"]
        lines.extend(row if same or not color else _HIGHLIGHT + row + _RESET
                     for row in rows)
    return "\n".join(lines)


def _differ(a, b):
    """Whether two values (text or None) differ beyond case and surrounding
    white space: the fields marked ``*``. Computed on the values themselves,
    never on what is shown of them, so a value cut short or holding
    characters shown as escapes still differs from another."""
    return (a or "").strip().lower() != (b or "").strip().lower()


# Shown as escapes: C0 and C1 controls and DEL (category Cc: escape sequences
# start with them), and the invisible format characters (Cf: bidirectional
# overrides and isolates, zero-width spaces and joiners, the BOM), which can
# reorder or hide what a value shows.
_INVISIBLE = {"Cc", "Cf"}


def _visible(text):
    """`text` with each character that could act on a terminal or hide itself
    written as a Python-style escape (``\\x1b``, ``\\u202e``, ``\\U000e0001``)."""
    if text.isprintable():  # the usual case, fast: none of those characters
        return text
    return "".join(_escape(c) if unicodedata.category(c) in _INVISIBLE else c
                   for c in text)


def _escape(char):
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


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
    """`text` on one line, white space collapsed, the other control
    characters escaped (:func:`_visible`), cut to `width` columns with an
    ellipsis when longer."""
    text = _visible(" ".join(text.split()))
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
        if len(sequence) > 1 and sequence[:1] in (b"[", b"O") and sequence[-1] in _CSI_END:
            break  # the final byte of a CSI or SS3 sequence
        if len(sequence) == 1 and sequence not in (b"[", b"O"):
            break  # Alt and a key
    return key + sequence.decode("utf-8", errors="replace")


def label_session(learner, *, pairs=None, max_labels=None, read=None, write=None,
                  color=False, columns=None):
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
    queue = PairQueue(learner, pairs)
    if columns is None:
        columns = shutil.get_terminal_size((100, 24)).columns
    prompt = f"{HELP} > " if columns > len(HELP) + 3 else f"{SHORT_HELP} > "
    given = []  # the pairs labelled in this session, in order
    while max_labels is None or len(given) < max_labels:
        todo = queue.next_batch()
        if not todo:
            write("Nothing left to label.")
            break
        quit_ = False
        while todo and (max_labels is None or len(given) < max_labels):
            pair = todo[0]
            n = learner.report()["n_labels"]
            p = queue.probability(pair)
            write(f"\n--- pair {n + 1} ({len(given)} in this session"
                  f"{'' if p is None else f'; p={p:.2f}'}) ---")
            write(format_pair(learner.record(pair[0], "left"),
                              learner.record(pair[1], "right"), color=color,
                              columns=columns))
            key = read(prompt)
            if key in _QUIT:
                quit_ = True
                break
            if key in _UNDO:
                undone = learner.undo()
                if undone is None:
                    write("Nothing to take back.")
                    continue
                if given and given[-1] == undone:
                    given.pop()
                todo.insert(0, undone)
                write(f"Took back the label of {_pair_text(undone)}.")
                continue
            if key not in _KEYS:
                write(HELP if prompt.startswith(HELP) else SHORT_HELP)
                continue
            learner.teach(pair[0], pair[1], _KEYS[key])
            given.append(learner.pair(*pair))
            todo.pop(0)
        report = learner.refit()
        write(_report_line(report))
        if quit_:
            break
    return len(given)


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
        missing = [c for c in ("left_id", "right_id") if c not in pairs]
        if missing:
            raise ValueError("pairs must be a DataFrame with left_id and right_id "
                             f"columns; it lacks {missing}.")
        probability = (pairs["probability"] if "probability" in pairs
                       else [None] * len(pairs))
        # Each pair as the learner stores it (ids as the tables spell them,
        # in table order when deduplicating), so that a pair listed twice,
        # or in both orders when deduplicating, is asked once.
        self.pairs, bad = [], []
        for left_id, right_id, p in zip(pairs["left_id"], pairs["right_id"],
                                        probability):
            try:
                pair = learner.pair(left_id, right_id)
            except ValueError:
                bad.append((left_id, right_id))
                continue
            if pair not in self._probability:
                self.pairs.append(pair)
                self._probability[pair] = _number(p)
        if bad:
            shown = ", ".join(_pair_text(b) for b in bad[:3])
            raise ValueError(
                f"{len(bad)} of the {len(pairs)} pairs to review name a record id that "
                f"the tables do not hold, or pair a record with itself: {shown}"
                f"{', ...' if len(bad) > 3 else ''}. Are they pairs of these tables, "
                "with the same id column?")

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


def _pair_text(pair):
    """A pair of ids as text to show: ``(l1, r7)``, control characters escaped."""
    return f"({_visible(str(pair[0]))}, {_visible(str(pair[1]))})"


def _report_line(report):
    line = (f"{report['n_labels']} labels ({report['n_matches']} matches, "
            f"{report['n_non_matches']} non-matches, {report['n_unsure']} unsure)")
    if not np.isnan(report["estimated_precision"]):
        line += (f"; {report['predicted_matches']} predicted matches, estimated "
                 f"precision {report['estimated_precision']:.2f}, recall "
                 f"{report['estimated_recall']:.2f}")
    return line


# ------------------------------------------------------ annotation files
def write_annotation_file(path, pairs, left, right=None, *, labels=None,
                          left_name=None, right_name=None):
    """Write pairs to label in recordlinkage's annotation file format.

    The file is what :func:`recordlinkage.write_annotation_file` writes (a
    JSON file for recordlinkage's browser annotator): each pair with both
    records, field by field. Label it there, then read it back with
    :func:`read_annotation_file` and :meth:`ActiveLearner.teach_many`.

    Parameters
    ----------
    path : str or path-like
        The JSON file to write.
    pairs : pandas.DataFrame
        The pairs, with ``left_id`` and ``right_id`` columns (e.g.
        :meth:`ActiveLearner.propose` or :func:`~skrecordpair.uncertain_pairs`).
    left, right : pandas.DataFrame
        The tables, indexed by record id; `right` None for deduplication.
    labels : array-like or None, default=None
        Labels already known (1, 0, or None/NA for unlabelled), one per pair,
        written as each pair's ``label``.
    left_name, right_name : str or None, default=None
        The data set names recorded in the file.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import pandas as pd
    >>> from skrecordpair import read_annotation_file, write_annotation_file
    >>> left = pd.DataFrame({"name": ["anna smith"]}, index=["l1"])
    >>> right = pd.DataFrame({"name": ["ana smith", "jon doe"]}, index=["r1", "r2"])
    >>> pairs = pd.DataFrame({"left_id": ["l1", "l1"], "right_id": ["r1", "r2"]})
    >>> path = Path(tempfile.mkdtemp()) / "pairs.json"
    >>> write_annotation_file(path, pairs, left, right, labels=[1, None])
    >>> read_annotation_file(path)
      left_id right_id  label
    0      l1       r1      1
    1      l1       r2   <NA>
    """
    import recordlinkage

    # Unnamed levels: recordlinkage reads each pair's ids as pair[0], pair[1].
    index = pd.MultiIndex.from_arrays([pairs["left_id"].to_numpy(),
                                       pairs["right_id"].to_numpy()])
    recordlinkage.write_annotation_file(path, index, left, right, left_name,
                                        right_name)
    if labels is not None:
        labels = pd.array(labels, dtype="Int64")
        if len(labels) != len(pairs):
            raise ValueError(f"labels must have one entry per pair; got {len(labels)} "
                             f"labels for {len(pairs)} pairs.")
        with open(path) as f:
            content = json.load(f)
        for item, label in zip(content["pairs"], labels):
            if not pd.isna(label):
                item["label"] = int(label)
        with open(path, "w") as f:
            json.dump(content, f, indent=2)


def read_annotation_file(path):
    """Read the labels of a recordlinkage annotation file.

    The whole file is checked before anything is returned, so that
    ``learner.teach_many(read_annotation_file(path).dropna())`` adds all of
    its labels or, on an error, none.

    Parameters
    ----------
    path : str or path-like
        A JSON file in recordlinkage's annotation format (version 1): an
        object with ``version`` and ``pairs``, each pair with
        ``identifiers.a.record``, ``identifiers.b.record`` and optionally
        ``label``.

    Returns
    -------
    pandas.DataFrame
        ``left_id``, ``right_id`` and ``label`` (Int64: 1 for a link, 0 for
        a distinct pair, NA when not annotated), one row per pair in file
        order. ``learner.teach_many(frame.dropna())`` adds the annotated
        pairs to a learner's labels (without ``dropna``, the pairs not
        annotated count as unsure).

    Raises
    ------
    ValueError
        If the file is not UTF-8 JSON, is nested too deeply, is not of
        version 1, a pair lacks one of the keys above or its record ids are
        not text or numbers, or a label is not 0, 1 or null.

    Examples
    --------
    A file as recordlinkage's annotator leaves it (see
    :func:`write_annotation_file` for writing one):

    >>> import json, tempfile
    >>> from pathlib import Path
    >>> from skrecordpair import read_annotation_file
    >>> pair = {"identifiers": {"a": {"dataset": None, "record": "l1"},
    ...                         "b": {"dataset": None, "record": "r1"}},
    ...         "fields": [], "label": 0}
    >>> path = Path(tempfile.mkdtemp()) / "pairs.json"
    >>> _ = path.write_text(json.dumps({"version": 1, "pairs": [pair]}))
    >>> read_annotation_file(path)
      left_id right_id  label
    0      l1       r1      0
    """
    name = repr(str(path))
    with open(path, "rb") as f:
        data = f.read()
    try:
        content = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError as error:
        raise ValueError(f"The annotation file {name} must be UTF-8 text; byte "
                         f"{error.start} is {data[error.start:error.start + 1]!r}."
                         ) from None
    except json.JSONDecodeError as error:
        raise ValueError(f"The annotation file {name} is not JSON: {error}.") from None
    except RecursionError:
        raise ValueError(f"The annotation file {name} is nested too deeply to be an "
                         "annotation file.") from None
    if not isinstance(content, dict):
        raise ValueError(f"The annotation file {name} must hold a JSON object with "
                         f"'version' and 'pairs'; it holds a {type(content).__name__}.")
    version = content.get("version")
    if type(version) is not int or version != _ANNOTATION_VERSION:
        raise ValueError(f"The annotation file {name} is of version "
                         f"{_short(version)}; this reader knows version "
                         f"{_ANNOTATION_VERSION} (recordlinkage's) only.")
    pairs = content.get("pairs", _MISSING)
    if pairs is None:  # recordlinkage writes no pairs as null
        pairs = []
    if not isinstance(pairs, list):
        raise ValueError(f"The annotation file {name} must hold a list 'pairs'; "
                         f"got {'none' if pairs is _MISSING else _short(pairs)}.")
    rows = []
    for i, item in enumerate(pairs):
        ids = [_key(item, ("identifiers", side, "record"), name, i) for side in "ab"]
        for side, value in zip("ab", ids):
            if isinstance(value, bool) or not isinstance(value, (str, int, float)):
                raise ValueError(f"Pair {i} of the annotation file {name}: its "
                                 f"identifiers.{side}.record must be a text or a "
                                 f"number; got {_short(value)}.")
        label = item.get("label")
        if label is not None and (not isinstance(label, (int, float))
                                  or label not in (0, 1)):
            raise ValueError(f"The labels in {name} must be 0 or 1 (or null); pair {i} "
                             f"holds {_short(label)}.")
        rows.append((*ids, None if label is None else int(label)))
    frame = pd.DataFrame(rows, columns=LABEL_COLUMNS, dtype=object)
    frame["label"] = pd.array(frame["label"].tolist(), dtype="Int64")
    return frame


_ANNOTATION_VERSION = 1
_MISSING = object()


def _key(item, keys, name, i):
    """``item[keys[0]][keys[1]]...``, or a ValueError naming the pair and the
    missing key."""
    value = item
    for depth, key in enumerate(keys):
        if not isinstance(value, dict) or key not in value:
            where = ".".join(keys[:depth + 1])
            raise ValueError(f"Pair {i} of the annotation file {name} lacks {where} "
                             f"(each pair needs {'.'.join(keys[:1])}.a.record and "
                             f"{'.'.join(keys[:1])}.b.record).")
        value = value[key]
    return value
