package http

import (
	"io"
	"net/http"
	"time"

	"github.com/cleanroom-dev/cleanroom"
)

// readDraftBody reads a possibly incomplete definition from the request.
func readDraftBody(w http.ResponseWriter, r *http.Request) (*cleanroom.Definition, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, cleanroom.MaxDefinitionSize))
	if err != nil {
		return nil, err
	}
	return cleanroom.ParseDraftDefinition(body)
}

// ownDraft returns the draft of the path if the caller created it; to
// anyone else it does not exist.
func (s *Server) ownDraft(r *http.Request) (*cleanroom.Draft, error) {
	d, err := s.Store.FindDraft(r.Context(), r.PathValue("id"))
	if cleanroom.ErrorCode(err) == cleanroom.ENOTFOUND || (err == nil && d.Owner != cleanroom.UserFromContext(r.Context())) {
		return nil, cleanroom.Errorf(cleanroom.ENOTFOUND, "draft %s not found", r.PathValue("id"))
	}
	return d, err
}

func (s *Server) handleCreateDraft(w http.ResponseWriter, r *http.Request) {
	def, err := readDraftBody(w, r)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	now := s.Now().UTC()
	d := &cleanroom.Draft{ID: cleanroom.NewID(), Owner: cleanroom.UserFromContext(r.Context()), Definition: def, CreatedAt: now, UpdatedAt: now}
	if err := s.Store.CreateDraft(r.Context(), d); err != nil {
		s.Error(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, d)
}

func (s *Server) handleListDrafts(w http.ResponseWriter, r *http.Request) {
	list, err := s.Store.ListDrafts(r.Context(), cleanroom.UserFromContext(r.Context()))
	if err != nil {
		s.Error(w, r, err)
		return
	}
	if list == nil {
		list = []*cleanroom.Draft{}
	}
	writeJSON(w, http.StatusOK, list)
}

func (s *Server) handleGetDraft(w http.ResponseWriter, r *http.Request) {
	d, err := s.ownDraft(r)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, d)
}

func (s *Server) handleUpdateDraft(w http.ResponseWriter, r *http.Request) {
	d, err := s.ownDraft(r)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	def, err := readDraftBody(w, r)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	if d, err = s.Store.UpdateDraft(r.Context(), d.ID, def, s.Now()); err != nil {
		s.Error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, d)
}

func (s *Server) handleDeleteDraft(w http.ResponseWriter, r *http.Request) {
	d, err := s.ownDraft(r)
	if err == nil {
		err = s.Store.DeleteDraft(r.Context(), d.ID)
	}
	if err != nil {
		s.Error(w, r, err)
		return
	}
	for _, ds := range d.TestDatasets {
		s.deleteBlob(r, cleanroom.TestDatasetKey(d.ID, ds.Node))
	}
	w.WriteHeader(http.StatusNoContent)
}

// handlePublishDraft validates a draft in full, publishes it exactly as
// publishing its definition directly would, and freezes the draft.
func (s *Server) handlePublishDraft(w http.ResponseWriter, r *http.Request) {
	d, err := s.ownDraft(r)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	if d.PublishedID != "" {
		s.Error(w, r, cleanroom.Errorf(cleanroom.ECONFLICT, "draft %s is already published as clean room %s", d.ID, d.PublishedID))
		return
	}
	if err := d.Definition.Validate(); err != nil {
		s.Error(w, r, err)
		return
	}
	res, err := s.publish(r, d.Definition)
	if err == nil {
		err = s.Store.PublishDraft(r.Context(), d.ID, res.ID, s.Now())
	}
	if err != nil {
		s.Error(w, r, err)
		return
	}
	writeJSON(w, publishStatus(res), res)
}

