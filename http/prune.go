package http

import (
	"context"
	"time"

	"github.com/cleanroom-dev/cleanroom"
)

// Pruning: an uploaded ciphertext that no dataset uses (one never
// published, or replaced, or removed by its data owner) is deleted once it
// is older than KeepUnused, so that abandoned uploads do not fill the
// disk and a withdrawn dataset does not stay on it. The age protects an
// upload that is about to be published; the store's check that no dataset
// uses a blob and its delete are one statement, so one published in
// between is kept.

// pruneEvery is how often the server looks for unused uploads and
// expired sessions.
const pruneEvery = time.Hour

// prune runs PruneBlobs (unless KeepUnused is 0) and forgets sessions
// expired for keepExpiredSessions, now and every pruneEvery until ctx ends.
func (s *Server) prune(ctx context.Context) {
	for {
		if s.KeepUnused > 0 {
			if n, err := s.PruneBlobs(ctx); err != nil {
				s.Logger.Error("deleting unused uploads", "deleted", n, "err", err)
			} else if n > 0 {
				s.Logger.Info("deleted unused uploads", "count", n, "older_than", s.KeepUnused)
			}
		}
		if _, err := s.forgetExpiredSessions(ctx); err != nil && ctx.Err() == nil {
			s.Logger.Error("forgetting expired sessions", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(pruneEvery):
		}
	}
}

// forgetExpiredSessions deletes the sessions that expired more than
// keepExpiredSessions ago, and returns how many.
func (s *Server) forgetExpiredSessions(ctx context.Context) (int, error) {
	return s.Store.DeleteExpiredSessions(ctx, s.Now().Add(-keepExpiredSessions))
}

// PruneBlobs deletes the uploads no dataset uses that are older than
// KeepUnused, and returns how many it deleted.
func (s *Server) PruneBlobs(ctx context.Context) (int, error) {
	before := s.Now().Add(-s.KeepUnused)
	deleted := 0
	for {
		blobs, err := s.Store.UnusedBlobs(ctx, before, 100)
		if err != nil || len(blobs) == 0 {
			return deleted, err
		}
		progress := false
		for _, b := range blobs {
			gone, err := s.pruneBlob(ctx, b.Hash, before)
			if err != nil {
				return deleted, err
			}
			if gone {
				deleted++
				progress = true
			}
		}
		if !progress { // every one was published meanwhile
			return deleted, nil
		}
	}
}

// pruneBlob deletes an upload if no dataset uses it: its record first, so
// that nothing can be published on a file about to go, then the file. The
// lock keeps an upload of the very same bytes (which commitBlob stores
// under the same name) from landing in between.
func (s *Server) pruneBlob(ctx context.Context, hash string, before time.Time) (bool, error) {
	s.blobLock.Lock()
	defer s.blobLock.Unlock()
	switch err := s.Store.DeleteUnusedBlob(ctx, hash, before); cleanroom.ErrorCode(err) {
	case "":
	case cleanroom.ECONFLICT, cleanroom.ENOTFOUND: // published or uploaded again meanwhile, or already gone
		return false, nil
	default:
		return false, err
	}
	// A file that cannot be deleted now is unreachable (it has no record)
	// but stays on disk: say so and go on with the others.
	if err := s.Blobs.Delete(ctx, cleanroom.BlobKey(hash)); err != nil && cleanroom.ErrorCode(err) != cleanroom.ENOTFOUND {
		s.Logger.Error("deleting an unused upload's file; delete it by hand", "key", cleanroom.BlobKey(hash), "err", err)
	}
	return true, nil
}
