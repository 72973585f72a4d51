-- API keys of the REST facade (docs/rest-api.md). Times are Unix seconds (UTC).
CREATE TABLE api_keys (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused
    name          TEXT    NOT NULL UNIQUE,
    prefix        TEXT    NOT NULL UNIQUE,            -- lookup prefix, not secret
    hash          TEXT    NOT NULL,                   -- hex SHA-256 of the whole key
    role          TEXT    NOT NULL CHECK (role IN ('admin', 'tenant-admin', 'viewer')),
    tenant        TEXT,                               -- set iff role = 'tenant-admin'
    active        INTEGER NOT NULL,                   -- 0/1
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER,                            -- NULL: never
    last_used_at  INTEGER,                            -- written at most once a minute
    CHECK ((role = 'tenant-admin') = (tenant IS NOT NULL))
);
CREATE INDEX api_keys_tenant ON api_keys (tenant);
