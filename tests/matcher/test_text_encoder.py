import math
import sys

import numpy as np
import pytest
import torch

from skrecordpair._matcher.network import RecordPairNetwork
from skrecordpair._matcher.text_encoder import FrozenTextEncoder, cosine_similarities

from ..conftest import save_tiny_bert

transformers = pytest.importorskip(
    "transformers", reason="the text encoder needs the optional extra 'transformers'"
)

WORDS = [
    "apple",
    "ipod",
    "nano",
    "8",
    "gb",
    "sony",
    "tv",
    "black",
    "col",
    "val",
    "title",
    "##s",
    "##x",
    "price",
    "1",
    "2",
    ".",
]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """A randomly initialised two-layer BERT and a WordPiece vocabulary, on disk."""
    path = save_tiny_bert(tmp_path_factory.mktemp("tiny_bert"), WORDS, layers=2)
    tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    assert tokenizer("apple ipods")["input_ids"] == [2, 5, 6, 16, 3]
    return path


def test_each_distinct_value_is_encoded_once(tiny_model):
    encoder = FrozenTextEncoder(tiny_model, storage_dtype=torch.float32)
    calls = []
    encode_texts = encoder._encode_texts
    encoder._encode_texts = lambda texts: (
        calls.append(list(texts)) or encode_texts(texts)
    )
    values = ["apple ipod", None, "sony tv", "apple ipod", float("nan"), "sony tv"]
    vectors = encoder.encode(values)
    assert sorted(calls[0]) == ["apple ipod", "sony tv"]
    assert vectors.index.tolist() == [0, -1, 1, 0, -1, 1]
    assert vectors.pooled.shape == (2, 16)
    # Cached: a second call encodes only the new value.
    again = encoder.encode(["sony tv", "black ipod"])
    assert calls[1] == ["black ipod"] and encoder.n_encoded_ == 3
    assert torch.equal(again.pooled[again.index[0]], vectors.pooled[1])
    per_value = vectors.pooled_per_value()
    assert torch.equal(per_value[3], vectors.pooled[0])
    assert not per_value[1].any()


def test_batches_and_one_at_a_time_give_the_same_vectors(tiny_model):
    values = [
        "apple ipod nano 8 gb black",
        "tv",
        "sony",
        "sony tv black . 1 2",
        "ipods",
        "title",
    ]
    batched = FrozenTextEncoder(tiny_model, storage_dtype=torch.float32).encode(values)
    # A bound of 8 subwords per batch forces several batches of different widths.
    single = FrozenTextEncoder(
        tiny_model, storage_dtype=torch.float32, max_batch_tokens=8, cache=False
    )
    for i, value in enumerate(values):
        alone = single.encode([value])
        row = int(batched.index[i])
        assert torch.allclose(alone.pooled[0], batched.pooled[row], atol=1e-5)
        tokens, mask = batched.padded([row])
        assert torch.allclose(alone.tokens, tokens[0][mask[0]], atol=1e-5)
    # Subword vectors exclude [CLS] and [SEP]: "ipods" is "ipod" "##s".
    row = int(batched.index[values.index("ipods")])
    assert int(batched.offsets[row + 1] - batched.offsets[row]) == 2


def test_padded_vectors_and_truncation(tiny_model):
    vectors = FrozenTextEncoder(tiny_model).encode(["apple ipod nano", "tv"])
    assert vectors.tokens.dtype == torch.float16
    padded, mask = vectors.padded()
    assert padded.shape == (2, 3, 16) and mask.sum(1).tolist() == [3, 1]
    assert not padded[1, 1:].any()
    _, mask = vectors.padded(max_tokens=2)
    assert mask.sum(1).tolist() == [2, 1]
    truncated = FrozenTextEncoder(tiny_model, max_length=4).encode(
        ["apple ipod nano 8 gb"]
    )
    assert len(truncated.tokens) == 2  # 4 subwords, two of them [CLS] and [SEP]


def test_template_layer_and_pooling_change_the_vectors(tiny_model):
    plain = FrozenTextEncoder(tiny_model).encode(["ipod"], field="title")
    ditto = FrozenTextEncoder(tiny_model, template="COL {field} VAL {value}")
    tagged = ditto.encode(["ipod"], field="title")
    assert tagged.texts == ["COL title VAL ipod"] and len(tagged.tokens) == 4
    assert not torch.allclose(plain.pooled, tagged.pooled)
    for other in (
        FrozenTextEncoder(tiny_model, layer=1),
        FrozenTextEncoder(tiny_model, pooling="cls"),
    ):
        assert not torch.allclose(plain.pooled, other.encode(["ipod"]).pooled)


def test_missing_transformers_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "transformers", None)
    encoder = FrozenTextEncoder("any-model")  # building it needs nothing
    with pytest.raises(ImportError, match=r"pip install skrecordpair\[transformers\]"):
        encoder.encode(["a value"])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"pooling": "max"}, r"pooling must be one of \['cls', 'mean'\]; got 'max'\."),
        ({"max_length": 2}, "max_length must be an integer >= 3; got 2."),
        (
            {"max_batch_tokens": 2.5},
            "max_batch_tokens must be an integer >= 3; got 2.5.",
        ),
        (
            {"template": "{field}"},
            r"template must be a str containing '\{value\}'; got '\{field\}'\.",
        ),
        ({"layer": "last"}, "layer must be an integer; got 'last'."),
        ({"storage_dtype": torch.int8}, "storage_dtype must be a floating torch dtype"),
        ({"device": "meta"}, "device must be a torch device"),
        ({"cache": "yes"}, "cache must be a bool; got 'yes'."),
        (
            {"max_cache_bytes": -1},
            "max_cache_bytes must be a non-negative integer; got -1.",
        ),
    ],
)
def test_bad_parameters_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        FrozenTextEncoder("any-model", **kwargs)


