package cleanroom

import (
	"context"
	"io"
	"time"
)

// User is someone who can call the API.
type User struct {
	Email        string    `json:"email"`
	CreatedAt    time.Time `json:"created_at"`
	ActiveTokens int       `json:"active_tokens"` // tokens not revoked
}

// Blob is an uploaded ciphertext, named by its manifest hash.
type Blob struct {
	Hash       string    `json:"hash"` // lowercase hex SHA-256 of the ciphertext
	Size       int64     `json:"size"`
	UploadedBy string    `json:"uploaded_by"`
	UploadedAt time.Time `json:"uploaded_at"`
}

// BlobKey is the blob-store key of an uploaded dataset ciphertext.
func BlobKey(hash string) string { return "datasets/" + hash }

// Dataset is a blob published to a data node, with its dataset key sealed
// to the enclave and bound to this clean room, node and ciphertext.
type Dataset struct {
	DCRID        string    `json:"dcr_id"`
	Node         string    `json:"node"`
	ManifestHash string    `json:"manifest_hash"`
	Size         int64     `json:"size"`
	SealedKey    []byte    `json:"-"`
	PublishedBy  string    `json:"published_by"`
	PublishedAt  time.Time `json:"published_at"`
	// ValidationJob, for a table node, is the job checking this dataset
	// against the node's columns; its result is the validation report.
	ValidationJob string `json:"validation_job,omitempty"`
}

// Session is a browser session of the web UI, stored so that it outlives
// a restart of the server and holds on every server sharing the store.
// Only the SHA-256 of its id (the cookie) is stored.
type Session struct {
	IDHash    []byte
	Email     string
	TokenHash []byte // of the API token it was made from
	Expires   time.Time
}

