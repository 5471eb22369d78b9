"""The record-pair classifier's parts: featurizing, the network, training,
saving and explaining."""
