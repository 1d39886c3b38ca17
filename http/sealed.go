package http

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"

	"github.com/cleanroom-dev/cleanroom"
	"github.com/cleanroom-dev/cleanroom/crypt"
)

// Downloads sealed to the client. A job's result, its logs and a
// validation report are stored encrypted under the job's key. The client
// sends an X25519 public key (base64) in RecipientHeader, made for the
// download, and gets the stored ciphertext as it is, with the key of that
// one ciphertext (crypt.FileKey: it opens nothing else) sealed to the
// public key in SealedKeyHeader (HPKE, bound to the ciphertext's
// associated data: docs/formats.md). The client decrypts; the HTTP layer
// only sends ciphertext. There is no plaintext way: a request without the
// header is refused.
const (
	RecipientHeader = "X-Cleanroom-Recipient"
	SealedKeyHeader = "X-Cleanroom-Sealed-Key"
)

// openSealed checks the request's recipient key, opens the job's stored
// blob (its result, or with logs its logs) and seals its file key to the
// recipient, audits the read with audit, and only then sets the headers
// that let the client open what it is sent: a request refused on the way
// is sent no key and leaves no entry.
func (s *Server) openSealed(w http.ResponseWriter, r *http.Request, job *cleanroom.Job, logs bool, audit func() error) (io.ReadCloser, error) {
	recipient := r.Header.Get(RecipientHeader)
	if recipient == "" {
		return nil, cleanroom.Errorf(cleanroom.EINVALID, "results, logs and validation reports are sent encrypted to the client: send a new X25519 public key (32 bytes, base64) in %s and decrypt with its private key, as the cleanroom CLI, SDKs and web UI do (docs/formats.md)", RecipientHeader)
	}
	pub, err := base64.StdEncoding.DecodeString(recipient)
	if err != nil || len(pub) != 32 {
		return nil, cleanroom.Errorf(cleanroom.EINVALID, "%s must be a 32-byte X25519 public key in base64", RecipientHeader)
	}
	blob, ad := cleanroom.JobResultKey(job.ID), crypt.ResultAD(job.ID)
	if logs {
		blob, ad = cleanroom.JobLogsKey(job.ID), crypt.LogsAD(job.ID)
	}
	rc, err := s.Blobs.Open(r.Context(), blob)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", blob, err)
	}
	// The header is read here and sent on with the rest.
	header := make([]byte, crypt.HeaderSize)
	if _, err := io.ReadFull(rc, header); err != nil {
		rc.Close()
		return nil, fmt.Errorf("read %s: %w", blob, err)
	}
	key, err := s.Enclave.SealFileKey(job, header, ad, pub)
	if err == nil {
		err = audit()
	}
	if err != nil {
		rc.Close()
		return nil, err
	}
	w.Header().Set(SealedKeyHeader, base64.StdEncoding.EncodeToString(key))
	w.Header().Set("Content-Type", "application/octet-stream")
	return readCloser{io.MultiReader(bytes.NewReader(header), rc), rc}, nil
}

type readCloser struct {
	io.Reader
	io.Closer
}
