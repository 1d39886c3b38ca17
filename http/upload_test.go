package http

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cleanroom-dev/cleanroom"
	"github.com/cleanroom-dev/cleanroom/blob/fs"
	"github.com/cleanroom-dev/cleanroom/sqlite"
)

type uploadEnv struct {
	t      *testing.T
	s      *Server
	ts     *httptest.Server
	blobs  string            // the blob store's directory
	tokens map[string]string // email → API token
}

// newUploadEnv returns a server with a blob store and the users ann and bob.
func newUploadEnv(t *testing.T) *uploadEnv {
	t.Helper()
	db := sqlite.NewDB(filepath.Join(t.TempDir(), "db.sqlite"))
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	e := &uploadEnv{t: t, blobs: t.TempDir(), tokens: map[string]string{}}
	for _, email := range []string{"ann@example.com", "bob@example.com"} {
		token, hash := cleanroom.NewToken()
		if err := db.CreateUser(context.Background(), email); err != nil {
			t.Fatal(err)
		}
		if err := db.AddToken(context.Background(), email, hash); err != nil {
			t.Fatal(err)
		}
		e.tokens[email] = token
	}
	bs := fs.NewStore(e.blobs)
	if err := bs.Init(); err != nil {
		t.Fatal(err)
	}
	e.s = NewServer()
	e.s.Store, e.s.Blobs = db, bs
	e.ts = httptest.NewServer(e.s.Handler())
	t.Cleanup(e.ts.Close)
	t.Cleanup(e.s.uploads.closeAll)
	return e
}

