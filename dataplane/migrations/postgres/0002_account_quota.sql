-- Mailbox quota as provisioned (Mailbox spec.quota); NULL means no limit. Enforcement comes
-- later; the columns keep what was asked for. Keep in step with ../sqlite/0002_account_quota.sql.

ALTER TABLE accounts ADD COLUMN quota_storage BIGINT;   -- octets (sum of RFC822.SIZE)
ALTER TABLE accounts ADD COLUMN quota_messages BIGINT;  -- messages, all folders
