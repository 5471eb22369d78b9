"""The torch ``Dataset`` over encoded pairs and its padding collate function."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from .text_encoder import subword_batch


class PairDataset(Dataset):
    """Record pairs (and optional labels) as a map-style torch dataset.

    Items are row indices; :func:`collate_pairs` slices the whole batch at once,
    which keeps per-item Python work to a minimum.

    Parameters
    ----------
    encoded : EncodedPairs
        The token ids of the pairs.
    y : ndarray of shape (n_pairs,), default=None
        Encoded labels (``0 .. n_classes - 1``); zeros when None (prediction).
    """

    def __init__(self, encoded, y=None):
        self.encoded = encoded
        n = len(encoded)
        self.y = (
            np.zeros(n, dtype=np.int64) if y is None else np.asarray(y, dtype=np.int64)
        )
        if len(self.y) != n:
            raise ValueError(f"Got {n} pairs but {len(self.y)} labels.")

    def __len__(self):
        return len(self.encoded)

    def __getitem__(self, i):
        return self, i


def _trim(ids):
    """Drop token columns that are padding in every row of the batch."""
    width = int((ids != 0).any(axis=(0, 1)).nonzero()[0].max(initial=0)) + 1
    return ids[:, :, :width]


def collate_pairs(batch):
    """Gather a batch of :class:`PairDataset` items into padded tensors.

    Token ids are renumbered into a batch-local token table, so each distinct
    token's characters are encoded once per batch.

    Returns
    -------
    X : dict of str to torch.Tensor
        ``left`` (B, F1, T1) and ``right`` (B, F2, T2) local token ids (0 is
        padding), ``token_words`` (B, K) word ids and ``token_chars`` (B, K, C)
        char ids of the local token table, whose ``B * K`` rows are folded into
        a leading batch dimension (skorch requires every input to have one);
        the network flattens them back; and ``similarity`` (B, S) and
        ``prior`` (B, n_classes) when the pairs carry them; with a pre-trained
        text encoder, ``left_pretrained`` and ``right_pretrained`` (B, F, T, D),
        each field value's subword vectors (see ``subword_batch``).
    y : torch.Tensor of shape (B,)
    """
    dataset = batch[0][0]
    index = np.fromiter((i for _, i in batch), dtype=np.int64, count=len(batch))
    enc = dataset.encoded
    left = _trim(enc.left[index])
    right = _trim(enc.right[index])
    ids = np.concatenate([left.ravel(), right.ravel()])
    # The batch's distinct ids in increasing order, padding (0) first whatever the
    # batch holds: a mask over the token table is linear time, where np.unique sorts.
    present = np.zeros(len(enc.token_words), dtype=bool)
    present[ids] = True
    present[0] = True
    table = np.flatnonzero(present)
    local = (np.cumsum(present) - 1)[ids]
    n_rows = len(index)
    padded = np.zeros(-(-len(table) // n_rows) * n_rows, dtype=table.dtype)
    padded[: len(table)] = table  # extra rows repeat the padding token (id 0)
    chars = enc.token_chars[padded]
    chars = chars[:, : int((chars != 0).any(axis=0).nonzero()[0].max(initial=0)) + 1]
    X = {
        "left": torch.from_numpy(local[: left.size].reshape(left.shape)),
        "right": torch.from_numpy(local[left.size :].reshape(right.shape)),
        "token_words": torch.from_numpy(enc.token_words[padded].reshape(n_rows, -1)),
        "token_chars": torch.from_numpy(
            np.ascontiguousarray(chars).reshape(n_rows, -1, chars.shape[1])
        ),
    }
    for name in ("similarity", "prior"):
        values = getattr(enc, name)
        if values is not None:
            X[name] = torch.from_numpy(values[index])
    if enc.value_vectors is not None:
        X["left_pretrained"] = subword_batch(enc.value_vectors, enc.left_values[index])
        X["right_pretrained"] = subword_batch(
            enc.value_vectors, enc.right_values[index]
        )
    return X, torch.from_numpy(dataset.y[index])
