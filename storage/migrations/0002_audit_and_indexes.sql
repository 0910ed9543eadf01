-- 0002_audit_and_indexes: the rate-limit audit log, and indexes for the bot's hot lookups.
--
-- Every change to a limit (set, clear, guild default) records who made it, when, and the old
-- and new values. Rows are kept when a user's data is deleted; their id is replaced by NULL.

CREATE TABLE limit_audit (
    id             INTEGER PRIMARY KEY,
    guild_id       INTEGER NOT NULL,
    actor_id       INTEGER,
    action         TEXT    NOT NULL
                   CHECK (action IN ('set_user', 'clear_user', 'set_default', 'clear_default')),
    target_user_id INTEGER,
    old_images     INTEGER,
    old_period     TEXT    CHECK (old_period IN ('hour', 'day')),
    new_images     INTEGER,
    new_period     TEXT    CHECK (new_period IN ('hour', 'day')),
    at             REAL    NOT NULL
) STRICT;

CREATE INDEX limit_audit_guild_at ON limit_audit (guild_id, at);

-- 🔁 reactions look a job up by the message that shows its image.
CREATE INDEX jobs_result_message ON jobs (result_message_id) WHERE result_message_id IS NOT NULL;

-- pending() after a restart and the per-user pending cap read only unfinished rows.
CREATE INDEX jobs_pending ON jobs (user_id, created_at) WHERE state IN ('queued', 'running');

-- statistics per guild over the last N days.
CREATE INDEX jobs_guild_created ON jobs (guild_id, created_at);

-- retention: blanking old prompts scans by age.
CREATE INDEX jobs_created ON jobs (created_at);
