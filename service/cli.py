"""The `troth` command."""

from __future__ import annotations

import json
import os
import secrets
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import click

from domain.credentials import DEFAULT_SCOPES, Scope
from projections.projector import Progress, Projector
from projections.views import REPORTS_VIEW
from service.bootstrap import (
    Components,
    bootstrap,
    build_due_work,
    pipelines_projector,
    system_clock,
)
from service.following import FollowingProjector
from service.logs import configure_logging
from service.metrics import MetricsServer
from service.migration import migrate as run_migrations
from service.scheduler import Scheduler
from service.settings import Settings, SettingsError
from service.webhooks.signatures import sign

LOCAL_TENANT = "local"
REBUILD_SUFFIX = "__rebuild"


def _settings() -> Settings:
    try:
        settings = Settings.from_env(os.environ)
        settings.database  # noqa: B018  (parse now, so a bad URL fails before any work)
    except SettingsError as error:
        raise click.UsageError(str(error)) from None
    return settings


def _components() -> Components:
    return bootstrap(_settings())


@click.group()
def cli() -> None:
    """Troth: an event-sourced commitment tracker."""
    try:
        configure_logging(Settings.from_env(os.environ))
    except SettingsError as error:
        raise click.UsageError(str(error)) from None


@cli.command()
@click.option(
    "--wait",
    "wait_seconds",
    type=float,
    default=None,
    help="Create nothing: wait up to SECONDS until the tables exist (for init containers).",
)
def migrate(wait_seconds: float | None) -> None:
    """Create the event store and every view table (safe to run repeatedly)."""
    settings = _settings()
    if wait_seconds is not None:
        _wait_for_schema(settings, wait_seconds)
        return
    run_migrations(settings)
    click.echo(f"migrated {settings.database.redacted()}")


def _wait_for_schema(settings: Settings, seconds: float) -> None:
    import sqlite3

    import psycopg
    from eventsourcing.persistence import PersistenceError

    deadline = time.monotonic() + seconds
    while True:
        try:
            components = bootstrap(settings)
            try:
                components.ledger.head_position()
                components.projector.position()
            finally:
                components.close()
        except (PersistenceError, psycopg.Error, sqlite3.Error) as error:
            if time.monotonic() >= deadline:
                raise click.ClickException(
                    f"the tables at {settings.database.redacted()} are still missing or "
                    f"unreachable after {seconds:g} s ({type(error).__name__})"
                ) from None
            time.sleep(2)
            continue
        click.echo(f"schema ready at {settings.database.redacted()}")
        return


@cli.command()
@click.option("--host", default=None, help="Address to listen on (default TROTH_HOST).")
@click.option("--port", default=None, type=int, help="Port to listen on (default TROTH_PORT).")
def serve(host: str | None, port: int | None) -> None:
    """Run everything in one process on the configured database (what `make run` starts)."""
    from waitress.server import create_server

    from service.app import create_app

    settings = _settings()
    run_migrations(settings)
    components = bootstrap(settings)
    app = create_app(settings, components)
    host = host or settings.host
    port = port or settings.port
    server = create_server(app, host=host, port=port, threads=8, ident="troth")
    signal.signal(signal.SIGTERM, _exit_quietly)
    _welcome_on_empty_store(components, f"http://{host}:{port}")
    following = FollowingProjector(settings, components.projector, components.metrics)
    following.start()
    due_work = build_due_work(settings)
    scheduler = Scheduler(components, due_work)
    scheduler.start()
    click.echo(f"Troth serving on http://{host}:{port} ({settings.database.redacted()})")
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
        scheduler.stop()
        following.stop()
        due_work.close()
        components.close()
        click.echo("Troth stopped")


@cli.command()
@click.option("--host", default=None, help="Address to listen on (default TROTH_HOST).")
@click.option("--port", default=None, type=int, help="Port to listen on (default TROTH_PORT).")
def api(host: str | None, port: int | None) -> None:
    """Serve the HTTP API with gunicorn (production); needs `troth migrate` first."""
    settings = _settings()
    gunicorn = os.path.join(os.path.dirname(sys.executable), "gunicorn")
    bind = f"{host or settings.host}:{port or settings.port}"
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": _fresh_metrics_dir(settings)}
    # exec, so gunicorn's master gets the signals (SIGTERM: graceful shutdown) directly.
    # No --preload: every worker builds its own app and connection pool after the fork.
    os.execve(  # noqa: S606
        gunicorn,
        [
            gunicorn,
            "--config=python:service.web_server",
            f"--bind={bind}",
            "service.app:create_app()",
        ],
        env,
    )


