"""Labelling: the active learner and the ways of giving it labels.

- ``learner.py``: :class:`ActiveLearner` (what to label next, the proposer,
  the final model) and :func:`uncertain_pairs`;
- ``labels_file.py``: the labels file, a CSV log appended to under a lock
  (reading, appending, undo lines; :func:`read_labels`);
- ``session.py``: what the front ends share: the labelling session (what to
  show next, teach, undo, the report line) and the pair view (two records
  side by side, differences marked, shown safely);
- ``terminal.py``: the terminal session (:func:`label_session`, key reading,
  the pair as text);
- ``widget.py``: the notebook widget (:class:`LabelWidget`, the pair as HTML);
- ``annotation.py``: recordlinkage's annotation files.
"""
