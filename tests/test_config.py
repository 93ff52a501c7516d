"""Settings refuse an unsafe production start."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from app.config import DEFAULT_SQLITE_URL, Settings


def test_production_refuses_to_start_without_database_url_and_credentials() -> None:
    with pytest.raises(ValidationError) as err:
        Settings(environment="production")
    text = str(err.value)
    assert "TRIAGE_DATABASE_URL" in text
    assert "credentials" in text


def test_production_starts_with_a_database_and_api_keys_or_a_jwt_issuer() -> None:
    url = "postgresql+psycopg://triage@db/triage"
    assert Settings(environment="production", database_url=url, api_keys_configured=True)
    jwt = Settings(
        environment="production",
        database_url=url,
        jwt_issuer="https://idp.example",
        jwt_audience="triage",
        jwt_jwks_json='{"keys": []}',
    )
    assert jwt.json_logs is True
    assert jwt.docs_enabled is False


def test_development_defaults_to_the_embedded_sqlite_file() -> None:
    settings = Settings(environment="development")
    assert settings.effective_database_url == DEFAULT_SQLITE_URL
    assert settings.json_logs is False


def test_environment_variables_use_the_triage_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIAGE_MAX_BODY_BYTES", "2048")
    monkeypatch.setenv("TRIAGE_AREA_OVERRIDES", '{"E09000018": {"dash-ric": "dash-ric@1"}}')
    settings = Settings()
    assert settings.max_body_bytes == 2048
    assert settings.area_overrides == {"E09000018": {"dash-ric": "dash-ric@1"}}


@pytest.mark.parametrize(
    "url",
    [
        "triage.example.police.uk",
        "ftp://triage.example.police.uk",
        "https://",
        "https://triage.example.police.uk/?x=1",
        "https://triage.example.police.uk/#top",
        "https://user:pw@triage.example.police.uk",
        "https://triage.example.police.uk/ path",
    ],
)
def test_the_public_base_url_must_be_an_absolute_http_url_alone(url: str) -> None:
    with pytest.raises(ValidationError) as err:
        Settings(public_base_url=url)
    assert "TRIAGE_PUBLIC_BASE_URL" in str(err.value)


def test_the_public_base_url_loses_its_trailing_slash() -> None:
    assert Settings(public_base_url="https://triage.example/").public_base_url == (
        "https://triage.example"
    )
    assert Settings(public_base_url="http://localhost:8000/triage/").public_base_url == (
        "http://localhost:8000/triage"
    )
    assert Settings().public_base_url is None


def test_smtp_needs_a_sender_and_a_whole_login() -> None:
    with pytest.raises(ValidationError, match="TRIAGE_SMTP_FROM"):
        Settings(smtp_host="smtp.example")
    with pytest.raises(ValidationError):
        Settings(smtp_host="smtp.example", smtp_from="not an address")
    with pytest.raises(ValidationError, match="TRIAGE_SMTP_PASSWORD"):
        Settings(smtp_host="smtp.example", smtp_from="triage@force.example", smtp_username="u")
    ready = Settings(smtp_host="smtp.example", smtp_from="triage@force.example")
    assert ready.email_enabled
    assert (ready.smtp_port, ready.smtp_starttls) == (587, True)
    assert not Settings().email_enabled