def _fresh_metrics_dir(settings: Settings) -> str:
    """The folder gunicorn's workers share metrics through, emptied of a previous run's files
    (a Kubernetes emptyDir outlives a container restart)."""
    if not settings.metrics_dir:
        return tempfile.mkdtemp(prefix="troth-metrics-")
    folder = Path(settings.metrics_dir)
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.db"):
        stale.unlink()
    return str(folder)


@cli.command()
def projector() -> None:
    """Keep the report views following the event log (production: exactly one replica)."""
    settings = _settings()
    components = bootstrap(settings)
    following = FollowingProjector(settings, components.projector, components.metrics)
    # TROTH_METRICS_PORT=0 (the default): no listener; Kubernetes sets one for its probe.
    metrics = (
        MetricsServer(
            components.metrics,
            settings.metrics_token,
            settings.host,
            settings.metrics_port,
            is_alive=following.is_running,
        ).start()
        if settings.metrics_port
        else None
    )
    signal.signal(signal.SIGTERM, _exit_quietly)
    click.echo(f"Troth projector following {settings.database.redacted()}")
    try:
        following.run_until_interrupted()
    finally:
        if metrics is not None:
            metrics.stop()
        components.close()
        click.echo("Troth projector stopped")


@cli.command("scheduler")
def scheduler_command() -> None:
    """Fire reminders, follow-ups and lapses and make commitment occurrences.

    Run one or more replicas: on PostgreSQL one holds the scheduler lock and works, the
    others stand by and take over within seconds when it stops or dies.
    """
    settings = _settings()
    components = bootstrap(settings)
    due_work = build_due_work(settings)
    scheduler = Scheduler(components, due_work)
    metrics = (
        MetricsServer(
            components.metrics, settings.metrics_token, settings.host, settings.metrics_port
        ).start()
        if settings.metrics_port
        else None
    )
    signal.signal(signal.SIGTERM, _exit_quietly)
    click.echo(f"Troth scheduler on {settings.database.redacted()}")
    try:
        scheduler.run()
    except KeyboardInterrupt:
        pass
    finally:
        if metrics is not None:
            metrics.stop()
        scheduler.leadership.release()
        due_work.close()
        components.close()
        click.echo("Troth scheduler stopped")


@cli.group()
def projections() -> None:
    """Inspect and rebuild the report views."""


@projections.command("status")
def projections_status() -> None:
    """Print the views' position, the log's head and the lag between them."""
    components = _components()
    try:
        position, head = components.projector.position(), components.projector.head()
    finally:
        components.close()
    click.echo(f"reports: position {position} of {head} (lag {max(head - position, 0)})")


@projections.command("rebuild")
@click.option(
    "--view",
    "views",
    multiple=True,
    type=click.Choice([REPORTS_VIEW]),
    help="A view to rebuild (default: every view).",
)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def projections_rebuild(views: tuple[str, ...], yes: bool) -> None:
    """Rebuild the views from the whole log, aside, then swap them in at once.

    The service keeps serving the current views meanwhile; a running projector carries on
    from the rebuilt views' position after the swap.
    """
    if not yes:
        click.confirm("Rebuild the report views from the event log?", abort=True)
    components = _components()
    try:
        for view in views or (REPORTS_VIEW,):
            applied = _rebuild(components, view)
            click.echo(f"rebuilt the {view} views from {applied} events")
    finally:
        components.close()


def _rebuild(components: Components, view: str) -> int:
    aside = components.views.aside(REBUILD_SUFFIX)
    try:
        aside.drop_tables()
        aside.create_tables()
        ledger = components.ledger
        projector = Projector(
            ledger.recorder,
            ledger.mapper,
            aside,
            view=view,
            pipelined=pipelines_projector(components.settings),
        )
        head = projector.head()
        with click.progressbar(
            length=head, label=f"{view}: 0 events/s", show_pos=True, show_eta=True, file=sys.stderr
        ) as bar:
            done = 0

            def advance(progress: Progress) -> None:
                nonlocal done
                bar.label = (
                    f"{view}: {progress.applied / max(progress.seconds, 1e-9):,.0f} events/s"
                )
                bar.update(min(progress.position, head) - done)
                done = min(progress.position, head)

            applied = projector.catch_up(advance)
        # Events that arrived during the rebuild: caught up again just before the swap.
        applied += projector.catch_up()
        components.views.swap_in(aside)
    finally:
        aside.close()
    return applied


