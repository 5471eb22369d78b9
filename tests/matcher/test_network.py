import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from skrecordpair._matcher import network as bimpm
from skrecordpair._matcher.network import (
    MATCHING_STRATEGIES,
    BiMpmMatching,
    RecordPairNetwork,
    SequenceEncoder,
    multi_perspective_cosine,
    pairwise_multi_perspective_cosine,
    unique_rows,
)


def test_matcher_output_sizes_follow_biome_configuration():
    forward = BiMpmMatching(
        64, 10, is_forward=True, strategies=("maxpool", "attentive", "max_attentive")
    )
    backward = BiMpmMatching(64, 10, is_forward=False, strategies=MATCHING_STRATEGIES)
    assert forward.output_size == 44 and backward.output_size == 55
    c1, c2 = torch.randn(3, 4, 64), torch.randn(3, 6, 64)
    m1, m2 = torch.ones(3, 4, dtype=torch.bool), torch.ones(3, 6, dtype=torch.bool)
    out1, out2 = backward(c1, m1, c2, m2)
    assert out1.shape == (3, 4, 55) and out2.shape == (3, 6, 55)


def test_weights_shared_between_directions_unless_asked():
    shared = BiMpmMatching(8, 3, is_forward=True, strategies=MATCHING_STRATEGIES)
    assert shared.attentive_match_weights is shared.attentive_match_weights_reversed
    assert not hasattr(shared, "maxpool_match_weights_reversed")
    own = BiMpmMatching(
        8,
        3,
        is_forward=True,
        strategies=MATCHING_STRATEGIES,
        share_weights_between_directions=False,
    )
    assert own.full_match_weights is not own.full_match_weights_reversed
    assert len(list(own.parameters())) == 7 and len(list(shared.parameters())) == 4


def test_cosine_primitives_match_the_definition():
    v1, v2, w = torch.randn(2, 5, 6), torch.randn(2, 5, 6), torch.randn(3, 6)
    last, w_last = torch.randn(2, 1, 6), torch.randn(3, 6)
    cosines = multi_perspective_cosine(v1, [v2, last], [w, w_last])
    assert cosines.shape == (2, 5, 2, 4)
    for s, (target, weights) in enumerate([(v2, w), (last, w_last)]):
        target = target.expand_as(v1)
        assert torch.allclose(
            cosines[:, :, s, 0], F.cosine_similarity(v1, target, dim=-1), atol=1e-6
        )
        expected = torch.stack(
            [
                F.cosine_similarity(v1 * weights[k], target * weights[k], dim=-1)
                for k in range(3)
            ],
            dim=-1,
        )
        assert torch.allclose(cosines[:, :, s, 1:], expected, atol=1e-6)
    v3 = torch.randn(2, 4, 6)
    pairwise = pairwise_multi_perspective_cosine(v1, v3, w)
    expected = F.cosine_similarity(
        (v1[:, :, None, None] * w), (v3[:, None, :, None] * w), dim=-1
    )
    assert pairwise.shape == (2, 5, 4, 3)
    assert torch.allclose(pairwise, expected, atol=1e-6)


def test_zero_vectors_give_zero_cosines_and_finite_gradients():
    v1 = torch.zeros(1, 2, 4, requires_grad=True)
    v2 = torch.randn(1, 2, 4)
    cosines = multi_perspective_cosine(v1, [v2], [torch.randn(3, 4)])
    assert cosines.abs().sum() == 0
    cosines.sum().backward()
    assert torch.isfinite(v1.grad).all()


@pytest.mark.parametrize("kind", ["gru", "lstm", "cnn"])
def test_sequence_encoder_ignores_padding_and_zeroes_empty_rows(kind):
    torch.manual_seed(0)
    enc = SequenceEncoder(kind, 5, 7, bidirectional=kind != "cnn").eval()
    x = torch.randn(1, 3, 5)
    padded = torch.cat([x, torch.randn(1, 4, 5)], dim=1)
    mask = torch.tensor([[True] * 3 + [False] * 4])
    alone = enc(x, torch.ones(1, 3, dtype=torch.bool))
    assert torch.allclose(alone, enc(padded, mask), atol=1e-6)
    empty = enc(torch.randn(1, 4, 5), torch.zeros(1, 4, dtype=torch.bool))
    assert empty.abs().sum() == 0
    if kind != "cnn":
        steps = enc.sequence(padded, mask)
        assert steps[0, 3:].abs().sum() == 0


