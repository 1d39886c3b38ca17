package fs

import (
	"errors"
	"os"
	"path"
	"path/filepath"
)

// writer writes one blob to a temporary file.
type writer struct {
	store *Store
	f     *os.File
	state int
}

// Writer states. In stateClosed the file is closed but not yet renamed:
// a Commit that failed after closing it can be retried or aborted.
const (
	stateOpen = iota
	stateClosed
	stateCommitted
	stateAborted
)

var errFinished = errors.New("blob store: the blob is already committed or aborted")

func (w *writer) Write(p []byte) (int, error) {
	if w.state != stateOpen {
		return 0, errFinished
	}
	return w.f.Write(p)
}

// Commit syncs the written bytes, renames the temporary file to key and
// syncs the directory, so a committed blob survives a crash. Returns
// EINVALID for a malformed key; the blob can then still be committed under
// a valid key or aborted.
func (w *writer) Commit(key string) error {
	if w.state == stateCommitted || w.state == stateAborted {
		return errFinished
	}
	if err := validKey(key); err != nil {
		return err
	}
	if w.state == stateOpen {
		err := w.f.Sync()
		if cerr := w.f.Close(); err == nil {
			err = cerr
		}
		w.state = stateClosed
		if err != nil {
			return err
		}
	}
	dst := filepath.Join(w.store.Dir, filepath.FromSlash(key))
	if dir := path.Dir(key); dir != "." {
		if err := mkdirs(w.store.Dir, dir); err != nil {
			return err
		}
	}
	if err := os.Rename(w.f.Name(), dst); err != nil {
		return err
	}
	w.state = stateCommitted
	return syncDir(filepath.Dir(dst))
}

// Abort removes the temporary file. It does nothing after Commit.
func (w *writer) Abort() error {
	switch w.state {
	case stateCommitted, stateAborted:
		return nil
	case stateOpen:
		w.f.Close()
	}
	w.state = stateAborted
	if err := os.Remove(w.f.Name()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
