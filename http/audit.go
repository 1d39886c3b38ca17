package http

import (
	"net/http"

	"github.com/cleanroom-dev/cleanroom"
)

// auditEntry is the audit log entry of the caller doing action (on node,
// with detail). A change is stored with its entry (the store's methods
// take it), so the log holds what was done, neither less nor more. A read
// is recorded first and happens only if its entry was written (s.audit).
func (s *Server) auditEntry(r *http.Request, action, node, detail string) *cleanroom.AuditEntry {
	return &cleanroom.AuditEntry{At: s.Now(), Actor: cleanroom.UserFromContext(r.Context()), Action: action, Node: node, Detail: detail}
}

// audit records in clean room dcrID's log that the caller is granted a
// read; it comes before the read, which does not happen without it.
func (s *Server) audit(r *http.Request, dcrID, action, node, detail string) error {
	return s.Store.AppendAudit(r.Context(), dcrID, s.auditEntry(r, action, node, detail))
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