@pytest.mark.parametrize("kind", ["gru", "lstm", "cnn"])
def test_sequence_encoder_embeds_ids_as_given_vectors(kind):
    torch.manual_seed(0)
    enc = SequenceEncoder(kind, 5, 7, bidirectional=kind != "cnn").eval()
    embedding = nn.Embedding(10, 5)  # row 0 is not zero: padding must not see it
    table = embedding.weight.detach()
    ids = torch.tensor([[3, 1, 4, 0], [5, 9, 2, 6], [0, 0, 0, 0], [7, 0, 0, 0]])
    for rows in (slice(None), slice(1, 2)):  # with padding, and without (unpacked)
        mask = ids[rows] != 0
        expected = enc(table[ids[rows]], mask)
        for embed in (table.__getitem__, embedding, table):
            assert torch.allclose(enc(ids[rows], mask, embed), expected, atol=1e-6)
            with torch.no_grad():  # GRUs take their inference path over a table
                assert torch.allclose(enc(ids[rows], mask, embed), expected, atol=1e-6)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_gru_over_a_table_is_the_packed_gru(bidirectional):
    # Rows of every length from 0 to 9, shuffled, so that sorting them matters.
    torch.manual_seed(0)
    enc = SequenceEncoder("gru", 6, 8, bidirectional=bidirectional).eval()
    table = torch.randn(20, 6)
    lengths = torch.randperm(10)
    ids = torch.randint(1, 20, (10, 9)) * (torch.arange(9) < lengths[:, None])
    mask = ids != 0
    with torch.no_grad():
        fast = enc(ids, mask, table)
        packed = enc(ids, mask, table.__getitem__)
    assert torch.allclose(fast, packed, atol=1e-6)
    assert fast[lengths == 0].abs().sum() == 0
    assert not torch.equal(fast[lengths == 9], fast[lengths == 8])


def test_cnn_over_a_table_in_blocks_is_the_cnn_of_the_vectors(monkeypatch):
    # Blocks of 3 rows, each cut to its longest row; rows of all extents, one
    # with a gap in its mask, and empty ones.
    monkeypatch.setattr(bimpm, "_CNN_BLOCK_ROWS", 3)
    torch.manual_seed(0)
    enc = SequenceEncoder("cnn", 5, 7)
    table = torch.randn(10, 5, requires_grad=True)
    lengths = torch.tensor([0, 6, 1, 3, 0, 2, 5, 4, 6, 1])
    ids = torch.randint(1, 10, (10, 6)) * (torch.arange(6) < lengths[:, None])
    ids[1, 2] = 0
    mask = ids != 0
    blocked = enc(ids, mask, table)
    whole = enc(F.embedding(ids, F.pad(table[1:], (0, 0, 1, 0))), mask)
    assert torch.allclose(blocked, whole, atol=1e-6)
    assert blocked[lengths == 0].abs().sum() == 0
    grads = [
        torch.autograd.grad(out.square().sum(), table)[0] for out in (blocked, whole)
    ]
    assert torch.allclose(*grads, atol=1e-5)
    assert len(enc(ids[:0], mask[:0], table)) == 0


