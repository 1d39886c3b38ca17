package http

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"strconv"

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

// serveSealed sends a job's stored blob (its result, or with logs its
// logs) sealed to the client, recording the read in the audit log as
// action. It checks the request's recipient key, opens the blob, seals
// its file key to the recipient and audits the read (Store.AuditJobRead),
// and only then sets the headers that let the client open what it is
// sent: a request refused on the way is sent no key and leaves no entry.
// A copy cut short cuts the connection, so the client sees a broken
// download, not a short one.
func (s *Server) serveSealed(w http.ResponseWriter, r *http.Request, job *cleanroom.Job, logs bool, action string) {
	rc, err := s.openSealed(w, r, job, logs, action)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	defer rc.Close()
	if !logs {
		w.Header().Set("Content-Length", strconv.FormatInt(crypt.CiphertextSize(job.ResultSize), 10))
	}
	if _, err := io.Copy(w, rc); err != nil {
		s.Logger.Error("send a sealed download", "job", job.ID, "logs", logs, "err", err)
		panic(http.ErrAbortHandler)
	}
}

// openSealed is serveSealed up to the copy.
func (s *Server) openSealed(w http.ResponseWriter, r *http.Request, job *cleanroom.Job, logs bool, action string) (io.ReadCloser, error) {
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
		// A read of what its analyst deleted meanwhile is refused here.
		err = s.Store.AuditJobRead(r.Context(), job.ID, s.auditEntry(r, action, job.Node, job.ID))
	}
	if err != nil {
		rc.Close()
		return nil, err
	}
	w.Header().Set(SealedKeyHeader, base64.StdEncoding.EncodeToString(key))
	w.Header().Set("Content-Type", "application/octet-stream")
	return struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(header), rc), rc}, nil
}
