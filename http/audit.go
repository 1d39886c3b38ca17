package http

import (
	"net/http"

	"github.com/cleanroom-dev/cleanroom"
)

// audit records, in the audit log of clean room dcrID, that the caller is
// about to do action (on node, with detail). It comes before the action:
// an action whose entry cannot be written is not done.
func (s *Server) audit(r *http.Request, dcrID, action, node, detail string) error {
	return s.Store.AppendAudit(r.Context(), dcrID, &cleanroom.AuditEntry{
		At: s.Now(), Actor: cleanroom.UserFromContext(r.Context()), Action: action, Node: node, Detail: detail,
	})
}

// handleAuditLog returns a clean room's audit log to its participants, who
// check it with cleanroom.VerifyAuditLog.
func (s *Server) handleAuditLog(w http.ResponseWriter, r *http.Request) {
	dcr, err := s.readableDCR(r)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	log, err := s.Store.AuditLog(r.Context(), dcr.ID)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, log)
}
