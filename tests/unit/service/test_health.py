"""Health endpoints and the error map, through Flask's test client on in-memory persistence."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask.testing import FlaskClient

from service.app import create_app
from service.settings import Settings


@pytest.fixture
def client() -> Iterator[FlaskClient]:
    app = create_app(Settings(database_url="memory:"))
    with app.test_client() as client:
        yield client


def test_healthz_answers_without_credentials(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok"}


def test_readyz_reports_the_log_head_and_how_far_the_views_lag(client: FlaskClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json == {
        "status": "ready",
        "log_head": 0,
        "projection": {"position": 0, "lag": 0},
    }

    components = client.application.extensions["troth"]
    components.ledger.register_tenant("acme", at=components.clock())
    head = components.ledger.head_position()
    assert projection(client) == {"position": 0, "lag": head}
    components.projector.catch_up()
    assert projection(client) == {"position": head, "lag": 0}


def projection(client: FlaskClient) -> object:
    body = client.get("/readyz").json
    assert body is not None
    return body["projection"]


def test_an_unknown_path_is_problem_details_not_html(client: FlaskClient) -> None:
    response = client.get("/no/such/thing")
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
    assert response.json is not None
    assert response.json["status"] == 404
    assert response.json["title"] == "Not Found"


def test_a_wrong_method_is_problem_details(client: FlaskClient) -> None:
    response = client.post("/healthz")
    assert response.status_code == 405
    assert response.mimetype == "application/problem+json"
