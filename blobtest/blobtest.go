// Package blobtest is the conformance suite every cleanroom.BlobStore
// implementation passes.
package blobtest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/cleanroom-dev/cleanroom"
)

// LargeSize is the size of the blob the suite streams through the store.
const LargeSize = 64 << 20

// Run runs the suite. open returns a new, empty store; it is called once per
// subtest and must arrange its own cleanup with t.Cleanup.
func Run(t *testing.T, open func(t *testing.T) cleanroom.BlobStore) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s cleanroom.BlobStore)
	}{
		{"RoundTrip", testRoundTrip},
		{"Empty", testEmpty},
		{"NotVisibleBeforeCommit", testNotVisibleBeforeCommit},
		{"Abort", testAbort},
		{"AbortAfterCommit", testAbortAfterCommit},
		{"WriteAfterCommit", testWriteAfterCommit},
		{"Replace", testReplace},
		{"Delete", testDelete},
		{"NotFound", testNotFound},
		{"Prefix", testPrefix},
		{"BadKeys", testBadKeys},
		{"Concurrent", testConcurrent},
		{"Large", testLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.fn(t, open(t))
		})
	}
}

// keys are keys of the shapes the server uses.
var keys = []string{
	cleanroom.BlobKey("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"),
	cleanroom.JobResultKey("0123456789abcdef0123456789abcdef"),
	cleanroom.JobLogsKey("0123456789abcdef0123456789abcdef"),
	"a",
	"a.b/c_d/e-f/g.h",
}

func testRoundTrip(t *testing.T, s cleanroom.BlobStore) {
	for _, key := range keys {
		put(t, s, key, []byte("content of "+key))
	}
	for _, key := range keys {
		if got := get(t, s, key); string(got) != "content of "+key {
			t.Errorf("%s: read %q", key, got)
		}
	}
}

func testEmpty(t *testing.T, s cleanroom.BlobStore) {
	put(t, s, "empty", nil)
	if got := get(t, s, "empty"); len(got) != 0 {
		t.Errorf("read %q, want nothing", got)
	}
}

func testNotVisibleBeforeCommit(t *testing.T, s cleanroom.BlobStore) {
	w := create(t, s)
	defer w.Abort()
	write(t, w, []byte("partial"))
	wantCode(t, "Open before Commit", openErr(s, "k"), cleanroom.ENOTFOUND)
	if err := w.Commit("k"); err != nil {
		t.Fatal(err)
	}
	if got := get(t, s, "k"); string(got) != "partial" {
		t.Errorf("read %q", got)
	}
}

func testAbort(t *testing.T, s cleanroom.BlobStore) {
	w := create(t, s)
	write(t, w, []byte("discarded"))
	if err := w.Abort(); err != nil {
		t.Fatal(err)
	}
	if err := w.Abort(); err != nil {
		t.Errorf("second Abort: %v", err)
	}
	if _, err := w.Write([]byte("x")); err == nil {
		t.Error("Write after Abort succeeded")
	}
	if err := w.Commit("k"); err == nil {
		t.Error("Commit after Abort succeeded")
	}
	wantCode(t, "Open after Abort", openErr(s, "k"), cleanroom.ENOTFOUND)
}

func testAbortAfterCommit(t *testing.T, s cleanroom.BlobStore) {
	w := create(t, s)
	write(t, w, []byte("kept"))
	if err := w.Commit("k"); err != nil {
		t.Fatal(err)
	}
	if err := w.Abort(); err != nil {
		t.Errorf("Abort after Commit: %v", err)
	}
	if got := get(t, s, "k"); string(got) != "kept" {
		t.Errorf("read %q after Abort", got)
	}
}

func testWriteAfterCommit(t *testing.T, s cleanroom.BlobStore) {
	w := create(t, s)
	defer w.Abort()
	write(t, w, []byte("one"))
	if err := w.Commit("k"); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("two")); err == nil {
		t.Error("Write after Commit succeeded")
	}
	if err := w.Commit("k2"); err == nil {
		t.Error("second Commit succeeded")
	}
	if got := get(t, s, "k"); string(got) != "one" {
		t.Errorf("read %q", got)
	}
}

func testReplace(t *testing.T, s cleanroom.BlobStore) {
	put(t, s, "k", []byte("first version, longer"))
	put(t, s, "k", []byte("second"))
	if got := get(t, s, "k"); string(got) != "second" {
		t.Errorf("read %q after replace", got)
	}
}

func testDelete(t *testing.T, s cleanroom.BlobStore) {
	ctx := context.Background()
	put(t, s, "dir/k", []byte("x"))
	put(t, s, "dir/other", []byte("y"))
	if err := s.Delete(ctx, "dir/k"); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "Open after Delete", openErr(s, "dir/k"), cleanroom.ENOTFOUND)
	wantCode(t, "second Delete", s.Delete(ctx, "dir/k"), cleanroom.ENOTFOUND)
	if got := get(t, s, "dir/other"); string(got) != "y" {
		t.Errorf("other blob reads %q after Delete", got)
	}
	put(t, s, "dir/k", []byte("again"))
	if got := get(t, s, "dir/k"); string(got) != "again" {
		t.Errorf("read %q after re-create", got)
	}
}

