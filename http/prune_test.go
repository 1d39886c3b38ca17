package http

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cleanroom-dev/cleanroom"
)

// Uploads no dataset uses are deleted once older than KeepUnused: one
// never published and one replaced by another upload. The published one,
// and an unused one still young enough to be published, stay.
func TestPruneBlobs(t *testing.T) {
	e := newUploadEnv(t)
	ctx := context.Background()
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	clock := start
	e.s.Now = func() time.Time { return clock }
	e.s.KeepUnused = 24 * time.Hour
	upload := func() string {
		t.Helper()
		status, body := e.call("ann@example.com", "POST", "/api/v1/blobs", randomData(1000))
		var b cleanroom.Blob
		if status != http.StatusCreated || json.Unmarshal([]byte(body), &b) != nil {
			t.Fatalf("upload: %d %s", status, body)
		}
		return b.Hash
	}
	replaced, published, abandoned := upload(), upload(), upload()
	clock = start.Add(23 * time.Hour)
	young := upload()

	canonical, _ := (&cleanroom.Definition{
		Name: "prune", Owner: "ann@example.com",
		Nodes:        []cleanroom.Node{{Name: "data", Kind: cleanroom.NodeRaw}},
		Participants: []cleanroom.Participant{{Email: "ann@example.com", DataOwnerOf: []string{"data"}}},
	}).Canonical()
	def, _ := cleanroom.ParseDefinition(canonical)
	dcr := &cleanroom.DCR{ID: cleanroom.DefinitionID(canonical), Definition: def, Canonical: canonical, PublishedBy: "ann@example.com", PublishedAt: start}
	if _, err := e.s.Store.CreateDCR(ctx, dcr); err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{replaced, published} {
		if err := e.s.Store.PutDataset(ctx, &cleanroom.Dataset{DCRID: dcr.ID, Node: "data", ManifestHash: h, Size: 1000, SealedKey: []byte("k"), PublishedBy: "ann@example.com"}, nil); err != nil {
			t.Fatal(err)
		}
	}

	clock = start.Add(24*time.Hour + time.Minute)
	n, err := e.s.PruneBlobs(ctx)
	if err != nil || n != 2 {
		t.Fatalf("PruneBlobs = %d, %v; want 2 deleted", n, err)
	}
	stored := func(hash string) bool {
		_, errFile := os.Stat(filepath.Join(e.blobs, cleanroom.BlobKey(hash)))
		_, errRecord := e.s.Store.FindBlob(ctx, hash)
		if (errFile == nil) != (errRecord == nil) {
			t.Errorf("blob %s: file %v but record %v", hash, errFile, errRecord)
		}
		return errFile == nil
	}
	for name, h := range map[string]string{"replaced": replaced, "never published": abandoned} {
		if stored(h) {
			t.Errorf("the %s upload was kept", name)
		}
	}
	for name, h := range map[string]string{"published": published, "young": young} {
		if !stored(h) {
			t.Errorf("the %s upload was deleted", name)
		}
	}
	if n, err := e.s.PruneBlobs(ctx); err != nil || n != 0 {
		t.Errorf("PruneBlobs again = %d, %v; want nothing to delete", n, err)
	}
}

// A store that cannot say which uploads are unused deletes none.
func TestPruneBlobsFailsClosed(t *testing.T) {
	e := newUploadEnv(t)
	e.s.KeepUnused = time.Nanosecond
	status, body := e.call("ann@example.com", "POST", "/api/v1/blobs", randomData(100))
	var b cleanroom.Blob
	if status != http.StatusCreated || json.Unmarshal([]byte(body), &b) != nil {
		t.Fatalf("upload: %d %s", status, body)
	}
	e.s.Store.(interface{ Close() error }).Close()
	if _, err := e.s.PruneBlobs(context.Background()); err == nil {
		t.Error("PruneBlobs on a closed store reported no error")
	}
	if _, err := os.Stat(filepath.Join(e.blobs, cleanroom.BlobKey(b.Hash))); err != nil {
		t.Errorf("the upload's file is gone: %v", err)
	}
}

// failingDeletes is a blob store whose files cannot be deleted.
type failingDeletes struct{ cleanroom.BlobStore }

func (failingDeletes) Delete(context.Context, string) error { return errors.New("disk says no") }

// A file that cannot be deleted does not stop the round: the others are
// still pruned, and the server log names it.
func TestPruneBlobsGoesOnPastAFailedDelete(t *testing.T) {
	e := newUploadEnv(t)
	var logged bytes.Buffer
	e.s.Logger = slog.New(slog.NewTextHandler(&logged, nil))
	e.s.KeepUnused = time.Nanosecond
	var hashes []string
	for range 2 {
		status, body := e.call("ann@example.com", "POST", "/api/v1/blobs", randomData(100))
		var b cleanroom.Blob
		if status != http.StatusCreated || json.Unmarshal([]byte(body), &b) != nil {
			t.Fatalf("upload: %d %s", status, body)
		}
		hashes = append(hashes, b.Hash)
	}
	e.s.Blobs = failingDeletes{e.s.Blobs}
	if n, err := e.s.PruneBlobs(context.Background()); err != nil || n != 2 {
		t.Fatalf("PruneBlobs = %d, %v; want both records gone and no error", n, err)
	}
	for _, h := range hashes {
		if !strings.Contains(logged.String(), cleanroom.BlobKey(h)) {
			t.Errorf("the server log does not name %s:\n%s", cleanroom.BlobKey(h), logged.String())
		}
	}
}

// stallingStore's UnusedBlobs runs until its context ends, then a moment
// longer, as a query in flight when the server closes would.
type stallingStore struct {
	cleanroom.Store
	started  chan struct{}
	returned atomic.Bool
}

func (s *stallingStore) UnusedBlobs(ctx context.Context, _ time.Time, _ int) ([]cleanroom.Blob, error) {
	close(s.started)
	<-ctx.Done()
	time.Sleep(50 * time.Millisecond)
	s.returned.Store(true)
	return nil, ctx.Err()
}

// Close waits for the pruner, which uses the store the caller closes next.
func TestCloseWaitsForThePruner(t *testing.T) {
	e := newUploadEnv(t)
	store := &stallingStore{Store: e.s.Store, started: make(chan struct{})}
	s := NewServer()
	s.Addr, s.Store, s.Blobs, s.KeepUnused = "127.0.0.1:0", store, e.s.Blobs, time.Hour
	s.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if err := s.Open(); err != nil {
		t.Fatal(err)
	}
	<-store.started
	s.Close()
	if !store.returned.Load() {
		t.Error("Close returned while the pruner was still using the store")
	}
}
