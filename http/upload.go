package http

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/cleanroom-dev/cleanroom"
)

// Multi-part uploads: one ciphertext sent as a sequence of PUT requests,
// for clients that cannot stream a single request body of unknown length
// (browsers over HTTP/1.1). The parts go, as they arrive, into one
// BlobWriter while being hashed, so memory stays constant whatever the
// size; completing commits the blob under its SHA-256, exactly as
// POST /api/v1/blobs does with the same bytes.
//
//	POST   /api/v1/uploads                  201 {"id", "max_part_size", "idle_timeout_seconds"}
//	PUT    /api/v1/uploads/{id}/parts/{n}   200 {"id", "parts", "size"}
//	POST   /api/v1/uploads/{id}/complete    201 Blob
//	DELETE /api/v1/uploads/{id}             204
//
// Parts are numbered from 0 and sent one at a time, in order, each with a
// Content-Length of at most maxUploadPart. A part other than the next one
// is refused (409, naming the part expected), as is a part sent while the
// previous one is still arriving. Sending the last accepted part again
// with the same length is accepted and changes nothing (its body is read
// and dropped), so a client that lost a response can simply retry it; the
// blob is named by the hash of what was actually stored, which the client
// compares with its own. A part that ends early aborts the whole upload.
//
// Uploads live in the server's memory: an upload belongs to the user who
// started it (anyone else gets 404), a user has at most maxUserUploads
// open and the server maxUploads, and one left idle for
// uploadIdleTimeout is aborted. A restart aborts every open upload (the
// blob store drops their temporary files when it starts). An aborted
// upload leaves nothing behind.
const (
	maxUploadPart     = 64 << 20
	maxUserUploads    = 8
	maxUploads        = 64
	uploadIdleTimeout = 10 * time.Minute
)

// UploadResponse describes an open multi-part upload.
type UploadResponse struct {
	ID string `json:"id"`
	// MaxPartSize is the largest part the server takes, in bytes.
	MaxPartSize int64 `json:"max_part_size,omitempty"`
	// IdleTimeoutSeconds is how long the upload may wait for its next
	// part before the server aborts it.
	IdleTimeoutSeconds int `json:"idle_timeout_seconds,omitempty"`
	// Parts and Size are what was received so far.
	Parts int   `json:"parts"`
	Size  int64 `json:"size"`
}

// upload is one open multi-part upload.
type upload struct {
	id, owner string
	bw        cleanroom.BlobWriter
	h         hash.Hash
	parts     int   // parts received
	size      int64 // bytes received
	lastLen   int64 // length of the last part received
	busy      bool  // a part is being received or the upload completed
	gone      bool  // removed from the store; whoever holds it busy aborts it
	used      time.Time
	timer     *time.Timer
}

// uploadStore holds the open uploads. The zero value is ready to use.
type uploadStore struct {
	mu sync.Mutex
	m  map[string]*upload
	// idle and maxPart override uploadIdleTimeout and maxUploadPart (tests).
	idle    time.Duration
	maxPart int64
}

func (st *uploadStore) idleTimeout() time.Duration {
	if st.idle > 0 {
		return st.idle
	}
	return uploadIdleTimeout
}

func (st *uploadStore) partLimit() int64 {
	if st.maxPart > 0 {
		return st.maxPart
	}
	return maxUploadPart
}

// add registers u, unless its owner or the server has too many open.
func (st *uploadStore) add(u *upload) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.m == nil {
		st.m = map[string]*upload{}
	}
	if len(st.m) >= maxUploads {
		return cleanroom.Errorf(cleanroom.ECONFLICT, "the server has %d uploads open, its limit; try again in a few minutes", len(st.m))
	}
	mine := 0
	for _, v := range st.m {
		if v.owner == u.owner {
			mine++
		}
	}
	if mine >= maxUserUploads {
		return cleanroom.Errorf(cleanroom.ECONFLICT, "you have %d uploads open, the limit; complete or delete one (DELETE /api/v1/uploads/{id}), or wait until idle ones are aborted after %s", mine, st.idleTimeout())
	}
	u.used = time.Now()
	st.m[u.id] = u
	u.timer = time.AfterFunc(st.idleTimeout(), func() { st.expire(u) })
	return nil
}

// expire aborts u if it has been idle for the idle timeout, and otherwise
// checks again when it could be.
func (st *uploadStore) expire(u *upload) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if u.gone {
		return
	}
	if u.busy {
		u.timer.Reset(st.idleTimeout())
		return
	}
	if idle := time.Since(u.used); idle < st.idleTimeout() {
		u.timer.Reset(st.idleTimeout() - idle)
		return
	}
	st.removeLocked(u)
}

// removeLocked forgets u and aborts it, unless a request holds it busy:
// that request aborts it when it ends.
func (st *uploadStore) removeLocked(u *upload) {
	delete(st.m, u.id)
	u.gone = true
	u.timer.Stop()
	if !u.busy {
		u.bw.Abort()
	}
}

// get returns the open upload id of owner; anyone else's is not found.
func (st *uploadStore) get(id, owner string) (*upload, error) {
	u := st.m[id]
	if u == nil || u.owner != owner {
		return nil, cleanroom.Errorf(cleanroom.ENOTFOUND, "no open upload %s: it was completed, deleted, aborted after a failed part or %s idle, or the server restarted; start a new one", id, st.idleTimeout())
	}
	return u, nil
}

// closeAll aborts every open upload, when the server stops.
func (st *uploadStore) closeAll() {
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, u := range st.m {
		st.removeLocked(u)
	}
}

