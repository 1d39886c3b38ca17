package main

import (
	"context"
	"strings"
	"testing"

	"github.com/cleanroom-dev/cleanroom"
)

// A draft can be saved incomplete, edited, and published; publishing
// checks every rule, freezes the draft, and gives the id that publishing
// the same definition directly gives.
func TestDrafts(t *testing.T) {
	s := startServer(t, "")
	alice := s.addUser("alice@example.com")
	bob := s.addUser("bob@example.com")
	ctx := context.Background()

	def := &cleanroom.Definition{
		Name: "draft", Owner: "alice@example.com",
		Nodes:        []cleanroom.Node{{Name: "data", Kind: cleanroom.NodeRaw}, {Name: "c", Kind: cleanroom.NodePython, Dependencies: []string{"data"}}},
		Participants: []cleanroom.Participant{{Email: "alice@example.com", AnalystOf: []string{"c"}}},
	}
	d, err := alice.CreateDraft(ctx, def)
	if err != nil {
		t.Fatalf("saving an incomplete draft: %v", err)
	}
	_, err = alice.PublishDraft(ctx, d.ID)
	wantCode(t, "publish a draft with an empty script", err, cleanroom.EINVALID)
	if err == nil || !strings.Contains(err.Error(), `node "c": script is empty`) {
		t.Errorf("publish error %v", err)
	}

	def.Nodes[1].Script = "open('/output/x', 'w').write(open('/input/data').read())"
	if _, err := alice.UpdateDraft(ctx, d.ID, def); err != nil {
		t.Fatal(err)
	}
	_, err = bob.Draft(ctx, d.ID)
	wantCode(t, "another user reads the draft", err, cleanroom.ENOTFOUND)
	_, err = bob.UpdateDraft(ctx, d.ID, def)
	wantCode(t, "another user edits the draft", err, cleanroom.ENOTFOUND)
	if list, _ := bob.Drafts(ctx); len(list) != 0 {
		t.Errorf("bob sees drafts %v", list)
	}

	res, err := alice.PublishDraft(ctx, d.ID)
	if err != nil || !res.Created {
		t.Fatalf("publish: %v %v", res, err)
	}
	direct, err := alice.PublishDCR(ctx, def)
	if err != nil || direct.ID != res.ID || direct.Created {
		t.Fatalf("direct publish of the same definition: %+v %v, want id %s already published", direct, err, res.ID)
	}
	_, err = alice.UpdateDraft(ctx, d.ID, def)
	wantCode(t, "edit a published draft", err, cleanroom.ECONFLICT)
	_, err = alice.PublishDraft(ctx, d.ID)
	wantCode(t, "publish twice", err, cleanroom.ECONFLICT)
	if got, _ := alice.Draft(ctx, d.ID); got.PublishedID != res.ID {
		t.Errorf("draft published_id = %q, want %s", got.PublishedID, res.ID)
	}
}

// A failing R or SQL computation is reported, like a Python one, by the
// line its error is on and with the error's own words; an R script still
// prints what its top-level expressions show, as under Rscript.
func TestDraftTestErrorLines(t *testing.T) {
	s := startServer(t, "")
	alice := s.addUser("alice@example.com")
	ctx := context.Background()
	def := &cleanroom.Definition{
		Name: "errors", Owner: alice.Email,
		Nodes: []cleanroom.Node{
			{Name: "people", Kind: cleanroom.NodeTable, Columns: []cleanroom.Column{{Name: "age", FormatType: cleanroom.FormatInteger}}},
			{Name: "r_runtime", Kind: cleanroom.NodeR, Script: "x <- 1\nx + 41\nf <- function(v) log(v)\n\ny <- f(\"a\")\n"},
			{Name: "r_parse", Kind: cleanroom.NodeR, Script: "x <- 1\n\ny <- (1 +\n"},
			{Name: "r_stop", Kind: cleanroom.NodeR, Script: "x <- 1\nstop(\"no ages\")\n"},
			{Name: "sql_bad", Kind: cleanroom.NodeSQL, Dependencies: []string{"people"}, Script: "SELECT age\nFROM people\nWHERE nonsense > 1"},
		},
		Participants: []cleanroom.Participant{{Email: alice.Email, DataOwnerOf: []string{"people"}, AnalystOf: []string{"r_runtime", "r_parse", "r_stop", "sql_bad"}}},
	}
	d, err := alice.CreateDraft(ctx, def)
	if err != nil {
		t.Fatal(err)
	}
	test, err := alice.TestDraft(ctx, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]struct {
		line  int
		error string
	}{
		"r_runtime": {3, "non-numeric argument to mathematical function"},
		"r_parse":   {4, "unexpected end of input"},
		"r_stop":    {2, "no ages"},
		"sql_bad":   {3, "nonsense"},
	}
	for _, n := range test.Nodes {
		w, ok := want[n.Node]
		if !ok {
			continue
		}
		if n.Status != cleanroom.NodeTestFailed || n.Line != w.line || !strings.Contains(n.Error, w.error) || strings.Contains(n.Error, "Execution halted") {
			t.Errorf("%s: %s at line %d: %q\nlogs:\n%s\nwant failed at line %d with %q", n.Node, n.Status, n.Line, n.Error, n.Logs, w.line, w.error)
		}
		if n.Node == "r_runtime" && !strings.Contains(n.Logs, "[1] 42") {
			t.Errorf("r_runtime's logs do not show the value of its top-level x + 41:\n%s", n.Logs)
		}
	}
}

