package http

import (
	"encoding/base64"
	"fmt"
	"io"
	"net/http"

	"github.com/cleanroom-dev/cleanroom"
)

// Downloads sealed to the client. A job's result, its logs and a
// validation report are stored encrypted under the job's key. The client
// sends an X25519 public key (base64) in RecipientHeader, made for the
// download, and gets the stored ciphertext as it is, with the job's key
// sealed to that public key in SealedKeyHeader (HPKE, bound to the job:
// docs/formats.md) and the job's id in JobHeader: the client decrypts,
// and the HTTP layer and anything between never see the plaintext. There
// is no plaintext way: a request without the header is refused.
const (
	RecipientHeader = "X-Cleanroom-Recipient"
	SealedKeyHeader = "X-Cleanroom-Sealed-Key"
	JobHeader       = "X-Cleanroom-Job"
)

// sealedHeaders checks the request's recipient key and sets the headers
// that let it open the job's stored blob. Call it before any body is read
// or sent.
func (s *Server) sealedHeaders(w http.ResponseWriter, r *http.Request, job *cleanroom.Job) error {
	recipient := r.Header.Get(RecipientHeader)
	if recipient == "" {
		return cleanroom.Errorf(cleanroom.EINVALID, "results, logs and validation reports are sent encrypted to the client: send a new X25519 public key (32 bytes, base64) in %s and decrypt with its private key, as the cleanroom CLI, SDKs and web UI do (docs/formats.md)", RecipientHeader)
	}
	pub, err := base64.StdEncoding.DecodeString(recipient)
	if err != nil || len(pub) != 32 {
		return cleanroom.Errorf(cleanroom.EINVALID, "%s must be a 32-byte X25519 public key in base64", RecipientHeader)
	}
	key, err := s.Enclave.SealJobKey(job, pub)
	if err != nil {
		return err
	}
	w.Header().Set(SealedKeyHeader, base64.StdEncoding.EncodeToString(key))
	w.Header().Set(JobHeader, job.ID)
	w.Header().Set("Content-Type", "application/octet-stream")
	return nil
}

// openSealed checks the recipient and audits the read (in that order: a
// refused request reads nothing), then opens the job's stored blob (its
// result, or with logs its logs) with the headers to open it set.
func (s *Server) openSealed(w http.ResponseWriter, r *http.Request, job *cleanroom.Job, logs bool, audit func() error) (io.ReadCloser, error) {
	if err := s.sealedHeaders(w, r, job); err != nil {
		return nil, err
	}
	if err := audit(); err != nil {
		return nil, err
	}
	blob := cleanroom.JobResultKey(job.ID)
	if logs {
		blob = cleanroom.JobLogsKey(job.ID)
	}
	rc, err := s.Blobs.Open(r.Context(), blob)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", blob, err)
	}
	return rc, nil
}
