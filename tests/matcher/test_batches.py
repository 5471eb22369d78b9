import numpy as np
import pandas as pd
import torch

from skrecordpair import pair_frame
from skrecordpair._matcher.batches import PairDataset, collate_pairs
from skrecordpair._matcher.tokens import PairEncoder
from skrecordpair._pairs import resolve_fields


def _dataset():
    left = pd.DataFrame({"name": ["a b c", "d", "a"], "city": ["x", None, "y z"]})
    right = pd.DataFrame({"name": ["a", "e f g h i", "b"], "city": ["x", "x", "x"]})
    X = pair_frame(left, right)
    enc = PairEncoder(
        resolve_fields(X.columns, None, "left_", "right_"),
        max_tokens_per_field=10,
        max_chars_per_token=10,
        prepend_field_names=False,
    ).fit(X, min_frequency=1, max_vocabulary=None)
    return PairDataset(enc.transform(X), np.array([1, 0, 1]))


def test_collate_trims_padding_and_renumbers_tokens():
    ds = _dataset()
    X, y = collate_pairs([ds[0], ds[2]])
    assert y.tolist() == [1, 1]
    # Row 1's long right name is not in the batch, so the token axis shrinks to 3.
    assert X["left"].shape == (2, 2, 3) and X["right"].shape == (2, 2, 1)
    words = X["token_words"].reshape(-1)
    chars = X["token_chars"].reshape(-1, X["token_chars"].shape[-1])
    assert X["token_words"].shape[0] == 2 and X["token_chars"].shape[0] == 2
    # Local ids point at the same strings as the global ids did.
    enc = ds.encoded
    for side in ("left", "right"):
        local = X[side]
        global_ids = getattr(enc, side)[[0, 2], :, : local.shape[2]]
        assert torch.equal(words[local], torch.from_numpy(enc.token_words[global_ids]))
        assert (local == 0).equal(torch.from_numpy(global_ids == 0))
    assert words[0] == 0 and chars[0].abs().sum() == 0


def test_dataset_length_and_label_check():
    ds = _dataset()
    assert len(ds) == 3
    try:
        PairDataset(ds.encoded, [0, 1])
    except ValueError as err:
        assert "3 pairs but 2 labels" in str(err)
    else:
        raise AssertionError("a label count mismatch must raise")
