"""Domain errors: every rule the write model enforces fails with one of these."""

from __future__ import annotations


class TrothError(Exception):
    """Base of every error the domain raises on purpose."""

    title = "Request could not be carried out"


class NotFoundError(TrothError):
    """Something addressed by id does not exist (for this tenant)."""

    title = "Not found"


class ConflictError(TrothError):
    """The request contradicts what is already recorded."""

    title = "Conflict with recorded history"


class InvalidInputError(TrothError):
    """A value breaks a domain rule; `field` names the offending input."""

    title = "Invalid value"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class AuthenticationError(TrothError):
    """Credentials are missing, wrong, revoked or expired (deliberately vague)."""

    title = "Not authenticated"


class TenantNotFoundError(NotFoundError):
    """No tenant with that name."""

    title = "Tenant not found"


class PromiseNotFoundError(NotFoundError):
    """No promise with that id for this tenant."""

    title = "Promise not found"


class PersonNotFoundError(NotFoundError):
    """No person with that id for this tenant."""

    title = "Person not found"


class ApiKeyNotFoundError(NotFoundError):
    """No API key with that id for this tenant."""

    title = "API key not found"


class TenantAlreadyExistsError(ConflictError):
    """A tenant with that name is already registered."""

    title = "Tenant already exists"


class PromiseConflictError(ConflictError):
    """A promise with this id was already made with different content."""

    title = "Promise id already used with different content"


class PromiseAlreadySettledError(ConflictError):
    """The promise already has an outcome; it cannot be settled or renegotiated again."""

    title = "Promise already settled"


class PromiseNotSettledError(ConflictError):
    """An outcome correction needs an outcome to correct."""

    title = "Promise has no outcome to correct"


class RenegotiationTooLateError(ConflictError):
    """Renegotiation is allowed only before the current due time."""

    title = "Promise is already due"


class PromiseNotYetLapsableError(ConflictError):
    """A lapse can be recorded only once `due_at + lapse_after` has passed."""

    title = "Promise cannot lapse yet"


class ConcurrentWriteError(ConflictError):
    """Another writer changed the same promise at the same moment; retry."""

    title = "Concurrent change"


class CommitmentNotFoundError(NotFoundError):
    """No recurring commitment with that id for this tenant."""

    title = "Commitment not found"


class CommitmentConflictError(ConflictError):
    """A commitment with this id already exists with different content, or has ended."""

    title = "Commitment conflict"


class SubscriptionNotFoundError(NotFoundError):
    """No webhook subscription with that id for this tenant."""

    title = "Subscription not found"


class SubscriptionDeletedError(NotFoundError):
    """The webhook subscription was deleted."""

    title = "Subscription not found"


class DeliveryNotFoundError(NotFoundError):
    """No delivery of that message to this subscription."""

    title = "Delivery not found"
