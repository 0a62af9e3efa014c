"""Troth's read models: deterministic functions of the event log."""
