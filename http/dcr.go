package http

import (
	"io"
	"net/http"

	"github.com/cleanroom-dev/cleanroom"
)

func (s *Server) handlePublishDCR(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, cleanroom.MaxDefinitionSize))
	if err != nil {
		s.Error(w, r, err)
		return
	}
	def, err := cleanroom.ParseDefinition(body)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	res, err := s.publish(r, def)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	writeJSON(w, publishStatus(res), res)
}

// publish stores a valid definition as a clean room owned by the caller.
// The same definition published again keeps its id and reports Created false.
func (s *Server) publish(r *http.Request, def *cleanroom.Definition) (*cleanroom.PublishResult, error) {
	email := cleanroom.UserFromContext(r.Context())
	if !cleanroom.SameEmail(def.Owner, email) {
		return nil, cleanroom.Errorf(cleanroom.EFORBIDDEN, "owner is %q but you are %q; a clean room is published by its owner", def.Owner, email)
	}
	canonical, err := def.Canonical()
	if err != nil {
		return nil, err
	}
	dcr := &cleanroom.DCR{ID: cleanroom.DefinitionID(canonical), Definition: def, Canonical: canonical, PublishedBy: email, PublishedAt: s.Now().UTC()}
	created, err := s.Store.CreateDCR(r.Context(), dcr)
	if err != nil {
		return nil, err
	}
	return &cleanroom.PublishResult{ID: dcr.ID, Created: created}, nil
}

func publishStatus(res *cleanroom.PublishResult) int {
	if res.Created {
		return http.StatusCreated
	}
	return http.StatusOK
}

func (s *Server) handleGetDCR(w http.ResponseWriter, r *http.Request) {
	dcr, err := s.readableDCR(r)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	resp := cleanroom.DCRView{DCR: dcr, Datasets: []*cleanroom.Dataset{}}
	for _, n := range dcr.Definition.Nodes {
		if !n.Kind.IsData() {
			continue
		}
		ds, err := s.Store.FindDataset(r.Context(), dcr.ID, n.Name)
		if err == nil {
			resp.Datasets = append(resp.Datasets, ds)
		} else if cleanroom.ErrorCode(err) != cleanroom.ENOTFOUND {
			s.Error(w, r, err)
			return
		}
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) handleListDCRs(w http.ResponseWriter, r *http.Request) {
	dcrs, err := s.Store.ListDCRs(r.Context(), cleanroom.UserFromContext(r.Context()))
	if err != nil {
		s.Error(w, r, err)
		return
	}
	out := []cleanroom.DCRSummary{}
	for _, d := range dcrs {
		out = append(out, cleanroom.DCRSummary{ID: d.ID, Name: d.Definition.Name, Owner: d.Definition.Owner, PublishedAt: d.PublishedAt})
	}
	writeJSON(w, http.StatusOK, out)
}

// readableDCR returns the clean room named in the path if the caller takes
// part in it. To anyone else it does not exist: ENOTFOUND, never EFORBIDDEN,
// so strangers cannot probe which clean rooms exist.
func (s *Server) readableDCR(r *http.Request) (*cleanroom.DCR, error) {
	dcr, err := s.Store.FindDCR(r.Context(), r.PathValue("id"))
	if cleanroom.ErrorCode(err) == cleanroom.ENOTFOUND || (err == nil && !dcr.Definition.CanRead(cleanroom.UserFromContext(r.Context()))) {
		return nil, cleanroom.Errorf(cleanroom.ENOTFOUND, "clean room %s not found, or you are not a participant", r.PathValue("id"))
	}
	return dcr, err
}

// nodeOf returns the named node of a readable clean room.
func nodeOf(dcr *cleanroom.DCR, name string) (*cleanroom.Node, error) {
	n := dcr.Definition.Node(name)
	if n == nil {
		return nil, cleanroom.Errorf(cleanroom.ENOTFOUND, "clean room has no node %q", name)
	}
	return n, nil
}