def _exit_quietly(signum: int, frame: object) -> None:
    # SIGTERM (Kubernetes, systemd) ends the serve loop like Ctrl-C does, so the
    # finally-block closes the listener and the database pool and the exit code is 0.
    raise KeyboardInterrupt


def _welcome_on_empty_store(components: Components, base_url: str) -> None:
    """On a brand-new store, make tenant `local` and show how to post a first event."""
    ledger = components.ledger
    if next(iter(ledger.tenant_names()), None) is not None:
        return
    now = components.clock()
    created = ledger.register_tenant(LOCAL_TENANT, at=now)
    body = json.dumps(
        {
            "type": "promise.made",
            "timestamp": now.isoformat(),
            "data": {
                "promise_id": "first-promise",
                "promiser": "alex",
                "promisee": "sam",
                "title": "Call when I land",
                "due_at": (now + timedelta(days=1)).isoformat(),
            },
        }
    )
    headers = sign(created.webhook_secret, "msg_" + secrets.token_hex(8), now, body.encode())
    header_args = " ".join(f"-H '{k}: {v}'" for k, v in headers.items())
    click.echo(
        f"""
Created tenant '{LOCAL_TENANT}' (these credentials are shown only once):
  API key:        {created.api_key}
  webhook secret: {created.webhook_secret}

Post a first event (signed now, valid for 5 minutes; `troth sign` signs more):
  curl -i {base_url}/v1/tenants/{LOCAL_TENANT}/events -H 'content-type: application/json' \\
    {header_args} \\
    -d '{body}'

Read it back:
  curl -H 'Authorization: Bearer {created.api_key}' \\
    {base_url}/v1/tenants/{LOCAL_TENANT}/promises/first-promise
"""
    )


@cli.command("sign")
@click.option("--secret", envvar="TROTH_WEBHOOK_SECRET", required=True, help="whsec_... secret")
@click.option("--id", "msg_id", default=None, help="webhook-id (default: a new random one)")
@click.argument("body", type=click.File("rb"), default="-")
def sign_command(secret: str, msg_id: str | None, body: Any) -> None:
    """Print Standard Webhooks headers signing BODY (a file, or - for stdin) as of now."""
    headers = sign(secret, msg_id or "msg_" + secrets.token_hex(8), system_clock(), body.read())
    for name, value in headers.items():
        click.echo(f"{name}: {value}")


@cli.group()
def tenants() -> None:
    """Manage tenants and their credentials."""


@tenants.command("create")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print only a JSON object.")
def tenants_create(name: str, as_json: bool) -> None:
    """Register tenant NAME; prints its API key and webhook secret (shown only once)."""
    components = _components()
    try:
        created = components.ledger.register_tenant(name, at=components.clock())
    finally:
        components.close()
    if as_json:
        click.echo(
            json.dumps(
                {
                    "tenant": created.tenant,
                    "api_key": created.api_key,
                    "webhook_secret": created.webhook_secret,
                }
            )
        )
        return
    click.echo(f"tenant:         {created.tenant}")
    scopes = " ".join(sorted(s.value for s in DEFAULT_SCOPES))
    click.echo(f"api key:        {created.api_key}  (scopes: {scopes})")
    click.echo(f"webhook secret: {created.webhook_secret}")
    click.echo("Store these now: Troth keeps only what it needs to verify them.")


@tenants.command("list")
def tenants_list() -> None:
    """List tenants with their API key ids and scopes."""
    components = _components()
    try:
        for name in components.ledger.tenant_names():
            summary = components.ledger.tenant(name)
            keys = ", ".join(
                f"{k.key_id}[{' '.join(sorted(s.value for s in k.scopes))}]"
                + (" revoked" if k.revoked_at else "")
                for k in summary.api_keys
            )
            click.echo(
                f"{summary.name}\tregistered {summary.registered_at.isoformat()}\t"
                f"secrets {summary.active_webhook_secrets}\tkeys {keys}"
            )
    finally:
        components.close()


