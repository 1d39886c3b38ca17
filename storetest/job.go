package storetest

import (
	"bytes"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cleanroom-dev/cleanroom"
)

func newJob(dcrID, id string, createdAt time.Time) *cleanroom.Job {
	return &cleanroom.Job{ID: id, DCRID: dcrID, Node: "stats", CreatedBy: "bob@example.com",
		State: cleanroom.JobQueued, CreatedAt: createdAt}
}

func createJob(t *testing.T, s cleanroom.Store, dcrID, id string, createdAt time.Time) *cleanroom.Job {
	t.Helper()
	j := newJob(dcrID, id, createdAt)
	must(t, s.CreateJob(ctx, j, nil))
	return j
}

func findJob(t *testing.T, s cleanroom.Store, id string) *cleanroom.Job {
	t.Helper()
	j, err := s.FindJob(ctx, id)
	must(t, err)
	return j
}

func testJobs(t *testing.T, s cleanroom.Store) {
	d := createDCR(t, s, testDefinition("Jobs"), at(0))
	other := createDCR(t, s, testDefinition("Other"), at(0))
	j1 := createJob(t, s, d.ID, "job-1", at(1))
	j2 := createJob(t, s, d.ID, "job-2", at(2))
	j3 := createJob(t, s, other.ID, "job-3", at(3))

	got := findJob(t, s, j1.ID)
	if got.ID != j1.ID || got.DCRID != d.ID || got.Node != "stats" || got.CreatedBy != "bob@example.com" ||
		got.State != cleanroom.JobQueued || got.Error != "" || got.Warnings != nil || got.ResultSize != 0 || got.HasLogs {
		t.Errorf("FindJob = %+v, want a queued copy of %+v", got, j1)
	}
	wantTime(t, "CreatedAt", got.CreatedAt, at(1))
	if got.StartedAt != nil || got.FinishedAt != nil {
		t.Errorf("queued job: StartedAt %v, FinishedAt %v; want nil", got.StartedAt, got.FinishedAt)
	}
	_, err := s.FindJob(ctx, "no-such-job")
	wantCode(t, "FindJob(unknown)", err, cleanroom.ENOTFOUND)

	for _, tc := range []struct {
		dcrID, node string
		want        []string
	}{
		{d.ID, "stats", []string{j2.ID, j1.ID}},
		{other.ID, "stats", []string{j3.ID}},
		{d.ID, "data", nil},
	} {
		list, err := s.ListJobs(ctx, tc.dcrID, tc.node)
		must(t, err)
		if ids := jobIDs(list); !reflect.DeepEqual(ids, tc.want) {
			t.Errorf("ListJobs(%.8s, %s) = %v, want %v", tc.dcrID, tc.node, ids, tc.want)
		}
	}
}

func testClaimOrder(t *testing.T, s cleanroom.Store) {
	d := createDCR(t, s, testDefinition("Claims"), at(0))
	_, err := s.ClaimJob(ctx, at(10))
	wantCode(t, "ClaimJob(empty queue)", err, cleanroom.ENOTFOUND)

	// Created out of order: claims follow CreatedAt, not insertion.
	createJob(t, s, d.ID, "c", at(3))
	createJob(t, s, d.ID, "a", at(1))
	createJob(t, s, d.ID, "b", at(2))
	for i, want := range []string{"a", "b", "c"} {
		j, err := s.ClaimJob(ctx, at(10+i))
		must(t, err)
		if j.ID != want || j.State != cleanroom.JobRunning {
			t.Fatalf("claim %d: %s (%s), want %s (running)", i, j.ID, j.State, want)
		}
		if j.StartedAt == nil {
			t.Fatalf("claim %d: StartedAt is nil", i)
		}
		wantTime(t, "StartedAt", *j.StartedAt, at(10+i))
		found := findJob(t, s, want)
		if found.State != cleanroom.JobRunning || found.StartedAt == nil || !found.StartedAt.Equal(at(10+i)) {
			t.Errorf("FindJob(%s) after claim: %s, started %v", want, found.State, found.StartedAt)
		}
	}
	_, err = s.ClaimJob(ctx, at(20))
	wantCode(t, "ClaimJob(all claimed)", err, cleanroom.ENOTFOUND)
}

