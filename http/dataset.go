package http

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"syscall"

	"github.com/cleanroom-dev/cleanroom"
)

// handleUploadBlob stores a ciphertext streamed in the request body, in
// constant memory, and names it by its SHA-256 (the manifest hash). If the
// body ends early the upload is discarded: nothing half-written is visible.
func (s *Server) handleUploadBlob(w http.ResponseWriter, r *http.Request) {
	if s.MaxUploadSize > 0 && r.ContentLength > s.MaxUploadSize {
		s.Error(w, r, s.uploadTooLarge())
		return
	}
	release, err := s.claimSpace(max(r.ContentLength, 0))
	if err != nil {
		s.Error(w, r, err)
		return
	}
	defer release()
	bw, err := s.Blobs.Create(r.Context())
	if err != nil {
		s.Error(w, r, err)
		return
	}
	defer bw.Abort()
	body := io.Reader(r.Body)
	if s.MaxUploadSize > 0 {
		body = io.LimitReader(r.Body, s.MaxUploadSize+1)
	}
	h := sha256.New()
	n, err := io.CopyBuffer(io.MultiWriter(bw, h), body, make([]byte, 256<<10))
	if err == nil && s.MaxUploadSize > 0 && n > s.MaxUploadSize {
		s.Error(w, r, s.uploadTooLarge())
		return
	}
	if err != nil {
		s.Error(w, r, uploadFailed(err, n))
		return
	}
	if r.ContentLength >= 0 && n != r.ContentLength {
		s.Error(w, r, cleanroom.Errorf(cleanroom.EINVALID, "upload ended after %d of %d bytes; nothing was stored, upload again", n, r.ContentLength))
		return
	}
	// As for a stream: a long upload is checked again at its end.
	if err := s.stillAdmitted(r); err != nil {
		s.Error(w, r, err)
		return
	}
	blob, err := s.commitBlob(r.Context(), bw, h.Sum(nil), n)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, blob)
}

// commitBlob commits what bw holds (size bytes hashing to sum) as the blob
// named by its SHA-256, uploaded by the request's user.
func (s *Server) commitBlob(ctx context.Context, bw cleanroom.BlobWriter, sum []byte, size int64) (*cleanroom.Blob, error) {
	blob := &cleanroom.Blob{Hash: hex.EncodeToString(sum), Size: size, UploadedBy: cleanroom.UserFromContext(ctx), UploadedAt: s.Now().UTC()}
	s.blobLock.RLock() // not while pruneBlob deletes one
	defer s.blobLock.RUnlock()
	if err := bw.Commit(cleanroom.BlobKey(blob.Hash)); err != nil {
		return nil, err
	}
	if err := s.Store.CreateBlob(ctx, blob); err != nil {
		return nil, err
	}
	return blob, nil
}

// claimSpace takes an upload of size bytes if the disk keeps its reserve
// once it and every upload in progress are written, and holds its size
// until release: uploads that each fit alone cannot fill the disk
// together. (An upload that announces no size claims none; a full disk
// still fails it cleanly.)
func (s *Server) claimSpace(size int64) (release func(), err error) {
	s.claimMu.Lock()
	defer s.claimMu.Unlock()
	if err := s.checkFreeSpace(size + s.claimed); err != nil {
		return nil, err
	}
	s.claimed += size
	return func() {
		s.claimMu.Lock()
		s.claimed -= size
		s.claimMu.Unlock()
	}, nil
}

// checkFreeSpace refuses uploads of size bytes in all that would leave
// the blob store's disk with less than MinFreeSpace, which jobs, results
// and the database need. A store that cannot tell refuses too.
func (s *Server) checkFreeSpace(size int64) error {
	fs, ok := s.Blobs.(interface{ FreeSpace() (int64, error) })
	if !ok || s.MinFreeSpace <= 0 {
		return nil
	}
	free, err := fs.FreeSpace()
	if err != nil {
		return fmt.Errorf("cannot tell the free space of the blob store, so no upload is taken: %w", err)
	}
	if free-size < s.MinFreeSpace {
		return cleanroom.Errorf(cleanroom.ETOOLARGE, "the server's disk has %s free; this upload, with those in progress, comes to %s and would leave less than the %s it keeps free for jobs and its database. Nothing was stored; upload later, or ask the operator to free space (`cleanroom serve --min-free-space` sets the reserve)",
			cleanroom.FormatBytes(free), cleanroom.FormatBytes(size), cleanroom.FormatBytes(s.MinFreeSpace))
	}
	return nil
}

