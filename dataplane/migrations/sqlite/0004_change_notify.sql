-- Cross-replica change notification is PostgreSQL only (../postgres/0004_change_notify.sql):
-- a SQLite store has one process, which announces its changes in memory. This file keeps
-- the two migration sets numbered alike.
SELECT 1;
