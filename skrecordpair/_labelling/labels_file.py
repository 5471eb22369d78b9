"""The labels file: a CSV log of ``left_id,right_id,label`` lines.

Each label is appended and synced as it is given, under a file lock, so that a
killed session loses nothing and two learners may write into one file; an
undo appends an ``undo`` line rather than cutting one. Reading replays the
log: the last line of a pair counts, and an undo line takes back the latest
earlier label of its pair.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import stat
from collections import namedtuple

import pandas as pd

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

__all__ = ["read_labels"]

LABEL_COLUMNS = ["left_id", "right_id", "label"]
# How a label is written in the labels file, and the spellings read back.
_WRITTEN = {1: "1", 0: "0", None: "unsure"}
# No empty spelling: an empty label is what a line cut short leaves.
_READ = {
    "1": 1,
    "0": 0,
    "unsure": None,
    "?": None,
    "match": 1,
    "non-match": 0,
    "nonmatch": 0,
    "true": 1,
    "false": 0,
    "yes": 1,
    "no": 0,
}
_HEADER = ",".join(LABEL_COLUMNS).encode() + b"\r\n"
# Markers of an undo line that names no label, and of a label not understood.
_ANY, _BAD = object(), object()


def read_labels(path):
    """Read a labels file: ``left_id,right_id,label`` lines.

    The file is a log (see :ref:`the labels file <labels-file>`): each line
    gives a pair a label, and an ``undo`` line takes back the latest earlier
    label of its pair (ids spelled as on that line). This function returns
    the labels that are not taken back, undo lines left out.

    Parameters
    ----------
    path : str or path-like
        The CSV file. Ids are read as strings; a label is ``1`` or ``0``
        (also ``match``/``non-match``, ``true``/``false``, ``yes``/``no``),
        ``unsure`` (also ``?``), or ``undo`` (optionally followed by the
        label it takes back, e.g. ``undo 1``). An empty label is refused: it
        is what a line cut short leaves.

    Returns
    -------
    pandas.DataFrame
        Columns ``left_id``, ``right_id`` (str) and ``label`` (Int64: 1, 0,
        or NA for unsure), one row per label line not taken back, in file
        order (a pair labelled twice has two rows; the last one counts).

    Raises
    ------
    ValueError
        If the path is not a regular file, the file is not UTF-8 text, a
        column is missing, a line has more fields than the header or lacks
        one of the three, or a label is not one of the spellings above.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from skrecordpair import read_labels
    >>> path = Path(tempfile.mkdtemp()) / "labels.csv"
    >>> _ = path.write_text("left_id,right_id,label\\nl1,r1,1\\nl2,r7,unsure\\n"
    ...                     "l3,r3,0\\nl3,r3,undo 0\\n")
    >>> read_labels(path)
      left_id right_id  label
    0      l1       r1      1
    1      l2       r7   <NA>
    """
    log = read_log(path)
    alive = replay(list(zip(log.left_ids, log.right_ids)), log.labels, log.undos)
    label = pd.array([log.labels[i] for i in alive], dtype="Int64")
    return pd.DataFrame(
        {
            "left_id": pd.Series([log.left_ids[i] for i in alive], dtype=object),
            "right_id": pd.Series([log.right_ids[i] for i in alive], dtype=object),
            "label": label,
        }
    )


LabelLog = namedtuple(
    "LabelLog", ["header", "lines", "left_ids", "right_ids", "labels", "undos"]
)
LabelLog.__doc__ = (
    """The lines of a labels file, in file order (see :func:`read_log`)."""
)


def read_or_create(path):
    """The lines of the labels file `path` (:func:`read_log`), or None after
    writing its header when the file is missing or holds no line.

    Raises
    ------
    ValueError
        If the path is not a regular file, or the file is malformed (see
        :func:`read_labels`).
    """
    try:
        check_regular(path, os.stat(path).st_mode)
    except FileNotFoundError:
        append_lines(path, [])  # a new file: its header
        return None
    log = read_log(path)
    if log.header is None:  # empty, or blank lines only
        append_lines(path, [] if os.stat(path).st_size == 0 else [LABEL_COLUMNS])
        return None
    return log


def append_labels(path, events, undo=False):
    """Append `events`, ``((left_id, right_id), label)`` tuples with label 1,
    0 or None (unsure), to the labels file `path` in one write: as label
    lines, or as the undo lines that take them back when `undo`."""
    rows = [
        [a, b, ("undo " if undo else "") + _WRITTEN[label]] for (a, b), label in events
    ]
    append_lines(path, rows)


def short(value, limit=60):
    """``repr(value)``, cut to about `limit` characters: an id or a label
    quoted in an error message can be megabytes long."""
    text = repr(value)
    if len(text) <= limit:
        return text
    return f"{text[: limit - 20]}... ({len(str(value))} characters)"


# The labels file is opened without blocking (a FIFO at its path would
# otherwise block open() until a writer or reader appears) and in binary
# mode (no newline translation on Windows).
_OPEN_FLAGS = getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def check_regular(path, mode):
    if not stat.S_ISREG(mode):
        kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
        raise ValueError(
            f"The labels file {str(path)!r} must be a regular file; it is {kind}."
        )


def _open_labels(path, flags):
    """A descriptor of the labels file `path`, refused unless it is a
    regular file (checked on the opened file, so a swap in between cannot
    slip through)."""
    with contextlib.suppress(FileNotFoundError):
        check_regular(path, os.stat(path).st_mode)
    try:
        fd = os.open(path, flags | _OPEN_FLAGS, 0o666)
    except IsADirectoryError:
        check_regular(path, os.stat(path).st_mode)
        raise
    try:
        check_regular(path, os.fstat(fd).st_mode)
    except BaseException:
        os.close(fd)
        raise
    return fd


@contextlib.contextmanager
def _locked(fd, exclusive):
    """Hold an advisory lock on `fd` (POSIX), so that two learners writing
    into one file take turns: the check of the last byte and the append of
    one learner are not interleaved with another's. Where locks are not
    available (Windows, some network file systems) the appends go
    unlocked; each is still one write."""
    if fcntl is None:
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
    except OSError:
        yield
        return
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)


def append_lines(path, rows):
    """Append `rows` (lists of fields) to the labels file `path` as CSV lines.

    The header goes first when the file is missing or empty (deleted during
    a session, say); a line break goes first when the file does not end
    with one (a hand edit saved without a final newline), so that the first
    row never merges into the last line. The fields go in the order of the
    file's header (edited by hand, it may hold the columns in another order,
    or more of them). All of it is one ``os.write`` in append mode, under an
    exclusive lock, then synced: another learner's lines land before or
    after, never inside.
    """
    fd = _open_labels(path, os.O_RDWR | os.O_APPEND | os.O_CREAT)
    try:
        with _locked(fd, exclusive=True):
            size = os.fstat(fd).st_size
            header = _header_of(fd) if size else None
            if header is not None:
                where = [header.index(c) for c in LABEL_COLUMNS]
                ordered = []
                for row in rows:
                    fields = [""] * len(header)
                    for i, value in zip(where, row):
                        fields[i] = value
                    ordered.append(fields)
                rows = ordered
            buffer = io.StringIO()
            csv.writer(buffer).writerows(rows)
            data = buffer.getvalue().encode("utf-8")
            if size == 0:
                data = _HEADER + data
            else:
                os.lseek(fd, size - 1, os.SEEK_SET)
                if os.read(fd, 1) != b"\n":
                    data = b"\n" + data
            while data:
                data = data[os.write(fd, data) :]
            os.fsync(fd)
    finally:
        os.close(fd)


def _header_of(fd):
    """The column names of the labels file open as `fd`, None when its first
    line is not a header holding the three columns (the file is then
    refused when read, and lines are written in the default order)."""
    os.lseek(fd, 0, os.SEEK_SET)
    head = b""
    while b"\n" not in head and len(head) < 1 << 16:
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        head += chunk
    try:
        line = head.split(b"\n", 1)[0].decode("utf-8-sig")
        header = [name.strip() for name in next(csv.reader([line]), [])]
    except (UnicodeDecodeError, csv.Error):
        return None
    return header if all(c in header for c in LABEL_COLUMNS) else None


def _read_text(path):
    """The text of the labels file `path`, decoded as UTF-8 (a BOM, as a
    spreadsheet may write, is dropped)."""
    fd = _open_labels(path, os.O_RDONLY)
    try:
        with _locked(fd, exclusive=False):
            chunks = []
            while chunk := os.read(fd, 1 << 20):
                chunks.append(chunk)
    finally:
        os.close(fd)
    data = b"".join(chunks)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise ValueError(
            f"The labels file {str(path)!r} must be UTF-8 text; line {line} holds "
            f"the byte {data[error.start : error.start + 1]!r}, which is not. Save it "
            "as UTF-8."
        ) from None


def read_log(path):
    """Every line of the labels file `path`, in file order.

    Returns a :class:`LabelLog`: the header (None when the file holds no
    line), the line numbers, the left ids, the right ids, the labels (1, 0,
    None for unsure; for an undo line the label it takes back, ``_ANY`` when
    it names none) and whether each line is an undo line; :func:`replay`
    tells which labels count.
    """
    reader = csv.reader(io.StringIO(_read_text(path), newline=""))
    header = None
    lines, left_ids, right_ids, labels, undos = [], [], [], [], []
    bad = []
    start = 1
    while True:
        try:
            row = next(reader, None)
        except csv.Error as error:  # a field over csv's limit (128 KiB)
            raise ValueError(
                f"Line {start} of the labels file {str(path)!r} cannot "
                f"be read: {error}; ids are shorter."
            ) from None
        if row is None:
            break
        line, start = start, reader.line_num + 1
        if not any(field.strip() for field in row):  # a blank line
            continue
        if header is None:
            header = [name.strip() for name in row]
            missing = [c for c in LABEL_COLUMNS if c not in header]
            if missing:
                raise ValueError(
                    f"The labels file {str(path)!r} must have the columns "
                    f"{LABEL_COLUMNS}; it lacks {missing} (its columns are "
                    f"{short(header, 200)})."
                )
            columns = [header.index(c) for c in LABEL_COLUMNS]
            continue
        if len(row) > len(header):
            raise ValueError(
                f"Line {line} of the labels file {str(path)!r} has {len(row)} fields; "
                f"its header has {len(header)}: {short(row, 200)}."
            )
        if len(row) <= max(columns):
            raise ValueError(
                f"Line {line} of the labels file {str(path)!r} is cut short: it has "
                f"{len(row)} field(s), {short(row, 200)}, and lacks "
                f"{[LABEL_COLUMNS[i] for i, c in enumerate(columns) if c >= len(row)]}."
            )
        left_id, right_id, text = (row[c] for c in columns)
        text = text.strip().lower()
        undo = text.startswith("undo")
        if undo:
            rest = text[len("undo") :].strip()
            label = _ANY if not rest else _READ.get(rest, _BAD)
        else:
            label = _READ.get(text, _BAD)
        if label is _BAD:
            bad.append((line, row[columns[2]]))
        lines.append(line)
        left_ids.append(left_id)
        right_ids.append(right_id)
        labels.append(label)
        undos.append(undo)
    if bad:
        raise ValueError(
            f"The labels in {str(path)!r} must be 1, 0 or unsure (or undo, on an "
            "undo line); an empty label, as a line cut short leaves, is refused "
            f"(write unsure for an unsure pair). Line(s) {[line for line, _ in bad[:5]]}"
            f" hold [{', '.join(short(text) for _, text in bad[:5])}]."
        )
    return LabelLog(header, lines, left_ids, right_ids, labels, undos)


def replay(pairs, labels, undos):
    """The positions of the label lines that no undo line takes back.

    An undo line takes back the latest earlier label line of its pair that
    is still alive and has the label it names (any label for ``_ANY``); one
    that finds none does nothing: its label was edited away by hand.
    """
    alive = [not undo for undo in undos]
    stacks = {}  # pair -> positions of its alive label lines, oldest first
    for i, (pair, label, undo) in enumerate(zip(pairs, labels, undos)):
        stack = stacks.setdefault(pair, [])
        if not undo:
            stack.append(i)
            continue
        for j in range(len(stack) - 1, -1, -1):
            if label is _ANY or labels[stack[j]] == label:
                alive[stack.pop(j)] = False
                break
    return [i for i, keep in enumerate(alive) if keep]
