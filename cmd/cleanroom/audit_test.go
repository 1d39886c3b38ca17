package main

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cleanroom-dev/cleanroom"
	"github.com/cleanroom-dev/cleanroom/client"
)

// TestAuditLog: what the participants do is in the clean room's audit log,
// in order, by whom; what was refused is not; every participant reads the
// log and a stranger gets 404; and a log changed in the server's database
// fails the client's check.
func TestAuditLog(t *testing.T) {
	s := startServer(t, "")
	r := setupRoles(t, s, `open("/output/out.txt", "w").write(open("/input/data").read())`, false)
	ctx := context.Background()

	ds := uploadString(t, r.dataOwner, r.id, "data", "secret")
	if _, err := r.analyst2.UploadDataset(ctx, client.Upload{DCRID: r.id, Node: "data", Data: strings.NewReader("x"), Size: 1}); cleanroom.ErrorCode(err) != cleanroom.EFORBIDDEN {
		t.Fatalf("an analyst's upload: %v, want refused", err)
	}
	job := runJob(t, r.analyst, r.id, "compute")
	resultFiles(t, r.analyst, job)
	if _, err := r.dataOwner.Run(ctx, r.id, "compute"); cleanroom.ErrorCode(err) != cleanroom.EFORBIDDEN {
		t.Fatalf("a data owner's run: %v, want refused", err)
	}
	if err := r.dataOwner.RemoveDataset(ctx, r.id, "data"); err != nil {
		t.Fatal(err)
	}

	type event struct{ actor, action, node, detail string }
	want := []event{
		{"owner@example.com", cleanroom.AuditPublished, "", ""},
		{"data@example.com", cleanroom.AuditDatasetPublished, "data", ds.ManifestHash},
		{"analyst@example.com", cleanroom.AuditRunRequested, "compute", job.ID},
		{cleanroom.AuditEnclave, cleanroom.AuditJobEnded, "compute", job.ID + " succeeded"},
		{"analyst@example.com", cleanroom.AuditResultRead, "compute", job.ID},
		{"data@example.com", cleanroom.AuditDatasetRemoved, "data", ""},
	}
	for _, c := range []*client.Client{r.owner, r.dataOwner, r.analyst, r.viewer} {
		log, err := c.AuditLog(ctx, r.id)
		if err != nil {
			t.Fatalf("%s reads the audit log: %v", c.Email, err)
		}
		var got []event
		for _, e := range log {
			got = append(got, event{e.Actor, e.Action, e.Node, e.Detail})
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s's audit log:\n%v\nwant\n%v", c.Email, got, want)
		}
	}
	_, err := r.none.AuditLog(ctx, r.id)
	wantCode(t, "stranger reads the audit log", err, cleanroom.ENOTFOUND)
	out, _, err := s.cli(r.viewer, "audit", r.id)
	if err != nil || !strings.Contains(out, "6 entries, chain verified") || !strings.Contains(out, "analyst@example.com  result.read  node=compute  "+job.ID) {
		t.Errorf("cleanroom audit: %v\n%s", err, out)
	}

	// Someone with the database rewrites who read the result.
	db, err := sql.Open("sqlite", filepath.Join(s.DataDir, "cleanroom.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if res, err := db.Exec(`UPDATE audit SET actor = 'data@example.com' WHERE dcr_id = ? AND action = ?`, r.id, cleanroom.AuditResultRead); err != nil {
		t.Fatal(err)
	} else if n, _ := res.RowsAffected(); n != 1 {
		t.Fatalf("the test changed %d entries, want 1", n)
	}
	if _, err := r.viewer.AuditLog(ctx, r.id); !errors.Is(err, cleanroom.ErrAuditLog) {
		t.Errorf("a changed audit log: %v, want the client to refuse it", err)
	}
	if _, errOut, err := s.cli(r.viewer, "audit", r.id); err == nil || !strings.Contains(errOut, "entry 5 does not match its hash") || !strings.Contains(errOut, "hint: the server's copy of the log was changed") {
		t.Errorf("cleanroom audit of a changed log: %v\n%s", err, errOut)
	}

	// Rewritten with the hashes recomputed, the log verifies on its own:
	// only the entry the viewer's CLI verified before shows the change.
	rows, err := db.Query(`SELECT seq, at, actor, action, node, detail FROM audit WHERE dcr_id = ? ORDER BY seq`, r.id)
	if err != nil {
		t.Fatal(err)
	}
	var rewritten []cleanroom.AuditEntry
	for rows.Next() {
		var e cleanroom.AuditEntry
		var at string
		rows.Scan(&e.Seq, &at, &e.Actor, &e.Action, &e.Node, &e.Detail)
		e.At, _ = time.Parse("2006-01-02T15:04:05.000000000Z", at)
		if n := len(rewritten); n > 0 {
			e.Prev = rewritten[n-1].Hash
		}
		e.Hash = e.ComputeHash(r.id)
		rewritten = append(rewritten, e)
	}
	rows.Close()
	for _, e := range rewritten {
		if _, err := db.Exec(`UPDATE audit SET prev = ?, hash = ? WHERE dcr_id = ? AND seq = ?`, e.Prev, e.Hash, r.id, e.Seq); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := r.viewer.AuditLog(ctx, r.id); err != nil {
		t.Fatalf("a log rewritten hashes and all no longer verifies on its own (%v): the rest of this test proves nothing", err)
	}
	if _, errOut, err := s.cli(r.viewer, "audit", r.id); err == nil || !strings.Contains(errOut, "entry 6 is not the one verified before, so the log was rewritten") {
		t.Errorf("cleanroom audit of a rewritten log: %v\n%s", err, errOut)
	}
}

// audited returns the entries of one action in a clean room's audit log,
// as c reads it, each as "actor node detail".
func audited(t *testing.T, c *client.Client, dcrID, action string) []string {
	t.Helper()
	log, err := c.AuditLog(context.Background(), dcrID)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range log {
		if e.Action == action {
			got = append(got, strings.Join([]string{e.Actor, e.Node, e.Detail}, " "))
		}
	}
	return got
}

// TestAuditLogsRead: reading a job's logs is in the audit log, by whom and
// which job; a read the policy or ownership refuses is not.
func TestAuditLogsRead(t *testing.T) {
	s := startServer(t, "")
	analyst, other := s.addUser("analyst@example.com"), s.addUser("other@example.com")
	id := publish(t, analyst, &cleanroom.Definition{
		Name: "logs", Owner: analyst.Email,
		Nodes: []cleanroom.Node{
			{Name: "talks", Kind: cleanroom.NodePython, Script: `print("hello")`, EnableLogsOnSuccess: true},
			{Name: "quiet", Kind: cleanroom.NodePython, Script: `print("secret")`},
		},
		Participants: []cleanroom.Participant{{Email: analyst.Email, AnalystOf: []string{"talks", "quiet"}}, {Email: other.Email, AnalystOf: []string{"talks"}}},
	})
	ctx := context.Background()
	talks, quiet := runJob(t, analyst, id, "talks"), runJob(t, analyst, id, "quiet")
	if logs, err := analyst.Logs(ctx, talks.ID); err != nil || strings.TrimSpace(logs) != "hello" {
		t.Fatalf("logs the policy allows: %q %v", logs, err)
	}
	_, err := analyst.Logs(ctx, quiet.ID)
	wantCode(t, "logs the policy withholds", err, cleanroom.EFORBIDDEN)
	_, err = other.Logs(ctx, talks.ID)
	wantCode(t, "another analyst's job's logs", err, cleanroom.EFORBIDDEN)

	if reads, want := auditEntries(t, analyst, id, cleanroom.AuditLogsRead), []string{analyst.Email + " talks " + talks.ID}; !slices.Equal(reads, want) {
		t.Errorf("logs reads in the audit log: %q, want %q", reads, want)
	}
}

// auditEntries returns the entries of clean room id's audit log, as c
// reads it, that record action: "actor node detail" each.
func auditEntries(t *testing.T, c *client.Client, id, action string) []string {
	t.Helper()
	log, err := c.AuditLog(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	var entries []string
	for _, e := range log {
		if e.Action == action {
			entries = append(entries, e.Actor+" "+e.Node+" "+e.Detail)
		}
	}
	return entries
}
