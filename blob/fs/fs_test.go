package fs_test

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/cleanroom-dev/cleanroom"
	"github.com/cleanroom-dev/cleanroom/blob/fs"
	"github.com/cleanroom-dev/cleanroom/blobtest"
)

func TestConformance(t *testing.T) {
	blobtest.Run(t, func(t *testing.T) cleanroom.BlobStore { return newStore(t, t.TempDir()) })
}

func newStore(t *testing.T, dir string) *fs.Store {
	t.Helper()
	s := fs.NewStore(dir)
	if err := s.Init(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestInterruptedUpload checks that an upload the process never committed
// or aborted, as after a crash, is removed by the next Init.
func TestInterruptedUpload(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "blobs")
	s := newStore(t, dir)
	w, err := s.Create(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("half an upload")); err != nil {
		t.Fatal(err)
	}
	if n := len(readDir(t, filepath.Join(dir, ".tmp"))); n != 1 {
		t.Fatalf("%d temporary files during the upload, want 1", n)
	}

	newStore(t, dir)
	if names := readDir(t, filepath.Join(dir, ".tmp")); len(names) != 0 {
		t.Errorf("temporary files after Init: %v", names)
	}
}

func TestModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "blobs")
	s := newStore(t, dir)
	w, _ := s.Create(context.Background())
	w.Write([]byte("x"))
	if err := w.Commit("datasets/abc"); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{dir, filepath.Join(dir, ".tmp"), filepath.Join(dir, "datasets")} {
		if fi, err := os.Stat(p); err != nil {
			t.Error(err)
		} else if fi.Mode().Perm() != 0o700 {
			t.Errorf("%s: mode %v, want 0700", p, fi.Mode().Perm())
		}
	}
	if fi, err := os.Stat(filepath.Join(dir, "datasets", "abc")); err != nil {
		t.Error(err)
	} else if fi.Mode().Perm() != 0o600 {
		t.Errorf("blob mode %v, want 0600", fi.Mode().Perm())
	}
}

// TestHiddenKeys checks that no key reaches the temporary directory or
// another hidden name.
func TestHiddenKeys(t *testing.T) {
	s := newStore(t, t.TempDir())
	for _, key := range []string{".tmp", ".tmp/x", ".hidden", "a/.b"} {
		if _, err := s.Open(context.Background(), key); cleanroom.ErrorCode(err) != cleanroom.EINVALID {
			t.Errorf("Open(%q): %v, want code %s", key, err, cleanroom.EINVALID)
		}
	}
}

func readDir(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestFreeSpace(t *testing.T) {
	s := fs.NewStore(t.TempDir())
	if err := s.Init(); err != nil {
		t.Fatal(err)
	}
	free, err := s.FreeSpace()
	var st syscall.Statfs_t
	syscall.Statfs(s.Dir, &st)
	if err != nil || free <= 0 || free > int64(st.Blocks)*st.Bsize {
		t.Errorf("FreeSpace = %d, %v; want more than 0 and at most the filesystem's %d bytes", free, err, int64(st.Blocks)*st.Bsize)
	}
	if _, err := fs.NewStore(filepath.Join(s.Dir, "missing")).FreeSpace(); err == nil {
		t.Error("FreeSpace of a missing directory: no error")
	}
}
