"""Hyper-parameter search for the training pipeline (`product-tune`): the search space, the study
shared by parallel workers, each trial's scoring, and the exported best config."""
