"""Settings come from the environment under the names operators rely on; production refuses
placeholder secrets."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from pydantic import ValidationError

from halobuzz.config import DEV_SECRET, Settings
from halobuzz.core.security import TokenError

FLAT_NAMES = (
    "DATABASE_URL",
    "REDIS_URL",
    "BROKER_URL",
    "HALOBUZZ_ENV",
    "HALOBUZZ_HOST",
    "HALOBUZZ_PORT",
    "HALOBUZZ_DATA_DIR",
    "RATE_LIMIT_ENABLED",
    "AI_ENGINE_SECRET",
    "AUTH_JWT_SECRET",
    "S3_ENDPOINT",
    "S3_BUCKET",
    "S3_ACCESS_KEY",
    "S3_SECRET_KEY",
    "HTTP_CORS_ORIGINS",
)
STRONG = "k" * 40


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """No operator variables set and no .env file in the working directory."""
    for name in FLAT_NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return monkeypatch


def test_defaults(clean_env):
    s = Settings()
    assert s.env == "development"
    assert (s.host, s.port) == ("127.0.0.1", 5010)
    assert s.data_dir == Path("./var")
    assert s.database_url is None and s.redis_url is None and s.broker_url is None
    assert s.resolved_database_url == f"sqlite+aiosqlite:///{(Path('./var') / 'halobuzz.db').resolve()}"
    assert s.is_sqlite
    assert s.rate_limit.enabled is True
    assert s.s3.endpoint is None


def test_flat_environment_names_are_read(clean_env, tmp_path):
    env = {
        "DATABASE_URL": "postgresql+asyncpg://hb:pw@db.internal:5432/halobuzz",
        "REDIS_URL": "redis://cache.internal:6379/2",
        "BROKER_URL": "nats://broker.internal:4222",
        "HALOBUZZ_ENV": "production",
        "HALOBUZZ_HOST": "10.1.2.3",
        "HALOBUZZ_PORT": "8080",
        "HALOBUZZ_DATA_DIR": str(tmp_path / "data"),
        "RATE_LIMIT_ENABLED": "false",
        "AI_ENGINE_SECRET": "a" * 32,
        "AUTH_JWT_SECRET": "j" * 48,
        "S3_ENDPOINT": "http://s3.internal:8333",
        "S3_BUCKET": "media",
        "S3_ACCESS_KEY": "access-key-id",
        "S3_SECRET_KEY": "secret-access-key",
        "HTTP_CORS_ORIGINS": "https://halobuzz.example, https://www.halobuzz.example",
    }
    for name, value in env.items():
        clean_env.setenv(name, value)
    s = Settings()
    assert s.database_url == env["DATABASE_URL"] and s.resolved_database_url == env["DATABASE_URL"]
    assert not s.is_sqlite
    assert s.redis_url == env["REDIS_URL"]
    assert s.broker_url == env["BROKER_URL"]
    assert s.env == "production"
    assert (s.host, s.port) == ("10.1.2.3", 8080)
    assert s.data_dir == tmp_path / "data"
    assert s.rate_limit.enabled is False
    assert s.ai_engine_secret.get_secret_value() == "a" * 32
    assert s.auth.jwt_secret.get_secret_value() == "j" * 48
    assert s.s3.endpoint == env["S3_ENDPOINT"] and s.s3.bucket == "media"
    assert s.s3.access_key == "access-key-id"
    assert s.s3.secret_key is not None and s.s3.secret_key.get_secret_value() == "secret-access-key"
    assert s.http.cors_origins == ["https://halobuzz.example", "https://www.halobuzz.example"]
    # Secrets never show in a settings dump or repr.
    assert "secret-access-key" not in repr(s) and "a" * 32 not in str(s.model_dump())


def test_cors_origins_also_accept_a_json_list(clean_env):
    clean_env.setenv("HTTP_CORS_ORIGINS", '["https://a.example"]')
    assert Settings().http.cors_origins == ["https://a.example"]


def test_bad_values_name_the_variable(clean_env):
    clean_env.setenv("HALOBUZZ_PORT", "fifty")
    with pytest.raises(ValidationError, match="HALOBUZZ_PORT"):
        Settings()
    clean_env.setenv("HALOBUZZ_PORT", "5010")
    clean_env.setenv("HALOBUZZ_ENV", "staging")
    with pytest.raises(ValidationError, match="HALOBUZZ_ENV"):
        Settings()


def test_production_refuses_default_secrets(clean_env):
    clean_env.setenv("HALOBUZZ_ENV", "production")
    with pytest.raises(ValidationError) as caught:
        Settings()
    message = str(caught.value)
    assert "AUTH_JWT_SECRET" in message and "AI_ENGINE_SECRET" in message
    assert "HALOBUZZ_ENV=production" in message and "32 characters" in message

    # Only the variables still weak are named.
    clean_env.setenv("AUTH_JWT_SECRET", STRONG)
    with pytest.raises(ValidationError) as caught:
        Settings()
    assert "AI_ENGINE_SECRET" in str(caught.value) and "AUTH_JWT_SECRET" not in str(caught.value)

    # Short secrets are as bad as the placeholder.
    clean_env.setenv("AI_ENGINE_SECRET", "short-secret")
    with pytest.raises(ValidationError, match="AI_ENGINE_SECRET"):
        Settings()
    clean_env.setenv("AI_ENGINE_SECRET", DEV_SECRET)
    with pytest.raises(ValidationError, match="AI_ENGINE_SECRET"):
        Settings()

    clean_env.setenv("AI_ENGINE_SECRET", STRONG)
    s = Settings()
    assert s.env == "production"


def test_development_accepts_the_placeholders(clean_env):
    clean_env.setenv("HALOBUZZ_ENV", "development")
    s = Settings()
    assert s.auth.jwt_secret.get_secret_value() == DEV_SECRET


def test_dotenv_file_is_read(clean_env, tmp_path):
    (tmp_path / ".env").write_text("HALOBUZZ_PORT=6001\nRATE_LIMIT_PER_IP_PER_MINUTE=42\nS3_BUCKET=from-dotenv\n")
    s = Settings()
    assert s.port == 6001
    assert s.rate_limit.per_ip_per_minute == 42
    assert s.s3.bucket == "from-dotenv"
    # The environment wins over the file.
    clean_env.setenv("HALOBUZZ_PORT", "6002")
    assert Settings().port == 6002


def test_development_installs_get_their_own_signing_key(tmp_path):
    """Without AUTH_JWT_SECRET, each data directory gets a random key that survives restarts."""
    from halobuzz.core.runtime import Runtime

    first = Runtime.build(Settings(env="development", data_dir=tmp_path / "a"))
    again = Runtime.build(Settings(env="development", data_dir=tmp_path / "a"))
    other = Runtime.build(Settings(env="development", data_dir=tmp_path / "b"))
    key_file = tmp_path / "a" / "secrets" / "jwt.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert DEV_SECRET not in key_file.read_text() and len(key_file.read_text()) >= 48
    token, _ = first.jwt.issue_access(user_id=uuid.uuid4(), session_id=uuid.uuid4(), roles=["user"])
    assert again.jwt.decode_access(token).roles == ("user",)
    with pytest.raises(TokenError):
        other.jwt.decode_access(token)
