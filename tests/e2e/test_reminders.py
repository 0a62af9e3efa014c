"""Reminders end to end: a real scheduler process, a real local HTTP receiver subscribed to
the tenant's messages, and a business clock the test moves (a file the process reads)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from domain.commitment import CommitmentTerms
from domain.message import Message
from domain.person import QuietHours
from domain.promise import PromiseStatus, PromiseTerms
from domain.schedule import Schedule
from service.bootstrap import Components, bootstrap
from service.migration import migrate
from service.settings import Settings
from tests.receiver import Receiver, running_receiver

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # Monday 10:00 in Berlin
H = timedelta(hours=1)
ROOT = Path(__file__).parents[2]


@dataclass
class World:
    """The store, a tenant subscribed to the receiver, and scheduler processes on a clock."""

    settings: Settings
    components: Components
    receiver: Receiver
    clock_file: Path
    tenant: str = "acme"
    processes: list[subprocess.Popen[str]] = field(default_factory=list)

    @property
    def log(self) -> Path:
        """What the scheduler processes logged (shown when a wait times out)."""
        return self.clock_file.with_suffix(".log")

    def set_clock(self, now: datetime) -> None:
        temporary = self.clock_file.with_suffix(".tmp")
        temporary.write_text(now.isoformat())
        temporary.replace(self.clock_file)  # atomic: the process never reads half a time

    def start_scheduler(self) -> subprocess.Popen[str]:
        env = {
            **os.environ,
            "TROTH_DATABASE_URL": self.settings.database_url,
            "TROTH_ALLOW_PRIVATE_TARGETS": "1",
            "TROTH_SCHEDULER_TICK_MS": "200",
            "TROTH_OCCURRENCE_INTERVAL_S": "1",
        }
        with self.log.open("a") as log:  # the child keeps its own copy of the descriptor
            process = subprocess.Popen(
                [sys.executable, "-m", "tests.e2e.clocked_scheduler", str(self.clock_file)],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=log,
                text=True,
            )
        self.processes.append(process)
        return process

    def make(self, key: str, promiser: str, due_at: datetime, **more: object) -> None:
        terms = PromiseTerms(
            tenant=self.tenant, key=key, promiser=promiser, promisee="sam",
            title=f"Promise {key}", made_at=T0, due_at=due_at, **more,  # type: ignore[arg-type]
        )  # fmt: skip
        self.components.ledger.make_promise(terms)

    def messages(self) -> list[dict[str, object]]:
        """Every distinct message received (a redelivery repeats its webhook-id)."""
        seen: dict[str, dict[str, object]] = {}
        for received in list(self.receiver.received):
            seen.setdefault(received.headers["webhook-id"], json.loads(received.body))
        return list(seen.values())

    def of(self, kind: str, key: str | None = None) -> list[dict[str, object]]:
        return [
            m
            for m in self.messages()
            if m["type"] == kind and (key is None or _data(m)["promise_id"] == key)
        ]

    def wait_for(self, condition: Callable[[], bool], timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                kinds = [(m["type"], _data(m)["promise_id"]) for m in self.messages()]
                log = self.log.read_text()[-3000:] if self.log.exists() else ""
                pytest.fail(f"timed out; received {kinds}\n{log}")
            time.sleep(0.1)

    def queued(self) -> list[str]:
        """The message ids recorded in the outbox, in log order."""
        notifications = self.components.ledger.recorder.select_notifications(
            start=1, limit=100_000, topics=[Message.Queued.TOPIC]
        )
        return [
            self.components.ledger.mapper.to_domain_event(n).message_id  # type: ignore[attr-defined]
            for n in notifications
        ]


def _data(message: dict[str, object]) -> dict[str, object]:
    data = message["data"]
    assert isinstance(data, dict)
    return data


@contextmanager
def world_on(url: str, tmp_path: Path) -> Iterator[World]:
    """A migrated store at `url` with tenant `acme` subscribed to a running receiver."""
    settings = Settings(database_url=url, allow_private_targets=True)
    migrate(settings)
    components = bootstrap(settings)
    with running_receiver() as receiver:
        components.ledger.register_tenant("acme", at=T0 - 24 * H)
        created = components.ledger.create_subscription(
            "acme", url=receiver.url, types=["*"], description="e2e", at=T0 - 24 * H
        )
        receiver.secret = created.secret
        built = World(settings, components, receiver, tmp_path / "clock")
        built.set_clock(T0)
        try:
            yield built
        finally:
            for process in built.processes:
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
                    process.wait(timeout=15)
            components.close()


@pytest.fixture
def world(isolated_store_url: str, tmp_path: Path) -> Iterator[World]:
    with world_on(isolated_store_url, tmp_path) as built:
        yield built


def test_due_soon_follow_up_and_lapse_reach_the_receiver_and_quiet_hours_hold_a_reminder(
    world: World,
) -> None:
    ledger = world.components.ledger
    world.make("open", "alex", T0 + 48 * H)
    world.make("kept", "alex", T0 + 48 * H)
    # Bea sleeps 22:00-07:00 Berlin; her promise is due Wednesday 07:30 Berlin (06:30 UTC),
    # so its 1 h reminder (05:30 UTC, 06:30 Berlin) waits for 07:00 Berlin (06:00 UTC).
    ledger.update_person(
        "acme", "bea", at=T0, timezone="Europe/Berlin", quiet_hours=QuietHours("22:00", "07:00")
    )
    world.make("quiet", "bea", datetime(2026, 3, 4, 6, 30, tzinfo=UTC))
    world.start_scheduler()

    world.set_clock(T0 + 24 * H)  # the 24 h reminders (Bea's fell at 07:30 Berlin on Tuesday)
    world.wait_for(lambda: len(world.of("reminder.due_soon")) == 3)
    ledger.keep_promise("acme", "kept", at=T0 + 30 * H)

    world.set_clock(datetime(2026, 3, 4, 5, 45, tzinfo=UTC))  # inside Bea's quiet hours
    time.sleep(1.5)  # several ticks: the 1 h reminder must wait for the quiet hours' end
    assert len(world.of("reminder.due_soon", "quiet")) == 1
    world.set_clock(datetime(2026, 3, 4, 6, 0, tzinfo=UTC))
    world.wait_for(lambda: len(world.of("reminder.due_soon", "quiet")) == 2)

    world.set_clock(T0 + 47 * H)
    world.wait_for(lambda: len(world.of("reminder.due_soon", "open")) == 2)
    world.set_clock(T0 + 49 * H)
    world.wait_for(lambda: len(world.of("promise.follow_up", "open")) == 1)
    world.set_clock(T0 + 72 * H)
    world.wait_for(lambda: len(world.of("promise.lapsed", "open")) == 1)

    assert ledger.promise("acme", "open").status is PromiseStatus.LAPSED
    assert [_data(m)["lead_seconds"] for m in world.of("reminder.due_soon", "open")] == [
        86400, 3600,
    ]  # fmt: skip
    assert world.of("reminder.due_soon", "kept") == [world.of("reminder.due_soon", "kept")[0]]
    assert world.of("promise.follow_up", "kept") == []
    assert world.of("promise.lapsed", "kept") == []
    lapsed = _data(world.of("promise.lapsed", "open")[0])
    assert lapsed["lapsed_at"] == (T0 + 72 * H).isoformat()


def test_a_weekly_commitment_reminds_at_the_same_local_time_across_the_dst_change(
    world: World,
) -> None:
    created = datetime(2026, 3, 16, 12, 0, tzinfo=UTC)
    schedule = Schedule("FREQ=WEEKLY;BYDAY=TU", "Europe/Berlin", date(2026, 3, 16), "20:00")
    world.components.ledger.create_commitment(
        CommitmentTerms(
            tenant="acme", key="talk", promiser="alex", promisee="sam", title="Tuesday talk",
            schedule=schedule, reminders=(H,),
        ),
        at=created,
    )  # fmt: skip
    world.set_clock(created)
    world.start_scheduler()
    # One hour before each talk: 19:00 Berlin, which is 18:00 UTC in winter, 17:00 in summer.
    for now, key in [
        (datetime(2026, 3, 17, 18, 0, tzinfo=UTC), "talk/2026-03-17"),
        (datetime(2026, 3, 24, 18, 0, tzinfo=UTC), "talk/2026-03-24"),
        (datetime(2026, 3, 31, 17, 0, tzinfo=UTC), "talk/2026-03-31"),
    ]:
        world.set_clock(now - timedelta(days=1))  # the occurrence is made ahead of time
        world.wait_for(lambda key=key: _exists(world, key))  # type: ignore[misc]
        world.set_clock(now)
        world.wait_for(lambda key=key: len(world.of("reminder.due_soon", key)) == 1)  # type: ignore[misc]
    due = [_data(m)["due_at"] for m in world.of("reminder.due_soon")]
    assert due == [
        "2026-03-17T19:00:00+00:00",
        "2026-03-24T19:00:00+00:00",
        "2026-03-31T18:00:00+00:00",  # 20:00 CEST
    ]


def _exists(world: World, key: str) -> bool:
    try:
        world.components.ledger.promise("acme", key)
    except Exception:
        return False
    return True


def test_a_scheduler_killed_mid_way_and_restarted_loses_and_duplicates_nothing(
    world: World,
) -> None:
    keys = [f"p{n:02d}" for n in range(40)]
    for n, key in enumerate(keys):
        world.make(key, "alex", T0 + 48 * H + n * timedelta(minutes=1), reminders=(H,))
    first = world.start_scheduler()
    world.set_clock(T0 + 47 * H + 19 * timedelta(minutes=1))  # the first 20 are due
    world.wait_for(lambda: len(world.messages()) >= 3)
    first.send_signal(signal.SIGKILL)  # mid-way: no chance to finish or release anything
    first.wait(timeout=10)
    received_before = len(world.messages())
    world.start_scheduler()
    world.set_clock(T0 + 47 * H + 39 * timedelta(minutes=1))
    world.wait_for(lambda: len(world.messages()) == 40)
    time.sleep(1.5)
    assert received_before < 40
    reminded = sorted(str(_data(m)["promise_id"]) for m in world.messages())
    assert reminded == keys
    queued = world.queued()
    assert len(queued) == len(set(queued)) == 40


def test_a_standby_replica_takes_over_within_seconds_when_the_leader_dies(
    isolated_postgres_url: str, tmp_path: Path
) -> None:
    with world_on(isolated_postgres_url, tmp_path) as world:
        for n in range(10):
            world.make(f"p{n}", "alex", T0 + 48 * H + n * timedelta(minutes=1), reminders=(H,))
        leader = world.start_scheduler()
        world.set_clock(T0 + 47 * H)
        world.wait_for(lambda: len(world.messages()) == 1)  # the first replica leads
        world.start_scheduler()  # the standby: waits on the lock
        world.set_clock(T0 + 47 * H + 4 * timedelta(minutes=1))
        world.wait_for(lambda: len(world.messages()) == 5)
        leader.send_signal(signal.SIGKILL)
        leader.wait(timeout=10)
        killed = time.monotonic()
        world.set_clock(T0 + 47 * H + 9 * timedelta(minutes=1))
        world.wait_for(lambda: len(world.messages()) == 10, timeout=20)
        takeover = time.monotonic() - killed
        queued = world.queued()
        assert len(queued) == len(set(queued)) == 10
        print(f"standby took over and delivered within {takeover:.1f} s")
