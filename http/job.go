package http

import (
	"fmt"
	"net/http"
	"time"

	"github.com/cleanroom-dev/cleanroom"
)

// computeNodeForAnalyst returns the clean room and compute node of the path
// if the caller is its analyst.
func (s *Server) computeNodeForAnalyst(r *http.Request) (*cleanroom.DCR, *cleanroom.Node, error) {
	return s.nodeWithRight(r, false)
}

func (s *Server) handleRunJob(w http.ResponseWriter, r *http.Request) {
	dcr, n, err := s.computeNodeForAnalyst(r)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	// A missing required dataset fails the run at once, not after queueing.
	_, data, err := dcr.Definition.Plan(n.Name)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	for _, d := range data {
		if err := s.checkInput(r, dcr.ID, d); err != nil {
			s.Error(w, r, err)
			return
		}
	}
	job := &cleanroom.Job{ID: cleanroom.NewID(), DCRID: dcr.ID, Node: n.Name, CreatedBy: cleanroom.UserFromContext(r.Context()), State: cleanroom.JobQueued, CreatedAt: s.Now().UTC()}
	if err := s.Store.CreateJob(r.Context(), job, s.auditEntry(r, cleanroom.AuditRunRequested, n.Name, job.ID)); err != nil {
		s.Error(w, r, err)
		return
	}
	s.Enclave.Notify()
	writeJSON(w, http.StatusAccepted, job)
}

// checkInput refuses a run at once when a data node it reads cannot serve:
// a required one without a dataset, a table whose dataset failed
// validation. The enclave checks both again when the job runs.
func (s *Server) checkInput(r *http.Request, dcrID string, d *cleanroom.Node) error {
	ds, err := s.Store.FindDataset(r.Context(), dcrID, d.Name)
	if cleanroom.ErrorCode(err) == cleanroom.ENOTFOUND {
		if d.IsRequired {
			return cleanroom.Errorf(cleanroom.ECONFLICT, "data node %q is required but has no dataset; its data owner must publish one first", d.Name)
		}
		return nil
	} else if err != nil || ds.ValidationJob == "" {
		return err
	}
	v, err := s.Store.FindJob(r.Context(), ds.ValidationJob)
	if cleanroom.ErrorCode(err) == cleanroom.ENOTFOUND {
		return nil // not queued yet: the enclave checks the table when it runs
	} else if err != nil {
		return err
	}
	// A failed validation with a report found problems in the data. One
	// without (interrupted, cancelled) says nothing of it: the enclave
	// checks the table when it runs.
	if v.State == cleanroom.JobFailed && v.ResultSize > 0 {
		return cleanroom.Errorf(cleanroom.ECONFLICT, "the dataset of table %q failed validation, so no computation can use it; its data owner must publish a corrected file (the validation report says what is wrong)", d.Name)
	}
	return nil
}

func (s *Server) handleListJobs(w http.ResponseWriter, r *http.Request) {
	dcr, n, err := s.computeNodeForAnalyst(r)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	jobs, err := s.Store.ListJobs(r.Context(), dcr.ID, n.Name)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	email := cleanroom.UserFromContext(r.Context())
	views := make([]*cleanroom.Job, len(jobs))
	for i, j := range jobs {
		views[i] = j.ForViewer(email)
	}
	writeJSON(w, http.StatusOK, views)
}

// visibleJob returns the job of the path if the caller is an analyst of its
// node. Participants without that right get EFORBIDDEN; strangers ENOTFOUND.
func (s *Server) visibleJob(r *http.Request) (*cleanroom.Job, *cleanroom.Node, error) {
	notFound := cleanroom.Errorf(cleanroom.ENOTFOUND, "job %s not found", r.PathValue("id"))
	job, err := s.Store.FindJob(r.Context(), r.PathValue("id"))
	if cleanroom.ErrorCode(err) == cleanroom.ENOTFOUND {
		return nil, nil, notFound
	} else if err != nil {
		return nil, nil, err
	}
	dcr, err := s.Store.FindDCR(r.Context(), job.DCRID)
	if err != nil {
		return nil, nil, err
	}
	email := cleanroom.UserFromContext(r.Context())
	if !dcr.Definition.CanRead(email) {
		return nil, nil, notFound
	}
	n := dcr.Definition.Node(job.Node)
	// A job on a data node validates its dataset: its data owners' to see.
	if n.Kind.IsData() && !dcr.Definition.IsDataOwner(email, job.Node) {
		return nil, nil, cleanroom.Errorf(cleanroom.EFORBIDDEN, "you are not a data owner of node %q", job.Node)
	} else if n.Kind.IsCompute() && !dcr.Definition.IsAnalyst(email, job.Node) {
		return nil, nil, cleanroom.Errorf(cleanroom.EFORBIDDEN, "you are not an analyst of node %q", job.Node)
	}
	return job, n, nil
}

