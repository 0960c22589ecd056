"""SQLite schema as data: the ordered, append-only list of named migrations that storage/sql/migrations.py
applies. The same names, in the same order, as storage/postgres/migrations.py (tests/storage/test_sqlite.py
checks): only the column types and storage options differ.

Never edit or reorder a migration that has shipped; append a new one to both lists.
"""

from __future__ import annotations

from storage.sql.assistant_threads import CREATE_ASSISTANT_THREADS
from storage.sql.migrations import PREVIOUS_MESSAGE as _PREVIOUS
from storage.sql.migrations import Migration
from storage.sql.tool_servers import CREATE_CHANNEL_TOOL_SERVERS, CREATE_TOOL_CALLS

# usage_ledger's columns before tools_search_quota, copied when that migration rebuilds the table.
_LEDGER_COLUMNS = (
    "id, platform, team_id, user_id, channel_id, kind, model, state, cost_nanos, input_tokens, cached_tokens,"
    " output_tokens, images, audio_ms, user_day, team_month, created_at, settled_at, expires_at, holder, sent_at,"
    " estimated"
)

MIGRATIONS: list[Migration] = [
    Migration(
        "m001_conversations",
        """
            CREATE TABLE conversations (
                id INTEGER PRIMARY KEY,
                platform TEXT NOT NULL,
                team_id TEXT NOT NULL,
                channel_id TEXT NOT NULL,
                thread_id TEXT NOT NULL DEFAULT '',
                created_at TEXT NOT NULL,
                ended_at TEXT
            )
            """,
        # At most one open conversation per thread; ended ones stay for history and export.
        """
            CREATE UNIQUE INDEX conversations_open
            ON conversations (platform, team_id, channel_id, thread_id) WHERE ended_at IS NULL
            """,
    ),
    Migration(
        "m002_messages",
        # tokens_before = sum of `tokens` of every earlier message in the conversation, fixed at insert.
        # The context window is then one range scan on (conversation_id, tokens_before): O(window).
        """
            CREATE TABLE messages (
                id INTEGER PRIMARY KEY,
                conversation_id INTEGER NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
                role TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
                content TEXT NOT NULL,
                tokens INTEGER NOT NULL CHECK (tokens >= 0),
                tokens_before INTEGER NOT NULL CHECK (tokens_before >= 0),
                author_id TEXT NOT NULL DEFAULT '',
                author_name TEXT NOT NULL DEFAULT '',
                platform_message_id TEXT NOT NULL DEFAULT '',
                model TEXT,
                prompt_tokens INTEGER,
                completion_tokens INTEGER,
                created_at TEXT NOT NULL
            )
            """,
        "CREATE INDEX messages_window ON messages (conversation_id, tokens_before)",
    ),
    Migration(
        "m003_usage_ledger",
        # One row per model call. A reservation is a row in state 'reserved' holding the worst-case
        # cost; settling rewrites it to the real cost, releasing sets it to zero. Spend in a period is
        # the sum of cost over its rows, kept current in usage_totals by the triggers below, so a
        # reservation checks its limits with a few primary-key reads, not a scan of the period.
        """
            CREATE TABLE usage_ledger (
                id INTEGER PRIMARY KEY,
                platform TEXT NOT NULL,
                team_id TEXT NOT NULL,
                user_id TEXT NOT NULL,
                channel_id TEXT NOT NULL DEFAULT '',
                kind TEXT NOT NULL CHECK (kind IN ('chat', 'image', 'audio', 'embedding')),
                model TEXT NOT NULL,
                state TEXT NOT NULL CHECK (state IN ('reserved', 'settled', 'released')),
                cost_nanos INTEGER NOT NULL CHECK (cost_nanos >= 0),
                input_tokens INTEGER NOT NULL DEFAULT 0,
                cached_tokens INTEGER NOT NULL DEFAULT 0,
                output_tokens INTEGER NOT NULL DEFAULT 0,
                images INTEGER NOT NULL DEFAULT 0,
                audio_ms INTEGER NOT NULL DEFAULT 0,
                user_day TEXT NOT NULL,
                team_month TEXT NOT NULL,
                created_at TEXT NOT NULL,
                settled_at TEXT,
                expires_at TEXT NOT NULL,
                holder TEXT NOT NULL DEFAULT ''
            )
            """,
        "CREATE INDEX usage_ledger_reserved ON usage_ledger (expires_at) WHERE state = 'reserved'",
        "CREATE INDEX usage_ledger_team_time ON usage_ledger (team_id, created_at)",
        """
            CREATE TABLE usage_totals (
                team_id TEXT NOT NULL,
                scope TEXT NOT NULL CHECK (scope IN ('user', 'team')),
                subject TEXT NOT NULL,
                period TEXT NOT NULL,
                cost_nanos INTEGER NOT NULL DEFAULT 0,
                images INTEGER NOT NULL DEFAULT 0,
                audio_ms INTEGER NOT NULL DEFAULT 0,
                PRIMARY KEY (team_id, scope, subject, period)
            ) WITHOUT ROWID
            """,
        """
            CREATE TRIGGER usage_ledger_insert AFTER INSERT ON usage_ledger BEGIN
                INSERT INTO usage_totals (team_id, scope, subject, period, cost_nanos, images, audio_ms)
                VALUES (NEW.team_id, 'user', NEW.user_id, NEW.user_day, NEW.cost_nanos, NEW.images, NEW.audio_ms),
                       (NEW.team_id, 'team', '', NEW.team_month, NEW.cost_nanos, NEW.images, NEW.audio_ms)
                ON CONFLICT (team_id, scope, subject, period) DO UPDATE SET
                    cost_nanos = cost_nanos + excluded.cost_nanos,
                    images = images + excluded.images,
                    audio_ms = audio_ms + excluded.audio_ms;
            END
            """,
        """
            CREATE TRIGGER usage_ledger_update AFTER UPDATE OF cost_nanos, images, audio_ms ON usage_ledger BEGIN
                UPDATE usage_totals SET
                    cost_nanos = cost_nanos + NEW.cost_nanos - OLD.cost_nanos,
                    images = images + NEW.images - OLD.images,
                    audio_ms = audio_ms + NEW.audio_ms - OLD.audio_ms
                WHERE team_id = NEW.team_id AND (
                    (scope = 'user' AND subject = NEW.user_id AND period = NEW.user_day)
                    OR (scope = 'team' AND subject = '' AND period = NEW.team_month));
            END
            """,
        # Admin-set limits. No row: the default applies; a row whose value is NULL: explicitly unlimited.
        # subject is a user id, '*' for every user of the team, or '' for the team itself.
        """
            CREATE TABLE quota_limits (
                team_id TEXT NOT NULL,
                subject TEXT NOT NULL,
                metric TEXT NOT NULL CHECK (metric IN ('daily_usd', 'monthly_usd', 'daily_images', 'daily_audio')),
                value INTEGER CHECK (value >= 0),
                PRIMARY KEY (team_id, subject, metric)
            ) WITHOUT ROWID
            """,
        """
            CREATE TABLE quota_changes (
                id INTEGER PRIMARY KEY,
                team_id TEXT NOT NULL,
                subject TEXT NOT NULL,
                metric TEXT NOT NULL,
                old_value INTEGER,
                new_value INTEGER,
                old_set INTEGER NOT NULL,
                new_set INTEGER NOT NULL,
                changed_by TEXT NOT NULL,
                changed_at TEXT NOT NULL
            )
            """,
    ),
    Migration(
        "m004_deliveries",
        # Platform events already taken (Slack redelivers on slow acks): a primary-key insert claims
        # one, so the claim holds across restarts and across processes sharing the database.
        """
            CREATE TABLE deliveries (
                platform TEXT NOT NULL,
                delivery_id TEXT NOT NULL,
                claimed_at TEXT NOT NULL,
                PRIMARY KEY (platform, delivery_id)
            ) WITHOUT ROWID
            """,
        "CREATE INDEX deliveries_age ON deliveries (claimed_at)",
    ),
    Migration(
        "m005_prompts_and_channels",
        # The team's prompt library: a prompt is a name; each save adds an immutable version.
        """
            CREATE TABLE prompts (
                id INTEGER PRIMARY KEY,
                team_id TEXT NOT NULL,
                name TEXT NOT NULL,
                created_by TEXT NOT NULL,
                created_at TEXT NOT NULL,
                deleted_by TEXT,
                deleted_at TEXT
            )
            """,
        "CREATE UNIQUE INDEX prompts_live_name ON prompts (team_id, name) WHERE deleted_at IS NULL",
        """
            CREATE TABLE prompt_versions (
                id INTEGER PRIMARY KEY,
                prompt_id INTEGER NOT NULL REFERENCES prompts (id),
                version INTEGER NOT NULL CHECK (version >= 1),
                template TEXT NOT NULL,
                system_prompt TEXT,
                model TEXT,
                temperature REAL,
                author_id TEXT NOT NULL,
                created_at TEXT NOT NULL,
                UNIQUE (prompt_id, version)
            )
            """,
        # Runs keep their version's id, so a deleted prompt's history stays readable. `uid` makes
        # export/import idempotent across databases.
        """
            CREATE TABLE prompt_runs (
                id INTEGER PRIMARY KEY,
                uid TEXT NOT NULL UNIQUE,
                version_id INTEGER NOT NULL REFERENCES prompt_versions (id),
                team_id TEXT NOT NULL,
                user_id TEXT NOT NULL,
                inputs TEXT NOT NULL,
                model TEXT NOT NULL,
                temperature REAL,
                output TEXT NOT NULL,
                error TEXT,
                input_tokens INTEGER NOT NULL DEFAULT 0,
                output_tokens INTEGER NOT NULL DEFAULT 0,
                cost_nanos INTEGER NOT NULL DEFAULT 0,
                latency_ms INTEGER NOT NULL DEFAULT 0,
                created_at TEXT NOT NULL
            )
            """,
        "CREATE INDEX prompt_runs_version ON prompt_runs (version_id)",
        """
            CREATE TABLE prompt_ratings (
                run_id INTEGER NOT NULL REFERENCES prompt_runs (id),
                user_id TEXT NOT NULL,
                rating INTEGER NOT NULL CHECK (rating BETWEEN 1 AND 5),
                comment TEXT NOT NULL DEFAULT '',
                rated_at TEXT NOT NULL,
                PRIMARY KEY (run_id, user_id)
            )
            """,
        # Per-channel persona (system prompt) and model. A conversation copies the persona when it
        # starts, so changing it affects new conversations only.
        """
            CREATE TABLE channel_settings (
                platform TEXT NOT NULL,
                team_id TEXT NOT NULL,
                channel_id TEXT NOT NULL,
                persona TEXT,
                persona_source TEXT,
                model TEXT,
                updated_by TEXT NOT NULL,
                updated_at TEXT NOT NULL,
                PRIMARY KEY (platform, team_id, channel_id)
            ) WITHOUT ROWID
            """,
        "ALTER TABLE conversations ADD COLUMN system_prompt TEXT",
    ),
    Migration(
        "m006_message_vectors",
        # Semantic memory. Every message waits (embed_state 0) for the background embedder, which
        # claims a batch for a while (embed_claimed_until) so a crash only delays it. Vectors are
        # unit-length float32, the team and channel copied beside them so a scan filters on one index.
        "ALTER TABLE messages ADD COLUMN embed_state INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE messages ADD COLUMN embed_claimed_until TEXT",
        "CREATE INDEX messages_embed_pending ON messages (id) WHERE embed_state = 0",
        """
            CREATE TABLE message_vectors (
                message_id INTEGER PRIMARY KEY REFERENCES messages (id) ON DELETE CASCADE,
                conversation_id INTEGER NOT NULL,
                platform TEXT NOT NULL,
                team_id TEXT NOT NULL,
                channel_id TEXT NOT NULL,
                created_at TEXT NOT NULL,
                model TEXT NOT NULL,
                vector BLOB NOT NULL
            )
            """,
        "CREATE INDEX message_vectors_team ON message_vectors (platform, team_id, model, message_id)",
        "CREATE INDEX message_vectors_conversation ON message_vectors (conversation_id, message_id)",
        "CREATE INDEX message_vectors_model ON message_vectors (model)",  # finds a changed model
    ),
    # PostgreSQL's turn leases (several processes on one database). A SQLite deployment is one bot
    # process whose turn lock is a no-op, so there is nothing to create; the name keeps both lists alike.
    Migration("m007_turn_leases"),
    Migration(
        "security_reply_links",
        # A reply names the question it answers (deleting the question deletes it, and its vector with it), so
        # /forget and platform deletions never infer a reply from message order. Existing replies are linked to
        # the message right before them when that is a question (turns never interleave in a conversation).
        "ALTER TABLE messages ADD COLUMN reply_to INTEGER REFERENCES messages (id) ON DELETE CASCADE",
        f"UPDATE messages SET reply_to = ({_PREVIOUS}) WHERE role = 'assistant'"
        f" AND (SELECT p.role FROM messages p WHERE p.id = ({_PREVIOUS})) = 'user'",
        "CREATE INDEX messages_reply_to ON messages (reply_to) WHERE reply_to IS NOT NULL",
        "CREATE INDEX messages_platform_message ON messages (platform_message_id) WHERE platform_message_id <> ''",
    ),
    Migration(
        "multimodal_message_images",
        # Images a message showed the model (already scaled to what it reads), so a follow-up in the
        # thread still sees them; deleted with their message (/forget, a platform deletion).
        """
            CREATE TABLE message_images (
                message_id INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
                position INTEGER NOT NULL,
                name TEXT NOT NULL,
                media_type TEXT NOT NULL,
                data BLOB NOT NULL,
                width INTEGER NOT NULL,
                height INTEGER NOT NULL,
                detail TEXT NOT NULL,
                tokens INTEGER NOT NULL,
                PRIMARY KEY (message_id, position)
            ) WITHOUT ROWID
            """,
    ),
    Migration(
        # The web dashboard's one-time links and sessions (storage/sql/signins.py), by their secrets' digests.
        "dashboard_signins",
        """
            CREATE TABLE dashboard_links (
                digest TEXT PRIMARY KEY, platform TEXT NOT NULL, team_id TEXT NOT NULL, user_id TEXT NOT NULL,
                display_name TEXT NOT NULL, is_admin INTEGER NOT NULL, expires_at TEXT NOT NULL
            ) WITHOUT ROWID
            """,
        "CREATE INDEX dashboard_links_expiry ON dashboard_links (expires_at)",
        """
            CREATE TABLE dashboard_sessions (
                digest TEXT PRIMARY KEY, platform TEXT NOT NULL, team_id TEXT NOT NULL, user_id TEXT NOT NULL,
                display_name TEXT NOT NULL, is_admin INTEGER NOT NULL, created_at TEXT NOT NULL,
                expires_at TEXT NOT NULL
            ) WITHOUT ROWID
            """,
        "CREATE INDEX dashboard_sessions_expiry ON dashboard_sessions (expires_at)",
    ),
    Migration(
        "money_reservation_sent",
        # When a reservation's request went to the provider (NULL: never sent, so a crash releases it),
        # and whether a settled cost is an estimate (a worst case charged for a call cut by a crash).
        "ALTER TABLE usage_ledger ADD COLUMN sent_at TEXT",
        "ALTER TABLE usage_ledger ADD COLUMN estimated INTEGER NOT NULL DEFAULT 0",
    ),
    Migration(
        "money_user_in_flight",
        # One row per message being handled, per user, so MAX_USER_IN_FLIGHT holds across processes.
        # A lease: renewed while the message runs, ignored once expired (a crashed holder's lapses).
        """
            CREATE TABLE user_in_flight (
                id INTEGER PRIMARY KEY,
                platform TEXT NOT NULL,
                team_id TEXT NOT NULL,
                user_id TEXT NOT NULL,
                holder TEXT NOT NULL,
                expires_at TEXT NOT NULL
            )
            """,
        "CREATE INDEX user_in_flight_user ON user_in_flight (platform, team_id, user_id)",
    ),
    Migration(
        "memory_embedding_sizes",
        # The vector size a server really returns for a model and a requested EMBEDDING_DIMENSIONS (0: none
        # asked). Servers that ignore `dimensions` return another size; remembered, the vectors keep their key
        # across restarts and processes instead of being embedded (and paid for) again at every start.
        """
            CREATE TABLE embedding_sizes (
                model TEXT NOT NULL,
                requested INTEGER NOT NULL,
                size INTEGER NOT NULL,
                learned_at TEXT NOT NULL,
                PRIMARY KEY (model, requested)
            ) WITHOUT ROWID
            """,
    ),
    Migration(
        "turn_cost_in_flight",
        # A SQLite deployment is one process: its per-user in-flight counts live in memory (storage/sqlite/ledger.py).
        "DROP TABLE user_in_flight",
    ),
    Migration(
        "turn_cost_image_counts",
        # How many images each message carries, so a window of text reads no image table.
        "ALTER TABLE messages ADD COLUMN images INTEGER NOT NULL DEFAULT 0",
        "UPDATE messages SET images = (SELECT count(*) FROM message_images i WHERE i.message_id = messages.id)"
        " WHERE id IN (SELECT message_id FROM message_images)",
    ),
    Migration(
        "tools_reasoning_effort",
        # /model set <model> effort=low|medium|high: the channel's reasoning effort (NULL: the model's default).
        "ALTER TABLE channel_settings ADD COLUMN reasoning_effort TEXT",
    ),
    Migration(
        "team_tools_channels",
        # Which MCP servers each channel turned on (storage/sql/tool_servers.py: one DDL for both databases).
        CREATE_CHANNEL_TOOL_SERVERS,
    ),
    Migration(
        "team_tools_audit",
        # Every MCP tool call, for the audit (storage/sql/tool_servers.py: one DDL for both databases).
        *CREATE_TOOL_CALLS,
    ),
    Migration(
        "tools_search_quota",
        # Web searches as a ledger unit (kind 'search', one `searches` per call) with a daily limit per user
        # (metric 'daily_searches'). SQLite cannot alter a CHECK, so the two tables that name the allowed kinds
        # and metrics are rebuilt (dropping usage_ledger drops its triggers: they are made again, counting
        # searches too; usage_totals keeps its rows, their searches starting at 0).
        """
            CREATE TABLE usage_ledger_new (
                id INTEGER PRIMARY KEY,
                platform TEXT NOT NULL,
                team_id TEXT NOT NULL,
                user_id TEXT NOT NULL,
                channel_id TEXT NOT NULL DEFAULT '',
                kind TEXT NOT NULL CHECK (kind IN ('chat', 'image', 'audio', 'embedding', 'search')),
                model TEXT NOT NULL,
                state TEXT NOT NULL CHECK (state IN ('reserved', 'settled', 'released')),
                cost_nanos INTEGER NOT NULL CHECK (cost_nanos >= 0),
                input_tokens INTEGER NOT NULL DEFAULT 0,
                cached_tokens INTEGER NOT NULL DEFAULT 0,
                output_tokens INTEGER NOT NULL DEFAULT 0,
                images INTEGER NOT NULL DEFAULT 0,
                audio_ms INTEGER NOT NULL DEFAULT 0,
                user_day TEXT NOT NULL,
                team_month TEXT NOT NULL,
                created_at TEXT NOT NULL,
                settled_at TEXT,
                expires_at TEXT NOT NULL,
                holder TEXT NOT NULL DEFAULT '',
                sent_at TEXT,
                estimated INTEGER NOT NULL DEFAULT 0,
                searches INTEGER NOT NULL DEFAULT 0
            )
            """,
        f"INSERT INTO usage_ledger_new ({_LEDGER_COLUMNS}) SELECT {_LEDGER_COLUMNS} FROM usage_ledger",
        "DROP TABLE usage_ledger",
        "ALTER TABLE usage_ledger_new RENAME TO usage_ledger",
        "CREATE INDEX usage_ledger_reserved ON usage_ledger (expires_at) WHERE state = 'reserved'",
        "CREATE INDEX usage_ledger_team_time ON usage_ledger (team_id, created_at)",
        "ALTER TABLE usage_totals ADD COLUMN searches INTEGER NOT NULL DEFAULT 0",
        """
            CREATE TRIGGER usage_ledger_insert AFTER INSERT ON usage_ledger BEGIN
                INSERT INTO usage_totals (team_id, scope, subject, period, cost_nanos, images, audio_ms, searches)
                VALUES (NEW.team_id, 'user', NEW.user_id, NEW.user_day, NEW.cost_nanos, NEW.images, NEW.audio_ms,
                        NEW.searches),
                       (NEW.team_id, 'team', '', NEW.team_month, NEW.cost_nanos, NEW.images, NEW.audio_ms,
                        NEW.searches)
                ON CONFLICT (team_id, scope, subject, period) DO UPDATE SET
                    cost_nanos = cost_nanos + excluded.cost_nanos,
                    images = images + excluded.images,
                    audio_ms = audio_ms + excluded.audio_ms,
                    searches = searches + excluded.searches;
            END
            """,
        """
            CREATE TRIGGER usage_ledger_update AFTER UPDATE OF cost_nanos, images, audio_ms, searches ON usage_ledger
            BEGIN
                UPDATE usage_totals SET
                    cost_nanos = cost_nanos + NEW.cost_nanos - OLD.cost_nanos,
                    images = images + NEW.images - OLD.images,
                    audio_ms = audio_ms + NEW.audio_ms - OLD.audio_ms,
                    searches = searches + NEW.searches - OLD.searches
                WHERE team_id = NEW.team_id AND (
                    (scope = 'user' AND subject = NEW.user_id AND period = NEW.user_day)
                    OR (scope = 'team' AND subject = '' AND period = NEW.team_month));
            END
            """,
        """
            CREATE TABLE quota_limits_new (
                team_id TEXT NOT NULL,
                subject TEXT NOT NULL,
                metric TEXT NOT NULL CHECK (
                    metric IN ('daily_usd', 'monthly_usd', 'daily_images', 'daily_audio', 'daily_searches')
                ),
                value INTEGER CHECK (value >= 0),
                PRIMARY KEY (team_id, subject, metric)
            ) WITHOUT ROWID
            """,
        "INSERT INTO quota_limits_new (team_id, subject, metric, value) SELECT team_id, subject, metric, value"
        " FROM quota_limits",
        "DROP TABLE quota_limits",
        "ALTER TABLE quota_limits_new RENAME TO quota_limits",
    ),
    Migration(
        "tools_reasoning_tokens",
        # A reasoning model's thinking, of output_tokens (priced with them at the output price), kept apart
        # so /usage can say how much of the output was reasoning.
        "ALTER TABLE usage_ledger ADD COLUMN reasoning_tokens INTEGER NOT NULL DEFAULT 0",
    ),
    Migration(
        "digests_channel_schedules",
        # /digest: a channel's catch-up posted on a schedule (storage/sql/digests.py). Times are fixed-width
        # UTC text; last_run is the scheduled time of the last run claimed, previous_run the one before.
        """
            CREATE TABLE channel_digests (
                platform TEXT NOT NULL, team_id TEXT NOT NULL, channel_id TEXT NOT NULL,
                period TEXT NOT NULL, weekday INTEGER, at_time TEXT NOT NULL,
                set_by TEXT NOT NULL, set_at TEXT NOT NULL, last_run TEXT, previous_run TEXT,
                PRIMARY KEY (platform, team_id, channel_id)
            ) WITHOUT ROWID
            """,
    ),
    Migration(
        "catchup_assistant_threads",
        # Slack's assistant pane: the channel a person views beside each assistant thread, and whether the
        # thread has its title (storage/sql/assistant_threads.py: one DDL for both databases).
        CREATE_ASSISTANT_THREADS,
    ),
    Migration(
        "digests_retries",
        # A digest whose post failed is retried at the next scheduler passes (bot/digests.py): failures counts
        # the failed attempts at last_run's slot, retry_at (fixed-width UTC text) is when the next may start
        # (NULL: none waiting; the run was posted, is being posted, or was given up).
        "ALTER TABLE channel_digests ADD COLUMN failures INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE channel_digests ADD COLUMN retry_at TEXT",
    ),
    Migration(
        "digests_unposted_text",
        # A digest made but whose post failed keeps its text while its retry waits (bot/digests.py), so the retry
        # posts it without reading the channel or calling the model again. NULL once posted, given up, or
        # dropped by /forget in the team or a deletion or edit in the channel (the retry then summarizes again).
        "ALTER TABLE channel_digests ADD COLUMN unposted_text TEXT",
    ),
    Migration(
        "ledger_team_totals_spread",
        # PostgreSQL spreads a team's month total over several rows, so concurrent calls do not queue on one
        # row's lock (see storage/postgres/migrations.py); readers sum a period's rows. SQLite runs one writer
        # at a time, so its totals keep one row per period: nothing changes here.
    ),
    # PostgreSQL's running token total per conversation, which lets a message's insert there be exact without a
    # lock taken first. SQLite's writing statement holds the file's write lock before it reads, so each message
    # reads its running total from the messages before it: nothing to add; the name keeps both lists alike.
    Migration("turn_cost_conversation_totals"),
]