func (s *Server) handleCreateUpload(w http.ResponseWriter, r *http.Request) {
	// The writer outlives this request: it is aborted or committed by later ones.
	bw, err := s.Blobs.Create(context.WithoutCancel(r.Context()))
	if err != nil {
		s.Error(w, r, err)
		return
	}
	u := &upload{id: cleanroom.NewID(), owner: cleanroom.UserFromContext(r.Context()), bw: bw, h: sha256.New()}
	if err := s.uploads.add(u); err != nil {
		bw.Abort()
		s.Error(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, UploadResponse{ID: u.id, MaxPartSize: s.uploads.partLimit(), IdleTimeoutSeconds: int(s.uploads.idleTimeout() / time.Second)})
}

// handleUploadPart streams part n into the upload's blob, hashing it.
func (s *Server) handleUploadPart(w http.ResponseWriter, r *http.Request) {
	st := &s.uploads
	id := r.PathValue("id")
	n, err := strconv.Atoi(r.PathValue("n"))
	if err != nil || n < 0 {
		s.Error(w, r, cleanroom.Errorf(cleanroom.EINVALID, "part number %q is not a number from 0", r.PathValue("n")))
		return
	}
	if r.ContentLength < 0 {
		s.Error(w, r, cleanroom.Errorf(cleanroom.EINVALID, "a part needs a Content-Length header"))
		return
	}
	if r.ContentLength > st.partLimit() {
		s.Error(w, r, cleanroom.Errorf(cleanroom.ETOOLARGE, "part %d is %s; parts are at most %s (the upload goes on: send it in smaller parts)", n, cleanroom.FormatBytes(r.ContentLength), cleanroom.FormatBytes(st.partLimit())))
		return
	}
	st.mu.Lock()
	u, err := st.get(id, cleanroom.UserFromContext(r.Context()))
	switch {
	case err != nil:
	case u.busy:
		err = cleanroom.Errorf(cleanroom.ECONFLICT, "part %d of upload %s is still being received; send parts one at a time", u.parts, id)
	case n == u.parts-1 && r.ContentLength == u.lastLen:
		// The last part again: already stored; read and drop it.
		resp := UploadResponse{ID: id, Parts: u.parts, Size: u.size}
		u.used = time.Now()
		st.mu.Unlock()
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			s.Error(w, r, cleanroom.Errorf(cleanroom.EINVALID, "part %d was interrupted; it had already been received, send part %d next", n, n+1))
			return
		}
		writeJSON(w, http.StatusOK, resp)
		return
	case n != u.parts:
		err = cleanroom.Errorf(cleanroom.ECONFLICT, "part %d of upload %s is out of order: expected part %d (parts are numbered from 0 and sent in order)", n, id, u.parts)
	case s.MaxUploadSize > 0 && u.size+r.ContentLength > s.MaxUploadSize:
		st.removeLocked(u)
		err = s.uploadTooLarge()
	}
	if err != nil {
		st.mu.Unlock()
		s.Error(w, r, err)
		return
	}
	u.busy = true
	st.mu.Unlock()

	got, err := io.CopyBuffer(io.MultiWriter(u.bw, u.h), r.Body, make([]byte, 256<<10))
	if err == nil && got != r.ContentLength {
		err = io.ErrUnexpectedEOF
	}

	st.mu.Lock()
	defer st.mu.Unlock()
	u.busy = false
	if err != nil || u.gone {
		if !u.gone {
			st.removeLocked(u)
		} else {
			u.bw.Abort()
		}
		if err != nil {
			s.Error(w, r, cleanroom.Errorf(cleanroom.EINVALID, "part %d ended after %d of %d bytes; the upload is aborted and nothing was stored: start again", n, got, r.ContentLength))
		} else {
			s.Error(w, r, cleanroom.Errorf(cleanroom.ENOTFOUND, "upload %s was deleted while part %d was being received", id, n))
		}
		return
	}
	u.parts++
	u.size += got
	u.lastLen = got
	u.used = time.Now()
	writeJSON(w, http.StatusOK, UploadResponse{ID: id, Parts: u.parts, Size: u.size})
}

// handleCompleteUpload commits the upload's blob under its SHA-256, as
// POST /api/v1/blobs does.
func (s *Server) handleCompleteUpload(w http.ResponseWriter, r *http.Request) {
	st := &s.uploads
	st.mu.Lock()
	u, err := st.get(r.PathValue("id"), cleanroom.UserFromContext(r.Context()))
	if err == nil && u.busy {
		err = cleanroom.Errorf(cleanroom.ECONFLICT, "part %d of upload %s is still being received; complete the upload after its last part is accepted", u.parts, u.id)
	}
	if err != nil {
		st.mu.Unlock()
		s.Error(w, r, err)
		return
	}
	// Taken out of the store: from here this request alone owns the writer.
	delete(st.m, u.id)
	u.gone = true
	u.timer.Stop()
	st.mu.Unlock()
	defer u.bw.Abort()

	blob := &cleanroom.Blob{Hash: hex.EncodeToString(u.h.Sum(nil)), Size: u.size, UploadedBy: u.owner, UploadedAt: s.Now().UTC()}
	if err := u.bw.Commit(cleanroom.BlobKey(blob.Hash)); err != nil {
		s.Error(w, r, err)
		return
	}
	if err := s.Store.CreateBlob(r.Context(), blob); err != nil {
		s.Error(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, blob)
}

// handleDeleteUpload aborts an upload.
func (s *Server) handleDeleteUpload(w http.ResponseWriter, r *http.Request) {
	st := &s.uploads
	st.mu.Lock()
	defer st.mu.Unlock()
	u, err := st.get(r.PathValue("id"), cleanroom.UserFromContext(r.Context()))
	if err != nil {
		s.Error(w, r, err)
		return
	}
	st.removeLocked(u)
	w.WriteHeader(http.StatusNoContent)
}
