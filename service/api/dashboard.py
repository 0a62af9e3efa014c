"""The dashboard page and the report downloads (CSV and JSON), for a key or a share link."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, time, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

from flask import Response, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_smorest import Blueprint
from marshmallow import RAISE, ValidationError, fields, validate, validates_schema
from werkzeug.exceptions import NotFound

from projections.report_reader import Report
from projections.views import SubjectKey
from service.api.errors import problem_response
from service.api.freshness import wait_for_position
from service.api.report_schemas import AfterSchema, ReportSchema
from service.api.reports import present
from service.api.schemas import ProblemSchema
from service.context import components
from service.dashboard.page import build_page
from service.problems import describe
from service.sharing import SHARE_PARAMETER, current_reader, reads_person, subject
from service.webhooks.envelopes import key_field

# The page is self-contained: inline styles and inline SVG, no scripts, nothing fetched.
CONTENT_SECURITY_POLICY: Final = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
PRIVATE_HEADERS: Final = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    # A share token in the address must not travel on in a Referer header or sit in caches.
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}
UNSAFE_IN_FILENAME: Final = re.compile(r"[^A-Za-z0-9._@-]")
PROBLEM_WORDS: Final = {
    401: (
        "This link does not open anything now",
        "It may have expired or been revoked, or part of it is missing. "
        "Ask the person who shared it for a new one.",
    ),
    403: ("This key may not open the page", "Ask the app's operator for access."),
    404: (
        "There is nothing to show here",
        "The link may be for someone else, or no promises are recorded yet.",
    ),
    422: ("Part of the address was not understood", "Check the date, or open the link again."),
    429: ("Troth is busy right now", "Please try again in a moment."),
    500: ("Something went wrong on our side", "Please try again later."),
    503: ("Troth is busy right now", "Please try again in a moment."),
}
CSV_COLUMNS: Final = ("week_start", "kept", "kept_late", "broken", "lapsed", "released", "score")

blp = Blueprint(
    "dashboard",
    __name__,
    url_prefix="/v1/tenants/<tenant>/people",
    description="A person's dashboard (HTML) and report downloads, for a Bearer key with "
    "reports:read or a share link's token (`?share=`).",
)


class DashboardQuerySchema(AfterSchema):
    """When to show the record as at, and who is reading."""

    as_of = fields.AwareDateTime(metadata={"description": "show the page as at this instant"})
    on = fields.Date(metadata={"description": "show the page as at the end of this local day"})
    weeks = fields.Integer(load_default=12, validate=validate.Range(min=1, max=104))
    share = fields.String(
        validate=validate.Length(min=1, max=400),
        metadata={"description": "a share link's token (instead of a Bearer key)"},
    )

    @validates_schema
    def one_instant(self, data: dict[str, Any], **_: Any) -> None:
        """One way to say when."""
        if "as_of" in data and "on" in data:
            raise ValidationError("Give as_of or on, not both.", field_name="on")


class DownloadQuerySchema(DashboardQuerySchema):
    """Which report to download: a person's, towards one promisee, or in one category."""

    promisee = key_field()
    category = fields.String(validate=validate.Length(min=1, max=64))

    @validates_schema
    def one_filter(self, data: dict[str, Any], **_: Any) -> None:
        """Towards one promisee or in one category, not both at once."""
        if "promisee" in data and "category" in data:
            raise ValidationError("Give promisee or category, not both.", field_name="category")


def _documented(content_type: str, description: str) -> Any:
    def decorate(view: Any) -> Any:
        for status in (401, 403, 404, 422, 429, 503):
            view = blp.alt_response(
                status, schema=ProblemSchema, content_type="application/problem+json"
            )(view)
        return blp.doc(
            security=[{"bearerAuth": []}, {}],
            responses={
                "200": {
                    "description": description,
                    "content": {content_type: {"schema": {"type": "string"}}},
                }
            },
        )(view)

    return decorate