// "Test all computations" runs every computation of a draft on empty
// inputs or attached test data, and reports a syntax error in one node by
// name and line while the others pass.
func TestDraftTestAll(t *testing.T) {
	s := startServer(t, "")
	alice := s.addUser("alice@example.com")
	ctx := context.Background()
	def := &cleanroom.Definition{
		Name: "tested", Owner: "alice@example.com",
		Nodes: []cleanroom.Node{
			{Name: "notes", Kind: cleanroom.NodeRaw, IsRequired: true},
			{Name: "people", Kind: cleanroom.NodeTable, Columns: []cleanroom.Column{{Name: "age", FormatType: cleanroom.FormatInteger}}},
			{Name: "count", Kind: cleanroom.NodeSQL, Script: "SELECT count(*) AS n FROM people", Dependencies: []string{"people"}},
			{Name: "shout", Kind: cleanroom.NodePython, Dependencies: []string{"notes"}, Script: `
text = open("/input/notes").read()
print("read", len(text), "characters")
open("/output/shout.txt", "w").write(text.upper())
`},
			{Name: "broken", Kind: cleanroom.NodePython, Dependencies: []string{"count"}, Script: "import os\n\nif True print('x')\n"},
			{Name: "after_broken", Kind: cleanroom.NodePython, Dependencies: []string{"broken"}, Script: "pass\n"},
		},
		Participants: []cleanroom.Participant{{Email: "alice@example.com", DataOwnerOf: []string{"notes", "people"}, AnalystOf: []string{"count", "shout", "broken", "after_broken"}}},
	}
	d, err := alice.CreateDraft(ctx, def)
	if err != nil {
		t.Fatal(err)
	}
	if err := alice.PutTestDataset(ctx, d.ID, "notes", strings.NewReader("test notes"), 10); err != nil {
		t.Fatal(err)
	}
	test, err := alice.TestDraft(ctx, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]cleanroom.NodeTest{}
	for _, n := range test.Nodes {
		got[n.Node] = n
	}
	for _, name := range []string{"notes", "people", "count", "shout"} {
		if got[name].Status != cleanroom.NodeTestOK {
			t.Errorf("%s: %+v, want ok", name, got[name])
		}
	}
	if b := got["broken"]; b.Status != cleanroom.NodeTestFailed || b.Line != 3 || !strings.Contains(b.Error, "SyntaxError") || !strings.Contains(b.Logs, "Traceback") && !strings.Contains(b.Logs, "SyntaxError") {
		t.Errorf("broken: %+v, want failed at line 3 with a SyntaxError", b)
	}
	if a := got["after_broken"]; a.Status != cleanroom.NodeTestSkipped || !strings.Contains(a.Error, `depends on "broken"`) {
		t.Errorf("after_broken: %+v, want skipped", a)
	}
	// Logs are shown in tests whatever the log policy, and the file
	// browser learns what each computation wrote.
	if sh := got["shout"]; !strings.Contains(sh.Logs, "read 10 characters") || len(sh.Outputs) != 1 || sh.Outputs[0].Path != "shout.txt" || sh.Outputs[0].Size != 10 {
		t.Errorf("shout: %+v", sh)
	}
	if len(test.Nodes) != 6 || test.Nodes[0].Node != "notes" {
		t.Errorf("nodes in order: %+v", test.Nodes)
	}

	// The CLI shows the same, and fails.
	out, _, err := s.cli(alice, "draft", "test", d.ID)
	if err == nil || !strings.Contains(out, "ok       python shout") || !strings.Contains(out, "failed   python broken (line 3)") || !strings.Contains(out, "skipped  python after_broken") {
		t.Errorf("cleanroom draft test: %v\n%s", err, out)
	}

	// One test of a draft at a time, and at most a couple per user: tests
	// take the job slots real jobs need.
	def.Nodes[3].Script = "import time\ntime.sleep(30)\n"
	if _, err := alice.UpdateDraft(ctx, d.ID, def); err != nil {
		t.Fatal(err)
	}
	started := func(id string) error {
		_, err := alice.StartDraftTest(ctx, id)
		return err
	}
	if err := started(d.ID); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "a second test of the same draft", started(d.ID), cleanroom.ECONFLICT)
	d2, _ := alice.CreateDraft(ctx, def)
	d3, _ := alice.CreateDraft(ctx, def)
	if err := started(d2.ID); err != nil {
		t.Fatal(err)
	}
	err = started(d3.ID)
	wantCode(t, "a third test at once", err, cleanroom.ECONFLICT)
	if err == nil || !strings.Contains(err.Error(), "2 draft tests under way") {
		t.Errorf("third test: %v", err)
	}

	// An incomplete draft cannot be tested: it says what is missing.
	def.Nodes[3].Script = ""
	if _, err := alice.UpdateDraft(ctx, d.ID, def); err != nil {
		t.Fatal(err)
	}
	_, err = alice.TestDraft(ctx, d.ID)
	wantCode(t, "test an incomplete draft", err, cleanroom.EINVALID)
	_, err = alice.Run(ctx, d.ID, "shout")
	wantCode(t, "run a draft's computation as if published", err, cleanroom.ENOTFOUND)
}