// testConcurrentClaims has several runners claim at once: every job is
// handed out exactly once.
func testConcurrentClaims(t *testing.T, s cleanroom.Store) {
	const jobs, claimers = 20, 8
	d := createDCR(t, s, testDefinition("Concurrent"), at(0))
	for i := range jobs {
		createJob(t, s, d.ID, fmt.Sprintf("job-%02d", i), at(i))
	}
	var mu sync.Mutex
	claimed := map[string]int{}
	var wg sync.WaitGroup
	for range claimers {
		wg.Go(func() {
			for {
				j, err := s.ClaimJob(ctx, at(100))
				if cleanroom.ErrorCode(err) == cleanroom.ENOTFOUND {
					return
				} else if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				claimed[j.ID]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(claimed) != jobs {
		t.Errorf("%d jobs claimed, want %d", len(claimed), jobs)
	}
	for id, n := range claimed {
		if n != 1 {
			t.Errorf("job %s claimed %d times", id, n)
		}
	}
}

func testFinishJob(t *testing.T, s cleanroom.Store) {
	d := createDCR(t, s, testDefinition("Finish"), at(0))
	createJob(t, s, d.ID, "ok", at(1))
	createJob(t, s, d.ID, "queued", at(2))
	claimJob(t, s, "ok")

	u := cleanroom.JobUpdate{State: cleanroom.JobSucceeded, Warnings: []string{"skipped /output/link: not a regular file"},
		SealedKey: []byte("sealed result key"), ResultSize: 42, HasLogs: true}
	must(t, s.FinishJob(ctx, "ok", u, at(5)))
	got := findJob(t, s, "ok")
	if got.State != cleanroom.JobSucceeded || !reflect.DeepEqual(got.Warnings, u.Warnings) ||
		!bytes.Equal(got.SealedKey, u.SealedKey) || got.ResultSize != 42 || !got.HasLogs || got.Error != "" {
		t.Errorf("finished job = %+v, want the update %+v", got, u)
	}
	if got.FinishedAt == nil {
		t.Fatal("FinishedAt is nil")
	}
	wantTime(t, "FinishedAt", *got.FinishedAt, at(5))

	failed := cleanroom.JobUpdate{State: cleanroom.JobFailed, Error: "exit status 1", ErrorLog: "ValueError: boom"}
	wantCode(t, "FinishJob twice", s.FinishJob(ctx, "ok", failed, at(6)), cleanroom.ECONFLICT)
	if got := findJob(t, s, "ok"); got.State != cleanroom.JobSucceeded || !got.FinishedAt.Equal(at(5)) {
		t.Errorf("after refused FinishJob: %s at %v, want succeeded at %v", got.State, got.FinishedAt, at(5))
	}

	// Only a queued job is cancelled as queued; it is then never claimed.
	wantCode(t, "CancelQueuedJob of an ended job", s.CancelQueuedJob(ctx, "ok", "cancelled", at(7)), cleanroom.ECONFLICT)
	wantCode(t, "CancelQueuedJob of an unknown job", s.CancelQueuedJob(ctx, "nope", "cancelled", at(7)), cleanroom.ENOTFOUND)
	must(t, s.CancelQueuedJob(ctx, "queued", "cancelled before it started", at(7)))
	if got := findJob(t, s, "queued"); got.State != cleanroom.JobCancelled || got.Error != "cancelled before it started" {
		t.Errorf("cancelled queued job is %s (%q)", got.State, got.Error)
	}
	log, err := s.AuditLog(ctx, d.ID)
	must(t, err)
	if last := log[len(log)-1]; last.Action != cleanroom.AuditJobEnded || last.Detail != "queued cancelled" {
		t.Errorf("the audit log after a queued job was cancelled ends with %+v", last)
	}
	_, err = s.ClaimJob(ctx, at(8))
	wantCode(t, "ClaimJob after cancel", err, cleanroom.ENOTFOUND)

	// A running job cancelled by its analyst: the runner's report comes too late.
	createJob(t, s, d.ID, "running", at(3))
	claimJob(t, s, "running")
	must(t, s.FinishJob(ctx, "running", cleanroom.JobUpdate{State: cleanroom.JobCancelled}, at(9)))
	wantCode(t, "FinishJob after cancel", s.FinishJob(ctx, "running", failed, at(10)), cleanroom.ECONFLICT)
	if got := findJob(t, s, "running"); got.State != cleanroom.JobCancelled {
		t.Errorf("cancelled running job is %s after the runner's report", got.State)
	}

	wantCode(t, "FinishJob(unknown)", s.FinishJob(ctx, "no-such-job", failed, at(11)), cleanroom.ENOTFOUND)
}

func testDeleteJobResult(t *testing.T, s cleanroom.Store) {
	d := createDCR(t, s, testDefinition("Delete"), at(0))
	createJob(t, s, d.ID, "done", at(1))
	claimJob(t, s, "done")
	must(t, s.FinishJob(ctx, "done", cleanroom.JobUpdate{State: cleanroom.JobSucceeded, SealedKey: []byte("sealed"), ResultSize: 42, HasLogs: true, Warnings: []string{"skipped /output/link"}}, at(2)))
	createJob(t, s, d.ID, "failed", at(2))
	claimJob(t, s, "failed")
	must(t, s.FinishJob(ctx, "failed", cleanroom.JobUpdate{State: cleanroom.JobFailed, Error: "script exited with status 1", ErrorLog: "ValueError: secret 42", SealedKey: []byte("sealed"), HasLogs: true}, at(2)))
	if got := findJob(t, s, "failed"); got.ErrorLog != "ValueError: secret 42" || got.Error != "script exited with status 1" {
		t.Errorf("failed job: error %q, error log %q; want both as finished", got.Error, got.ErrorLog)
	}
	createJob(t, s, d.ID, "running", at(3))
	claimJob(t, s, "running")
	auditLen := func() int {
		log, err := s.AuditLog(ctx, d.ID)
		must(t, err)
		return len(log)
	}
	before := auditLen()
	entry := func() *cleanroom.AuditEntry {
		return &cleanroom.AuditEntry{Actor: "ann@example.com", Action: cleanroom.AuditResultDeleted, Node: "stats", Detail: "done"}
	}

	wantCode(t, "DeleteJobResult of a running job", s.DeleteJobResult(ctx, "running", at(4), entry()), cleanroom.ECONFLICT)
	wantCode(t, "DeleteJobResult of an unknown job", s.DeleteJobResult(ctx, "nope", at(4), entry()), cleanroom.ENOTFOUND)
	if n := auditLen(); n != before {
		t.Errorf("refused deletions left %d audit entries", n-before)
	}
	if got := findJob(t, s, "running"); got.ResultDeletedAt != nil {
		t.Error("a refused deletion marked the running job")
	}

	read := &cleanroom.AuditEntry{Actor: "ann@example.com", Action: cleanroom.AuditResultRead, Node: "stats", Detail: "done"}
	must(t, s.AuditJobRead(ctx, "done", read))
	before++
	must(t, s.DeleteJobResult(ctx, "done", at(5), entry()))
	read = &cleanroom.AuditEntry{Actor: "ann@example.com", Action: cleanroom.AuditResultRead, Node: "stats", Detail: "done"}
	wantCode(t, "AuditJobRead after the deletion", s.AuditJobRead(ctx, "done", read), cleanroom.ENOTFOUND)
	wantCode(t, "AuditJobRead of an unknown job", s.AuditJobRead(ctx, "nope", read), cleanroom.ENOTFOUND)
	got := findJob(t, s, "done")
	if got.SealedKey != nil || got.ResultSize != 0 || got.HasLogs || got.Warnings != nil || got.ResultDeletedAt == nil || got.State != cleanroom.JobSucceeded {
		t.Fatalf("job after DeleteJobResult = %+v, want no key, sizes or warnings, deleted, still succeeded", got)
	}
	wantTime(t, "ResultDeletedAt", *got.ResultDeletedAt, at(5))
	log, err := s.AuditLog(ctx, d.ID)
	must(t, err)
	if last := log[len(log)-1]; len(log) != before+1 || last.Action != cleanroom.AuditResultDeleted || last.Detail != "done" {
		t.Errorf("audit log after the deletion ends with %+v (%d entries, want %d)", last, len(log), before+1)
	}
	wantCode(t, "DeleteJobResult twice", s.DeleteJobResult(ctx, "done", at(6), entry()), cleanroom.ECONFLICT)
	if n := auditLen(); n != before+1 {
		t.Errorf("a second deletion left an audit entry")
	}
	must(t, s.DeleteJobResult(ctx, "failed", at(7), nil))
	if got := findJob(t, s, "failed"); got.ErrorLog != "" || got.Error != "script exited with status 1" {
		t.Errorf("failed job after DeleteJobResult: error %q, error log %q; want the error without the log line", got.Error, got.ErrorLog)
	}
	jobs, err := s.ListJobs(ctx, d.ID, "stats")
	must(t, err)
	if len(jobs) != 3 || jobs[2].ID != "done" || jobs[2].ResultDeletedAt == nil {
		t.Errorf("ListJobs after the deletion: %+v, want the job listed, marked deleted", jobs)
	}
}

func testFailRunningJobs(t *testing.T, s cleanroom.Store) {
	d := createDCR(t, s, testDefinition("Restart"), at(0))
	for i, id := range []string{"r1", "r2", "done"} {
		createJob(t, s, d.ID, id, at(i))
		claimJob(t, s, id)
	}
	must(t, s.FinishJob(ctx, "done", cleanroom.JobUpdate{State: cleanroom.JobSucceeded}, at(5)))
	createJob(t, s, d.ID, "queued", at(6))

	const reason = "the server stopped while the job ran"
	n, err := s.FailRunningJobs(ctx, reason, at(10))
	if err != nil || n != 2 {
		t.Fatalf("FailRunningJobs = %d, %v; want 2", n, err)
	}
	for _, id := range []string{"r1", "r2"} {
		got := findJob(t, s, id)
		if got.State != cleanroom.JobFailed || got.Error != reason || got.FinishedAt == nil || !got.FinishedAt.Equal(at(10)) {
			t.Errorf("%s: %s %q at %v, want failed %q at %v", id, got.State, got.Error, got.FinishedAt, reason, at(10))
		}
	}
	if got := findJob(t, s, "done"); got.State != cleanroom.JobSucceeded || got.Error != "" || !got.FinishedAt.Equal(at(5)) {
		t.Errorf("finished job changed: %s %q at %v", got.State, got.Error, got.FinishedAt)
	}
	if got := findJob(t, s, "queued"); got.State != cleanroom.JobQueued || got.FinishedAt != nil {
		t.Errorf("queued job changed: %s, finished %v", got.State, got.FinishedAt)
	}
	if n, err := s.FailRunningJobs(ctx, reason, at(11)); err != nil || n != 0 {
		t.Errorf("FailRunningJobs again = %d, %v; want 0", n, err)
	}
	// Each job that ended is in the audit log, once.
	log, err := s.AuditLog(ctx, d.ID)
	must(t, err)
	var ended []string
	for _, e := range log {
		if e.Action == cleanroom.AuditJobEnded && e.Actor == cleanroom.AuditEnclave {
			ended = append(ended, e.Detail)
		}
	}
	slices.Sort(ended)
	if want := []string{"done succeeded", "r1 failed", "r2 failed"}; !slices.Equal(ended, want) {
		t.Errorf("jobs ended in the audit log: %q, want %q", ended, want)
	}
	if err := cleanroom.VerifyAuditLog(d.ID, log); err != nil {
		t.Error(err)
	}
}

// claimJob claims the next job and checks it is id.
func claimJob(t *testing.T, s cleanroom.Store, id string) {
	t.Helper()
	j, err := s.ClaimJob(ctx, at(4))
	must(t, err)
	if j.ID != id {
		t.Fatalf("claimed %s, want %s", j.ID, id)
	}
}

func jobIDs(jobs []*cleanroom.Job) []string {
	var ids []string
	for _, j := range jobs {
		ids = append(ids, j.ID)
	}
	return ids
}
