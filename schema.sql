-- flowsnap schema, version 1.
--
-- Applied once by the migration step (src/db/migrate.rs), which then sets PRAGMA user_version.
-- Later versions append migrations in src/db/migrate.rs (version 2: the index flows_head).
--
-- Every table has an integer primary key `pk` used for joins and foreign keys, and (where the API
-- shows one) a public `id`: 24 lowercase hex characters, random. Times are milliseconds since the
-- Unix epoch, UTC.

CREATE TABLE contracts (
    pk          INTEGER PRIMARY KEY,
    id          TEXT    NOT NULL UNIQUE,
    name        TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE users (
    pk            INTEGER PRIMARY KEY,
    id            TEXT    NOT NULL UNIQUE,
    email         TEXT    NOT NULL UNIQUE COLLATE NOCASE,
    first_name    TEXT    NOT NULL DEFAULT '',
    last_name     TEXT    NOT NULL DEFAULT '',
    -- argon2id PHC strings. A NULL password means "no password login".
    password_hash TEXT,
    api_key_hash  TEXT    NOT NULL,
    tenant_admin  INTEGER NOT NULL DEFAULT 0 CHECK (tenant_admin IN (0, 1)),
    registered    INTEGER NOT NULL,
    last_login    INTEGER
);

CREATE TABLE workspaces (
    pk          INTEGER PRIMARY KEY,
    id          TEXT    NOT NULL UNIQUE,
    contract_pk INTEGER NOT NULL REFERENCES contracts(pk),
    name        TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);

CREATE TABLE members (
    workspace_pk INTEGER NOT NULL REFERENCES workspaces(pk) ON DELETE CASCADE,
    user_pk      INTEGER NOT NULL REFERENCES users(pk) ON DELETE CASCADE,
    role         TEXT    NOT NULL CHECK (role IN ('owner', 'admin', 'integrator', 'guest')),
    added_at     INTEGER NOT NULL,
    PRIMARY KEY (workspace_pk, user_pk)
) WITHOUT ROWID;
CREATE INDEX members_by_user ON members (user_pk, workspace_pk);

CREATE TABLE flows (
    pk                  INTEGER PRIMARY KEY,
    id                  TEXT    NOT NULL UNIQUE,
    workspace_pk        INTEGER NOT NULL REFERENCES workspaces(pk) ON DELETE CASCADE,
    -- Public id of the creator; kept as text so the relationship survives the user's deletion.
    creator_id          TEXT    NOT NULL,
    name                TEXT    NOT NULL,
    description         TEXT,
    type                TEXT    NOT NULL CHECK (type IN ('ordinary', 'long_running')),
    status              TEXT    NOT NULL CHECK (status IN ('active', 'inactive')),
    default_mapper_type TEXT    NOT NULL,
    cron                TEXT,
    -- The graph document as JSON text, edges with their server-assigned ids. The steps table
    -- below is derived from it in the same transaction and is what lookups use.
    graph               TEXT    NOT NULL,
    nodes_config        TEXT    NOT NULL,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL,
    last_start_time     INTEGER,
    last_stop_time      INTEGER
);
CREATE INDEX flows_by_workspace ON flows (workspace_pk, pk);
CREATE INDEX flows_by_workspace_name ON flows (workspace_pk, name COLLATE NOCASE);

-- One row per node of a flow's graph: "does step X exist in flow F" and "F's steps in order" are
-- single index lookups.
CREATE TABLE steps (
    flow_pk   INTEGER NOT NULL REFERENCES flows(pk) ON DELETE CASCADE,
    step_id   TEXT    NOT NULL,
    position  INTEGER NOT NULL,
    PRIMARY KEY (flow_pk, step_id)
) WITHOUT ROWID;
CREATE INDEX steps_in_order ON steps (flow_pk, position);

-- A step's persistent JSON value, stored as the compact JSON text the client sent (never a
-- re-encoded float tree). Deleting the step deletes its snapshot. A rowid table (not WITHOUT
-- ROWID) so that a value of up to 8 KB sits in its row on an 8 KiB page instead of overflow pages.
CREATE TABLE snapshots (
    pk         INTEGER PRIMARY KEY,
    flow_pk    INTEGER NOT NULL,
    step_id    TEXT    NOT NULL,
    value      TEXT    NOT NULL,
    revision   INTEGER NOT NULL CHECK (revision >= 1),
    -- Database-wide counter taken at creation: with the revision it makes an ETag that never
    -- repeats for a step, even after a delete and a re-create.
    generation INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (flow_pk, step_id),
    FOREIGN KEY (flow_pk, step_id) REFERENCES steps (flow_pk, step_id) ON DELETE CASCADE
);

CREATE TABLE counters (
    name  TEXT    PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO counters (name, value) VALUES ('snapshot_generation', 0);
