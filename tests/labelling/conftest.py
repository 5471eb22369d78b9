"""What the labelling tests share: the label command's files and command line."""

import sys


def write_tables(tables, folder):
    """The two tables of `tables` as ``left.csv`` and ``right.csv`` in
    `folder`, with an ``id`` column."""
    left, right, _ = tables
    left.rename_axis("id").to_csv(folder / "left.csv")
    right.rename_axis("id").to_csv(folder / "right.csv")


def label_command(folder, *args):
    """The command line of ``python -m skrecordpair label`` over the files of
    :func:`write_tables` in `folder`, with its labels file there."""
    return [
        sys.executable,
        "-m",
        "skrecordpair",
        "label",
        str(folder / "left.csv"),
        str(folder / "right.csv"),
        "--labels",
        str(folder / "labels.csv"),
        "--k",
        "4",
        "--batch-size",
        "5",
        *args,
    ]
