"""Validation suite: the engine against closed-form queueing results and Little's law."""
