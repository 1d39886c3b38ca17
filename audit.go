package cleanroom

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// The audit log of a clean room: what was done in it, by whom, when. It is
// append-only and chained: each entry's Hash covers its own fields, the
// clean room's id and the Hash of the entry before it (Prev), so that
// VerifyAuditLog finds any entry changed, removed or reordered on its own.
// The hashes use no secret: whoever can write the server's database can
// rewrite an entry and every hash after it, and cut entries off the end.
// What shows that is a hash kept from before: AuditExtends checks that a
// log still holds the entry a participant verified earlier, and the CLI
// and the web page keep the last one they verified and check each new log
// against it.
//
// A change is stored in one transaction with its entry; a read is recorded
// before it happens and does not happen unrecorded.

// Audit actions.
const (
	AuditPublished        = "dcr.published"     // the definition was published
	AuditDatasetPublished = "dataset.published" // Detail: the manifest hash
	AuditDatasetRemoved   = "dataset.removed"
	AuditRunRequested     = "job.requested"  // Detail: the job id
	AuditJobCancelled     = "job.cancelled"  // Detail: the job id
	AuditResultRead       = "result.read"    // Detail: the job id
	AuditLogsRead         = "logs.read"      // Detail: the job id
	AuditResultDeleted    = "result.deleted" // the result and logs; Detail: the job id
	AuditReportRead       = "report.read"    // a table's validation report; Detail: the validation job id
	AuditJobEnded         = "job.ended"      // by AuditEnclave; Detail: the job id and its final state
)

// AuditEnclave is the actor of what the enclave does on its own: jobs ending.
const AuditEnclave = "enclave"

// AuditEntry is one event of a clean room's audit log.
type AuditEntry struct {
	Seq    int64     `json:"seq"` // 1, 2, ... within the clean room
	At     time.Time `json:"at"`  // UTC, whole microseconds
	Actor  string    `json:"actor"`
	Action string    `json:"action"`
	Node   string    `json:"node,omitempty"`
	Detail string    `json:"detail,omitempty"`
	Prev   string    `json:"prev"` // Hash of the entry before; empty for the first
	Hash   string    `json:"hash"`
}

// AuditTime is the time an entry records for t: UTC, whole microseconds,
// which every store keeps exactly.
func AuditTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// ComputeHash returns the hex SHA-256 of the entry's canonical JSON: the
// object {"dcr","seq","at","actor","action","node","detail","prev"} with
// keys in that order, no spaces, and at as RFC 3339 UTC with six fraction
// digits (docs/formats.md).
func (e *AuditEntry) ComputeHash(dcrID string) string {
	b, _ := json.Marshal(struct {
		DCR    string `json:"dcr"`
		Seq    int64  `json:"seq"`
		At     string `json:"at"`
		Actor  string `json:"actor"`
		Action string `json:"action"`
		Node   string `json:"node"`
		Detail string `json:"detail"`
		Prev   string `json:"prev"`
	}{dcrID, e.Seq, e.At.UTC().Format("2006-01-02T15:04:05.000000Z"), e.Actor, e.Action, e.Node, e.Detail, e.Prev})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// ErrAuditLog is wrapped by the errors of VerifyAuditLog and AuditExtends.
var ErrAuditLog = errors.New("the audit log does not verify")

// VerifyAuditLog checks a clean room's whole log: numbered from 1 without
// gaps, each entry chained to the one before, each hash its own.
func VerifyAuditLog(dcrID string, log []AuditEntry) error {
	prev := ""
	for i, e := range log {
		switch {
		case e.Seq != int64(i+1):
			return fmt.Errorf("%w: entry %d has number %d, so entries are missing or reordered", ErrAuditLog, i+1, e.Seq)
		case e.Prev != prev:
			return fmt.Errorf("%w: entry %d does not follow entry %d, so the log was changed", ErrAuditLog, e.Seq, e.Seq-1)
		case e.ComputeHash(dcrID) != e.Hash:
			return fmt.Errorf("%w: entry %d does not match its hash, so it was changed", ErrAuditLog, e.Seq)
		}
		prev = e.Hash
	}
	return nil
}

// String renders an entry as one line of `cleanroom audit`.
func (e *AuditEntry) String() string {
	s := fmt.Sprintf("%d  %s  %s  %s", e.Seq, e.At.UTC().Format(time.RFC3339), e.Actor, e.Action)
	if e.Node != "" {
		s += "  node=" + e.Node
	}
	if e.Detail != "" {
		s += "  " + e.Detail
	}
	return s
}

// AuditExtends checks that log still holds, as entry seq, the entry whose
// hash a participant verified before: a log rewritten or cut short since
// does not.
func AuditExtends(log []AuditEntry, seq int64, hash string) error {
	if seq < 1 || seq > int64(len(log)) {
		return fmt.Errorf("%w: it has %d entries, but entry %d was verified before, so entries were removed", ErrAuditLog, len(log), seq)
	}
	if log[seq-1].Hash != hash {
		return fmt.Errorf("%w: entry %d is not the one verified before, so the log was rewritten", ErrAuditLog, seq)
	}
	return nil
}