// maxJobWait bounds a long poll, below common proxy idle timeouts.
const maxJobWait = 60 * time.Second

// waitDeadline reads the ?wait=DURATION of a long poll: a channel that
// fires when it has passed, nil without one, and a func releasing it.
func waitDeadline(r *http.Request) (<-chan time.Time, func(), error) {
	v := r.URL.Query().Get("wait")
	if v == "" {
		return nil, func() {}, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return nil, nil, cleanroom.Errorf(cleanroom.EINVALID, "wait=%q is not a duration such as 30s", v)
	}
	t := time.NewTimer(min(d, maxJobWait))
	return t.C, func() { t.Stop() }, nil
}

// handleGetJob returns a job's status. With ?wait=DURATION it answers as
// soon as the job has ended, or when the duration has passed.
// ownJob is visibleJob for what only the user who asked for the job may
// do: read its result and logs, cancel it. Another analyst of the node
// sees that the job exists, not what it computed.
func (s *Server) ownJob(r *http.Request) (*cleanroom.Job, *cleanroom.Node, error) {
	job, n, err := s.visibleJob(r)
	if err != nil {
		return nil, nil, err
	}
	if !cleanroom.SameEmail(job.CreatedBy, cleanroom.UserFromContext(r.Context())) {
		return nil, nil, cleanroom.Errorf(cleanroom.EFORBIDDEN, "job %s is %s's: only the user who ran a job reads, deletes or cancels it", job.ID, job.CreatedBy)
	}
	return job, n, nil
}

func (s *Server) handleGetJob(w http.ResponseWriter, r *http.Request) {
	s.longPoll(w, r, func() (any, bool, error) {
		job, _, err := s.visibleJob(r)
		if err != nil {
			return nil, false, err
		}
		return job.ForViewer(cleanroom.UserFromContext(r.Context())), job.State.Done(), nil
	})
}

// longPoll answers with what fetch returns. With ?wait=DURATION it answers
// once fetch reports done, or when the duration has passed: fetch runs
// again whenever a job or draft test ends.
func (s *Server) longPoll(w http.ResponseWriter, r *http.Request, fetch func() (v any, done bool, err error)) {
	deadline, stop, err := waitDeadline(r)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	defer stop()
	for {
		ended := s.Enclave.JobEnded() // taken before fetching, so no end is missed
		v, done, err := fetch()
		if err != nil {
			s.Error(w, r, err)
			return
		}
		if deadline == nil || done {
			writeJSON(w, http.StatusOK, v)
			return
		}
		select {
		case <-ended:
		case <-deadline:
			writeJSON(w, http.StatusOK, v)
			return
		case <-r.Context().Done():
			return
		}
	}
}