@blp.route("/<person>/dashboard")
@reads_person
@blp.arguments(DashboardQuerySchema(), location="query", unknown=RAISE)
@_documented("text/html", "The dashboard page")
def dashboard(arguments: dict[str, Any], tenant: str, person: str) -> ResponseReturnValue:
    """A person's dashboard: score, streaks, weekly charts, promises in progress, recent
    history, and sections per promisee and category (optionally as at a past instant)."""
    key = subject(tenant, person, None, None)
    report, as_of = _report(key, arguments)
    built = components()
    page = build_page(
        reader=built.reader,
        views=built.views,
        ledger=built.ledger,
        key=key,
        report=present(report),
        now=built.clock(),
        as_of=as_of,
    )
    share = request.args.get(SHARE_PARAMETER)
    place: dict[str, Any] = {"tenant": tenant, "person": person}
    if share:
        place[SHARE_PARAMETER] = share
    when: dict[str, Any] = {"as_of": arguments["as_of"].isoformat()} if "as_of" in arguments else {}
    if "on" in arguments:
        when = {"on": arguments["on"].isoformat()}
    links = {
        "now": url_for("dashboard.dashboard", **place),
        "form": url_for("dashboard.dashboard", tenant=tenant, person=person),
        "csv": url_for("dashboard.trend_csv", **place, **when),
        "json": url_for("dashboard.report_download", **place, **when),
    }
    heading = f"{person}'s promises" + (f" to {key.other}" if key.kind == "pair" else "")
    html = render_template(
        "dashboard.html",
        page=page,
        links=links,
        share=share,
        is_shared=current_reader().is_share,
        heading=heading,
        on=arguments.get("on"),
    )
    return _private(Response(html, mimetype="text/html"))


@blp.route("/<person>/report.csv")
@reads_person
@blp.arguments(DownloadQuerySchema(), location="query", unknown=RAISE)
@_documented("text/csv", "The weekly trend, one row per local week, oldest first")
def trend_csv(arguments: dict[str, Any], tenant: str, person: str) -> ResponseReturnValue:
    """The weekly trend as CSV (a download)."""
    key = subject(tenant, person, arguments.get("promisee"), arguments.get("category"))
    report, _ = _report(key, arguments)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for week in report.trend.weeks:
        writer.writerow(
            [
                week.week_start.isoformat(),
                week.kept,
                week.kept_late,
                week.broken,
                week.lapsed,
                week.released,
                f"{week.score:.1f}",
            ]
        )
    response = Response(out.getvalue(), mimetype="text/csv")
    response.headers["Content-Disposition"] = _attachment(key, "trend.csv")
    return _private(response)


@blp.route("/<person>/report.json")
@reads_person
@blp.arguments(DownloadQuerySchema(), location="query", unknown=RAISE)
@blp.response(200, ReportSchema)
@_documented("application/json", "The report, as a file")
def report_download(arguments: dict[str, Any], tenant: str, person: str) -> ResponseReturnValue:
    """The report as a JSON file (a download): the same body as `/report`."""
    key = subject(tenant, person, arguments.get("promisee"), arguments.get("category"))
    report, _ = _report(key, arguments)
    headers = {**PRIVATE_HEADERS, "Content-Disposition": _attachment(key, "report.json")}
    return present(report), 200, headers


@blp.errorhandler(Exception)
def _problem_page(error: Exception) -> ResponseReturnValue:
    """A browser opening the page gets the problem as a short page; API clients get JSON."""
    wanted = request.accept_mimetypes.best_match(["application/problem+json", "text/html"])
    if request.endpoint != "dashboard.dashboard" or wanted != "text/html":
        return problem_response(error)
    described = describe(error)
    status = described.status
    heading, advice = PROBLEM_WORDS.get(status, PROBLEM_WORDS[500])
    html = render_template(
        "problem.html",
        heading=heading,
        advice=advice,
        title=described.body.get("title", ""),
        detail=described.body.get("detail", ""),
        status=status,
    )
    response = Response(html, status=status, mimetype="text/html")
    response.headers.update(described.headers)
    return _private(response)


def _report(key: SubjectKey, arguments: dict[str, Any]) -> tuple[Report, datetime | None]:
    wait_for_position(arguments)
    built = components()
    as_of = arguments.get("as_of")
    if "on" in arguments:
        timezone, _ = built.reader.context(key.tenant, key.person)
        next_day = datetime.combine(arguments["on"] + timedelta(days=1), time(), ZoneInfo(timezone))
        as_of = (next_day - timedelta(microseconds=1)).astimezone(UTC)
    report = built.reader.report(key, now=built.clock(), as_of=as_of, weeks=arguments["weeks"])
    if report is None:
        raise NotFound("No promises are recorded for this person (with these filters).")
    return report, as_of


def _attachment(key: SubjectKey, what: str) -> str:
    name = "-".join(part for part in ("troth", key.person, key.other, what) if part)
    return f'attachment; filename="{UNSAFE_IN_FILENAME.sub("_", name)}"'


def _private(response: Response) -> Response:
    response.headers.update(PRIVATE_HEADERS)
    return response
