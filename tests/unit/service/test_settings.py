"""Settings: one TROTH_DATABASE_URL chooses the store; nothing else reads the environment."""

from __future__ import annotations

import pytest

from service.settings import Database, Settings, SettingsError


def test_the_default_is_an_sqlite_file_under_var() -> None:
    settings = Settings.from_env({})
    assert settings.database == Database(kind="sqlite", path="./var/troth.db")
    env = settings.eventsourcing_env("ledger")
    assert env["LEDGER_PERSISTENCE_MODULE"] == "eventsourcing.sqlite"
    assert env["LEDGER_SQLITE_DBNAME"] == "./var/troth.db"
    assert env["LEDGER_CREATE_TABLE"] == "n"


def test_an_absolute_sqlite_path_keeps_its_leading_slash() -> None:
    assert Database.from_url("sqlite:////srv/troth/t.db").path == "/srv/troth/t.db"


def test_a_postgres_url_maps_to_the_librarys_settings_including_schema() -> None:
    settings = Settings.from_env(
        {"TROTH_DATABASE_URL": "postgresql://app:p%40ss@db.internal:6543/troth?schema=tenant_a"}
    )
    env = settings.eventsourcing_env("ledger", create_tables=True)
    assert env["LEDGER_PERSISTENCE_MODULE"] == "eventsourcing.postgres"
    assert env["LEDGER_POSTGRES_HOST"] == "db.internal"
    assert env["LEDGER_POSTGRES_PORT"] == "6543"
    assert env["LEDGER_POSTGRES_USER"] == "app"
    assert env["LEDGER_POSTGRES_PASSWORD"] == "p@ss"
    assert env["LEDGER_POSTGRES_DBNAME"] == "troth"
    assert env["LEDGER_POSTGRES_SCHEMA"] == "tenant_a"
    assert env["LEDGER_CREATE_TABLE"] == "y"


def test_the_redacted_url_never_shows_the_password() -> None:
    db = Database.from_url("postgresql://app:hunter2@db:5432/troth")
    assert "hunter2" not in db.redacted()


def test_an_encryption_key_turns_on_cipher_and_compression() -> None:
    env = Settings(encryption_key="a2V5").eventsourcing_env("ledger")
    assert env["LEDGER_CIPHER_TOPIC"] == "eventsourcing.cryptography:AESCipher"
    assert env["LEDGER_CIPHER_KEY"] == "a2V5"
    assert env["LEDGER_COMPRESSOR_TOPIC"] == "eventsourcing.compressor:ZlibCompressor"


def test_stray_library_variables_in_the_process_environment_cannot_redirect_the_store(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from domain.application import Ledger

    monkeypatch.setenv("PERSISTENCE_MODULE", "eventsourcing.sqlite")
    monkeypatch.setenv("CIPHER_KEY", "bogus")
    ledger = Ledger(env=Settings(database_url="memory:").eventsourcing_env(Ledger.name))
    assert type(ledger.recorder).__name__ == "POPOLedgerRecorder"
    ledger.close()


@pytest.mark.parametrize(
    "url",
    ["mysql://x/y", "sqlite://", "postgresql:///nohost", "postgresql://h:notaport/db", "nonsense"],
)
def test_unusable_database_urls_are_refused_with_a_clear_message(url: str) -> None:
    with pytest.raises(SettingsError, match="TROTH_DATABASE_URL"):
        Database.from_url(url)


def test_a_non_numeric_port_is_refused() -> None:
    with pytest.raises(SettingsError, match="TROTH_PORT"):
        Settings.from_env({"TROTH_PORT": "eighty"})


def test_the_projector_batch_size_is_read_and_must_be_positive() -> None:
    assert Settings.from_env({"TROTH_PROJECTOR_BATCH_SIZE": "500"}).projector_batch_size == 500
    with pytest.raises(SettingsError, match="TROTH_PROJECTOR_BATCH_SIZE"):
        Settings.from_env({"TROTH_PROJECTOR_BATCH_SIZE": "0"})
