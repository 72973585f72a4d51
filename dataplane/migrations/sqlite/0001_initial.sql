-- MCP metadata schema, SQLite dialect (keep in step with ../postgres/0001_initial.sql).
-- Only INTEGER, TEXT and BLOB declared types: the sqlx Any driver maps exactly those.

CREATE TABLE accounts (
    id                INTEGER PRIMARY KEY,
    tenant            TEXT    NOT NULL,
    address           TEXT    NOT NULL UNIQUE,          -- lower-case
    password_hash     TEXT    NOT NULL,
    active            INTEGER NOT NULL,                 -- 0/1
    spec_digest       TEXT    NOT NULL,
    last_uid_validity INTEGER NOT NULL DEFAULT 0        -- highest UIDVALIDITY handed out
);

CREATE TABLE mailboxes (
    id             INTEGER PRIMARY KEY,
    account_id     INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    name           TEXT    NOT NULL,
    uid_validity   INTEGER NOT NULL,
    uid_next       INTEGER NOT NULL,
    highest_modseq INTEGER NOT NULL,
    special_use    TEXT,
    UNIQUE (account_id, name)
);

CREATE TABLE messages (
    mailbox_id     INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
    uid            INTEGER NOT NULL,
    modseq         INTEGER NOT NULL,
    flags          TEXT    NOT NULL,                    -- space-separated, normalised
    seen           INTEGER NOT NULL,                    -- 1 when flags has \Seen
    deleted        INTEGER NOT NULL,                    -- 1 when flags has \Deleted
    internal_date  INTEGER NOT NULL,                    -- unix seconds
    tz_offset      INTEGER NOT NULL,                    -- minutes east of UTC
    size           INTEGER NOT NULL,                    -- RFC822.SIZE, octets
    blob_id        TEXT    NOT NULL,                    -- SHA-256 hex
    envelope       BLOB    NOT NULL,
    body           BLOB    NOT NULL,
    bodystructure  BLOB    NOT NULL,
    PRIMARY KEY (mailbox_id, uid)
);
CREATE INDEX messages_modseq ON messages (mailbox_id, modseq);
CREATE INDEX messages_blob ON messages (blob_id);

CREATE TABLE expunged (
    mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
    uid        INTEGER NOT NULL,
    modseq     INTEGER NOT NULL,
    PRIMARY KEY (mailbox_id, uid)
);
CREATE INDEX expunged_modseq ON expunged (mailbox_id, modseq);

CREATE TABLE subscriptions (
    account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    name       TEXT    NOT NULL,
    PRIMARY KEY (account_id, name)
);
