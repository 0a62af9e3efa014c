"""Who is calling: tenant API keys (Bearer) and the operator's admin token."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from flask import g, request
from werkzeug.exceptions import Forbidden, NotFound

from domain.application import Principal
from domain.credentials import Scope
from domain.errors import AuthenticationError
from service.context import components

F = TypeVar("F", bound=Callable[..., Any])


def bearer_token() -> str:
    """The token of an `Authorization: Bearer` header; AuthenticationError when absent."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationError("missing bearer token")
    return token.strip()


def requires(scope: Scope) -> Callable[[F], F]:
    """Let the view run only for a key of the path's tenant that has `scope`.

    A valid key of another tenant gets 404, exactly like a tenant that does not exist,
    so keys cannot be used to discover other tenants.
    """

    def decorator(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            principal = components().ledger.authenticate(bearer_token())
            if principal.tenant != kwargs.get("tenant"):
                raise NotFound("No such tenant for this key.")
            if scope not in principal.scopes:
                raise Forbidden(f"This key lacks the {scope.value!r} scope.")
            g.principal = principal
            return view(*args, **kwargs)

        return cast(F, wrapper)

    return decorator


def current_principal() -> Principal:
    """The authenticated caller of the current request."""
    principal: Principal = g.principal
    return principal


def requires_admin(view: F) -> F:
    """Let the view run only with the operator's `TROTH_ADMIN_TOKEN`."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        expected = components().settings.admin_token
        if not expected:
            raise Forbidden("The admin API is disabled: set TROTH_ADMIN_TOKEN to enable it.")
        if not hmac.compare_digest(bearer_token().encode(), expected.encode()):
            raise AuthenticationError("invalid admin token")
        return view(*args, **kwargs)

    return cast(F, wrapper)
