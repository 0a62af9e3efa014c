"""The database circuit breaker: fail fast while the database is down, probe now and then."""

from __future__ import annotations

from service.circuit import DatabaseCircuit
from service.settings import Settings
from tests.unit.service.conftest import Served


class Stopwatch:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_closed_circuit_admits_every_request() -> None:
    circuit = DatabaseCircuit(cool_off=5, clock=Stopwatch())
    assert all(circuit.admit() for _ in range(10))


def test_after_a_failure_requests_are_refused_until_one_probe_per_cool_off() -> None:
    clock = Stopwatch()
    circuit = DatabaseCircuit(cool_off=5, clock=clock)
    circuit.trip()
    assert not circuit.admit()
    clock.now += 5
    assert circuit.admit()  # the probe
    assert not circuit.admit()  # everyone else, while the probe is out
    clock.now += 5
    assert circuit.admit()


def test_an_answer_from_the_database_closes_the_circuit() -> None:
    clock = Stopwatch()
    circuit = DatabaseCircuit(cool_off=5, clock=clock)
    circuit.trip()
    clock.now += 5
    assert circuit.admit()
    circuit.reset()
    assert all(circuit.admit() for _ in range(3))


def test_a_read_waiting_for_the_views_does_not_open_the_circuit(served: Served) -> None:
    served.components.settings = Settings(database_url="memory:", read_wait_ms=10)
    head = served.components.ledger.head_position()
    waited = served.client.get(
        f"/v1/tenants/acme/people/alex/report?after={head + 100}", headers=served.auth()
    )
    assert waited.status_code == 503
    assert waited.json is not None
    assert waited.json["type"] != "/problems/database-unavailable"
    # The database is fine: the next request goes through.
    assert (
        served.client.get("/v1/tenants/acme/promises/p1", headers=served.auth()).status_code == 404
    )