@pytest.mark.parametrize("kernel_size", [1, 2, 3, 4, 5])
def test_cnn_over_an_embedding_gets_the_gradients_of_embedding_first(kernel_size):
    torch.manual_seed(0)
    enc = SequenceEncoder("cnn", 5, 7, kernel_size=kernel_size)
    embedding = nn.Embedding(10, 5, padding_idx=0)
    ids = torch.tensor(
        [[3, 1, 4, 0, 0], [5, 9, 2, 6, 8], [0, 0, 0, 0, 0], [7, 0, 0, 0, 0]]
    )
    mask = ids != 0
    grads = []
    for embed in (embedding, None):
        enc.zero_grad()
        embedding.zero_grad()
        out = enc(ids, mask, embed) if embed is not None else enc(embedding(ids), mask)
        (out * torch.arange(7.0)).sum().backward()
        grads.append(
            [
                out.detach(),
                embedding.weight.grad.clone(),
                *(p.grad.clone() for p in enc.parameters()),
            ]
        )
    for a, b in zip(*grads):
        assert torch.allclose(a, b, atol=1e-5)


def test_unique_rows_are_torch_unique_rows():
    torch.manual_seed(0)
    x = torch.randint(0, 3, (300, 4)) * torch.tensor([1, 1000, 2**40, 1])
    rows, inverse = unique_rows(x)
    assert torch.equal(rows[inverse], x)
    expected = torch.unique(x, dim=0)
    assert len(rows) == len(expected)
    assert {tuple(r) for r in rows.tolist()} == {tuple(r) for r in expected.tolist()}


def _network(**kwargs):
    params = dict(
        word_dim=6,
        char_dim=4,
        char_hidden_size=5,
        field_hidden_size=6,
        record_hidden_size=4,
        num_perspectives=3,
        aggregator_hidden_size=4,
        hidden_layer_sizes=(5,),
    )
    params.update(kwargs)
    torch.manual_seed(0)
    return RecordPairNetwork(30, 12, 2, **params).eval()


def _batch():
    left = torch.tensor([[[1, 2, 0], [3, 0, 0]]])
    right = torch.tensor([[[1, 4, 5], [6, 0, 0]]])
    words = torch.tensor([[0, 3, 4, 5, 6, 7, 8]])
    chars = torch.tensor([[[0, 0], [1, 2], [3, 0], [4, 5], [6, 0], [7, 8], [9, 1]]])
    return dict(left=left, right=right, token_words=words, token_chars=chars)


def _pad(batch):
    """The same pair with extra padding tokens and an extra, empty field."""
    padded = dict(batch)
    for side in ("left", "right"):
        ids = batch[side]
        padded[side] = F.pad(ids, (0, 3, 0, 1))
    return padded


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"matching_variant": "allennlp"},
        {"field_encoder": "cnn", "char_encoder": "gru"},
        {"record_encoder": "lstm", "aggregator": "lstm", "field_encoder": "lstm"},
        {"backward_matching": (), "forward_matching": MATCHING_STRATEGIES},
        {"token_match_features": False, "char_encoder": None},
    ],
    ids=["default", "allennlp", "cnn-field", "lstm", "forward-only", "words-only"],
)
def test_padding_never_changes_the_logits(params):
    net = _network(**params)
    batch = _batch()
    with torch.no_grad():
        alone = net(**batch)
        padded = net(**_pad(batch))
    assert torch.allclose(alone, padded, atol=1e-5)


@pytest.mark.parametrize("token_match_features", [True, False])
def test_inference_encodes_each_distinct_field_once_with_the_same_result(
    token_match_features,
):
    # Eval mode encodes each distinct (field, match flags) row once; with
    # dropout off, training mode encodes every row: both must agree.
    net = _network(dropout=0.0, token_match_features=token_match_features)
    batch = _batch()
    # Three pairs: the first twice, the third shares the left record but its
    # right record holds token 2, which changes the left field's match flags.
    batch["left"] = batch["left"].repeat(3, 1, 1)
    batch["right"] = torch.cat(
        [batch["right"], batch["right"], torch.tensor([[[2, 0, 0], [6, 0, 0]]])]
    )
    batch["token_words"] = batch["token_words"].repeat(3, 1)[:, :3]
    batch["token_chars"] = batch["token_chars"].repeat(3, 1, 1)[:, :3]
    with torch.no_grad():
        distinct = net.encode_fields(**batch)
        every = net.train().encode_fields(**batch)
    for a, b in zip(distinct, every):
        assert torch.allclose(a.float(), b.float(), atol=1e-6)
    assert torch.equal(distinct[0][0], distinct[0][1])
    if token_match_features:
        assert not torch.allclose(distinct[0][0, 0], distinct[0][2, 0])