// Store keeps the metadata: users, clean rooms, blobs, datasets, jobs,
// browser sessions. It holds no plaintext and no usable key or cookie:
// only hashes of tokens and session ids, and keys sealed to the enclave.
type Store interface {
	// CreateUser adds a user. Returns ECONFLICT if the email is taken.
	CreateUser(ctx context.Context, email string) error
	// AddToken stores the hash of a new token of an existing user. Returns ENOTFOUND if there is no such user.
	AddToken(ctx context.Context, email string, tokenHash []byte) error
	// UserByToken returns the user a live token belongs to. Returns EUNAUTHORIZED for unknown or revoked tokens.
	UserByToken(ctx context.Context, tokenHash []byte) (*User, error)
	// RevokeTokens revokes every token of a user, and ends its sessions,
	// and returns how many tokens were live. Returns ENOTFOUND if there is
	// no such user.
	RevokeTokens(ctx context.Context, email string) (int, error)
	// ListUsers returns all users, by email.
	ListUsers(ctx context.Context) ([]*User, error)

	// CreateSession stores a new session. Returns ECONFLICT if its user
	// already has max sessions that have not expired at now.
	CreateSession(ctx context.Context, s *Session, now time.Time, max int) error
	// FindSession returns a session by the hash of its id, expired or not,
	// while the token it was made from is live (RevokeTokens ends its
	// sessions too). Returns ENOTFOUND.
	FindSession(ctx context.Context, idHash []byte) (*Session, error)
	// DeleteSession forgets a session (sign-out). Returns ENOTFOUND.
	DeleteSession(ctx context.Context, idHash []byte) error
	// DeleteExpiredSessions forgets the sessions that expired before t and
	// returns how many.
	DeleteExpiredSessions(ctx context.Context, before time.Time) (int, error)

	// CreateDCR stores a published clean room and the first entry of its
	// audit log (AuditPublished by its publisher). It reports
	// created=false, without error, when the same id is already stored.
	CreateDCR(ctx context.Context, dcr *DCR) (created bool, err error)
	// FindDCR returns a clean room by id. Returns ENOTFOUND.
	FindDCR(ctx context.Context, id string) (*DCR, error)
	// ListDCRs returns the clean rooms email owns or takes part in, newest first.
	ListDCRs(ctx context.Context, email string) ([]*DCR, error)

	// CreateBlob records an uploaded blob; uploading the same bytes again is
	// not an error: it keeps the first uploader and takes the later time,
	// so that an upload just made is never taken for an old unused one.
	CreateBlob(ctx context.Context, b *Blob) error
	// FindBlob returns a blob by hash. Returns ENOTFOUND.
	FindBlob(ctx context.Context, hash string) (*Blob, error)
	// UnusedBlobs returns up to limit blobs that no dataset uses and that
	// were uploaded before t, oldest first.
	UnusedBlobs(ctx context.Context, before time.Time, limit int) ([]Blob, error)
	// DeleteUnusedBlob forgets a blob uploaded before t if no dataset uses
	// it. Returns ECONFLICT if one does or it was uploaded again since
	// (either may have happened since it was found unused), ENOTFOUND if
	// there is no such blob.
	DeleteUnusedBlob(ctx context.Context, hash string, before time.Time) error

	// PutDataset publishes a dataset to a data node, replacing any earlier
	// one. Here and below, audit (unless nil) is appended to the clean
	// room's audit log with the change: both are stored or neither.
	PutDataset(ctx context.Context, ds *Dataset, audit *AuditEntry) error
	// FindDataset returns the dataset of a data node. Returns ENOTFOUND if none is published.
	FindDataset(ctx context.Context, dcrID, node string) (*Dataset, error)
	// DeleteDataset removes the dataset of a data node. Returns ENOTFOUND if none is published.
	DeleteDataset(ctx context.Context, dcrID, node string, audit *AuditEntry) error

	// CreateJob stores a new queued job.
	CreateJob(ctx context.Context, job *Job, audit *AuditEntry) error
	// FindJob returns a job by id. Returns ENOTFOUND.
	FindJob(ctx context.Context, id string) (*Job, error)
	// ListJobs returns the jobs of one compute node, newest first.
	ListJobs(ctx context.Context, dcrID, node string) ([]*Job, error)
	// ClaimJob moves the oldest queued job to running and returns it. Returns ENOTFOUND when none is queued.
	ClaimJob(ctx context.Context, now time.Time) (*Job, error)
	// CancelQueuedJob ends a job that has not started. Returns ECONFLICT
	// if it has started or ended, ENOTFOUND if there is no such job.
	// It, FinishJob and FailRunningJobs append, with each job they end, the
	// enclave's AuditJobEnded entry to its clean room's audit log.
	CancelQueuedJob(ctx context.Context, id, reason string, now time.Time) error
	// FinishJob records how a running or queued job ended. Returns ECONFLICT if it had already ended.
	FinishJob(ctx context.Context, id string, u JobUpdate, now time.Time) error
	// DeleteJobResult forgets the key of an ended job's result and logs,
	// their sizes, and what of them its ErrorLog and Warnings tell, and
	// marks them deleted at now: without the key no
	// one, the enclave included, can decrypt their blobs, which the caller
	// deletes next. Returns ENOTFOUND, or ECONFLICT if the job has not
	// ended or its result is already deleted.
	DeleteJobResult(ctx context.Context, id string, now time.Time, audit *AuditEntry) error
	// AuditJobRead appends audit, a read of job id's result or logs, to
	// its clean room's log unless its analyst deleted them, in which case
	// it returns ENOTFOUND: a read audited is one that happened before
	// the deletion.
	AuditJobRead(ctx context.Context, id string, audit *AuditEntry) error
	// CreateDraft stores a new draft.
	CreateDraft(ctx context.Context, d *Draft) error
	// FindDraft returns a draft by id, with its test datasets. Returns ENOTFOUND.
	FindDraft(ctx context.Context, id string) (*Draft, error)
	// ListDrafts returns the drafts owner created, most recently updated first.
	ListDrafts(ctx context.Context, owner string) ([]*Draft, error)
	// UpdateDraft replaces a draft's definition. Returns ENOTFOUND, or
	// ECONFLICT once the draft is published.
	UpdateDraft(ctx context.Context, id string, def *Definition, now time.Time) (*Draft, error)
	// PublishDraft freezes a draft as published under dcrID. Returns
	// ENOTFOUND, or ECONFLICT if it was already published.
	PublishDraft(ctx context.Context, id, dcrID string, now time.Time) error
	// DeleteDraft removes a draft, its test datasets and tests. Returns ENOTFOUND.
	DeleteDraft(ctx context.Context, id string) error

	// PutTestDataset attaches test data to a data node of a draft,
	// replacing any earlier. Returns ENOTFOUND for an unknown draft.
	PutTestDataset(ctx context.Context, ds *TestDataset) error
	// ListTestDatasets returns the test datasets of a draft, by node.
	ListTestDatasets(ctx context.Context, draftID string) ([]*TestDataset, error)
	// DeleteTestDataset detaches test data. Returns ENOTFOUND if there is none.
	DeleteTestDataset(ctx context.Context, draftID, node string) error

	// CreateDraftTest stores a draft test that has started.
	CreateDraftTest(ctx context.Context, t *DraftTest) error
	// FinishDraftTest records the outcome of a draft test; errMsg says why
	// it could not test the nodes, if it could not. Returns ECONFLICT if it
	// had already ended.
	FinishDraftTest(ctx context.Context, id string, nodes []NodeTest, errMsg string, now time.Time) error
	// LatestDraftTest returns a draft's most recent test. Returns ENOTFOUND if it has none.
	LatestDraftTest(ctx context.Context, draftID string) (*DraftTest, error)

	// AppendAudit appends e to the audit log of a clean room, filling in
	// its Seq, Prev and Hash. Returns ENOTFOUND if there is no such room.
	AppendAudit(ctx context.Context, dcrID string, e *AuditEntry) error
	// AuditLog returns the audit log of a clean room, oldest first.
	AuditLog(ctx context.Context, dcrID string) ([]AuditEntry, error)

	// FailRunningJobs marks every running job failed with reason, and ends
	// every running draft test; used at start-up, when nothing can still
	// be running. Returns how many jobs it marked.
	FailRunningJobs(ctx context.Context, reason string, now time.Time) (int, error)
}

// BlobStore keeps ciphertext: dataset uploads, encrypted results and logs.
type BlobStore interface {
	// Create starts a new blob. Nothing is visible until Commit succeeds.
	Create(ctx context.Context) (BlobWriter, error)
	// Open returns a reader of a committed blob. Returns ENOTFOUND.
	Open(ctx context.Context, key string) (io.ReadCloser, error)
	// Delete removes a blob. Returns ENOTFOUND.
	Delete(ctx context.Context, key string) error
}

// BlobWriter writes one blob.
type BlobWriter interface {
	io.Writer
	// Commit makes the written bytes visible under key, atomically,
	// replacing any blob with that key.
	Commit(key string) error
	// Abort discards what was written. It is safe to call after Commit.
	Abort() error
}
