"""Export a tenant's log as envelopes and import it elsewhere: the reports come out the same."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import pytest

from domain.application import Ledger
from domain.promise import PromiseTerms
from projections.projector import Projector
from projections.report_popo import POPOReportViewStore
from projections.report_reader import ReportReader
from service.settings import Settings
from service.tenant_export import export_envelopes
from service.tenant_import import ImportLineError, import_envelopes
from tests.clock import T0
from tests.histories import every_report, record_everything, subjects
from tests.reporting import assert_same
from tests.unit.service.conftest import Served


class Deployment:
    """A ledger on in-memory persistence with its report views."""

    def __init__(self) -> None:
        self.ledger = Ledger(env=Settings(database_url="memory:").eventsourcing_env(Ledger.name))
        self.store = POPOReportViewStore()
        self.projector = Projector(self.ledger.recorder, self.ledger.mapper, self.store)
        self.reader = ReportReader(self.store)

    def caught_up(self) -> Deployment:
        self.projector.catch_up()
        return self


@pytest.fixture
def source() -> Iterator[Deployment]:
    deployment = Deployment()
    deployment.ledger.register_tenant("ours", at=T0 - timedelta(days=1))
    deployment.ledger.register_tenant("theirs", at=T0 - timedelta(days=1))
    record_everything(deployment.ledger, "ours")
    deployment.ledger.make_promise(
        # Another tenant's promise by a person of the same name never leaks into the export.
        PromiseTerms(tenant="theirs", key="x", promiser="ann", title="theirs", made_at=T0)
    )
    yield deployment.caught_up()
    deployment.ledger.close()


def lines_of(deployment: Deployment, tenant: str) -> list[str]:
    return [json.dumps(e) for e in export_envelopes(deployment.ledger, tenant)]


def test_importing_an_export_into_an_empty_tenant_reproduces_every_report(
    source: Deployment,
) -> None:
    lines = lines_of(source, "ours")
    target = Deployment()
    target.ledger.register_tenant("copy", at=T0 + timedelta(days=90))
    summary = import_envelopes(target.ledger, "copy", lines, clock=lambda: T0)
    target.caught_up()

    assert summary.recorded == len(lines)
    assert subjects(target.store, "copy") == subjects(source.store, "ours")
    expected = every_report(source.reader, source.store, "ours")
    actual = every_report(target.reader, target.store, "copy")
    assert actual.keys() == expected.keys()
    for name, report in expected.items():
        assert_same(actual[name], report, path=str(name))
    # Exporting the copy gives back the same history (ids and recording times aside; a
    # policy change has no business time, its timestamp is when it was recorded).
    again = [json.loads(line) for line in lines_of(target, "copy")]
    original = [json.loads(line) for line in lines]
    for line in (*again, *original):
        del line["id"], line["recorded_at"]
        if line["type"] == "tenant.scoring_policy_changed":
            del line["timestamp"]
    assert again == original


def test_an_export_is_the_tenants_history_as_webhook_envelopes_in_log_order(
    source: Deployment,
) -> None:
    envelopes = [json.loads(line) for line in lines_of(source, "ours")]
    kinds = {e["type"] for e in envelopes}
    assert kinds == {
        "person.updated",
        "promise.made",
        "promise.kept",
        "promise.broken",
        "promise.renegotiated",
        "promise.released",
        "promise.lapsed",
        "promise.outcome_corrected",
        "tenant.scoring_policy_changed",
    }
    assert all(set(e) == {"id", "type", "timestamp", "data", "recorded_at"} for e in envelopes)
    assert len({e["id"] for e in envelopes}) == len(envelopes)
    recorded = [e["recorded_at"] for e in envelopes]
    assert recorded == sorted(recorded)
    assert "theirs" not in {e["data"].get("title") for e in envelopes}
    assert envelopes[0] == {
        "type": "person.updated",
        "timestamp": T0.isoformat(),
        "data": {"person": "ann"},
        "id": envelopes[0]["id"],
        "recorded_at": envelopes[0]["recorded_at"],
    }


def test_importing_the_same_export_again_records_nothing_twice(source: Deployment) -> None:
    lines = lines_of(source, "ours")
    target = Deployment()
    target.ledger.register_tenant("copy", at=T0)
    import_envelopes(target.ledger, "copy", lines[:20], clock=lambda: T0)
    head = target.ledger.head_position()
    resumed = import_envelopes(target.ledger, "copy", lines, clock=lambda: T0)
    assert resumed.already_recorded == 20
    assert resumed.recorded == len(lines) - 20
    assert target.ledger.head_position() > head
    head = target.ledger.head_position()
    repeated = import_envelopes(target.ledger, "copy", lines, clock=lambda: T0)
    assert (repeated.recorded, repeated.already_recorded) == (0, len(lines))
    assert target.ledger.head_position() == head


def test_a_bad_line_stops_the_import_naming_its_number(source: Deployment) -> None:
    lines = lines_of(source, "ours")[:3]
    target = Deployment()
    target.ledger.register_tenant("copy", at=T0)
    outcome_first = [*lines, json.dumps({"id": "k", "type": "promise.kept", "timestamp": "x"})]
    with pytest.raises(ImportLineError, match="line 4: invalid envelope"):
        import_envelopes(target.ledger, "copy", outcome_first, clock=lambda: T0)
    orphan = {
        "id": "k2",
        "type": "promise.kept",
        "timestamp": T0.isoformat(),
        "data": {"promise_id": "never-made"},
    }
    with pytest.raises(ImportLineError, match="line 2: promise 'never-made' has not been made"):
        import_envelopes(target.ledger, "copy", ["", json.dumps(orphan)], clock=lambda: T0)


def test_the_export_endpoint_streams_the_tenants_log_to_its_key_only(served: Served) -> None:
    record_everything(served.components.ledger, "acme")
    other = served.components.ledger.register_tenant("other", at=T0)
    response = served.client.get("/v1/tenants/acme/export", headers=served.auth())
    assert response.status_code == 200
    assert response.mimetype == "application/x-ndjson"
    assert response.headers["Content-Disposition"] == 'attachment; filename="troth-acme.ndjson"'
    lines = response.get_data(as_text=True).splitlines()
    assert lines == [
        json.dumps(e, separators=(",", ":"))
        for e in export_envelopes(served.components.ledger, "acme")
    ]
    refused = served.client.get("/v1/tenants/acme/export", headers=served.auth(other.api_key))
    assert refused.status_code == 404
    assert served.client.get("/v1/tenants/acme/export").status_code == 401