def test_cosine_similarities_are_nan_for_missing_values():
    left = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
    right = torch.tensor([[0.0, 2.0], [2.0, 2.0], [1.0, 0.0]])
    out = cosine_similarities(left, right)
    assert out[:2].tolist() == pytest.approx([0.0, 1.0]) and math.isnan(out[2])


def _network(**kwargs):
    torch.manual_seed(0)
    return RecordPairNetwork(
        30,
        12,
        2,
        word_dim=6,
        char_dim=4,
        char_hidden_size=5,
        field_hidden_size=6,
        record_hidden_size=4,
        num_perspectives=3,
        aggregator_hidden_size=4,
        hidden_layer_sizes=(5,),
        **kwargs,
    )


def _batch(n=3):
    gen = torch.Generator().manual_seed(1)
    left = torch.randint(1, 7, (n, 2, 3), generator=gen)
    right = torch.randint(1, 7, (n, 2, 4), generator=gen)
    # Every row repeats the token table, so that a pair alone (its row of the
    # table) sees the same tokens as in the batch (the rows flattened).
    words = torch.randint(1, 30, (1, 7), generator=gen).repeat(n, 1)
    chars = torch.randint(1, 12, (1, 7, 4), generator=gen).repeat(n, 1, 1)
    return {
        "left": left,
        "right": right,
        "token_words": words,
        "token_chars": chars,
        "left_pretrained": _subwords(n, 4, gen),
        "right_pretrained": _subwords(n, 5, gen),
    }


def _subwords(n, width, gen):
    """(n, 2 fields, width, 16) subword vectors, zero-padded after a random
    length; the second field of the first pair is missing (no subwords)."""
    vectors = torch.randn(n, 2, width, 16, generator=gen)
    lengths = torch.randint(1, width + 1, (n, 2), generator=gen)
    lengths[0, 1] = 0
    return vectors * (torch.arange(width) < lengths[..., None])[..., None]


def test_network_without_pretrained_vectors_is_unchanged():
    # The option off adds no parameter, so the same seed gives the same weights.
    default, off = _network(), _network(pretrained_dim=0, pretrained_hidden_size=7)
    assert [n for n, _ in default.named_parameters()] == [
        n for n, _ in off.named_parameters()
    ]
    for a, b in zip(default.parameters(), off.parameters()):
        assert torch.equal(a, b)
    batch = {k: v for k, v in _batch().items() if "pretrained" not in k}
    with torch.no_grad():
        assert torch.equal(default.eval()(**batch), off.eval()(**batch))


def test_network_reads_pretrained_vectors():
    net = _network(pretrained_dim=16, pretrained_hidden_size=5).train()
    batch = _batch()
    net(**batch).sum().backward()
    for weight in (
        net.pretrained_projection.weight,
        net.token_matcher.attentive_match_weights,
    ):
        assert weight.grad is not None and torch.isfinite(weight.grad).all()
        assert weight.grad.abs().sum() > 0
    net.eval()
    with torch.no_grad():
        together = torch.softmax(net(**batch), -1)
        alone = torch.softmax(net(**{k: v[1:2] for k, v in batch.items()}), -1)
        changed = dict(batch, left_pretrained=batch["left_pretrained"] * 2)
        assert not torch.allclose(torch.softmax(net(**changed), -1), together)
        # Padding is padding: wider zero padding changes nothing.
        wider = dict(
            batch,
            right_pretrained=torch.nn.functional.pad(
                batch["right_pretrained"], (0, 0, 0, 3)
            ),
        )
        assert torch.allclose(torch.softmax(net(**wider), -1), together, atol=1e-6)
        fe1, _, fe2, _ = net.encode_fields(**batch)
    assert torch.allclose(alone, together[1:2], atol=1e-6)
    matching = 2 * net.token_matcher.output_size
    assert fe1.shape == (3, 2, 6 + 5 + matching) and fe2.shape == fe1.shape
    # A missing value (no subwords) adds zeros, and nothing is NaN.
    assert torch.isfinite(fe1).all() and not fe1[0, 1, 6:].any()


def test_network_says_which_pretrained_vectors_it_needs():
    net = _network(pretrained_dim=16).eval()
    batch = _batch()
    del batch["right_pretrained"]
    with pytest.raises(
        ValueError, match=r"right_pretrained of shape \(3, 2, tokens, 16\)"
    ):
        net(**batch)
    batch["right_pretrained"] = torch.zeros(3, 2, 4, 8)
    with pytest.raises(ValueError, match=r"got \(3, 2, 4, 8\)"):
        net(**batch)


def test_pooled_values_are_float32_numpy_ready(tiny_model):
    vectors = FrozenTextEncoder(tiny_model).encode(
        np.array(["tv", "sony"], dtype=object)
    )
    assert vectors.pooled.dtype == torch.float32
