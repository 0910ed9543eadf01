-- 0004_blocklist: words a server's admins refuse in prompts, and the audit of its changes.
--
-- A word is stored exactly as the bot hands it over; the bot normalizes it first (NFKC, case,
-- hiragana/katakana) so one spelling stands for all of them. The audit keeps every add and
-- remove with who did it and when, like limit_audit. When a user's data is deleted their id
-- is replaced by NULL in both tables; the words stay (they are the server's rules).

CREATE TABLE blocklist (
    guild_id INTEGER NOT NULL,
    word     TEXT    NOT NULL CHECK (length(word) BETWEEN 1 AND 100),
    added_by INTEGER,
    added_at REAL    NOT NULL,
    PRIMARY KEY (guild_id, word)
) STRICT;

CREATE TABLE blocklist_audit (
    id       INTEGER PRIMARY KEY,
    guild_id INTEGER NOT NULL,
    actor_id INTEGER,
    action   TEXT    NOT NULL CHECK (action IN ('add', 'remove')),
    word     TEXT    NOT NULL,
    at       REAL    NOT NULL
) STRICT;

CREATE INDEX blocklist_audit_guild_at ON blocklist_audit (guild_id, at);
