-- Quota enforcement (RFC 9208; docs/quota.md). Keep in step with ../sqlite/0005_quota_usage.sql.
--
-- Per-account usage counters, changed in the same transaction as the messages they count
-- (insert, copy, expunge, move, mailbox deletion) while that transaction holds the account
-- row lock: a write that would take the account over quota_storage / quota_messages is
-- refused before it commits, also when several dataplane processes share this database.

ALTER TABLE accounts ADD COLUMN used_messages BIGINT NOT NULL DEFAULT 0; -- messages, all folders
ALTER TABLE accounts ADD COLUMN used_storage  BIGINT NOT NULL DEFAULT 0; -- octets (sum of RFC822.SIZE)

-- Backfill from the messages already stored.
UPDATE accounts SET
    used_messages = (SELECT COUNT(*) FROM messages m JOIN mailboxes b ON m.mailbox_id = b.id
                     WHERE b.account_id = accounts.id),
    used_storage  = (SELECT COALESCE(SUM(m.size), 0) FROM messages m
                     JOIN mailboxes b ON m.mailbox_id = b.id WHERE b.account_id = accounts.id);

-- Tenant-wide limits (Tenant spec.quota.storage): the total of used_storage over the
-- tenant's accounts. The row lock serialises the writes that check it.
CREATE TABLE tenants (
    name          TEXT   COLLATE "C" NOT NULL PRIMARY KEY,
    quota_storage BIGINT                                   -- octets; NULL means no limit
);
CREATE INDEX accounts_tenant ON accounts (tenant);
