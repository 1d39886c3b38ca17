package http

import (
	"encoding/base64"
	"fmt"
	"io"
	"net/http"

	"github.com/cleanroom-dev/cleanroom"
)

// Downloads sealed to the client. A job's result, its logs and a
// validation report are stored encrypted under the job's key. A client
// that sends its X25519 public key (base64) in RecipientHeader gets the
// stored ciphertext as it is, with the job's key sealed to that public
// key in SealedKeyHeader (HPKE, bound to the job: docs/formats.md) and the
// job's id in JobHeader: the client decrypts, and the HTTP layer and
// anything between never see the plaintext. Without the header the
// enclave decrypts and the plaintext is sent.
const (
	RecipientHeader = "X-Cleanroom-Recipient"
	SealedKeyHeader = "X-Cleanroom-Sealed-Key"
	JobHeader       = "X-Cleanroom-Job"
)

// openJobBlob returns what to send of the job's stored blob (its result,
// or with logs its logs): the ciphertext with the key headers set when the
// request names a recipient, else the plaintext. sealed tells which.
func (s *Server) openJobBlob(w http.ResponseWriter, r *http.Request, job *cleanroom.Job, logs bool) (rc io.ReadCloser, sealed bool, err error) {
	recipient := r.Header.Get(RecipientHeader)
	if recipient == "" {
		if logs {
			rc, err = s.Enclave.OpenLogs(r.Context(), job)
		} else {
			rc, err = s.Enclave.OpenResult(r.Context(), job)
		}
		return rc, false, err
	}
	pub, err := base64.StdEncoding.DecodeString(recipient)
	if err != nil || len(pub) != 32 {
		return nil, false, cleanroom.Errorf(cleanroom.EINVALID, "%s must be a 32-byte X25519 public key in base64", RecipientHeader)
	}
	key, err := s.Enclave.SealJobKey(job, pub)
	if err != nil {
		return nil, false, err
	}
	blob := cleanroom.JobResultKey(job.ID)
	if logs {
		blob = cleanroom.JobLogsKey(job.ID)
	}
	if rc, err = s.Blobs.Open(r.Context(), blob); err != nil {
		return nil, false, fmt.Errorf("open %s: %w", blob, err)
	}
	w.Header().Set(SealedKeyHeader, base64.StdEncoding.EncodeToString(key))
	w.Header().Set(JobHeader, job.ID)
	return rc, true, nil
}
