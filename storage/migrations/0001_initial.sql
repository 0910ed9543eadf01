-- 0001_initial: jobs (one row per generation) and the two levels of stored rate limits.
--
-- Times are REAL unix seconds in UTC. Discord ids are INTEGER (snowflakes fit in 63 bits).
-- guild_id is NULL for direct messages. A job row is written by admission before the job is
-- queued, so a restart finds every job that was promised to a user.

CREATE TABLE jobs (
    id                     INTEGER PRIMARY KEY,
    user_id                INTEGER NOT NULL,
    guild_id               INTEGER,
    channel_id             INTEGER,
    prompt                 TEXT    NOT NULL,
    negative_prompt        TEXT    NOT NULL DEFAULT '',
    seed                   INTEGER NOT NULL,
    steps                  INTEGER NOT NULL CHECK (steps > 0),
    guidance               REAL    NOT NULL,
    width                  INTEGER NOT NULL CHECK (width > 0),
    height                 INTEGER NOT NULL CHECK (height > 0),
    scheduler              TEXT    NOT NULL,
    locale                 TEXT    NOT NULL DEFAULT 'en',
    state                  TEXT    NOT NULL DEFAULT 'queued'
                           CHECK (state IN ('queued', 'running', 'done', 'failed', 'cancelled')),
    error_code             TEXT,
    -- whose fault a failure was: 'ours' and 'rejected' are refunded (not counted)
    fault                  TEXT    CHECK (fault IN ('ours', 'user', 'rejected')),
    created_at             REAL    NOT NULL,
    started_at             REAL,
    finished_at            REAL,
    interaction_expires_at REAL,
    progress_message_id    INTEGER,
    result_message_id      INTEGER,
    parent_job_id          INTEGER REFERENCES jobs (id) ON DELETE SET NULL,
    reply_to_message_id    INTEGER
) STRICT;

CREATE TABLE guild_limits (
    guild_id   INTEGER PRIMARY KEY,
    images     INTEGER NOT NULL CHECK (images >= 0),
    period     TEXT    NOT NULL CHECK (period IN ('hour', 'day')),
    updated_at REAL    NOT NULL,
    updated_by INTEGER
) STRICT;

CREATE TABLE user_limits (
    guild_id   INTEGER NOT NULL,
    user_id    INTEGER NOT NULL,
    images     INTEGER NOT NULL CHECK (images >= 0),
    period     TEXT    NOT NULL CHECK (period IN ('hour', 'day')),
    updated_at REAL    NOT NULL,
    updated_by INTEGER,
    PRIMARY KEY (guild_id, user_id)
) STRICT;

CREATE INDEX jobs_user_created ON jobs (user_id, created_at);