func (s *Server) handleCancelJob(w http.ResponseWriter, r *http.Request) {
	job, _, err := s.ownJob(r)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	if job.State.Done() {
		s.Error(w, r, cleanroom.Errorf(cleanroom.ECONFLICT, "job has already ended (%s)", job.State))
		return
	}
	if err := s.Enclave.Cancel(r.Context(), job); err != nil {
		s.Error(w, r, err)
		return
	}
	// Recorded once the enclave has taken it: a job that ended first is
	// not cancelled. A cancel cannot be taken back; if its entry cannot be
	// written the caller gets the error and the server logs it.
	if err := s.audit(r, job.DCRID, cleanroom.AuditJobCancelled, job.Node, job.ID); err != nil {
		s.Error(w, r, err)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

func (s *Server) handleJobLogs(w http.ResponseWriter, r *http.Request) {
	job, n, err := s.ownJob(r)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	if err := resultDeleted(job); err != nil {
		s.Error(w, r, err)
		return
	}
	if !job.HasLogs {
		s.Error(w, r, noLogsError(job, n))
		return
	}
	s.serveSealed(w, r, job, true, cleanroom.AuditLogsRead)
}

// noLogsError explains why a job has no logs to show.
func noLogsError(job *cleanroom.Job, n *cleanroom.Node) error {
	switch {
	case !job.State.Done():
		return cleanroom.Errorf(cleanroom.ECONFLICT, "job is %s; logs are available when it ends", job.State)
	case job.State == cleanroom.JobSucceeded && !n.EnableLogsOnSuccess:
		return cleanroom.Errorf(cleanroom.EFORBIDDEN, "logs are disabled for node %q on success (enable_logs_on_success is off)", n.Name)
	case job.State == cleanroom.JobFailed && !n.EnableLogsOnError:
		return cleanroom.Errorf(cleanroom.EFORBIDDEN, "logs are disabled for node %q on error (enable_logs_on_error is off)", n.Name)
	default:
		return cleanroom.Errorf(cleanroom.ENOTFOUND, "job has no logs: it %s before its script ran", job.State)
	}
}

// resultDeleted says, for a job whose result and logs its analyst deleted,
// that they are gone for good.
func resultDeleted(job *cleanroom.Job) error {
	if job.ResultDeletedAt == nil {
		return nil
	}
	return cleanroom.Errorf(cleanroom.ENOTFOUND, "the result and logs of job %s were deleted by %s on %s; run the computation again for a new result",
		job.ID, job.CreatedBy, job.ResultDeletedAt.UTC().Format(time.RFC3339))
}

// handleDeleteJobResult deletes an ended job's result and logs for good,
// at the request of the analyst who ran it. The store forgets their key
// first, with the audit entry: from then on no one, the enclave included,
// can decrypt them, whether or not their blobs are deleted.
func (s *Server) handleDeleteJobResult(w http.ResponseWriter, r *http.Request) {
	job, n, err := s.ownJob(r)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	if n.Kind.IsData() {
		s.Error(w, r, cleanroom.Errorf(cleanroom.ECONFLICT, "job %s checked the dataset of %q: its validation report goes with the dataset; remove the dataset instead", job.ID, job.Node))
		return
	}
	if err := s.Store.DeleteJobResult(r.Context(), job.ID, s.Now(), s.auditEntry(r, cleanroom.AuditResultDeleted, job.Node, job.ID)); err != nil {
		s.Error(w, r, err)
		return
	}
	for _, key := range []string{cleanroom.JobResultKey(job.ID), cleanroom.JobLogsKey(job.ID)} {
		if err := s.Blobs.Delete(r.Context(), key); err != nil && cleanroom.ErrorCode(err) != cleanroom.ENOTFOUND {
			// The key is gone: what is left cannot be opened, only takes room.
			s.Logger.Error("delete a deleted result's blob; remove it by hand", "job", job.ID, "blob", key, "err", err)
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleJobResult(w http.ResponseWriter, r *http.Request) {
	job, n, err := s.ownJob(r)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	if err := resultDeleted(job); err != nil {
		s.Error(w, r, err)
		return
	}
	if job.State != cleanroom.JobSucceeded && !(n.Kind.IsData() && job.ResultSize > 0) {
		msg := fmt.Sprintf("job is %s; a result exists only for a succeeded job", job.State)
		if job.Error != "" {
			msg += ": " + job.Error
		}
		s.Error(w, r, cleanroom.Errorf(cleanroom.ECONFLICT, "%s", msg))
		return
	}
	// A data node's result is its validation report, however it is read.
	action := cleanroom.AuditResultRead
	if n.Kind.IsData() {
		action = cleanroom.AuditReportRead
	}
	s.serveSealed(w, r, job, false, action)
}