func testNotFound(t *testing.T, s cleanroom.BlobStore) {
	ctx := context.Background()
	for _, key := range keys {
		wantCode(t, "Open "+key, openErr(s, key), cleanroom.ENOTFOUND)
		wantCode(t, "Delete "+key, s.Delete(ctx, key), cleanroom.ENOTFOUND)
	}
}

// testPrefix checks that keys are flat names: the prefix of a longer key,
// or a key under an existing blob, is no blob.
func testPrefix(t *testing.T, s cleanroom.BlobStore) {
	ctx := context.Background()
	put(t, s, "datasets/abc", []byte("x"))
	wantCode(t, "Open prefix", openErr(s, "datasets"), cleanroom.ENOTFOUND)
	wantCode(t, "Delete prefix", s.Delete(ctx, "datasets"), cleanroom.ENOTFOUND)
	wantCode(t, "Open under a blob", openErr(s, "datasets/abc/def"), cleanroom.ENOTFOUND)
	wantCode(t, "Delete under a blob", s.Delete(ctx, "datasets/abc/def"), cleanroom.ENOTFOUND)
	if got := get(t, s, "datasets/abc"); string(got) != "x" {
		t.Errorf("read %q", got)
	}
}

// BadKeys are keys every store refuses with EINVALID.
var BadKeys = []string{
	"", "/", "/abs", "a/", "/a", "a//b", ".", "..", "../a", "a/..", "a/../b", "a/./b",
	"a b", `a\b`, "a\x00b", "a\nb", "a:b", "é", "a?b", "a*b",
}

func testBadKeys(t *testing.T, s cleanroom.BlobStore) {
	ctx := context.Background()
	for _, key := range BadKeys {
		w := create(t, s)
		write(t, w, []byte("x"))
		wantCode(t, fmt.Sprintf("Commit(%q)", key), w.Commit(key), cleanroom.EINVALID)
		if err := w.Abort(); err != nil {
			t.Errorf("Abort after refused Commit(%q): %v", key, err)
		}
		wantCode(t, fmt.Sprintf("Open(%q)", key), openErr(s, key), cleanroom.EINVALID)
		wantCode(t, fmt.Sprintf("Delete(%q)", key), s.Delete(ctx, key), cleanroom.EINVALID)
	}
}

// testConcurrent writes several blobs at once, interleaving their writes.
func testConcurrent(t *testing.T, s cleanroom.BlobStore) {
	const n = 8
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			w, err := s.Create(context.Background())
			if err != nil {
				t.Error(err)
				return
			}
			defer w.Abort()
			for j := range 100 {
				if _, err := fmt.Fprintf(w, "%d.%d;", i, j); err != nil {
					t.Error(err)
					return
				}
			}
			if err := w.Commit(fmt.Sprintf("c/%d", i)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for i := range n {
		var want bytes.Buffer
		for j := range 100 {
			fmt.Fprintf(&want, "%d.%d;", i, j)
		}
		if got := get(t, s, fmt.Sprintf("c/%d", i)); !bytes.Equal(got, want.Bytes()) {
			t.Errorf("blob %d: read %d bytes, want %d", i, len(got), want.Len())
		}
	}
}

// testLarge streams LargeSize generated bytes through the store and back,
// comparing hashes, so neither side holds the blob in memory.
func testLarge(t *testing.T, s cleanroom.BlobStore) {
	if testing.Short() {
		t.Skip("streams 64 MiB")
	}
	ctx := context.Background()
	gen := io.LimitReader(rand.NewChaCha8([32]byte{1}), LargeSize)
	want := sha256.New()
	w := create(t, s)
	defer w.Abort()
	if n, err := io.Copy(w, io.TeeReader(gen, want)); err != nil || n != LargeSize {
		t.Fatalf("wrote %d bytes: %v", n, err)
	}
	if err := w.Commit("large"); err != nil {
		t.Fatal(err)
	}
	rc, err := s.Open(ctx, "large")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got := sha256.New()
	if n, err := io.Copy(got, rc); err != nil || n != LargeSize {
		t.Fatalf("read %d bytes: %v", n, err)
	}
	if !bytes.Equal(got.Sum(nil), want.Sum(nil)) {
		t.Error("read bytes differ from written bytes")
	}
}

func create(t *testing.T, s cleanroom.BlobStore) cleanroom.BlobWriter {
	t.Helper()
	w, err := s.Create(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func write(t *testing.T, w io.Writer, p []byte) {
	t.Helper()
	if _, err := w.Write(p); err != nil {
		t.Fatal(err)
	}
}

func put(t *testing.T, s cleanroom.BlobStore, key string, data []byte) {
	t.Helper()
	w := create(t, s)
	defer w.Abort()
	write(t, w, data)
	if err := w.Commit(key); err != nil {
		t.Fatalf("Commit(%q): %v", key, err)
	}
}

func get(t *testing.T, s cleanroom.BlobStore, key string) []byte {
	t.Helper()
	rc, err := s.Open(context.Background(), key)
	if err != nil {
		t.Fatalf("Open(%q): %v", key, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %q: %v", key, err)
	}
	return data
}

func openErr(s cleanroom.BlobStore, key string) error {
	rc, err := s.Open(context.Background(), key)
	if err == nil {
		rc.Close()
	}
	return err
}

func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if got := cleanroom.ErrorCode(err); got != code {
		t.Errorf("%s: error %v, want code %s", what, err, code)
	}
}
