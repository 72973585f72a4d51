-- Storage for the mail processing pipeline (issue 4). Keep in step with
-- ../sqlite/0003_pipeline_storage.sql.

-- The Mailbox's metadata.labels (a JSON object of strings, matched by selector-scoped
-- Pipelines) and its spec.pipelineRef.name (NULL: the tenant's pipelines apply).
ALTER TABLE accounts ADD COLUMN labels TEXT NOT NULL DEFAULT '{}';
ALTER TABLE accounts ADD COLUMN pipeline_ref TEXT;

-- The Mailbox's spec.aliases: LMTP routes RCPT TO by primary address or alias. Unique per
-- store; an alias is never another account's primary address (checked on write).
CREATE TABLE account_addresses (
    address    TEXT    NOT NULL PRIMARY KEY,            -- lower-case
    account_id BIGINT  NOT NULL REFERENCES accounts(id) ON DELETE CASCADE
);
CREATE INDEX account_addresses_account ON account_addresses (account_id);

-- SetMetadata results of the pipeline, a JSON object of strings; NULL when none.
ALTER TABLE messages ADD COLUMN metadata TEXT;

-- Messages held by the pipeline, as received (before any mutation). The row is written
-- after the blob; release moves it into a mailbox in one transaction.
CREATE TABLE quarantine (
    id            TEXT    COLLATE "C" NOT NULL PRIMARY KEY,        -- 44 hex: ms timestamp + 128 random bits
    tenant        TEXT    NOT NULL,
    account_id    BIGINT  REFERENCES accounts(id) ON DELETE SET NULL, -- NULL: account deleted
    recipient     TEXT    NOT NULL,                     -- lower-case, as addressed
    mail_from     TEXT    NOT NULL,                     -- envelope sender, '' for <>
    stage         TEXT    NOT NULL,                     -- deliver | append | post-store
    folder        TEXT    NOT NULL,                     -- where the message was headed
    reason        TEXT    NOT NULL,
    pipeline      TEXT    NOT NULL,
    step          TEXT    NOT NULL,
    revision      TEXT    NOT NULL,
    blob_id       TEXT    NOT NULL,                     -- SHA-256 hex of the original
    size          BIGINT  NOT NULL,                     -- octets
    flags         TEXT    NOT NULL,                     -- space-separated, normalised
    internal_date BIGINT  NOT NULL,                     -- unix seconds
    tz_offset     BIGINT  NOT NULL,                     -- minutes east of UTC
    created_at    BIGINT  NOT NULL                      -- unix milliseconds
);
CREATE INDEX quarantine_tenant_account ON quarantine (tenant, account_id, id);
CREATE INDEX quarantine_created ON quarantine (created_at);
CREATE INDEX quarantine_blob ON quarantine (blob_id);
