"""Share links: read-only access to one person's dashboard, given to a counsellor.

Each person's links live in one `ShareBook` aggregate, so listing them, and checking one on
every request, is a single aggregate read: a revocation or an expiry takes effect at once.
Only a hash of each link's token is recorded; the token itself is shown once.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Final
from uuid import UUID, uuid5

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError

from domain.errors import ConcurrentWriteError, InvalidInputError, NotFoundError
from domain.identity import tenant_id, validate_key
from domain.timekeeping import utc_instant

if TYPE_CHECKING:
    from eventsourcing.application import Application

MAX_ACTIVE_LINKS: Final = 50


class ShareNotFoundError(NotFoundError):
    """No such share link for this person (or it was never made)."""

    title = "Share link not found"


@dataclass(frozen=True)
class ShareLink:
    """A share link as recorded: never its token."""

    share_id: str
    person: str
    promisee: str | None
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    token_hash: str

    def is_active(self, at: datetime) -> bool:
        """Whether the link opens the dashboard at `at`."""
        return self.revoked_at is None and at < self.expires_at


def share_book_id(tenant: str, person: str) -> UUID:
    """The ShareBook aggregate id of a person within a tenant."""
    return uuid5(tenant_id(tenant), f"shares/{person}")


class ShareBook(Aggregate):
    """The share links one person's dashboard has been given through."""

    TOPIC = "troth:ShareBook"

    def __init__(self) -> None:
        self.tenant: str = ""
        self.person: str = ""
        self.links: dict[str, ShareLink] = {}

    class Event(Aggregate.Event):
        pass

    class Created(Event, Aggregate.Created):
        TOPIC = "troth:ShareBook.Created"

    class Opened(Created):
        """The person's first share link is about to be made."""

        TOPIC = "troth:ShareBook.Opened"
        tenant: str
        person: str

        def apply(self, aggregate: ShareBook) -> None:
            aggregate.tenant = self.tenant
            aggregate.person = self.person

    class LinkCreated(Event):
        """A link was made, valid until `expires_at`, optionally only towards `promisee`."""

        TOPIC = "troth:ShareBook.LinkCreated"
        share_id: str
        promisee: str | None
        token_hash: str
        expires_at: datetime
        at: datetime

        def apply(self, aggregate: ShareBook) -> None:
            aggregate.links[self.share_id] = ShareLink(
                share_id=self.share_id,
                person=aggregate.person,
                promisee=self.promisee,
                created_at=self.at,
                expires_at=self.expires_at,
                revoked_at=None,
                token_hash=self.token_hash,
            )

    class LinkRevoked(Event):
        """A link was revoked: it opens nothing from `at` on."""

        TOPIC = "troth:ShareBook.LinkRevoked"
        share_id: str
        at: datetime

        def apply(self, aggregate: ShareBook) -> None:
            link = aggregate.links[self.share_id]
            aggregate.links[self.share_id] = ShareLink(
                share_id=link.share_id,
                person=link.person,
                promisee=link.promisee,
                created_at=link.created_at,
                expires_at=link.expires_at,
                revoked_at=self.at,
                token_hash=link.token_hash,
            )

    @classmethod
    def open(cls, tenant: str, person: str) -> ShareBook:
        """Start a person's book of share links."""
        validate_key("person", person)
        return cls._create(
            cls.Opened, id=share_book_id(tenant, person), tenant=tenant, person=person
        )

    def add(
        self,
        *,
        share_id: str,
        promisee: str | None,
        token_hash: str,
        expires_at: datetime,
        at: datetime,
    ) -> None:
        """Record a new link; its token is known only by `token_hash`."""
        at = utc_instant("at", at)
        expires_at = utc_instant("expires_in", expires_at)
        if expires_at <= at:
            raise InvalidInputError("expires_in", "must be a positive duration")
        if promisee is not None:
            validate_key("promisee", promisee)
            if promisee == self.person:
                raise InvalidInputError("promisee", "a person is not their own promisee")
        if sum(link.is_active(at) for link in self.links.values()) >= MAX_ACTIVE_LINKS:
            raise InvalidInputError(
                "expires_in", f"at most {MAX_ACTIVE_LINKS} links may be active; revoke one first"
            )
        self.trigger_event(
            self.LinkCreated,
            share_id=share_id,
            promisee=promisee,
            token_hash=token_hash,
            expires_at=expires_at,
            at=at,
        )

    def revoke(self, share_id: str, *, at: datetime) -> bool:
        """Revoke a link; False when it was already revoked."""
        link = self.links.get(share_id)
        if link is None:
            raise ShareNotFoundError(f"no share link {share_id!r}")
        if link.revoked_at is not None:
            return False
        self.trigger_event(self.LinkRevoked, share_id=share_id, at=utc_instant("at", at))
        return True

    def admits(self, share_id: str, token_hash: str, *, at: datetime) -> ShareLink | None:
        """The link if it exists, matches the token's hash and is active at `at`."""
        link = self.links.get(share_id)
        if link is None or not hmac.compare_digest(link.token_hash, token_hash):
            return None
        return link if link.is_active(at) else None


class ShareLinks:
    """The share-link use cases over the Ledger's event store."""

    def __init__(self, app: Application[UUID]) -> None:
        self.app = app

    def create(
        self,
        tenant: str,
        person: str,
        *,
        share_id: str,
        promisee: str | None,
        token_hash: str,
        expires_at: datetime,
        at: datetime,
    ) -> ShareLink:
        """Record a new link for `person`."""
        book = self._book(tenant, person) or ShareBook.open(tenant, person)
        book.add(
            share_id=share_id,
            promisee=promisee,
            token_hash=token_hash,
            expires_at=expires_at,
            at=at,
        )
        self._save(book)
        return book.links[share_id]

    def revoke(self, tenant: str, person: str, share_id: str, *, at: datetime) -> None:
        """Revoke a link at once (revoking it again changes nothing)."""
        book = self._book(tenant, person)
        if book is None:
            raise ShareNotFoundError(f"no share link {share_id!r}")
        if book.revoke(share_id, at=at):
            self._save(book)

    def links(self, tenant: str, person: str) -> list[ShareLink]:
        """The person's links, newest first."""
        book = self._book(tenant, person)
        if book is None:
            return []
        return sorted(book.links.values(), key=lambda link: link.created_at, reverse=True)

    def admit(
        self, tenant: str, person: str, share_id: str, token_hash: str, *, at: datetime
    ) -> ShareLink | None:
        """The active link a token opens, read fresh (revocations apply at once)."""
        book = self._book(tenant, person)
        return None if book is None else book.admits(share_id, token_hash, at=at)

    def _book(self, tenant: str, person: str) -> ShareBook | None:
        validate_key("person", person)
        try:
            book: Aggregate = self.app.repository.get(share_book_id(tenant, person))
        except AggregateNotFoundError:
            return None
        return book if isinstance(book, ShareBook) else None

    def _save(self, book: ShareBook) -> None:
        try:
            self.app.save(book)
        except IntegrityError:
            raise ConcurrentWriteError("the record changed at the same moment; retry") from None
