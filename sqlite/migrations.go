package sqlite

// migrations is the schema, one step per entry. Entry i is schema version
// i+1; schema_migrations records the versions a file has. Never edit an
// entry that has shipped: append a new one.
var migrations = []string{
	`
CREATE TABLE users (
	email      TEXT PRIMARY KEY COLLATE NOCASE,
	created_at TEXT NOT NULL
);

CREATE TABLE tokens (
	hash       BLOB PRIMARY KEY,
	email      TEXT NOT NULL COLLATE NOCASE REFERENCES users (email),
	created_at TEXT NOT NULL,
	revoked_at TEXT
);
CREATE INDEX tokens_email ON tokens (email);

CREATE TABLE dcrs (
	id           TEXT PRIMARY KEY,
	canonical    BLOB NOT NULL,
	name         TEXT NOT NULL,
	owner        TEXT NOT NULL,
	published_by TEXT NOT NULL,
	published_at TEXT NOT NULL
);

-- dcr_members lists who can read each clean room (Definition.Members), so
-- that listing a user's rooms is an index lookup.
CREATE TABLE dcr_members (
	email  TEXT NOT NULL COLLATE NOCASE,
	dcr_id TEXT NOT NULL REFERENCES dcrs (id),
	PRIMARY KEY (email, dcr_id)
) WITHOUT ROWID;

CREATE TABLE blobs (
	hash        TEXT PRIMARY KEY,
	size        INTEGER NOT NULL,
	uploaded_by TEXT NOT NULL,
	uploaded_at TEXT NOT NULL
);

CREATE TABLE datasets (
	dcr_id        TEXT NOT NULL REFERENCES dcrs (id),
	node          TEXT NOT NULL,
	manifest_hash TEXT NOT NULL REFERENCES blobs (hash),
	size          INTEGER NOT NULL,
	sealed_key    BLOB NOT NULL,
	published_by  TEXT NOT NULL,
	published_at  TEXT NOT NULL,
	PRIMARY KEY (dcr_id, node)
) WITHOUT ROWID;
CREATE INDEX datasets_manifest_hash ON datasets (manifest_hash);

CREATE TABLE jobs (
	id          TEXT PRIMARY KEY,
	dcr_id      TEXT NOT NULL REFERENCES dcrs (id),
	node        TEXT NOT NULL,
	created_by  TEXT NOT NULL,
	state       TEXT NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
	error       TEXT NOT NULL DEFAULT '',
	warnings    TEXT, -- JSON array of strings, NULL when there are none
	sealed_key  BLOB,
	result_size INTEGER NOT NULL DEFAULT 0,
	has_logs    INTEGER NOT NULL DEFAULT 0,
	created_at  TEXT NOT NULL,
	started_at  TEXT,
	finished_at TEXT
);
CREATE INDEX jobs_node ON jobs (dcr_id, node, created_at);
-- jobs_queue serves ClaimJob: the queued jobs in creation order.
CREATE INDEX jobs_queue ON jobs (created_at) WHERE state = 'queued';
`,
	`
-- drafts are clean rooms being written, seen by their owner only.
CREATE TABLE drafts (
	id           TEXT PRIMARY KEY,
	owner        TEXT NOT NULL COLLATE NOCASE,
	definition   BLOB NOT NULL, -- JSON, possibly incomplete
	published_id TEXT,          -- the clean room it became; the draft is then frozen
	created_at   TEXT NOT NULL,
	updated_at   TEXT NOT NULL
);
CREATE INDEX drafts_owner ON drafts (owner, updated_at);
`,
	`
-- validation_job is the job that checks a table dataset against its schema.
ALTER TABLE datasets ADD COLUMN validation_job TEXT NOT NULL DEFAULT '';
`,
	`
-- Test data attached to a draft's data nodes, stored encrypted as blobs.
CREATE TABLE draft_test_datasets (
	draft_id   TEXT NOT NULL REFERENCES drafts (id) ON DELETE CASCADE,
	node       TEXT NOT NULL,
	size       INTEGER NOT NULL,
	sealed_key BLOB NOT NULL,
	PRIMARY KEY (draft_id, node)
) WITHOUT ROWID;

-- Runs of "test all computations"; nodes is the JSON report.
CREATE TABLE draft_tests (
	id          TEXT PRIMARY KEY,
	draft_id    TEXT NOT NULL REFERENCES drafts (id) ON DELETE CASCADE,
	state       TEXT NOT NULL CHECK (state IN ('running', 'done')),
	nodes       TEXT NOT NULL DEFAULT '[]',
	error       TEXT NOT NULL DEFAULT '',
	created_at  TEXT NOT NULL,
	finished_at TEXT
);
CREATE INDEX draft_tests_draft ON draft_tests (draft_id, created_at);
`,
	`
-- The audit log of each clean room, chained by hash (audit.go).
CREATE TABLE audit (
	dcr_id TEXT NOT NULL REFERENCES dcrs (id),
	seq    INTEGER NOT NULL,
	at     TEXT NOT NULL,
	actor  TEXT NOT NULL,
	action TEXT NOT NULL,
	node   TEXT NOT NULL DEFAULT '',
	detail TEXT NOT NULL DEFAULT '',
	prev   TEXT NOT NULL,
	hash   TEXT NOT NULL,
	PRIMARY KEY (dcr_id, seq)
) WITHOUT ROWID;
`,
	`
-- Browser sessions of the web UI, by the SHA-256 of their id (session.go).
CREATE TABLE sessions (
	id_hash    BLOB PRIMARY KEY,
	email      TEXT NOT NULL COLLATE NOCASE REFERENCES users (email),
	token_hash BLOB NOT NULL,
	expires_at TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX sessions_email ON sessions (email, expires_at);
CREATE INDEX sessions_expires ON sessions (expires_at);
`,
	`
-- When the analyst deleted a job's result and logs (DeleteJobResult), and
-- the line of its logs its error quotes, kept apart as the logs are.
ALTER TABLE jobs ADD COLUMN result_deleted_at TEXT;
ALTER TABLE jobs ADD COLUMN error_log TEXT NOT NULL DEFAULT '';
`,
}
