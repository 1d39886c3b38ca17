package storetest

import (
	"testing"

	"github.com/cleanroom-dev/cleanroom"
)

func testDrafts(t *testing.T, s cleanroom.Store) {
	incomplete := &cleanroom.Definition{Name: "wip", Owner: "alice@example.com", Nodes: []cleanroom.Node{{Name: "c", Kind: cleanroom.NodePython}}}
	must(t, s.CreateDraft(ctx, &cleanroom.Draft{ID: "d1", Owner: "alice@example.com", Definition: incomplete, CreatedAt: at(0), UpdatedAt: at(0)}))
	must(t, s.CreateDraft(ctx, &cleanroom.Draft{ID: "d2", Owner: "alice@example.com", Definition: incomplete, CreatedAt: at(1), UpdatedAt: at(1)}))
	must(t, s.CreateDraft(ctx, &cleanroom.Draft{ID: "d3", Owner: "bob@example.com", Definition: incomplete, CreatedAt: at(2), UpdatedAt: at(2)}))
	wantCode(t, "CreateDraft same id", s.CreateDraft(ctx, &cleanroom.Draft{ID: "d1", Owner: "bob@example.com", Definition: incomplete}), cleanroom.ECONFLICT)

	d, err := s.FindDraft(ctx, "d1")
	must(t, err)
	if d.Owner != "alice@example.com" || d.Definition.Name != "wip" || d.Definition.Nodes[0].Script != "" || !d.UpdatedAt.Equal(at(0)) || d.PublishedID != "" {
		t.Fatalf("FindDraft = %+v", d)
	}
	_, err = s.FindDraft(ctx, "nope")
	wantCode(t, "FindDraft unknown", err, cleanroom.ENOTFOUND)

	edited := *incomplete
	edited.Nodes = []cleanroom.Node{{Name: "c", Kind: cleanroom.NodePython, Script: "print(1)"}}
	d, err = s.UpdateDraft(ctx, "d1", &edited, at(5))
	must(t, err)
	if d.Definition.Nodes[0].Script != "print(1)" || !d.UpdatedAt.Equal(at(5)) || !d.CreatedAt.Equal(at(0)) {
		t.Fatalf("UpdateDraft = %+v", d)
	}
	_, err = s.UpdateDraft(ctx, "nope", &edited, at(5))
	wantCode(t, "UpdateDraft unknown", err, cleanroom.ENOTFOUND)

	list, err := s.ListDrafts(ctx, "Alice@Example.com")
	must(t, err)
	if len(list) != 2 || list[0].ID != "d1" || list[1].ID != "d2" {
		t.Fatalf("ListDrafts = %v, want d1 (updated last) then d2", list)
	}

	must(t, s.PublishDraft(ctx, "d1", "abc", at(6)))
	wantCode(t, "PublishDraft twice", s.PublishDraft(ctx, "d1", "abc", at(7)), cleanroom.ECONFLICT)
	_, err = s.UpdateDraft(ctx, "d1", incomplete, at(8))
	wantCode(t, "UpdateDraft after publish", err, cleanroom.ECONFLICT)
	wantCode(t, "PublishDraft unknown", s.PublishDraft(ctx, "nope", "abc", at(7)), cleanroom.ENOTFOUND)
	if d, _ := s.FindDraft(ctx, "d1"); d.PublishedID != "abc" || d.Definition.Nodes[0].Script != "print(1)" {
		t.Fatalf("published draft = %+v", d)
	}

	must(t, s.DeleteDraft(ctx, "d2"))
	wantCode(t, "DeleteDraft again", s.DeleteDraft(ctx, "d2"), cleanroom.ENOTFOUND)
}
