"""PostgreSQL schema as data: the same named, append-only list as storage/sqlite/migrations.py, in its
dialect (one script per migration), applied by storage/sql/migrations.py under an advisory lock, so
several bot processes starting together migrate exactly once.
"""

from __future__ import annotations

from storage.postgres.turn_statements import TOTAL_OF_MESSAGES
from storage.sql.assistant_threads import CREATE_ASSISTANT_THREADS
from storage.sql.migrations import PREVIOUS_MESSAGE as _PREVIOUS
from storage.sql.migrations import Migration
from storage.sql.tool_servers import CREATE_CHANNEL_TOOL_SERVERS, CREATE_TOOL_CALLS


def _totals_function(team_shard: str | None) -> str:
    """The ledger's trigger function (its units: cost, images, audio, searches): every insert or change of a row
    adds its difference to the user's day and the team's month in usage_totals. `team_shard`: the SQL of the
    team row's shard (ledger_team_totals_spread), None before usage_totals had one."""
    shard_column, user_shard, team_row_shard = (
        ("", "", "") if team_shard is None else (", shard", "0, ", f"{team_shard}, ")
    )
    return f"""
        CREATE OR REPLACE FUNCTION usage_ledger_totals() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
            d_cost BIGINT := NEW.cost_nanos; d_images BIGINT := NEW.images; d_audio BIGINT := NEW.audio_ms;
            d_searches BIGINT := NEW.searches;
        BEGIN
            IF TG_OP = 'UPDATE' THEN
                d_cost := NEW.cost_nanos - OLD.cost_nanos;
                d_images := NEW.images - OLD.images;
                d_audio := NEW.audio_ms - OLD.audio_ms;
                d_searches := NEW.searches - OLD.searches;
            END IF;
            INSERT INTO usage_totals AS t
                (team_id, scope, subject, period{shard_column}, cost_nanos, images, audio_ms, searches)
            VALUES (NEW.team_id, 'user', NEW.user_id, NEW.user_day, {user_shard}d_cost, d_images, d_audio, d_searches),
                   (NEW.team_id, 'team', '', NEW.team_month, {team_row_shard}d_cost, d_images, d_audio, d_searches)
            ON CONFLICT (team_id, scope, subject, period{shard_column}) DO UPDATE SET
                cost_nanos = t.cost_nanos + excluded.cost_nanos,
                images = t.images + excluded.images,
                audio_ms = t.audio_ms + excluded.audio_ms,
                searches = t.searches + excluded.searches;
            RETURN NEW;
        END $$;
        """


