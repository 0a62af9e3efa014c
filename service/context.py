"""Access to the current app's components from inside a request."""

from __future__ import annotations

from flask import current_app

from service.bootstrap import Components


def components() -> Components:
    """The components of the app serving the current request."""
    built: Components = current_app.extensions["troth"]
    return built