// uploadFailed is the error of an upload whose copy into the blob store
// failed after n bytes: the disk filled up, or the client went away.
func uploadFailed(err error, n int64) error {
	if errors.Is(err, syscall.ENOSPC) {
		return cleanroom.Errorf(cleanroom.ETOOLARGE, "the server's disk filled up after %s of the upload; nothing was stored. Ask the operator to free space", cleanroom.FormatBytes(n))
	}
	return cleanroom.Errorf(cleanroom.EINVALID, "upload interrupted after %s: %v; nothing was stored, upload again", cleanroom.FormatBytes(n), err)
}

// uploadTooLarge is the error of an upload over MaxUploadSize.
func (s *Server) uploadTooLarge() error {
	return cleanroom.Errorf(cleanroom.ETOOLARGE, "the upload is larger than this server's limit of %s; nothing was stored (the operator sets the limit with `cleanroom serve --max-upload-size`)", cleanroom.FormatBytes(s.MaxUploadSize))
}

var hashRE = regexp.MustCompile(`^[0-9a-f]{64}$`)

// dataNodeForOwner returns the clean room and data node of the path if the
// caller is its data owner.
func (s *Server) dataNodeForOwner(r *http.Request) (*cleanroom.DCR, *cleanroom.Node, error) {
	return s.nodeWithRight(r, true)
}

// nodeWithRight returns the clean room and node of the path if the node is
// a data node (data) or a compute node (!data) and the caller holds the
// right to it: data owner or analyst. A participant without it gets
// EFORBIDDEN; anyone else ENOTFOUND, from readableDCR.
func (s *Server) nodeWithRight(r *http.Request, data bool) (*cleanroom.DCR, *cleanroom.Node, error) {
	dcr, err := s.readableDCR(r)
	if err != nil {
		return nil, nil, err
	}
	n, err := nodeOf(dcr, r.PathValue("node"))
	if err != nil {
		return nil, nil, err
	}
	email := cleanroom.UserFromContext(r.Context())
	switch {
	case data && !n.Kind.IsData():
		return nil, nil, cleanroom.Errorf(cleanroom.EINVALID, "node %q is a compute node; datasets go to data nodes", n.Name)
	case !data && !n.Kind.IsCompute():
		return nil, nil, cleanroom.Errorf(cleanroom.EINVALID, "node %q is a data node; only compute nodes run", n.Name)
	case data && !dcr.Definition.IsDataOwner(email, n.Name):
		return nil, nil, cleanroom.Errorf(cleanroom.EFORBIDDEN, "you are not a data owner of node %q", n.Name)
	case !data && !dcr.Definition.IsAnalyst(email, n.Name):
		return nil, nil, cleanroom.Errorf(cleanroom.EFORBIDDEN, "you are not an analyst of node %q", n.Name)
	}
	return dcr, n, nil
}

