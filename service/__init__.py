"""Troth's edges and wiring: HTTP, CLI, scheduler and configuration."""