// call sends a request as who and returns the status and body.
func (e *uploadEnv) call(who, method, path string, body []byte) (int, string) {
	e.t.Helper()
	req, _ := http.NewRequest(method, e.ts.URL+path, bytes.NewReader(body))
	if body == nil {
		req.Body, req.ContentLength = nil, 0
	}
	req.Header.Set("Authorization", "Bearer "+e.tokens[who])
	req.Header.Set(EmailHeader, who)
	resp, err := e.ts.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// start creates an upload as who and returns its id.
func (e *uploadEnv) start(who string) string {
	e.t.Helper()
	status, body := e.call(who, "POST", "/api/v1/uploads", nil)
	var u UploadResponse
	if status != http.StatusCreated || json.Unmarshal([]byte(body), &u) != nil || u.ID == "" {
		e.t.Fatalf("start upload: %d %s", status, body)
	}
	return u.ID
}

func (e *uploadEnv) part(who, id string, n int, data []byte) (int, string) {
	e.t.Helper()
	return e.call(who, "PUT", fmt.Sprintf("/api/v1/uploads/%s/parts/%d", id, n), data)
}

func (e *uploadEnv) mustPart(who, id string, n int, data []byte) {
	e.t.Helper()
	if status, body := e.part(who, id, n, data); status != http.StatusOK {
		e.t.Fatalf("part %d: %d %s", n, status, body)
	}
}

func (e *uploadEnv) complete(who, id string) (int, cleanroom.Blob, string) {
	e.t.Helper()
	status, body := e.call(who, "POST", "/api/v1/uploads/"+id+"/complete", nil)
	var b cleanroom.Blob
	json.Unmarshal([]byte(body), &b)
	return status, b, body
}

// tmpFiles returns the files of uploads in progress in the blob store.
func (e *uploadEnv) tmpFiles() []string {
	e.t.Helper()
	entries, err := os.ReadDir(filepath.Join(e.blobs, ".tmp"))
	if err != nil {
		e.t.Fatal(err)
	}
	var names []string
	for _, d := range entries {
		names = append(names, d.Name())
	}
	return names
}

// noBlobs fails if a blob was committed or an upload's file is left.
func (e *uploadEnv) noBlobs() {
	e.t.Helper()
	if tmp := e.tmpFiles(); len(tmp) > 0 {
		e.t.Errorf("files left in the blob store's .tmp: %v", tmp)
	}
	if _, err := os.Stat(filepath.Join(e.blobs, "datasets")); !os.IsNotExist(err) {
		e.t.Errorf("a blob was committed (%v)", err)
	}
}

func randomData(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// The same bytes stored in parts or with POST /api/v1/blobs give the same blob.
func TestUploadPartsEqualsSingleUpload(t *testing.T) {
	e := newUploadEnv(t)
	parts := [][]byte{randomData(1 << 20), randomData(3<<20 + 7), randomData(1)}
	all := bytes.Join(parts, nil)
	sum := sha256.Sum256(all)

	status, body := e.call("ann@example.com", "POST", "/api/v1/uploads", nil)
	var u UploadResponse
	json.Unmarshal([]byte(body), &u)
	if status != http.StatusCreated || u.ID == "" || u.MaxPartSize != maxUploadPart || u.IdleTimeoutSeconds != int(uploadIdleTimeout/time.Second) {
		t.Fatalf("start upload: %d %s", status, body)
	}
	id := u.ID
	for i, p := range parts {
		e.mustPart("ann@example.com", id, i, p)
	}
	if len(e.tmpFiles()) != 1 {
		t.Errorf("an upload in progress has %d files in .tmp, want 1", len(e.tmpFiles()))
	}
	status, got, body := e.complete("ann@example.com", id)
	if status != http.StatusCreated {
		t.Fatalf("complete: %d %s", status, body)
	}
	if got.Hash != hex.EncodeToString(sum[:]) || got.Size != int64(len(all)) || got.UploadedBy != "ann@example.com" {
		t.Errorf("completed blob %+v, want hash %x and size %d", got, sum, len(all))
	}
	stored, err := os.ReadFile(filepath.Join(e.blobs, "datasets", got.Hash))
	if err != nil || !bytes.Equal(stored, all) {
		t.Errorf("the stored blob differs from the bytes sent (%v)", err)
	}
	if tmp := e.tmpFiles(); len(tmp) > 0 {
		t.Errorf("files left in .tmp after completing: %v", tmp)
	}

	status, body = e.call("bob@example.com", "POST", "/api/v1/blobs", all)
	var single cleanroom.Blob
	json.Unmarshal([]byte(body), &single)
	if status != http.StatusCreated || single.Hash != got.Hash || single.Size != got.Size {
		t.Errorf("POST /api/v1/blobs of the same bytes: %d %s; parts gave %+v", status, body, got)
	}

	// A completed upload is gone.
	if status, body := e.part("ann@example.com", id, 3, []byte("x")); status != http.StatusNotFound {
		t.Errorf("part after complete: %d %s", status, body)
	}
	if status, _, body := e.complete("ann@example.com", id); status != http.StatusNotFound {
		t.Errorf("second complete: %d %s", status, body)
	}

	// No parts at all is the empty blob, as an empty POST is.
	id = e.start("ann@example.com")
	status, got, body = e.complete("ann@example.com", id)
	if empty := sha256.Sum256(nil); status != http.StatusCreated || got.Hash != hex.EncodeToString(empty[:]) || got.Size != 0 {
		t.Errorf("complete with no parts: %d %s", status, body)
	}
}

func TestUploadPartsInOrder(t *testing.T) {
	e := newUploadEnv(t)
	const ann = "ann@example.com"
	p0, p1 := randomData(1000), randomData(2000)
	id := e.start(ann)

	status, body := e.part(ann, id, 1, p1)
	if status != http.StatusConflict || !strings.Contains(body, "expected part 0") {
		t.Errorf("part 1 first: %d %s, want 409 naming part 0", status, body)
	}
	e.mustPart(ann, id, 0, p0)
	status, body = e.part(ann, id, 2, p1)
	if status != http.StatusConflict || !strings.Contains(body, "expected part 1") {
		t.Errorf("part 2 after part 0: %d %s, want 409 naming part 1", status, body)
	}
	// The last part again, same length: accepted, stored once.
	status, body = e.part(ann, id, 0, p0)
	if status != http.StatusOK || !strings.Contains(body, `"parts":1,"size":1000`) {
		t.Errorf("part 0 again: %d %s, want 200 with one part of 1000 bytes", status, body)
	}
	// With another length it is not the same part.
	status, body = e.part(ann, id, 0, p0[:10])
	if status != http.StatusConflict || !strings.Contains(body, "expected part 1") {
		t.Errorf("part 0 again, shorter: %d %s, want 409 naming part 1", status, body)
	}
	if status, body := e.call(ann, "PUT", "/api/v1/uploads/"+id+"/parts/-1", p0); status != http.StatusBadRequest {
		t.Errorf("part -1: %d %s", status, body)
	}
	e.mustPart(ann, id, 1, p1)
	status, got, body := e.complete(ann, id)
	sum := sha256.Sum256(append(append([]byte{}, p0...), p1...))
	if status != http.StatusCreated || got.Hash != hex.EncodeToString(sum[:]) || got.Size != 3000 {
		t.Errorf("complete: %d %s, want the hash of part 0 then part 1", status, body)
	}
}

func TestUploadOfAnotherUser(t *testing.T) {
	e := newUploadEnv(t)
	const ann, bob = "ann@example.com", "bob@example.com"
	id := e.start(ann)
	e.mustPart(ann, id, 0, []byte("ann's part"))
	if status, body := e.part(bob, id, 1, []byte("bob's part")); status != http.StatusNotFound {
		t.Errorf("bob sends a part of ann's upload: %d %s", status, body)
	}
	if status, _, body := e.complete(bob, id); status != http.StatusNotFound {
		t.Errorf("bob completes ann's upload: %d %s", status, body)
	}
	if status, body := e.call(bob, "DELETE", "/api/v1/uploads/"+id, nil); status != http.StatusNotFound {
		t.Errorf("bob deletes ann's upload: %d %s", status, body)
	}
	_, unknown := e.part(bob, strings.Repeat("0", 32), 0, []byte("x"))
	_, other := e.part(bob, id, 0, []byte("x"))
	if strings.ReplaceAll(other, id, "ID") != strings.ReplaceAll(unknown, strings.Repeat("0", 32), "ID") {
		t.Errorf("another user's upload and an unknown one answer differently:\n%s\n%s", other, unknown)
	}
	e.mustPart(ann, id, 1, []byte(", still hers"))
	status, got, body := e.complete(ann, id)
	if sum := sha256.Sum256([]byte("ann's part, still hers")); status != http.StatusCreated || got.Hash != hex.EncodeToString(sum[:]) {
		t.Errorf("ann completes: %d %s", status, body)
	}
}

// Deleted, idle, interrupted or refused uploads leave no file behind.
func TestUploadAbandoned(t *testing.T) {
	e := newUploadEnv(t)
	const ann = "ann@example.com"

	id := e.start(ann)
	e.mustPart(ann, id, 0, randomData(5000))
	if status, body := e.call(ann, "DELETE", "/api/v1/uploads/"+id, nil); status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", status, body)
	}
	if status, body := e.part(ann, id, 1, []byte("x")); status != http.StatusNotFound {
		t.Errorf("part after delete: %d %s", status, body)
	}
	e.noBlobs()

	// Idle: aborted by the server.
	e.s.uploads.idle = 200 * time.Millisecond
	id = e.start(ann)
	e.mustPart(ann, id, 0, randomData(5000))
	waitUntil(t, "the idle upload is aborted", func() bool { return len(e.tmpFiles()) == 0 })
	if status, body := e.part(ann, id, 1, []byte("x")); status != http.StatusNotFound {
		t.Errorf("part after the idle timeout: %d %s", status, body)
	}
	e.noBlobs()
	e.s.uploads.idle = 0

	// A part that ends early aborts the whole upload.
	id = e.start(ann)
	e.mustPart(ann, id, 0, randomData(5000))
	conn, err := net.Dial("tcp", e.ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "PUT /api/v1/uploads/%s/parts/1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n%s: %s\r\nContent-Length: 100000\r\n\r\n", id, e.tokens[ann], EmailHeader, ann)
	conn.Write(randomData(1000))
	conn.Close()
	waitUntil(t, "the interrupted upload is aborted", func() bool { return len(e.tmpFiles()) == 0 })
	if status, body := e.part(ann, id, 1, []byte("x")); status != http.StatusNotFound {
		t.Errorf("part after an interrupted one: %d %s", status, body)
	}
	e.noBlobs()

	// The server stopping aborts what is open.
	e.start(ann)
	e.s.uploads.closeAll()
	e.noBlobs()
}

func TestUploadPartTooLarge(t *testing.T) {
	e := newUploadEnv(t)
	const ann = "ann@example.com"
	e.s.uploads.maxPart = 1 << 20
	id := e.start(ann)
	status, body := e.part(ann, id, 0, randomData(1<<20+1))
	if status != http.StatusRequestEntityTooLarge || !strings.Contains(body, "at most 1 MiB") {
		t.Errorf("oversize part: %d %s, want 413", status, body)
	}
	// Nothing was read: the upload goes on with smaller parts.
	e.mustPart(ann, id, 0, randomData(1<<20))
	e.mustPart(ann, id, 1, randomData(1))
	if status, _, body := e.complete(ann, id); status != http.StatusCreated {
		t.Errorf("complete: %d %s", status, body)
	}
	// A part needs its length up front.
	id = e.start(ann)
	req, _ := http.NewRequest("PUT", e.ts.URL+"/api/v1/uploads/"+id+"/parts/0", io.MultiReader(strings.NewReader("chunked")))
	req.Header.Set("Authorization", "Bearer "+e.tokens[ann])
	req.Header.Set(EmailHeader, ann)
	resp, err := e.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("part without Content-Length: %d", resp.StatusCode)
	}
}

