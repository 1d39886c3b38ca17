package http

import (
	"io"
	"net/http"

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