@pytest.mark.parametrize("right_fields", [2, 3])
def test_both_records_in_one_call_equal_one_call_each(right_fields):
    # With as many fields on both sides, the record encoder and the aggregator
    # run once over both records; the logits must not change.
    net = _network(dropout=0.0)
    gen = torch.Generator().manual_seed(0)
    fe1, fe2 = (
        torch.randn(4, 2, 6, generator=gen),
        torch.randn(4, right_fields, 6, generator=gen),
    )
    mask1 = torch.ones(4, 2, dtype=torch.bool)
    mask2 = torch.ones(4, right_fields, dtype=torch.bool)
    mask2[0, 1:] = False
    with torch.no_grad():
        merged = net.match(fe1, mask1, fe2, mask2)
        r1, r2 = net.encode_record(fe1, mask1), net.encode_record(fe2, mask2)
        m1, m2 = [], []
        d = r1.shape[-1] // 2  # forward and backward directions, matched apart
        for matcher, half in (
            (net.matcher_forward, slice(None, d)),
            (net.matcher_backward, slice(d, None)),
        ):
            x1, x2 = matcher(r1[..., half], mask1, r2[..., half], mask2)
            m1.append(x1)
            m2.append(x2)
        agg1 = net.aggregator(torch.cat(m1, -1), mask1)
        agg2 = net.aggregator(torch.cat(m2, -1), mask2)
        separate = net.output_layer(
            net.classifier_feedforward(torch.cat([agg1, agg2], -1))
        )
    assert torch.allclose(merged, separate, atol=1e-6)


def test_network_is_siamese_and_gradients_are_finite():
    net = _network().train()
    batch = _pad(_batch())
    logits = net(**batch)
    logits.sum().backward()
    grads = [p.grad for p in net.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    # One field encoder, record encoder and aggregator serve both records.
    names = {n.split(".")[0] for n, _ in net.named_parameters()}
    assert {"field_encoder", "record_encoder", "aggregator"} <= names
    assert not any("left" in n or "right" in n for n in names)


def test_token_match_flags():
    net = _network()
    left = torch.tensor([[[1, 2], [3, 0]]])
    right = torch.tensor([[[2, 0], [3, 1]]])
    flags_left, flags_right = net._match_flags(left, right)
    # any-field flag, same-field flag
    assert flags_left[0, :, :, 0].tolist() == [[True, True], [True, False]]
    assert flags_left[0, :, :, 1].tolist() == [[False, True], [True, False]]
    assert flags_right[0, :, :, 1].tolist() == [[True, False], [True, False]]


@pytest.mark.parametrize("right_fields", [3, 2])
def test_token_match_flags_match_a_brute_force_reference(right_fields):
    gen = torch.Generator().manual_seed(0)
    left = torch.randint(0, 8, (4, 3, 5), generator=gen)
    right = torch.randint(0, 8, (4, right_fields, 2), generator=gen)
    flags_left, flags_right = _network()._match_flags(left, right)
    for ids, other, flags in ((left, right, flags_left), (right, left, flags_right)):
        for b, f, t in np.ndindex(*ids.shape):
            token = int(ids[b, f, t])
            anywhere = token != 0 and token in other[b].flatten().tolist()
            in_field = (
                token != 0
                and left.shape[1] == right.shape[1]
                and token in other[b, f].tolist()
            )
            assert flags[b, f, t].tolist() == [anywhere, in_field]


def test_network_needs_some_token_features():
    with pytest.raises(ValueError, match="word embeddings or a char encoder"):
        RecordPairNetwork(10, 10, 2, word_dim=0, char_encoder=None)
    with pytest.raises(ValueError, match="At least one of forward_matching"):
        RecordPairNetwork(10, 10, 2, forward_matching=(), backward_matching=())
