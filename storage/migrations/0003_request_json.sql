-- 0003_request_json: a job carries its generation request as one JSON object.
--
-- The eight columns prompt..scheduler repeated the generator's request type field by field.
-- They become `request`, a JSON object storage does not interpret (prompt, negative_prompt,
-- seed, steps, guidance, width, height, scheduler today; translate, strength, count, ...
-- later), converted to and from the generator's type by the bot. New columns:
--   images        pictures this job makes, and what it counts against the user's quota;
--   outcome       what generation reported when done (seeds, the text actually used, ...),
--                 another JSON object storage does not interpret;
--   cancelled_by  the user who cancelled the job (NULL once that user's data is deleted).
--
-- SQLite cannot add a NOT NULL column without a default, so the table is rebuilt: new
-- table, copy, drop, rename, indexes again. migrate() runs it with foreign keys off and
-- checks them before it commits. The new table refers to `jobs`, its name after the rename.

CREATE TABLE jobs_new (
    id                     INTEGER PRIMARY KEY,
    user_id                INTEGER NOT NULL,
    guild_id               INTEGER,
    channel_id             INTEGER,
    request                TEXT    NOT NULL
                           CHECK (json_valid(request) AND json_type(request) = 'object'),
    images                 INTEGER NOT NULL DEFAULT 1 CHECK (images BETWEEN 1 AND 16),
    locale                 TEXT    NOT NULL DEFAULT 'en',
    state                  TEXT    NOT NULL DEFAULT 'queued'
                           CHECK (state IN ('queued', 'running', 'done', 'failed', 'cancelled')),
    error_code             TEXT,
    -- whose fault a failure was: 'ours' and 'rejected' are refunded (not counted)
    fault                  TEXT    CHECK (fault IN ('ours', 'user', 'rejected')),
    outcome                TEXT
                           CHECK (outcome IS NULL
                                  OR (json_valid(outcome) AND json_type(outcome) = 'object')),
    cancelled_by           INTEGER,
    created_at             REAL    NOT NULL,
    started_at             REAL,
    finished_at            REAL,
    interaction_expires_at REAL,
    progress_message_id    INTEGER,
    result_message_id      INTEGER,
    parent_job_id          INTEGER REFERENCES jobs (id) ON DELETE SET NULL,
    reply_to_message_id    INTEGER
) STRICT;

INSERT INTO jobs_new (
    id, user_id, guild_id, channel_id, request, images, locale, state, error_code, fault,
    outcome, cancelled_by, created_at, started_at, finished_at, interaction_expires_at,
    progress_message_id, result_message_id, parent_job_id, reply_to_message_id
)
SELECT
    id, user_id, guild_id, channel_id,
    json_object('prompt', prompt, 'negative_prompt', negative_prompt, 'seed', seed,
                'steps', steps, 'guidance', guidance, 'width', width, 'height', height,
                'scheduler', scheduler),
    1, locale, state, error_code, fault,
    NULL, NULL, created_at, started_at, finished_at, interaction_expires_at,
    progress_message_id, result_message_id, parent_job_id, reply_to_message_id
FROM jobs;

DROP TABLE jobs;

ALTER TABLE jobs_new RENAME TO jobs;

-- The indexes of 0001 and 0002 went with the old table.
CREATE INDEX jobs_user_created ON jobs (user_id, created_at);

-- 🔁 reactions and buttons look a job up by the message that shows its image.
CREATE INDEX jobs_result_message ON jobs (result_message_id) WHERE result_message_id IS NOT NULL;

-- pending() after a restart and the per-user pending cap read only unfinished rows.
CREATE INDEX jobs_pending ON jobs (user_id, created_at) WHERE state IN ('queued', 'running');

-- statistics per guild over the last N days.
CREATE INDEX jobs_guild_created ON jobs (guild_id, created_at);

-- retention: blanking old prompts scans by age.
CREATE INDEX jobs_created ON jobs (created_at);

-- New: the cancel button finds its job by the message that shows the queue place or progress.
CREATE INDEX jobs_progress_message ON jobs (progress_message_id)
    WHERE progress_message_id IS NOT NULL;