func TestUploadLimits(t *testing.T) {
	e := newUploadEnv(t)
	const ann, bob = "ann@example.com", "bob@example.com"
	var ids []string
	for range maxUserUploads {
		ids = append(ids, e.start(ann))
	}
	status, body := e.call(ann, "POST", "/api/v1/uploads", nil)
	if status != http.StatusConflict || !strings.Contains(body, "uploads open") {
		t.Errorf("upload %d of one user: %d %s, want 409", maxUserUploads+1, status, body)
	}
	e.start(bob) // the limit is per user
	if status, body := e.call(ann, "DELETE", "/api/v1/uploads/"+ids[0], nil); status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", status, body)
	}
	e.start(ann) // room again
	if n := len(e.tmpFiles()); n != maxUserUploads+1 {
		t.Errorf("%d files in .tmp for %d open uploads", n, maxUserUploads+1)
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// An upload over the server's limit is refused, in one request or in
// parts, and nothing of it is kept.
func TestUploadSizeLimit(t *testing.T) {
	e := newUploadEnv(t)
	const ann = "ann@example.com"
	e.s.MaxUploadSize = 1000
	status, body := e.call(ann, "POST", "/api/v1/blobs", randomData(1001))
	if status != http.StatusRequestEntityTooLarge || !strings.Contains(body, "limit of 1000 B") || !strings.Contains(body, "--max-upload-size") {
		t.Errorf("single upload over the limit: %d %s", status, body)
	}
	if status, body := e.call(ann, "POST", "/api/v1/blobs", randomData(1000)); status != http.StatusCreated {
		t.Errorf("single upload at the limit: %d %s", status, body)
	}
	id := e.start(ann)
	e.mustPart(ann, id, 0, randomData(600))
	if status, body := e.part(ann, id, 1, randomData(401)); status != http.StatusRequestEntityTooLarge {
		t.Errorf("parts over the limit: %d %s", status, body)
	}
	if status, _ := e.part(ann, id, 1, randomData(10)); status != http.StatusNotFound {
		t.Errorf("the upload went on after exceeding the limit: %d", status)
	}
	if files := e.tmpFiles(); len(files) != 0 {
		t.Errorf("refused uploads left %v", files)
	}
}
