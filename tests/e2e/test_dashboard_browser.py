"""The dashboard in a real headless Chromium: it loads cleanly, draws its charts, and asks
nothing of any other server. With TROTH_UPDATE_SCREENSHOT=1 its screenshot replaces
docs/dashboard.png (otherwise it goes to the test's temp folder, leaving the tree clean)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_serve import free_port, get_json
from tests.webhooks import envelope, made, signed

TROTH = str(Path(sys.executable).parent / "troth")
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SCREENSHOT = Path(__file__).parents[2] / "docs" / "dashboard.png"


def _browser_or_skip() -> Any:
    """Playwright's sync API driving the system Chromium; missing in CI is a failure."""
    required = bool(os.environ.get("CI")) or os.environ.get("TROTH_REQUIRE_BROWSER") == "1"
    reason = None
    if shutil.which(CHROMIUM) is None:
        reason = f"{CHROMIUM} is not installed (apt-get install chromium)"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        reason = "playwright is not installed (pip install -e '.[dev]')"
    if reason is not None:
        if required:
            pytest.fail(f"a browser is required here (CI or TROTH_REQUIRE_BROWSER=1): {reason}")
        pytest.skip(reason)
    return sync_playwright


def _request(url: str, *, data: bytes | None = None, headers: dict[str, str]) -> Any:
    method = "POST" if data is not None else "GET"
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    port = free_port()
    env = {
        **os.environ,
        "TROTH_DATABASE_URL": f"sqlite:///{tmp_path}/troth.db",
        "TROTH_SHARE_KEY": "a-share-signing-key-for-the-browser-test",
    }
    subprocess.run([TROTH, "migrate"], env=env, check=True, capture_output=True)
    created = subprocess.run(
        [TROTH, "tenants", "create", "family", "--json"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    credentials = json.loads(created.stdout)
    process = subprocess.Popen(
        [TROTH, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            get_json(base + "/healthz")
            break
        except OSError:
            time.sleep(0.1)
    yield base, credentials
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=10)


def _record_weeks_of_promises(base: str, credentials: dict[str, str]) -> int:
    """Eight weeks of Alex's promises to Sam and Kim, mostly kept, one not, two open."""
    now = datetime.now(UTC)
    position = 0

    def post(body: dict[str, Any]) -> None:
        nonlocal position
        raw, headers = signed(credentials["webhook_secret"], body)
        answer = _request(f"{base}/v1/tenants/family/events", data=raw, headers=headers)
        position = max(position, answer["position"])

    outcomes = ["kept"] * 6 + ["broken"] + ["kept"] * 5
    for i, outcome in enumerate(outcomes):
        made_at = now - timedelta(days=56 - 4 * i)
        promisee = "sam" if i % 3 else "kim"
        category = "calls" if i % 2 else "home"
        title = "Call before dinner" if i % 2 else "Do the evening dishes"
        data = made(
            f"p{i}",
            promisee=promisee,
            category=category,
            title=title,
            due_at=(made_at + timedelta(days=1)).isoformat(),
        )
        post(envelope("promise.made", data, at=made_at))
        extra = {"note": "Rang at six, as agreed"} if i == 3 else {}
        if outcome == "broken":
            extra = {"reason": "Stayed late at work and forgot; talked it through the next day"}
        post(
            envelope(
                f"promise.{outcome}",
                {"promise_id": f"p{i}", **extra},
                at=made_at + timedelta(hours=20),
            )
        )
    post(envelope("promise.made", made("weekend", title="Plan the weekend together")))
    post(
        envelope(
            "promise.made",
            made(
                "photos",
                title="Sort the holiday photos",
                due_at=(now - timedelta(hours=3)).isoformat(),
            ),
            at=now - timedelta(days=2),
        )
    )
    return position


def test_the_dashboard_loads_in_chromium_with_its_charts_and_no_outside_requests(
    server: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    sync_playwright = _browser_or_skip()
    base, credentials = server
    position = _record_weeks_of_promises(base, credentials)
    bearer = {"Authorization": f"Bearer {credentials['api_key']}"}
    _request(f"{base}/v1/tenants/family/people/alex/report?after={position}", headers=bearer)
    share = _request(
        f"{base}/v1/tenants/family/people/alex/shares",
        data=json.dumps({"expires_in": "P14D"}).encode(),
        headers={**bearer, "content-type": "application/json"},
    )

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 900, "height": 900})
            problems: list[str] = []
            requested: list[str] = []
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda error: problems.append(str(error)))
            page.on("request", lambda r: requested.append(r.url))

            response = page.goto(share["url"], wait_until="load")
            assert response is not None
            assert response.status == 200
            assert "default-src 'none'" in response.headers["content-security-policy"]
            assert response.headers["referrer-policy"] == "no-referrer"

            assert page.locator("h1").inner_text() == "alex's promises"
            assert page.get_by_test_id("score").inner_text().isdigit()
            for chart in ("score-chart", "outcomes-chart"):
                svg = page.get_by_test_id(chart).locator("svg")
                box = svg.bounding_box()
                assert box is not None
                assert box["width"] > 200
                assert box["height"] > 50
            # The score line and the bars are drawn (pygal's series groups hold the shapes).
            assert page.get_by_test_id("score-chart").locator(".series path").count() >= 1
            assert page.get_by_test_id("outcomes-chart").locator(".series rect").count() >= 12
            history = page.get_by_test_id("history").inner_text()
            assert "Not kept" in history
            assert "Stayed late at work" in history
            assert "Sort the holiday photos" in page.get_by_test_id("overdue").inner_text()
            shot = page.screenshot(full_page=True)
            assert shot.startswith(b"\x89PNG")
            is_update = os.environ.get("TROTH_UPDATE_SCREENSHOT") == "1"
            (SCREENSHOT if is_update else tmp_path / SCREENSHOT.name).write_bytes(shot)

            # Readable on a phone: nothing wider than the screen.
            page.set_viewport_size({"width": 375, "height": 800})
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 375

            # The look-back form works without JavaScript and keeps the share token.
            page.fill("#on", (datetime.now(UTC) - timedelta(days=30)).date().isoformat())
            page.click("form.when button")
            page.wait_for_load_state("load")
            assert "As it was on" in page.locator("header").inner_text()

            assert problems == []
            assert requested
            assert all(url.startswith(base + "/") for url in requested), requested
        finally:
            browser.close()
