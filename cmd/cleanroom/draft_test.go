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
