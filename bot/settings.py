"""Settings, read once from the environment and `.env`, validated, then passed in explicitly."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dotenv import dotenv_values
from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from bot.errors import ConfigError
from bot.mcp.config import read_servers_file
from bot.net.addresses import AllowedHosts
from bot.providers.kinds import DEFAULT_KIND, kind_named
from bot.providers.registry import KEY_VARIABLE, KIND_VARIABLE, check_keys, check_kinds, parse_providers

DEFAULT_SYSTEM_PROMPT = (
    "You are teambot, a helpful assistant in a team's chat. Answer clearly and concisely; use Markdown where it helps."
)


class Settings(BaseSettings):
    """Every setting of the bot. Names are the environment variables' names, upper-cased."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        env_ignore_empty=True,  # `X=` in .env means "not set", so defaults (and "unlimited") apply
        extra="ignore",
        frozen=True,
    )

    openai_api_key: SecretStr | None = None
    openai_base_url: str | None = None
    openai_timeout: float = Field(60.0, gt=0, description="seconds to wait for the model before giving up")
    openai_max_retries: int = Field(2, ge=0, le=10, description="retries of a call that cannot have been charged")
    openai_max_retry_wait: float = Field(20.0, ge=0, description="longest Retry-After we wait for, in seconds")
    # What the default provider's server accepts (bot/providers/kinds.py): openai, or single-system.
    openai_kind: str = Field(DEFAULT_KIND, description="the default provider's kind of server")
    # More model servers (bot/providers/registry.py): a model named `ollama/llama3.1:8b` runs on provider ollama.
    providers: str = Field("", description="comma-separated name=base_url of more providers (models: name/model)")
    # From PROVIDER_<NAME>_API_KEY variables (see `_ProviderKeys`), by variable name.
    provider_api_keys: dict[str, SecretStr] = Field(
        default_factory=dict, json_schema_extra={"env_pattern": "PROVIDER_<NAME>_API_KEY"}
    )
    # From PROVIDER_<NAME>_KIND variables (see `_ProviderKinds`), by variable name: each provider's kind of server.
    provider_kinds: dict[str, str] = Field(
        default_factory=dict, json_schema_extra={"env_pattern": "PROVIDER_<NAME>_KIND"}
    )

    database_url: str = "sqlite:///teambot.sqlite3"
    database_busy_timeout_ms: int = Field(5_000, ge=0, description="how long a write waits for another writer")
    chat_model: str = "gpt-4.1-mini"
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    token_encoding: str | None = None  # for models bot/providers/encodings.py does not know, e.g. "o200k_base"
    max_context_tokens: int = Field(16_000, ge=256)
    max_output_tokens: int = Field(1_000, ge=16)
    max_turns_in_flight: int = Field(256, ge=1, description="model calls running at once in one process")
    max_user_in_flight: int = Field(3, ge=1, description="one person's requests running at once; more are refused")
    shutdown_grace_seconds: float = Field(20.0, ge=0, description="on SIGTERM, how long in-flight replies may finish")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    log_file: Path | None = Field(None, description="write the log here instead of stderr (the console: teambot.log)")
    # Libraries' DEBUG lines carry message text (aiosqlite's SQL parameters, slack_sdk's request bodies): they
    # stay at INFO at LOG_LEVEL=DEBUG unless this asks for more.
    library_log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"

    # /image and /transcribe.
    image_model: str = "gpt-image-1"
    image_size: str = Field("1024x1024", description="default size; the model's table in bot/data lists the rest")
    image_quality: str = Field("medium", description="default quality")
    transcribe_model: str = "gpt-4o-mini-transcribe"
    transcribe_max_minutes: int = Field(120, ge=1, description="longest audio /transcribe accepts")
    transcribe_max_mb: int = Field(200, ge=1, description="largest audio file /transcribe downloads")
    transcribe_chunk_seconds: int = Field(600, ge=30, description="audio is cut into parts at most this long")
    transcribe_concurrency: int = Field(3, ge=1, le=16, description="parts transcribed at once")
    transcribe_voice_messages: bool = Field(False, description="transcribe voice messages sent to the bot")
    # Vision and speech (bot/media/vision.py, bot/media/speech.py).
    vision_detail: Literal["low", "high", "auto"] = Field("auto", description="detail images are sent at")
    speech_model: str = "gpt-4o-mini-tts"
    speech_voice: str = Field("alloy", description="default voice of /speak and /ask voice=on")

    # Prompt experiments and channel models.
    allowed_chat_models: str = Field("", description="comma-separated models /model and /prompt may use")
    prompt_compare_max: int = Field(6, ge=1, le=50, description="most cells one /prompt compare may run")

    # Semantic memory (bot/memory/semantic.py): messages are embedded in the background; recall and /search use them.
    memory_enabled: bool = Field(True, description="embed messages for recall and /search")
    embedding_model: str = "text-embedding-3-small"
    embedding_dimensions: int | None = Field(
        512, ge=16, le=4096, description="vector size asked of the model (empty: the model's own)"
    )
    memory_batch_size: int = Field(64, ge=1, le=2048, description="messages embedded per call")
    memory_recall_tokens: int = Field(1_500, ge=0, description="most prompt tokens recalled messages may take")
    memory_recall_messages: int = Field(5, ge=0, le=50, description="most older messages recalled per turn")
    memory_min_similarity: float = Field(0.3, ge=-1, le=1, description="cosine similarity a recalled message needs")
    memory_query_timeout: float = Field(3.0, gt=0, description="seconds a turn waits to embed its question")
    search_results: int = Field(5, ge=1, le=25, description="matches /search shows")
    search_min_similarity: float = Field(
        0.3, ge=-1, le=1, description="cosine similarity a /search match needs (below it: no good matches)"
    )
    catchup_excluded_channels: str = Field("", description="comma-separated channel ids /catchup never reads")
    catchup_max_messages: int = Field(
        2_000, ge=1, description="most messages a channel's catch-up (or digest) reads: the newest ones"
    )

    command_prefix: str = Field(
        "", pattern=r"^[a-z0-9_-]{0,10}$",
        description="put before every slash command's name (tb- gives /tb-ask), where other apps use the plain ones",
    )  # fmt: skip

    # Discord (adapters/discord/adapter.py): set DISCORD_TOKEN to start the Discord adapter.
    discord_token: SecretStr | None = None
    discord_admin_role: str | None = Field(None, description="members with this role are admins too")
    discord_shard_count: int | None = Field(None, ge=1, description="total shards across all processes")
    discord_shard_ids: str = Field("", description="comma-separated shards this process runs (with the count)")
    discord_guild_ids: str = Field("", description="comma-separated guild ids to sync commands to at once")
    discord_dms: bool = Field(True, description="answer direct messages (each person's DMs are their own team)")
    discord_connect_timeout: float = Field(
        30.0, gt=0, description="seconds an operator's command waits for the gateway to be ready (digests run)"
    )
    max_attachment_mb: int = Field(25, ge=1, description="largest attachment the bot downloads")
    # Below Pillow's own hard limit (about 179 Mpx); the default keeps a 50-megapixel phone photo (8160x6120).
    max_image_pixels: int = Field(
        50_000_000, ge=1_000_000, le=178_000_000, description="most pixels an image may have (checked before decoding)"
    )
    max_images_per_message: int = Field(10, ge=1, le=100, description="most images one message may carry")
    # Image links a provider returns are fetched from public addresses only (bot/net/outbound.py).
    image_url_allowed_hosts: str = Field(
        "", description="comma-separated host[:port] of a self-hosted image server that is not public"
    )

    # Tools the model may call in a chat turn (bot/tools/, docs/tools.md).
    tool_max_steps: int = Field(5, ge=1, le=20, description="most model calls one message may take with tools")
    tool_result_tokens: int = Field(3_000, ge=100, description="most prompt tokens one tool result may take")
    web_search_url: str | None = Field(None, description="a SearXNG instance's base URL: turns web_search on")
    web_search_results: int = Field(5, ge=1, le=20, description="search results given to the model")
    fetch_enabled: bool = Field(True, description="let the model read web pages and PDFs (fetch_url)")
    fetch_allowed_hosts: str = Field(
        "", description="comma-separated host[:port] fetch_url may read although not public"
    )
    fetch_max_mb: int = Field(5, ge=1, le=100, description="largest page or PDF fetch_url reads")
    max_document_pages: int = Field(50, ge=1, le=2_000, description="pages of an attached PDF read into the message")
    fetch_timeout_seconds: float = Field(15.0, gt=0, le=120, description="the whole fetch of a page or search")

    # Slack (adapters/slack/adapter.py): SLACK_BOT_TOKEN plus SLACK_APP_TOKEN (Socket Mode, for
    # development) or SLACK_SIGNING_SECRET (HTTP mode on PORT, for production).
    slack_bot_token: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_api_url: str = Field("https://slack.com/api/", description="the Web API's base URL (gateways, tests)")
    slack_admin_users: str = Field("", description="comma-separated user or user-group ids that are admins")
    port: int = Field(3000, ge=1, le=65535, description="HTTP port of Slack HTTP mode (/slack/events, /healthz)")
    host: str = Field("0.0.0.0", min_length=1, description="address HTTP mode listens on (127.0.0.1 behind a proxy)")
    request_body_seconds: int = Field(
        20, ge=1, le=30, description="how long an HTTP request may take to send its body before it is cut off"
    )

    # The web dashboard (adapters/web), served on PORT: /dashboard in the chat sends a one-time sign-in link.
    public_url: str | None = Field(
        None, description="the dashboard links' base behind a proxy, e.g. https://bot.example.com"
    )
    dashboard_link_minutes: int = Field(10, ge=1, le=1440, description="how long a /dashboard link works")
    dashboard_session_hours: int = Field(12, ge=1, le=720, description="how long a dashboard session lasts")

    # Cost control. Empty = unlimited. Days and months reset at 00:00 in QUOTA_TIMEZONE.
    prices_file: Path | None = None
    free_models: str = Field("", description="comma-separated models priced at $0 (self-hosted); * for all")
    quota_user_daily_usd: Decimal | None = Field(None, ge=0)
    quota_team_monthly_usd: Decimal | None = Field(None, ge=0)
    quota_user_daily_images: int | None = Field(None, ge=0)
    quota_user_daily_audio_minutes: Decimal | None = Field(None, ge=0)
    quota_user_daily_searches: int | None = Field(None, ge=0)
    quota_timezone: str = "UTC"
    reservation_ttl_seconds: int = Field(900, ge=60, description="a reservation older than this is released")

    # Team tools from MCP servers (docs/mcp.md): off until an admin turns a server on in a channel.
    mcp_servers_file: Path | None = Field(
        None, description='JSON {"mcpServers": {...}}: the MCP servers tools come from'
    )
    mcp_call_seconds: float = Field(30.0, gt=0, le=600, description="how long one MCP tool call may take")
    mcp_result_max_chars: int = Field(
        20_000, ge=100, le=1_000_000, description="longest MCP tool result given to the model (the rest is cut)"
    )
    tool_approval_seconds: float = Field(
        120.0, gt=0, le=3600, description="how long the asker has to allow a tool that acts (no answer: denied)"
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """As usual, plus the variables named after each provider (`_ProviderVariables`), and with one exception
        to "empty means not set": see `_BlankMeansModelsOwn`."""
        blank = _BlankMeansModelsOwn(settings_cls, dotenv_settings)
        keys = _ProviderKeys(settings_cls, dotenv_settings)
        kinds = _ProviderKinds(settings_cls, dotenv_settings)
        return init_settings, blank, keys, kinds, env_settings, dotenv_settings, file_secret_settings

    @field_validator("log_level", "library_log_level", mode="before")
    @classmethod
    def _upper_log_level(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("database_url")
    @classmethod
    def _known_database_scheme(cls, value: str) -> str:
        if not value.startswith(("sqlite:///", "postgresql://", "postgres://")):
            raise ValueError(
                "must look like sqlite:///path/to/file.sqlite3 (a relative path is from the working directory)"
                " or postgresql://user@host:5432/dbname"
            )
        return value

    @field_validator("quota_timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}; use an IANA name like UTC or Europe/Paris") from None
        return value

    @field_validator("prices_file")
    @classmethod
    def _prices_file_exists(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"no such file: {value}")
        return value

    @field_validator("mcp_servers_file")
    @classmethod
    def _mcp_servers_file_valid(cls, value: Path | None) -> Path | None:
        if value is not None:
            read_servers_file(value)  # an McpConfigError (a ValueError) names the server and what is wrong
        return value

    @field_validator("public_url")
    @classmethod
    def _http_public_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL, e.g. https://bot.example.com")
        return value

    @field_validator("slack_signing_secret")
    @classmethod
    def _signing_secret_not_blank(cls, value: SecretStr | None) -> SecretStr | None:
        # A blank secret would let anyone sign requests (HMAC with an empty key): refuse it at start.
        if value is not None and not value.get_secret_value().strip():
            raise ValueError("is blank; copy the Signing Secret from the app's Basic Information page, or unset it")
        return value

    @field_validator("image_url_allowed_hosts", "fetch_allowed_hosts")
    @classmethod
    def _host_list(cls, value: str) -> str:
        AllowedHosts.parse(value)  # a ValueError names the malformed entry
        return value

    @field_validator("providers")
    @classmethod
    def _providers_valid(cls, value: str) -> str:
        parse_providers(value)  # a ValueError names the bad entry
        return value

    @field_validator("openai_kind")
    @classmethod
    def _known_kind(cls, value: str) -> str:
        return kind_named(value).name  # a ValueError lists the kinds (never the value: it may be a misplaced key)

    @field_validator("openai_base_url", "web_search_url")
    @classmethod
    def _http_base_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL, e.g. http://localhost:11434/v1")
        return value

    @model_validator(mode="after")
    def _output_fits_context(self) -> Settings:
        if self.max_output_tokens >= self.max_context_tokens:
            raise ValueError(
                f"MAX_OUTPUT_TOKENS ({self.max_output_tokens}) must be smaller than "
                f"MAX_CONTEXT_TOKENS ({self.max_context_tokens})"
            )
        return self

    @model_validator(mode="after")
    def _provider_keys_and_kinds_have_providers(self) -> Settings:
        pairs = parse_providers(self.providers)
        check_keys(pairs, self.provider_api_keys)
        check_kinds(pairs, self.provider_kinds)
        return self

    @model_validator(mode="after")
    def _slack_needs_its_bot_token(self) -> Settings:
        # Without SLACK_BOT_TOKEN the bot would start the console without a word about Slack. (Which
        # token is in which variable is checked by the Slack adapter at start.)
        lonely = [
            n
            for n, v in (("SLACK_APP_TOKEN", self.slack_app_token), ("SLACK_SIGNING_SECRET", self.slack_signing_secret))
            if v
        ]
        if self.slack_bot_token is None and lonely:
            raise ValueError(
                f"{' and '.join(lonely)} set without SLACK_BOT_TOKEN: Slack needs the bot token (xoxb-…) too;"
                " without any Slack setting the bot starts the console"
            )
        return self

    @property
    def input_token_budget(self) -> int:
        """Tokens left for system prompt and history once the reply's budget is set aside."""
        return self.max_context_tokens - self.max_output_tokens

    @property
    def catchup_excluded_channel_ids(self) -> frozenset[str]:
        """CATCHUP_EXCLUDED_CHANNELS as a set of ids."""
        return frozenset(c.strip() for c in self.catchup_excluded_channels.split(",") if c.strip())

    @property
    def allowed_models(self) -> tuple[str, ...]:
        """Models users may pick: ALLOWED_CHAT_MODELS, always including CHAT_MODEL."""
        listed = [name.strip() for name in self.allowed_chat_models.split(",") if name.strip()]
        return tuple(dict.fromkeys([self.chat_model, *listed]))

    @property
    def free_model_names(self) -> frozenset[str]:
        """Models the operator declared free (self-hosted), from FREE_MODELS."""
        return frozenset(name.strip() for name in self.free_models.split(",") if name.strip())

    def secrets(self) -> list[str]:
        """Every secret value set, so logging can scrub them."""
        values = (
            self.openai_api_key,
            self.discord_token,
            self.slack_bot_token,
            self.slack_app_token,
            self.slack_signing_secret,
        )
        keys = tuple(self.provider_api_keys.values())
        return [s.get_secret_value() for s in (*values, *keys) if s is not None and s.get_secret_value()]


class _OneField(PydanticBaseSettingsSource):
    """A settings source that answers for one field itself, reading the environment and the .env files."""

    NAME = ""

    def __init__(self, settings_cls: type[BaseSettings], dotenv: PydanticBaseSettingsSource) -> None:
        super().__init__(settings_cls)
        self._dotenv = dotenv

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        """Unused: `__call__` answers for the one field."""
        return None, field_name, False

    def _dotenv_files(self) -> list[Mapping[str, str | None]]:
        """The values of each .env file there is, in order (a later file wins)."""
        env_file = getattr(self._dotenv, "env_file", None)
        files = [env_file] if isinstance(env_file, str | os.PathLike) else list(env_file or [])
        return [dotenv_values(path) for path in files if Path(path).is_file()]


class _BlankMeansModelsOwn(_OneField):
    """`EMBEDDING_DIMENSIONS=` (empty) means "the model's own size": no `dimensions` is sent.

    Every other empty variable means "not set" (the default applies); this one's default is 512, which
    servers without Matryoshka embeddings refuse, so empty has to reach the settings as None.
    """

    NAME = "embedding_dimensions"

    def __call__(self) -> dict[str, Any]:
        env = {key.lower(): value for key, value in os.environ.items()}
        if self.NAME in env:  # the environment wins over .env, as for every setting
            return {self.NAME: None} if not env[self.NAME].strip() else {}
        for found in reversed(self._dotenv_files()):  # a later file wins
            values = {key.lower(): value for key, value in found.items()}
            if self.NAME in values:
                return {self.NAME: None} if not (values[self.NAME] or "").strip() else {}
        return {}


class _ProviderVariables(_OneField):
    """Variables one per provider PROVIDERS names (from the environment and .env, the environment winning): a
    setting whose names are not known in advance, kept by variable name (upper case). An empty one means not set."""

    VARIABLE: re.Pattern[str]

    def __call__(self) -> dict[str, Any]:
        found: dict[str, str] = {}
        for values in [*self._dotenv_files(), os.environ]:  # later ones win
            for key, value in values.items():
                if self.VARIABLE.match(key):
                    found[key.upper()] = value or ""
        kept = {key: value for key, value in found.items() if value.strip()}
        return {self.NAME: kept} if kept else {}


class _ProviderKeys(_ProviderVariables):
    """PROVIDER_<NAME>_API_KEY: each provider's key."""

    NAME = "provider_api_keys"
    VARIABLE = KEY_VARIABLE


class _ProviderKinds(_ProviderVariables):
    """PROVIDER_<NAME>_KIND: each provider's kind of server."""

    NAME = "provider_kinds"
    VARIABLE = KIND_VARIABLE


def load_settings(env_file: str | Path | None = ".env", **overrides: Any) -> Settings:
    """Read and validate settings; a bad value raises ConfigError naming the variable and the problem."""
    try:
        return Settings(_env_file=env_file, **overrides)  # type: ignore[call-arg]
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None


def _describe(exc: ValidationError) -> str:
    lines = ["Invalid settings (environment or .env):"]
    for error in exc.errors(include_url=False, include_input=False):
        name = ".".join(str(part) for part in error["loc"]).upper()
        message = error["msg"].removeprefix("Value error, ")
        lines.append(f"  {name}: {message}" if name else f"  {message}")
    return "\n".join(lines)