func (s *Server) handlePublishDataset(w http.ResponseWriter, r *http.Request) {
	dcr, n, err := s.dataNodeForOwner(r)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	var req cleanroom.PublishDatasetRequest
	if err := decodeJSON(w, r, &req); err != nil {
		s.Error(w, r, err)
		return
	}
	if !hashRE.MatchString(req.ManifestHash) {
		s.Error(w, r, cleanroom.Errorf(cleanroom.EINVALID, "manifest_hash must be 64 lowercase hex digits (the SHA-256 of the uploaded ciphertext)"))
		return
	}
	blob, err := s.Store.FindBlob(r.Context(), req.ManifestHash)
	if cleanroom.ErrorCode(err) == cleanroom.ENOTFOUND {
		s.Error(w, r, cleanroom.Errorf(cleanroom.EINVALID, "no uploaded file has manifest hash %s; upload it first (POST /api/v1/blobs)", req.ManifestHash))
		return
	} else if err != nil {
		s.Error(w, r, err)
		return
	}
	if err := s.Enclave.CheckDatasetKey(dcr.ID, n.Name, blob.Hash, req.SealedKey); err != nil {
		s.Error(w, r, err)
		return
	}
	email := cleanroom.UserFromContext(r.Context())
	ds := &cleanroom.Dataset{DCRID: dcr.ID, Node: n.Name, ManifestHash: blob.Hash, Size: blob.Size, SealedKey: req.SealedKey, PublishedBy: email, PublishedAt: s.Now().UTC()}
	if n.Kind == cleanroom.NodeTable {
		// Only the enclave reads the rows: it checks them in a job whose
		// report the data owners read. The dataset names the job before
		// the job exists, so the job can only ever find this dataset.
		ds.ValidationJob = cleanroom.NewID()
	}
	if err := s.Store.PutDataset(r.Context(), ds, s.auditEntry(r, cleanroom.AuditDatasetPublished, n.Name, blob.Hash)); err != nil {
		s.Error(w, r, err)
		return
	}
	if ds.ValidationJob != "" {
		job := &cleanroom.Job{ID: ds.ValidationJob, DCRID: dcr.ID, Node: n.Name, CreatedBy: email, State: cleanroom.JobQueued, CreatedAt: s.Now().UTC()}
		if err := s.Store.CreateJob(r.Context(), job, nil); err != nil {
			// The table is checked when a computation runs it all the same.
			s.Logger.Error("queue table validation", "dcr", dcr.ID, "node", n.Name, "err", err)
		}
		s.Enclave.Notify()
	}
	writeJSON(w, http.StatusOK, ds)
}

// handleValidationReport returns the validation report of the dataset
// published to a table node: rows, columns and the first problems with
// their line, column and value. Only the node's data owners read it, as it
// quotes their data.
func (s *Server) handleValidationReport(w http.ResponseWriter, r *http.Request) {
	dcr, n, err := s.dataNodeForOwner(r)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	if n.Kind != cleanroom.NodeTable {
		s.Error(w, r, cleanroom.Errorf(cleanroom.EINVALID, "node %q is a %s node; only table nodes are validated", n.Name, n.Kind))
		return
	}
	ds, err := s.Store.FindDataset(r.Context(), dcr.ID, n.Name)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	// The client decrypts with the job it names: a report of another
	// (the dataset was replaced meanwhile) would not open, so it is told.
	if want := r.URL.Query().Get("job"); want != "" && want != ds.ValidationJob {
		s.Error(w, r, cleanroom.Errorf(cleanroom.ECONFLICT, "the dataset of node %q was replaced after job %s checked it; its report is now job %s's, ask for that one", n.Name, want, ds.ValidationJob))
		return
	}
	job, err := s.Store.FindJob(r.Context(), ds.ValidationJob)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	if !job.State.Done() {
		s.Error(w, r, cleanroom.Errorf(cleanroom.ECONFLICT, "the dataset of node %q is still being validated (job %s is %s); ask again in a moment", n.Name, job.ID, job.State))
		return
	}
	if job.ResultSize == 0 {
		s.Error(w, r, cleanroom.Errorf(cleanroom.ECONFLICT, "validating the dataset of node %q did not finish: %s", n.Name, job.Error))
		return
	}
	s.serveSealed(w, r, job, false, cleanroom.AuditReportRead)
}

func (s *Server) handleRemoveDataset(w http.ResponseWriter, r *http.Request) {
	dcr, n, err := s.dataNodeForOwner(r)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	if err := s.Store.DeleteDataset(r.Context(), dcr.ID, n.Name, s.auditEntry(r, cleanroom.AuditDatasetRemoved, n.Name, "")); err != nil {
		s.Error(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