MIGRATIONS: list[Migration] = [
    Migration(
        "m001_conversations",
        """
        CREATE TABLE conversations (
            id BIGSERIAL PRIMARY KEY,
            platform TEXT NOT NULL, team_id TEXT NOT NULL, channel_id TEXT NOT NULL, thread_id TEXT NOT NULL DEFAULT '',
            created_at TEXT NOT NULL, ended_at TEXT
        );
        CREATE UNIQUE INDEX conversations_open ON conversations (platform, team_id, channel_id, thread_id)
            WHERE ended_at IS NULL;
        """,
    ),
    Migration(
        "m002_messages",
        """
        CREATE TABLE messages (
            id BIGSERIAL PRIMARY KEY,
            conversation_id BIGINT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
            role TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
            content TEXT NOT NULL,
            tokens INTEGER NOT NULL CHECK (tokens >= 0),
            tokens_before BIGINT NOT NULL CHECK (tokens_before >= 0),
            author_id TEXT NOT NULL DEFAULT '', author_name TEXT NOT NULL DEFAULT '',
            platform_message_id TEXT NOT NULL DEFAULT '',
            model TEXT, prompt_tokens INTEGER, completion_tokens INTEGER,
            created_at TEXT NOT NULL
        );
        CREATE INDEX messages_window ON messages (conversation_id, tokens_before);
        """,
    ),
    Migration(
        "m003_usage_ledger",
        """
        CREATE TABLE usage_ledger (
            id BIGSERIAL PRIMARY KEY,
            platform TEXT NOT NULL, team_id TEXT NOT NULL, user_id TEXT NOT NULL, channel_id TEXT NOT NULL DEFAULT '',
            kind TEXT NOT NULL CHECK (kind IN ('chat', 'image', 'audio', 'embedding')),
            model TEXT NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('reserved', 'settled', 'released')),
            cost_nanos BIGINT NOT NULL CHECK (cost_nanos >= 0),
            input_tokens BIGINT NOT NULL DEFAULT 0, cached_tokens BIGINT NOT NULL DEFAULT 0,
            output_tokens BIGINT NOT NULL DEFAULT 0, images BIGINT NOT NULL DEFAULT 0,
            audio_ms BIGINT NOT NULL DEFAULT 0,
            user_day TEXT NOT NULL, team_month TEXT NOT NULL,
            created_at TEXT NOT NULL, settled_at TEXT, expires_at TEXT NOT NULL, holder TEXT NOT NULL DEFAULT ''
        );
        CREATE INDEX usage_ledger_reserved ON usage_ledger (expires_at) WHERE state = 'reserved';
        CREATE INDEX usage_ledger_team_time ON usage_ledger (team_id, created_at);
        CREATE TABLE usage_totals (
            team_id TEXT NOT NULL, scope TEXT NOT NULL CHECK (scope IN ('user', 'team')),
            subject TEXT NOT NULL, period TEXT NOT NULL,
            cost_nanos BIGINT NOT NULL DEFAULT 0, images BIGINT NOT NULL DEFAULT 0, audio_ms BIGINT NOT NULL DEFAULT 0,
            PRIMARY KEY (team_id, scope, subject, period)
        );
        CREATE FUNCTION usage_ledger_totals() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
            d_cost BIGINT := NEW.cost_nanos; d_images BIGINT := NEW.images; d_audio BIGINT := NEW.audio_ms;
        BEGIN
            IF TG_OP = 'UPDATE' THEN
                d_cost := NEW.cost_nanos - OLD.cost_nanos;
                d_images := NEW.images - OLD.images;
                d_audio := NEW.audio_ms - OLD.audio_ms;
            END IF;
            INSERT INTO usage_totals AS t (team_id, scope, subject, period, cost_nanos, images, audio_ms)
            VALUES (NEW.team_id, 'user', NEW.user_id, NEW.user_day, d_cost, d_images, d_audio),
                   (NEW.team_id, 'team', '', NEW.team_month, d_cost, d_images, d_audio)
            ON CONFLICT (team_id, scope, subject, period) DO UPDATE SET
                cost_nanos = t.cost_nanos + excluded.cost_nanos,
                images = t.images + excluded.images,
                audio_ms = t.audio_ms + excluded.audio_ms;
            RETURN NEW;
        END $$;
        CREATE TRIGGER usage_ledger_insert AFTER INSERT ON usage_ledger
            FOR EACH ROW EXECUTE FUNCTION usage_ledger_totals();
        CREATE TRIGGER usage_ledger_update AFTER UPDATE OF cost_nanos, images, audio_ms ON usage_ledger
            FOR EACH ROW EXECUTE FUNCTION usage_ledger_totals();
        CREATE TABLE quota_limits (
            team_id TEXT NOT NULL, subject TEXT NOT NULL,
            metric TEXT NOT NULL CHECK (metric IN ('daily_usd', 'monthly_usd', 'daily_images', 'daily_audio')),
            value BIGINT CHECK (value >= 0),
            PRIMARY KEY (team_id, subject, metric)
        );
        CREATE TABLE quota_changes (
            id BIGSERIAL PRIMARY KEY, team_id TEXT NOT NULL, subject TEXT NOT NULL, metric TEXT NOT NULL,
            old_value BIGINT, new_value BIGINT, old_set BOOLEAN NOT NULL, new_set BOOLEAN NOT NULL,
            changed_by TEXT NOT NULL, changed_at TEXT NOT NULL
        );
        """,
    ),
    Migration(
        "m004_deliveries",
        """
        CREATE TABLE deliveries (
            platform TEXT NOT NULL, delivery_id TEXT NOT NULL, claimed_at TEXT NOT NULL,
            PRIMARY KEY (platform, delivery_id)
        );
        CREATE INDEX deliveries_age ON deliveries (claimed_at);
        """,
    ),
    Migration(
        "m005_prompts_and_channels",
        """
        CREATE TABLE prompts (
            id BIGSERIAL PRIMARY KEY, team_id TEXT NOT NULL, name TEXT NOT NULL, created_by TEXT NOT NULL,
            created_at TEXT NOT NULL, deleted_by TEXT, deleted_at TEXT
        );
        CREATE UNIQUE INDEX prompts_live_name ON prompts (team_id, name) WHERE deleted_at IS NULL;
        CREATE TABLE prompt_versions (
            id BIGSERIAL PRIMARY KEY, prompt_id BIGINT NOT NULL REFERENCES prompts (id),
            version INTEGER NOT NULL CHECK (version >= 1), template TEXT NOT NULL, system_prompt TEXT,
            model TEXT, temperature DOUBLE PRECISION, author_id TEXT NOT NULL, created_at TEXT NOT NULL,
            UNIQUE (prompt_id, version)
        );
        CREATE TABLE prompt_runs (
            id BIGSERIAL PRIMARY KEY, uid TEXT NOT NULL UNIQUE,
            version_id BIGINT NOT NULL REFERENCES prompt_versions (id),
            team_id TEXT NOT NULL, user_id TEXT NOT NULL, inputs TEXT NOT NULL, model TEXT NOT NULL,
            temperature DOUBLE PRECISION, output TEXT NOT NULL, error TEXT,
            input_tokens BIGINT NOT NULL DEFAULT 0, output_tokens BIGINT NOT NULL DEFAULT 0,
            cost_nanos BIGINT NOT NULL DEFAULT 0, latency_ms BIGINT NOT NULL DEFAULT 0, created_at TEXT NOT NULL
        );
        CREATE INDEX prompt_runs_version ON prompt_runs (version_id);
        CREATE TABLE prompt_ratings (
            run_id BIGINT NOT NULL REFERENCES prompt_runs (id), user_id TEXT NOT NULL,
            rating INTEGER NOT NULL CHECK (rating BETWEEN 1 AND 5), comment TEXT NOT NULL DEFAULT '',
            rated_at TEXT NOT NULL, PRIMARY KEY (run_id, user_id)
        );
        CREATE TABLE channel_settings (
            platform TEXT NOT NULL, team_id TEXT NOT NULL, channel_id TEXT NOT NULL,
            persona TEXT, persona_source TEXT, model TEXT, updated_by TEXT NOT NULL, updated_at TEXT NOT NULL,
            PRIMARY KEY (platform, team_id, channel_id)
        );
        ALTER TABLE conversations ADD COLUMN system_prompt TEXT;
        """,
    ),
    Migration(
        # Semantic memory: see m006 in storage/sqlite/migrations.py. Vectors are float32 bytes; pgvector is
        # not assumed (see docs/memory.md).
        "m006_message_vectors",
        """
        ALTER TABLE messages ADD COLUMN embed_state SMALLINT NOT NULL DEFAULT 0,
            ADD COLUMN embed_claimed_until TEXT;
        CREATE INDEX messages_embed_pending ON messages (id) WHERE embed_state = 0;
        CREATE TABLE message_vectors (
            message_id BIGINT PRIMARY KEY REFERENCES messages (id) ON DELETE CASCADE,
            conversation_id BIGINT NOT NULL, platform TEXT NOT NULL, team_id TEXT NOT NULL,
            channel_id TEXT NOT NULL, created_at TEXT NOT NULL, model TEXT NOT NULL, vector BYTEA NOT NULL
        );
        CREATE INDEX message_vectors_team ON message_vectors (platform, team_id, model, message_id);
        CREATE INDEX message_vectors_conversation ON message_vectors (conversation_id, message_id);
        CREATE INDEX message_vectors_model ON message_vectors (model);
        -- Keep vectors in the row (no TOAST, no compression attempt: floats do not compress) up to a page.
        ALTER TABLE message_vectors SET (toast_tuple_target = 8160);
        """,
    ),
    Migration(
        # Turn leases replace the session advisory locks of m001's time: a lease holds no connection.
        "m007_turn_leases",
        """
        CREATE TABLE turn_leases (key TEXT PRIMARY KEY, token TEXT NOT NULL, expires_at TIMESTAMPTZ NOT NULL);
        """,
    ),
    Migration(
        # A reply names the question it answers: see security_reply_links in storage/sqlite/migrations.py.
        "security_reply_links",
        f"""
        ALTER TABLE messages ADD COLUMN reply_to BIGINT REFERENCES messages (id) ON DELETE CASCADE;
        UPDATE messages SET reply_to = ({_PREVIOUS}) WHERE role = 'assistant'
            AND (SELECT p.role FROM messages p WHERE p.id = ({_PREVIOUS})) = 'user';
        CREATE INDEX messages_reply_to ON messages (reply_to) WHERE reply_to IS NOT NULL;
        CREATE INDEX messages_platform_message ON messages (platform_message_id) WHERE platform_message_id <> '';
        """,
    ),
    Migration(
        # Images a message showed the model: see multimodal_message_images in storage/sqlite/migrations.py.
        "multimodal_message_images",
        """
        CREATE TABLE message_images (
            message_id BIGINT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
            position INTEGER NOT NULL, name TEXT NOT NULL, media_type TEXT NOT NULL, data BYTEA NOT NULL,
            width INTEGER NOT NULL, height INTEGER NOT NULL, detail TEXT NOT NULL, tokens INTEGER NOT NULL,
            PRIMARY KEY (message_id, position)
        );
        """,
    ),
    Migration(
        # The web dashboard's one-time links and sessions (storage/sql/signins.py), by their secrets' digests.
        "dashboard_signins",
        """
        CREATE TABLE dashboard_links (
            digest TEXT PRIMARY KEY, platform TEXT NOT NULL, team_id TEXT NOT NULL, user_id TEXT NOT NULL,
            display_name TEXT NOT NULL, is_admin INTEGER NOT NULL, expires_at TEXT NOT NULL
        );
        CREATE INDEX dashboard_links_expiry ON dashboard_links (expires_at);
        CREATE TABLE dashboard_sessions (
            digest TEXT PRIMARY KEY, platform TEXT NOT NULL, team_id TEXT NOT NULL, user_id TEXT NOT NULL,
            display_name TEXT NOT NULL, is_admin INTEGER NOT NULL, created_at TEXT NOT NULL, expires_at TEXT NOT NULL
        );
        CREATE INDEX dashboard_sessions_expiry ON dashboard_sessions (expires_at);
        """,
    ),
    Migration(
        # See money_reservation_sent in storage/sqlite/migrations.py.
        "money_reservation_sent",
        """
        ALTER TABLE usage_ledger ADD COLUMN sent_at TEXT, ADD COLUMN estimated BOOLEAN NOT NULL DEFAULT FALSE;
        """,
    ),
    Migration(
        # See money_user_in_flight in storage/sqlite/migrations.py.
        "money_user_in_flight",
        """
        CREATE TABLE user_in_flight (
            id BIGSERIAL PRIMARY KEY, platform TEXT NOT NULL, team_id TEXT NOT NULL, user_id TEXT NOT NULL,
            holder TEXT NOT NULL, expires_at TEXT NOT NULL
        );
        CREATE INDEX user_in_flight_user ON user_in_flight (platform, team_id, user_id);
        """,
    ),
    Migration(
        # See memory_embedding_sizes in storage/sqlite/migrations.py.
        "memory_embedding_sizes",
        """
        CREATE TABLE embedding_sizes (
            model TEXT NOT NULL, requested INTEGER NOT NULL, size INTEGER NOT NULL, learned_at TEXT NOT NULL,
            PRIMARY KEY (model, requested)
        );
        """,
    ),
    Migration(
        # In-flight leases keyed by a per-user slot, so a claim is one statement that needs no lock
        # (storage/postgres/ledger.py). The leases of the moment are simply dropped: they lapse in a minute anyway.
        "turn_cost_in_flight",
        """
        DROP TABLE user_in_flight;
        CREATE TABLE user_in_flight (
            platform TEXT NOT NULL, team_id TEXT NOT NULL, user_id TEXT NOT NULL, slot INTEGER NOT NULL,
            id BIGSERIAL UNIQUE, holder TEXT NOT NULL, expires_at TEXT NOT NULL,
            PRIMARY KEY (platform, team_id, user_id, slot)
        );
        """,
    ),
    Migration(
        # See turn_cost_image_counts in storage/sqlite/migrations.py.
        "turn_cost_image_counts",
        """
        ALTER TABLE messages ADD COLUMN images INTEGER NOT NULL DEFAULT 0;
        UPDATE messages SET images = (SELECT count(*) FROM message_images i WHERE i.message_id = messages.id)
        WHERE id IN (SELECT message_id FROM message_images);
        """,
    ),
    Migration(
        # See tools_reasoning_effort in storage/sqlite/migrations.py.
        "tools_reasoning_effort",
        "ALTER TABLE channel_settings ADD COLUMN reasoning_effort TEXT;",
    ),
    Migration(
        "team_tools_channels",
        # See team_tools_channels in storage/sqlite/migrations.py.
        CREATE_CHANNEL_TOOL_SERVERS,
    ),
    Migration(
        "team_tools_audit",
        # See team_tools_audit in storage/sqlite/migrations.py.
        *CREATE_TOOL_CALLS,
    ),
    Migration(
        # See tools_search_quota in storage/sqlite/migrations.py.
        "tools_search_quota",
        """
        ALTER TABLE usage_ledger DROP CONSTRAINT usage_ledger_kind_check,
            ADD CONSTRAINT usage_ledger_kind_check CHECK (kind IN ('chat', 'image', 'audio', 'embedding', 'search')),
            ADD COLUMN searches BIGINT NOT NULL DEFAULT 0;
        ALTER TABLE usage_totals ADD COLUMN searches BIGINT NOT NULL DEFAULT 0;
        ALTER TABLE quota_limits DROP CONSTRAINT quota_limits_metric_check,
            ADD CONSTRAINT quota_limits_metric_check
            CHECK (metric IN ('daily_usd', 'monthly_usd', 'daily_images', 'daily_audio', 'daily_searches'));
        """
        + _totals_function(None)
        + """
        DROP TRIGGER usage_ledger_update ON usage_ledger;
        CREATE TRIGGER usage_ledger_update AFTER UPDATE OF cost_nanos, images, audio_ms, searches ON usage_ledger
            FOR EACH ROW EXECUTE FUNCTION usage_ledger_totals();
        """,
    ),
    Migration(
        # See tools_reasoning_tokens in storage/sqlite/migrations.py.
        "tools_reasoning_tokens",
        "ALTER TABLE usage_ledger ADD COLUMN reasoning_tokens BIGINT NOT NULL DEFAULT 0;",
    ),
    Migration(
        # See digests_channel_schedules in storage/sqlite/migrations.py.
        "digests_channel_schedules",
        """
        CREATE TABLE channel_digests (
            platform TEXT NOT NULL, team_id TEXT NOT NULL, channel_id TEXT NOT NULL,
            period TEXT NOT NULL, weekday INTEGER, at_time TEXT NOT NULL,
            set_by TEXT NOT NULL, set_at TEXT NOT NULL, last_run TEXT, previous_run TEXT,
            PRIMARY KEY (platform, team_id, channel_id)
        );
        """,
    ),
    Migration(
        # See catchup_assistant_threads in storage/sqlite/migrations.py.
        "catchup_assistant_threads",
        CREATE_ASSISTANT_THREADS,
    ),
    Migration(
        # See digests_retries in storage/sqlite/migrations.py.
        "digests_retries",
        """
        ALTER TABLE channel_digests ADD COLUMN failures INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE channel_digests ADD COLUMN retry_at TEXT;
        """,
    ),
    Migration(
        # See digests_unposted_text in storage/sqlite/migrations.py.
        "digests_unposted_text",
        "ALTER TABLE channel_digests ADD COLUMN unposted_text TEXT;",
    ),
    Migration(
        # A team's month total was one row that every reservation and settlement of the team updated (the
        # ledger's trigger), so concurrent calls queued on its row lock, each holding it until its commit. The
        # team's total is now spread over 16 rows (the ledger row's id modulo 16; a row's settlement lands on its
        # reservation's row), summed when read. A user's total stays one row (shard 0): one user's calls rarely
        # run at once. Existing totals keep shard 0.
        "ledger_team_totals_spread",
        """
        ALTER TABLE usage_totals ADD COLUMN shard SMALLINT NOT NULL DEFAULT 0;
        ALTER TABLE usage_totals DROP CONSTRAINT usage_totals_pkey,
            ADD PRIMARY KEY (team_id, scope, subject, period, shard);
        """
        + _totals_function("NEW.id % 16"),
    ),
    Migration(
        # Each conversation's running token total, where its last message ends: a message's insert moves it on
        # and takes its own running total from it in one statement, exact without a lock taken before
        # (storage/postgres/turn_statements.py). Set here from the messages already stored.
        "turn_cost_conversation_totals",
        "ALTER TABLE conversations ADD COLUMN tokens_total BIGINT NOT NULL DEFAULT 0 CHECK (tokens_total >= 0);",
        f"UPDATE conversations SET tokens_total = {TOTAL_OF_MESSAGES};",
    ),
]
