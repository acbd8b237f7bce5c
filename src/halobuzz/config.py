"""One typed settings object for the whole platform, read from the environment and `.env`.

Each domain has its own section with its own environment prefix (``AUTH_``, ``MAIL_``, ``S3_`` …);
the names operators rely on (DESIGN.md) stay flat: ``DATABASE_URL``, ``REDIS_URL``, ``HALOBUZZ_ENV``…
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEV_SECRET = "dev-insecure-change-me"  # noqa: S105 - the value production refuses


class _Section(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")


class AuthSettings(_Section):
    model_config = SettingsConfigDict(env_prefix="AUTH_", env_file=".env", extra="ignore")

    jwt_secret: SecretStr = SecretStr(DEV_SECRET)
    jwt_algorithm: Literal["HS256", "HS384", "HS512"] = "HS256"
    jwt_issuer: str = "halobuzz"
    jwt_audience: str = "halobuzz-api"
    access_token_ttl_seconds: int = 15 * 60
    refresh_token_ttl_days: int = 30
    email_token_ttl_hours: int = 24
    reset_token_ttl_minutes: int = 60
    # Argon2id parameters (OWASP minimum m=19 MiB, t=2, p=1).
    argon2_memory_kib: int = 19 * 1024
    argon2_time_cost: int = 2
    argon2_parallelism: int = 1
    password_min_length: int = 10
    creator_requires_approval: bool = False
    max_failed_logins_per_hour: int = 100
    # Failures after which each further attempt waits (seconds double, capped).
    login_delay_after_failures: int = 5
    login_delay_cap_seconds: float = 30.0
    max_failed_logins_per_ip_per_hour: int = 500
    totp_issuer: str = "HaloBuzz"
    public_url: str = "http://127.0.0.1:5010"


class MailSettings(_Section):
    model_config = SettingsConfigDict(env_prefix="MAIL_", env_file=".env", extra="ignore")

    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    smtp_timeout_seconds: float = 10.0
    from_address: str = "HaloBuzz <no-reply@halobuzz.local>"


class RateLimitSettings(_Section):
    model_config = SettingsConfigDict(env_prefix="RATE_LIMIT_", env_file=".env", extra="ignore")

    enabled: bool = True
    # Seed 001: 100 requests per minute per IP.
    per_ip_per_minute: int = Field(100, ge=1)
    per_user_per_minute: int = Field(300, ge=1)
    auth_per_ip_per_minute: int = Field(20, ge=1)
    # Route-specific overrides: "METHOD /path/template=N" per minute, comma separated.
    routes: str = ""


class S3Settings(_Section):
    model_config = SettingsConfigDict(env_prefix="S3_", env_file=".env", extra="ignore")

    endpoint: str | None = None
    bucket: str = "halobuzz"
    access_key: str | None = None
    secret_key: SecretStr | None = None
    region: str = "us-east-1"
    public_url: str | None = None


class HttpSettings(_Section):
    model_config = SettingsConfigDict(env_prefix="HTTP_", env_file=".env", extra="ignore")

    # HTTP_CORS_ORIGINS: comma separated (or a JSON list).
    cors_origins: Annotated[list[str], NoDecode] = ["http://127.0.0.1:5010", "http://localhost:5010"]
    max_body_bytes: int = 1024 * 1024
    max_upload_bytes: int = 8 * 1024 * 1024
    trust_forwarded_for: bool = False
    cache_ttl_seconds: float = 2.0
    access_log: bool = True
    # Pure-ASGI handlers for the hottest reads (PostgreSQL); off sends them through FastAPI.
    fast_paths: bool = True
    # How long /readyz waits for the database and Redis before it reports them failing.
    ready_timeout_seconds: float = Field(2.0, gt=0)

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [origin.strip() for origin in text.split(",") if origin.strip()]
        return value


class MediaLimits(_Section):
    model_config = SettingsConfigDict(env_prefix="AVATAR_", env_file=".env", extra="ignore")

    max_bytes: int = 5 * 1024 * 1024
    max_pixels: int = 4096
    size: int = 512


class RealtimeSettings(_Section):
    """The Socket.IO gateway: keepalive, per-connection bounds, recovery window, presence (docs/realtime.md)."""

    model_config = SettingsConfigDict(env_prefix="REALTIME_", env_file=".env", extra="ignore")

    ping_interval_seconds: float = 25.0
    ping_timeout_seconds: float = 20.0
    max_rooms_per_connection: int = 20
    # New Socket.IO connections per client IP per minute (when RATE_LIMIT_ENABLED).
    connects_per_ip_per_minute: int = 60
    # Frames waiting for one connection before it is dropped as too slow (backpressure).
    max_queue_per_connection: int = 1000
    # Bytes waiting in one connection's transport before it is dropped (the direct write path).
    max_buffer_bytes_per_connection: int = 1024 * 1024
    # SO_SNDBUF for websocket connections (None: the OS default, which can grow to megabytes).
    socket_send_buffer_bytes: int | None = None
    # Recovery on reconnect: at most this many missed messages, none older than this.
    recovery_max_messages: int = 300
    recovery_max_seconds: int = 600
    join_history: int = 50
    # viewer_count_changed / stream_liked at most once per interval per stream.
    count_interval_seconds: float = 1.0
    presence_heartbeat_seconds: float = 10.0
    presence_ttl_seconds: float = 30.0
    # An instance keeps a room's subscription this long after its last local member left.
    unsubscribe_grace_seconds: float = 5.0


class ChatSettings(_Section):
    """Chat limits (docs/realtime.md)."""

    model_config = SettingsConfigDict(env_prefix="CHAT_", env_file=".env", extra="ignore")

    max_message_length: int = 500
    rate_limit_messages: int = 20
    rate_limit_privileged_messages: int = 100
    rate_limit_window_seconds: int = 30
    duplicate_window_seconds: int = 30
    flush_interval_ms: int = 50
    flush_max_rows: int = 500
    likes_per_second: float = 5.0
    max_timeout_seconds: int = 14 * 24 * 3600


class EconomySettings(_Section):
    """Coins and gifts (docs/ledger.md)."""

    model_config = SettingsConfigDict(env_prefix="ECONOMY_", env_file=".env", extra="ignore")

    # The creator's share of a gift's coins (floored to whole coins); the platform keeps the rest.
    revenue_share: float = Field(0.7, ge=0.0, le=1.0)
    max_gift_quantity: int = Field(1000, ge=1)
    # Daily bonus (docs/economy.md): coins anyone may claim once per local day, before the OG
    # tier's own bonus and the festival multiplier.
    daily_bonus_coins: int = Field(10, ge=0)
    # One OG subscription term.
    og_period_days: int = Field(30, ge=1, le=366)
    # A stream's throne goes to its top gifter over this many hours.
    throne_window_hours: float = Field(24.0, gt=0)


class PaymentsSettings(_Section):
    """Coin purchases: providers, their endpoints and secrets (docs/ledger.md)."""

    model_config = SettingsConfigDict(env_prefix="PAYMENTS_", env_file=".env", extra="ignore")

    # The sandbox checkout; None means enabled everywhere except production.
    sandbox_enabled: bool | None = None
    # Where browsers reach this server (return URLs handed to providers).
    public_base_url: str = "http://127.0.0.1:5010"
    http_timeout_seconds: float = 10.0
    http_retries: int = Field(2, ge=0, le=5)
    stripe_secret_key: SecretStr | None = None
    stripe_webhook_secret: SecretStr | None = None
    stripe_api_base: str = "https://api.stripe.com"
    stripe_tolerance_seconds: int = 300
    esewa_secret_key: SecretStr | None = None
    esewa_product_code: str = "EPAYTEST"
    esewa_form_url: str = "https://rc-epay.esewa.com.np/api/epay/main/v2/form"
    esewa_status_base: str = "https://rc.esewa.com.np"
    khalti_secret_key: SecretStr | None = None
    khalti_api_base: str = "https://dev.khalti.com"
    # Pending intents older than this are checked with their provider by the reconciliation job,
    # and closed as canceled when the provider has nothing after ``expire_after_minutes``.
    reconcile_after_minutes: int = Field(15, ge=1)
    expire_after_minutes: int = Field(24 * 60, ge=1)


class PayoutsSettings(_Section):
    """Creator payouts: coin to fiat rates, the minimum withdrawal (docs/ledger.md)."""

    model_config = SettingsConfigDict(env_prefix="PAYOUTS_", env_file=".env", extra="ignore")

    # Fiat minor units paid per 1000 coins, per payout currency (JSON in the environment).
    rates: dict[str, int] = Field(default_factory=lambda: {"NPR": 1000, "INR": 600, "USD": 8})
    min_coins: int = Field(1000, ge=1)
    methods: list[str] = Field(default_factory=lambda: ["esewa", "khalti", "bank"])


class JobsSettings(_Section):
    """Events, background jobs and the scheduler (docs/events.md)."""

    model_config = SettingsConfigDict(env_prefix="JOBS_", env_file=".env", extra="ignore")

    # The zone the daily schedule runs in (seed 001: Australia/Sydney).
    timezone: str = "Australia/Sydney"
    # Run the outbox relay, consumers and the scheduler inside `halobuzz serve`; unset means yes
    # unless BROKER_URL is set (then `halobuzz worker` / `halobuzz scheduler` run them) or in tests.
    in_process: bool | None = None
    relay_poll_seconds: float = Field(1.0, gt=0)
    max_attempts: int = Field(8, ge=1)
    backoff_base_seconds: float = Field(1.0, gt=0)
    # Dispatched outbox rows, processed-event marks and used tokens are kept this long.
    retention_days: int = Field(7, ge=1)
    notification_retention_days: int = Field(90, ge=1)
    # Outbound webhooks: per-attempt HTTP timeout (attempts and backoff as above).
    webhook_timeout_seconds: float = Field(10.0, gt=0)
    # With BROKER_URL: the Redis stream key prefix / JetStream stream name, how long a message a
    # worker received stays unacknowledged before another worker takes it over, messages one
    # worker handles at once.
    broker_stream: str = Field("halobuzz", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    broker_claim_idle_seconds: float = Field(30.0, gt=0)
    worker_concurrency: int = Field(4, ge=1)


class FraudSettings(_Section):
    """Velocity caps on purchases and gifts; exceeding one is a 429 and a flag (docs/ledger.md)."""

    model_config = SettingsConfigDict(env_prefix="FRAUD_", env_file=".env", extra="ignore")

    # Payment intents a user may start, and their total in minor units (any currency), per hour/day.
    purchases_per_hour: int = Field(20, ge=1)
    purchases_per_day: int = Field(100, ge=1)
    purchase_amount_per_hour: int = Field(5_000_000, ge=1)
    purchase_amount_per_day: int = Field(20_000_000, ge=1)
    # Intents in an hour from which the user is flagged for review (without refusing).
    flag_intents_per_hour: int = Field(10, ge=1)
    gifts_per_minute: int = Field(120, ge=1)
    gift_coins_per_minute: int = Field(1_000_000, ge=1)


class ModerationSettings(_Section):
    """Text moderation of chat, profiles and stream titles (docs/moderation.md)."""

    model_config = SettingsConfigDict(env_prefix="MODERATION_", env_file=".env", extra="ignore")

    # Screen chat messages through the real-time moderation hook.
    chat_enabled: bool = True
    # Region rule set (which labels apply).
    region: str = "global"
    # Confidence at or above which content is held for review / blocked.
    hold_threshold: float = Field(0.6, ge=0.0, le=1.0)
    block_threshold: float = Field(0.9, ge=0.0, le=1.0)
    # A separate AI engine (`halobuzz ai-engine`); unset = in-process. Requests are signed with AI_ENGINE_SECRET.
    engine_url: str | None = None
    engine_port: int = 5020
    engine_timeout_seconds: float = Field(0.5, gt=0)
    engine_replay_window_seconds: int = Field(300, ge=10)
    # When the engine cannot be reached: let content through ("allow") or hold it for review ("hold").
    engine_failure_policy: Literal["allow", "hold"] = "allow"
    # Screen profiles (display name, bio) and stream titles/descriptions when they are written.
    screen_profiles: bool = True
    # Region rule sets beyond the built-in ones (JSON: {"np": {"skip": ["spam"], "hold": 0.5, "terms": {...}}}).
    region_rules: dict[str, dict[str, Any]] = Field(default_factory=dict)
    # Images: perceptual-hash blocklist match when the Hamming distance is at most this (of 64 bits).
    image_hash_distance: int = Field(8, ge=0, le=32)
    # An image classifier ("package.module:factory"), none by default; scores at or above the threshold refuse.
    image_classifier: str | None = None
    image_classifier_threshold: float = Field(0.8, ge=0.0, le=1.0)
    # Chat privileges by reputation (0-100): below ``low`` any labelled message (flooding, mild insults) is
    # held, below ``restricted`` every message is held for review.
    low_reputation: int = Field(50, ge=0, le=100)
    restricted_reputation: int = Field(20, ge=0, le=100)
    # Engagement analysis ("boredom detection") of live streams, sampled every minute by the scheduler.
    engagement_enabled: bool = True
    engagement_window_minutes: int = Field(10, ge=3, le=120)
    engagement_viewer_drop: float = Field(0.3, gt=0.0, lt=1.0)
    engagement_chat_drop: float = Field(0.5, gt=0.0, lt=1.0)
    engagement_cooldown_minutes: int = Field(10, ge=1)


class KycSettings(_Section):
    """Identity documents for payouts: encryption keys and upload limits (docs/moderation.md)."""

    model_config = SettingsConfigDict(env_prefix="KYC_", env_file=".env", extra="ignore")

    # "id:base64-32-bytes,id2:…" (AES-256-GCM keys); new uploads use ``active_key_id`` (default: the last one).
    # Unset outside production: a key kept under the data directory; unset in production: uploads are refused.
    encryption_keys: SecretStr | None = None
    active_key_id: str | None = None
    max_document_bytes: int = Field(10 * 1024 * 1024, ge=1024)
    max_documents: int = Field(6, ge=1, le=20)
    # S3 bucket for the encrypted files (default: S3_BUCKET); locally they live in <data_dir>/private.
    s3_bucket: str | None = None


class MediaSettings(_Section):
    """Media plane: RTMP ingest, ffmpeg transcoding, HLS playback tokens (docs/media.md)."""

    model_config = SettingsConfigDict(env_prefix="MEDIA_", env_file=".env", extra="ignore")

    enabled: bool | None = None  # None: run the supervisor in-process only when ffmpeg is found
    ffmpeg: str = "ffmpeg"
    nginx: str = "nginx"
    rtmp_port: int = Field(1935, ge=1, le=65535)
    hls_dir: Path | None = None  # default: <data_dir>/media/hls
    segment_seconds: int = Field(6, ge=1, le=30)
    low_latency: bool = False  # 2-second segments
    ladder: str = "480p:1000k,360p:600k"  # lower video renditions; the source is passed through
    audio_ladder: str = "64k,128k,256k"
    x264_preset: str = "veryfast"
    thumbnail_seconds: int = Field(10, ge=1)
    grace_seconds: int = Field(10, ge=0)
    playback_secret: SecretStr | None = None  # default: derived from AUTH_JWT_SECRET
    playback_ttl_seconds: int = Field(3600, ge=10)
    callback_secret: SecretStr | None = None
    callback_allow: str = "127.0.0.1,::1"
    api_base_url: str = "http://127.0.0.1:5010"
    aac_coder: Literal["fast", "twoloop"] = "fast"  # ffmpeg's AAC search; "fast" costs a fraction of the CPU
    # `halobuzz media`: "nginx" (nginx-rtmp), "ffmpeg" (ffmpeg listeners behind a key-checking
    # front), or "auto" (nginx when installed with the RTMP module, else ffmpeg).
    ingest: Literal["auto", "nginx", "ffmpeg"] = "auto"
    ingest_host: str = "127.0.0.1"  # where transcoders reach the ingest (nginx or the FLV hub)
    ingest_bind: str = "0.0.0.0"  # noqa: S104  (the ffmpeg ingest's RTMP and SRT ports face encoders)
    hub_port: int = Field(1936, ge=1, le=65535)  # the ingest's HTTP-FLV hub (ffmpeg ingest and SRT)
    srt_port: int = Field(9710, ge=0, le=65535)  # SRT listener; 0 disables SRT ingest
    srt_latency_ms: int = Field(200, ge=20, le=8000)
    ingest_max_sessions: int = Field(64, ge=1)
    health_interval_seconds: float = Field(5.0, gt=0)  # stream_health to the owner's sockets
    max_restarts: int = Field(10, ge=0)  # consecutive transcoder crashes before giving up
    vod_url_ttl_seconds: int = Field(6 * 3600, ge=60)  # presigned segment URLs in VOD playlists
    # The ingest re-checks every publisher this often (on_update); a stream ended through the API
    # (or a rotated key) has its encoder disconnected at the next check.
    update_seconds: int = Field(5, ge=1, le=300)
    # Radio (seed 004): uploaded tracks, the auto-DJ and listener counts.
    radio_playout: bool = True  # this media plane runs the radio channels' playout
    radio_track_max_seconds: int = Field(1800, ge=1)
    radio_track_max_bytes: int = Field(64 * 1024 * 1024, ge=1024)
    radio_list_size: int = Field(8, ge=3)  # segments in a radio channel's live playlist
    radio_poll_seconds: float = Field(2.0, gt=0)
    listener_window_seconds: int = Field(20, ge=5)


class RtcSettings(_Section):
    """Interactive guests: Agora RTC and LiveKit tokens for co-host rooms (docs/media.md)."""

    model_config = SettingsConfigDict(env_prefix="RTC_", env_file=".env", extra="ignore")

    agora_app_id: str | None = None
    agora_app_certificate: SecretStr | None = None
    livekit_url: str | None = None  # wss://… given to clients with the token
    livekit_api_key: str | None = None
    livekit_api_secret: SecretStr | None = None
    token_ttl_seconds: int = Field(3600, ge=60, le=86400)


class NotificationsSettings(_Section):
    """Stored and real-time notifications, preferences, fan-out and delivery channels (docs/notifications.md)."""

    model_config = SettingsConfigDict(env_prefix="NOTIFICATIONS_", env_file=".env", extra="ignore")

    # Followers written per fan-out chunk of a go-live (one chunk per internal outbox event).
    fanout_chunk_size: int = Field(5000, ge=1, le=5000)
    # Socket pushes per pipelined publish.
    push_batch_size: int = Field(1000, ge=1)
    # Channel deliveries: attempts, backoff (doubling, Retry-After honoured), per-request timeout.
    max_attempts: int = Field(6, ge=1)
    backoff_base_seconds: float = Field(30.0, gt=0)
    backoff_max_seconds: float = Field(3600.0, gt=0)
    http_timeout_seconds: float = Field(10.0, gt=0)
    # Deliveries sent at once per channel; each channel has its own queue, so a slow one stalls no other.
    concurrency_per_channel: int = Field(10, ge=1, le=200)
    dispatch_poll_seconds: float = Field(1.0, gt=0)
    # The local hour (user's timezone) after which the daily email digest goes out.
    digest_hour: int = Field(8, ge=0, le=23)
    # Email only to verified addresses.
    email_require_verified: bool = True
    # Web Push (VAPID): an EC P-256 private key (PEM, or base64url of the raw 32 bytes); outside
    # production an unset key is generated and kept under <data_dir>/secrets/vapid.pem.
    vapid_private_key: SecretStr | None = None
    vapid_subject: str = "mailto:admin@halobuzz.local"
    web_push_ttl_seconds: int = Field(24 * 3600, ge=0)
    # SMS through a Twilio-compatible REST API.
    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None
    twilio_from: str | None = None
    twilio_api_base: str = "https://api.twilio.com"
    # Mobile push through FCM HTTP v1: the service-account JSON (inline) or a path to it.
    fcm_project_id: str | None = None
    fcm_service_account_json: SecretStr | None = None
    fcm_service_account_file: Path | None = None
    fcm_api_base: str = "https://fcm.googleapis.com"


class Settings(BaseSettings):
    """Everything configurable, one object; see README's configuration table."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    env: Literal["development", "production", "test"] = Field(
        "development", validation_alias=AliasChoices("HALOBUZZ_ENV", "env")
    )
    host: str = Field("127.0.0.1", validation_alias=AliasChoices("HALOBUZZ_HOST", "host"))
    port: int = Field(5010, validation_alias=AliasChoices("HALOBUZZ_PORT", "port"))
    data_dir: Path = Field(Path("./var"), validation_alias=AliasChoices("HALOBUZZ_DATA_DIR", "data_dir"))
    log_level: str = Field("INFO", validation_alias=AliasChoices("HALOBUZZ_LOG_LEVEL", "log_level"))
    log_format: Literal["json", "console"] = Field(
        "json", validation_alias=AliasChoices("HALOBUZZ_LOG_FORMAT", "log_format")
    )
    database_url: str | None = Field(None, validation_alias=AliasChoices("DATABASE_URL", "database_url"))
    database_pool_size: int = Field(10, validation_alias=AliasChoices("DATABASE_POOL_SIZE", "database_pool_size"))
    redis_url: str | None = Field(None, validation_alias=AliasChoices("REDIS_URL", "redis_url"))
    redis_prefix: str = Field("hb:", validation_alias=AliasChoices("REDIS_PREFIX", "redis_prefix"))
    broker_url: str | None = Field(None, validation_alias=AliasChoices("BROKER_URL", "broker_url"))
    ai_engine_secret: SecretStr = Field(
        SecretStr(DEV_SECRET), validation_alias=AliasChoices("AI_ENGINE_SECRET", "ai_engine_secret")
    )

    auth: AuthSettings = Field(default_factory=AuthSettings)
    mail: MailSettings = Field(default_factory=MailSettings)
    rate_limit: RateLimitSettings = Field(default_factory=RateLimitSettings)
    s3: S3Settings = Field(default_factory=S3Settings)
    http: HttpSettings = Field(default_factory=HttpSettings)
    avatar: MediaLimits = Field(default_factory=MediaLimits)
    realtime: RealtimeSettings = Field(default_factory=RealtimeSettings)
    chat: ChatSettings = Field(default_factory=ChatSettings)
    moderation: ModerationSettings = Field(default_factory=ModerationSettings)
    economy: EconomySettings = Field(default_factory=EconomySettings)
    payments: PaymentsSettings = Field(default_factory=PaymentsSettings)
    jobs: JobsSettings = Field(default_factory=JobsSettings)
    payouts: PayoutsSettings = Field(default_factory=PayoutsSettings)
    fraud: FraudSettings = Field(default_factory=FraudSettings)
    media: MediaSettings = Field(default_factory=MediaSettings)
    notifications: NotificationsSettings = Field(default_factory=NotificationsSettings)
    kyc: KycSettings = Field(default_factory=KycSettings)
    rtc: RtcSettings = Field(default_factory=RtcSettings)

    @model_validator(mode="after")
    def _refuse_default_secrets(self) -> Settings:
        if self.env == "production":
            weak = [
                name
                for name, value in (
                    ("AUTH_JWT_SECRET", self.auth.jwt_secret),
                    ("AI_ENGINE_SECRET", self.ai_engine_secret),
                )
                if value.get_secret_value() == DEV_SECRET or len(value.get_secret_value()) < 32
            ]
            if weak:
                raise ValueError(
                    "HALOBUZZ_ENV=production refuses default or short secrets; set "
                    + ", ".join(weak)
                    + " to random values of at least 32 characters"
                )
        return self

    @property
    def resolved_database_url(self) -> str:
        """The configured database, or the embedded SQLite file under the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'halobuzz.db').resolve()}"

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings (tests build their own ``Settings`` instead)."""
    return Settings()
