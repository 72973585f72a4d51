-- Cross-replica change notification (docs/storage.md). Every change to a mailbox's messages
-- updates its row (UIDNEXT, HIGHESTMODSEQ), and creation, rename and deletion touch it too:
-- a row trigger sends NOTIFY mcp_mailbox_changes, '<origin> <mailbox id>' in the same
-- transaction, delivered when it commits (identical payloads in one transaction are sent
-- once). <origin> is the session setting mcp.origin each dataplane process sets on its
-- connections, so a process can skip its own changes. The no-op UPDATE that only takes the
-- row lock changes nothing and notifies nobody. SQLite has no counterpart: one process.

CREATE FUNCTION mcp_notify_mailbox_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(
        'mcp_mailbox_changes',
        coalesce(current_setting('mcp.origin', true), '') || ' ' ||
            CASE WHEN TG_OP = 'DELETE' THEN OLD.id ELSE NEW.id END
    );
    RETURN NULL;
END
$$;

CREATE TRIGGER mailboxes_notify_change
    AFTER UPDATE ON mailboxes
    FOR EACH ROW
    WHEN (OLD.* IS DISTINCT FROM NEW.*)
    EXECUTE FUNCTION mcp_notify_mailbox_change();

CREATE TRIGGER mailboxes_notify_create_delete
    AFTER INSERT OR DELETE ON mailboxes
    FOR EACH ROW
    EXECUTE FUNCTION mcp_notify_mailbox_change();
