// Package fs implements cleanroom.BlobStore on a local directory.
//
// Blobs are files under the directory, named by their key. A new blob is
// written to a temporary file in dir/.tmp and renamed into place on Commit,
// so readers see either the whole blob or nothing. One process owns the
// directory: Init removes temporary files it finds, left by uploads that a
// crash or restart interrupted.
package fs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"

	"github.com/cleanroom-dev/cleanroom"
)

var _ cleanroom.BlobStore = (*Store)(nil)

// tmpDir holds uploads in progress. Keys cannot start with '.', so no key names it.
const tmpDir = ".tmp"

// Store is a blob store in a directory.
type Store struct {
	// Dir is the root directory; created, mode 0700, by Init.
	Dir string
}

// NewStore returns a Store rooted at dir. Call Init before use.
func NewStore(dir string) *Store { return &Store{Dir: dir} }

// Init creates the directory if needed and removes the temporary files of
// interrupted uploads. It is the lifecycle step other packages call Open;
// that name is taken by cleanroom.BlobStore's Open, which reads a blob.
func (s *Store) Init() error {
	if s.Dir == "" {
		return fmt.Errorf("blob store: directory is empty")
	}
	tmp := filepath.Join(s.Dir, tmpDir)
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return err
	}
	entries, err := os.ReadDir(tmp)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(tmp, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// Close releases nothing; it exists so Store has the usual lifecycle.
func (s *Store) Close() error { return nil }

// Create starts a new blob in a temporary file. Nothing is visible until Commit succeeds.
func (s *Store) Create(ctx context.Context) (cleanroom.BlobWriter, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(filepath.Join(s.Dir, tmpDir), "upload-")
	if err != nil {
		return nil, err
	}
	return &writer{store: s, f: f}, nil
}

// FreeSpace returns how many bytes the directory's filesystem has free for
// this process.
func (s *Store) FreeSpace() (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(s.Dir, &st); err != nil {
		return 0, err
	}
	return int64(st.Bavail) * st.Bsize, nil
}

// Open returns a reader of a committed blob. Returns EINVALID for a
// malformed key and ENOTFOUND if no blob has the key.
func (s *Store) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	path, err := s.regular(key)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if isNotExist(err) {
		return nil, errNotFound(key)
	}
	return f, err
}

// Delete removes a blob. Returns EINVALID for a malformed key and ENOTFOUND
// if no blob has the key.
func (s *Store) Delete(ctx context.Context, key string) error {
	path, err := s.regular(key)
	if err != nil {
		return err
	}
	if err := os.Remove(path); isNotExist(err) {
		return errNotFound(key)
	} else if err != nil {
		return err
	}
	return nil
}

// regular returns the path of key if it names a regular file. Directories
// made for longer keys are not blobs.
func (s *Store) regular(key string) (string, error) {
	if err := validKey(key); err != nil {
		return "", err
	}
	path := filepath.Join(s.Dir, filepath.FromSlash(key))
	fi, err := os.Lstat(path)
	if isNotExist(err) || (err == nil && !fi.Mode().IsRegular()) {
		return "", errNotFound(key)
	}
	return path, err
}

// keyRE allows slash-separated segments of letters, digits, '.', '_' and
// '-', each starting with a letter, digit, '_' or '-': no "..", no
// hidden names, no empty segments, no absolute paths.
var keyRE = regexp.MustCompile(`^[A-Za-z0-9_-][A-Za-z0-9._-]*(/[A-Za-z0-9_-][A-Za-z0-9._-]*)*$`)

const maxKeyLen = 1024

func validKey(key string) error {
	if len(key) > maxKeyLen || !keyRE.MatchString(key) {
		return cleanroom.Errorf(cleanroom.EINVALID, "invalid blob key %q: use slash-separated names of letters, digits, '.', '_' and '-', none empty or starting with '.'", key)
	}
	return nil
}

func errNotFound(key string) error {
	return cleanroom.Errorf(cleanroom.ENOTFOUND, "blob %s not found", key)
}

// isNotExist reports whether err says a path does not exist, including
// when one of its parents is a file.
func isNotExist(err error) bool {
	return errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

// mkdirs creates the directories of rel under root that are missing, and
// syncs the parent of each one it creates so the new entry survives a crash.
func mkdirs(root, rel string) error {
	dir := root
	for _, name := range strings.Split(rel, "/") {
		parent := dir
		dir = filepath.Join(dir, name)
		if err := os.Mkdir(dir, 0o700); errors.Is(err, os.ErrExist) {
			continue
		} else if err != nil {
			return err
		}
		if err := syncDir(parent); err != nil {
			return err
		}
	}
	return nil
}

// syncDir fsyncs a directory, making renames and creations in it durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
