"""Troth's write model: the aggregates, their events and the use cases."""
