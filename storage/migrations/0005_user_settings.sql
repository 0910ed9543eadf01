-- 0005_user_settings: each user's own defaults for /pokemon (`/settings`), and which one-time
-- notices a user has been shown (the first picture in a server points to `/about`).
--
-- A column left NULL means "no default of my own": /pokemon then uses the server's. The
-- default negative prompt is user text: `/privacy` lists it and deleting a user's data
-- deletes the row. Notices are remembered per user and server, and deleted with the user.

CREATE TABLE user_settings (
    user_id    INTEGER PRIMARY KEY,
    size       TEXT    CHECK (size IN ('square', 'portrait', 'landscape')),
    count      INTEGER CHECK (count BETWEEN 1 AND 4),
    translate  INTEGER CHECK (translate IN (0, 1)),
    negative   TEXT    CHECK (length(negative) <= 1000),
    updated_at REAL    NOT NULL
) STRICT;

CREATE TABLE notices_shown (
    user_id  INTEGER NOT NULL,
    guild_id INTEGER NOT NULL,
    notice   TEXT    NOT NULL CHECK (length(notice) BETWEEN 1 AND 40),
    shown_at REAL    NOT NULL,
    PRIMARY KEY (user_id, guild_id, notice)
) STRICT;

-- /history: a user's delivered pictures in one server, newest first.
CREATE INDEX jobs_user_guild_done ON jobs (user_id, guild_id, created_at)
    WHERE state = 'done' AND result_message_id IS NOT NULL;
