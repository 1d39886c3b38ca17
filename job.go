package cleanroom

import "time"

// JobState is where a job is in its life: queued -> running -> succeeded | failed | cancelled.
type JobState string

// Job states.
const (
	JobQueued    JobState = "queued"
	JobRunning   JobState = "running"
	JobSucceeded JobState = "succeeded"
	JobFailed    JobState = "failed"
	JobCancelled JobState = "cancelled"
)

// Done reports whether the job has ended.
func (s JobState) Done() bool {
	return s == JobSucceeded || s == JobFailed || s == JobCancelled
}

// Job is one run of one compute node.
type Job struct {
	ID        string   `json:"id"`
	DCRID     string   `json:"dcr_id"`
	Node      string   `json:"node"`
	CreatedBy string   `json:"created_by"` // email of the analyst who asked for it
	State     JobState `json:"state"`
	// Error says how a failed job ended, in words: the exit status,
	// signal or limit, and whether logs are withheld by the node's policy.
	// For the job's analyst (ForViewer) it ends with ErrorLog.
	Error string `json:"error,omitempty"`
	// ErrorLog is the line of a failed job's logs that says what went
	// wrong, where the log policy released the logs. Like the logs, it is
	// the job's analyst's alone, and goes when they are deleted.
	ErrorLog string `json:"-"`
	// Warnings list things the analyst should know about a successful run,
	// such as output entries that were skipped, or a CPU limit that slowed it.
	// They are the job's analyst's alone.
	Warnings []string `json:"warnings,omitempty"`

	// SealedKey is the result key sealed to the enclave; the result and
	// the logs are stored encrypted under it.
	SealedKey  []byte `json:"-"`
	ResultSize int64  `json:"result_size"` // size of the result zip, 0 until it exists
	HasLogs    bool   `json:"has_logs"`    // logs are stored (only where the log policy releases them)

	CreatedAt  time.Time  `json:"created_at"`
	StartedAt  *time.Time `json:"started_at,omitempty"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
	// ResultDeletedAt is when the job's analyst deleted its result and
	// logs. The job stays, for the history and the audit log.
	ResultDeletedAt *time.Time `json:"result_deleted_at,omitempty"`
}

// ForViewer returns the job as user email sees it: the analyst who ran it
// sees the whole of it, other analysts of the node how it went and not
// what of its logs and result the error and the warnings tell.
func (j *Job) ForViewer(email string) *Job {
	v := *j
	v.ErrorLog = ""
	if !SameEmail(email, j.CreatedBy) {
		v.Warnings = nil
	} else if j.ErrorLog != "" {
		v.Error += ": " + j.ErrorLog
	}
	return &v
}

// JobResultKey and JobLogsKey are the blob keys of a job's encrypted result and logs.
func JobResultKey(jobID string) string { return "results/" + jobID + ".zip" }

// JobLogsKey is the blob key of a job's encrypted logs.
func JobLogsKey(jobID string) string { return "logs/" + jobID }

// ValidatedTableKey is the blob key of the validated rows a table's
// validation job stores, encrypted, for computations to read.
func ValidatedTableKey(jobID string) string { return "tables/" + jobID }

// JobUpdate is what a job runner records when a job ends.
type JobUpdate struct {
	State      JobState
	Error      string
	ErrorLog   string
	Warnings   []string
	SealedKey  []byte
	ResultSize int64
	HasLogs    bool
}

// Attestation describes the enclave to clients: which key to seal dataset
// keys to (HPKE, suite ids as in RFC 9180), and on what platform it runs.
// In software mode nothing vouches for the key but the operator, and
// clients say so to their users.
type Attestation struct {
	Platform  string `json:"platform"`
	PublicKey []byte `json:"public_key"`
	KEM       uint16 `json:"hpke_kem"`
	KDF       uint16 `json:"hpke_kdf"`
	AEAD      uint16 `json:"hpke_aead"`
}
