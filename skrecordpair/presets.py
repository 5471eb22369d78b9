"""Named hyperparameter sets for :class:`~skrecordpair.RecordPairClassifier`.

Examples
--------
>>> from skrecordpair import RecordPairClassifier
>>> from skrecordpair.presets import BIOME_TEXT
>>> clf = RecordPairClassifier(**BIOME_TEXT)
>>> clf.char_encoder, clf.prepend_field_names
('gru', True)
"""

__all__ = ["BIOME_TEXT"]

#: The record-pair configuration of biome.text's documentation: 64-dim character
#: embeddings into a bidirectional GRU (128 per direction) and no word embeddings;
#: field names prepended to each field; a GRU field encoder (128); a bidirectional
#: GRU record encoder (64); a forward matcher without full matching and a backward
#: matcher with all four strategies (10 perspectives, paper-faithful variants);
#: a bidirectional GRU aggregator (64); one feed-forward layer of 32; dropout 0.1;
#: Adam with learning rate 1e-3 and batches of 16. No token-match flags, no
#: similarity features or prior.
BIOME_TEXT = dict(
    word_dim=0,
    char_dim=64,
    char_encoder="gru",
    char_hidden_size=128,
    token_match_features=False,
    prepend_field_names=True,
    field_encoder="gru",
    field_hidden_size=128,
    field_bidirectional=False,
    record_encoder="gru",
    record_hidden_size=64,
    num_perspectives=10,
    forward_matching=("maxpool", "attentive", "max_attentive"),
    backward_matching=("full", "maxpool", "attentive", "max_attentive"),
    aggregator="gru",
    aggregator_hidden_size=64,
    aggregator_bidirectional=True,
    hidden_layer_sizes=(32,),
    similarity_features=False,
    similarity_prior=False,
    dropout=0.1,
    lr=1e-3,
    batch_size=16,
)
