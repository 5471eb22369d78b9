"""Labelling: the active learner, its labels file and the front ends (terminal,
notebook widget, annotation files)."""
