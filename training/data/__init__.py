"""Datasets, samplers and pair protocols for training and evaluation."""
