package http

import (
	"net/http"

	"github.com/cleanroom-dev/cleanroom/worker"
)

// SpecsResponse is the body of GET /api/v1/enclave/specs: the workers
// computations run on, so users see what their scripts get and SDKs can
// pin the measurements they trust.
type SpecsResponse struct {
	Workers []worker.Spec `json:"workers"`
}

func (s *Server) handleSpecs(w http.ResponseWriter, r *http.Request) {
	specs := s.Specs
	if specs == nil {
		specs = []worker.Spec{}
	}
	writeJSON(w, http.StatusOK, SpecsResponse{Workers: specs})
}