@tenants.command("rotate-secret")
@click.argument("name")
@click.option("--grace-hours", default=24.0, show_default=True, help="Old secrets stay valid.")
def tenants_rotate_secret(name: str, grace_hours: float) -> None:
    """Add a new webhook secret for NAME; current secrets expire after the grace period."""
    components = _components()
    try:
        secret = components.ledger.rotate_webhook_secret(
            name, at=components.clock(), grace=timedelta(hours=grace_hours)
        )
    finally:
        components.close()
    click.echo(f"new webhook secret: {secret}")


@tenants.command("issue-key")
@click.argument("name")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    type=click.Choice([s.value for s in Scope]),
    default=sorted(s.value for s in DEFAULT_SCOPES),
    show_default=True,
)
def tenants_issue_key(name: str, scopes: tuple[str, ...]) -> None:
    """Issue another API key for NAME (shown only once)."""
    components = _components()
    try:
        issued = components.ledger.issue_api_key(
            name, scopes=frozenset(Scope(s) for s in scopes), at=components.clock()
        )
    finally:
        components.close()
    click.echo(f"key id:  {issued.key_id}")
    click.echo(f"api key: {issued.api_key}")


@tenants.command("revoke-key")
@click.argument("name")
@click.argument("key_id")
def tenants_revoke_key(name: str, key_id: str) -> None:
    """Revoke API key KEY_ID of tenant NAME at once."""
    components = _components()
    try:
        components.ledger.revoke_api_key(name, key_id, at=components.clock())
    finally:
        components.close()
    click.echo(f"revoked {key_id}")


@cli.command("export")
@click.option("--tenant", required=True, help="The tenant whose history to export.")
@click.option(
    "--output", "-o", type=click.File("w"), default="-", help="Where to write (default: stdout)."
)
def export_command(tenant: str, output: Any) -> None:
    """Write TENANT's whole event log as NDJSON webhook envelopes, in log order."""
    from service.tenant_export import export_envelopes

    components = _components()
    try:
        head = components.ledger.head_position()
        with click.progressbar(
            length=head, label=f"exporting {tenant}", show_pos=True, file=sys.stderr
        ) as bar:
            done = 0

            def advance(position: int, _: int) -> None:
                nonlocal done
                bar.update(position - done)
                done = position

            count = 0
            for envelope in export_envelopes(components.ledger, tenant, progress=advance):
                output.write(json.dumps(envelope, separators=(",", ":")) + "\n")
                count += 1
    finally:
        components.close()
    click.echo(f"exported {count} events of {tenant}", err=True)


@cli.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, allow_dash=True))
@click.option("--tenant", required=True, help="The (registered, empty) tenant to import into.")
def import_command(file: str, tenant: str) -> None:
    """Record the envelopes of an export FILE (or - for stdin) into TENANT, in order.

    Safe to repeat: lines already imported are skipped.
    """
    from service.tenant_import import ImportLineError, import_envelopes

    components = _components()
    try:
        size = os.path.getsize(file) if file != "-" else 0
        with (
            click.open_file(file, "rb") as stream,
            click.progressbar(
                length=size, label=f"importing into {tenant}", file=sys.stderr
            ) as bar,
        ):

            def lines() -> Iterator[bytes]:
                # Streamed, so an export of any size imports in constant memory.
                for line in stream:
                    bar.update(len(line))
                    yield line

            summary = import_envelopes(components.ledger, tenant, lines(), clock=components.clock)
    except ImportLineError as error:
        raise click.ClickException(str(error)) from None
    finally:
        components.close()
    click.echo(
        f"imported {summary.recorded} events into {tenant}"
        f" ({summary.already_recorded} were already there)",
        err=True,
    )


def main() -> None:
    """Entry point of the `troth` console script."""
    import sqlite3

    import psycopg
    from eventsourcing.persistence import PersistenceError

    from domain.errors import TrothError

    try:
        cli(prog_name="troth")
    except TrothError as error:
        click.echo(f"troth: {error}", err=True)
        sys.exit(1)
    except (PersistenceError, sqlite3.Error, psycopg.Error) as error:
        where = Settings.from_env(os.environ).database.redacted()
        click.echo(
            f"troth: the database at {where} cannot be used ({type(error).__name__}: {error}). "
            "Is it reachable, and has `troth migrate` created its tables?",
            err=True,
        )
        sys.exit(1)