// handleTestDraft starts "test all computations" on a draft: every
// computation on empty inputs or the draft's test datasets. The definition
// must be complete (it is validated as for publishing); the outcome comes
// from GET .../tests/latest.
func (s *Server) handleTestDraft(w http.ResponseWriter, r *http.Request) {
	d, err := s.ownDraft(r)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	if err := d.Definition.Validate(); err != nil {
		s.Error(w, r, err)
		return
	}
	if last, err := s.Store.LatestDraftTest(r.Context(), d.ID); err == nil && last.State == cleanroom.DraftTestRunning {
		s.Error(w, r, cleanroom.Errorf(cleanroom.ECONFLICT, "a test of this draft is already running (started %s); wait for it to end", last.CreatedAt.Format(time.RFC3339)))
		return
	}
	test := &cleanroom.DraftTest{ID: cleanroom.NewID(), DraftID: d.ID, Nodes: []cleanroom.NodeTest{}, CreatedAt: s.Now().UTC()}
	if err := s.Store.CreateDraftTest(r.Context(), test); err != nil {
		s.Error(w, r, err)
		return
	}
	if err := s.Enclave.StartDraftTest(d.Owner, test, d.Definition, d.TestDatasets); err != nil {
		s.Store.FinishDraftTest(r.Context(), test.ID, nil, cleanroom.ErrorMessage(err), s.Now())
		s.Error(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, test)
}

// handleLatestDraftTest returns a draft's latest test. With ?wait=DURATION
// it answers once the test is done, or when the duration has passed.
func (s *Server) handleLatestDraftTest(w http.ResponseWriter, r *http.Request) {
	d, err := s.ownDraft(r)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	s.longPoll(w, r, func() (any, bool, error) {
		test, err := s.Store.LatestDraftTest(r.Context(), d.ID)
		if err != nil {
			return nil, false, err
		}
		return test, test.State == cleanroom.DraftTestDone, nil
	})
}

// testDataNode returns the draft of the path and checks that the node of
// the path is one of its data nodes.
func (s *Server) testDataNode(r *http.Request) (*cleanroom.Draft, string, error) {
	d, err := s.ownDraft(r)
	if err != nil {
		return nil, "", err
	}
	name := r.PathValue("node")
	n := d.Definition.Node(name)
	if n == nil {
		return nil, "", cleanroom.Errorf(cleanroom.ENOTFOUND, "draft has no node %q", name)
	} else if !n.Kind.IsData() {
		return nil, "", cleanroom.Errorf(cleanroom.EINVALID, "node %q is a %s node; test data goes to data nodes", name, n.Kind)
	}
	return d, name, nil
}

// handlePutTestDataset attaches test data, sent as is, to a data node of
// a draft. It is not real data: it exists so scripts can be tried.
func (s *Server) handlePutTestDataset(w http.ResponseWriter, r *http.Request) {
	d, node, err := s.testDataNode(r)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	ds, err := s.Enclave.StoreTestDataset(r.Context(), d.ID, node, http.MaxBytesReader(w, r.Body, cleanroom.MaxTestDatasetSize))
	if err == nil {
		err = s.Store.PutTestDataset(r.Context(), ds)
	}
	if err != nil {
		s.Error(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleDeleteTestDataset(w http.ResponseWriter, r *http.Request) {
	d, node, err := s.testDataNode(r)
	if err == nil {
		err = s.Store.DeleteTestDataset(r.Context(), d.ID, node)
	}
	if err != nil {
		s.Error(w, r, err)
		return
	}
	s.deleteBlob(r, cleanroom.TestDatasetKey(d.ID, node))
	w.WriteHeader(http.StatusNoContent)
}

// deleteBlob removes a blob whose record is gone; a failure only leaves
// ciphertext no one refers to, so it is logged, not returned.
func (s *Server) deleteBlob(r *http.Request, key string) {
	if err := s.Blobs.Delete(r.Context(), key); err != nil && cleanroom.ErrorCode(err) != cleanroom.ENOTFOUND {
		s.Logger.Error("delete blob", "key", key, "err", err)
	}
}
