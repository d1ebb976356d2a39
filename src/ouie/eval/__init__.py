"""Evaluation: datasets in labels.csv form, folds, mixtures, DCASE-style metrics, reports."""
