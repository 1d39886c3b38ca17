package storetest

import (
	"bytes"
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

func testDraftTests(t *testing.T, s cleanroom.Store) {
	def := &cleanroom.Definition{Name: "wip", Owner: "alice@example.com", Nodes: []cleanroom.Node{{Name: "data", Kind: cleanroom.NodeRaw}}}
	must(t, s.CreateDraft(ctx, &cleanroom.Draft{ID: "d1", Owner: "alice@example.com", Definition: def, CreatedAt: at(0), UpdatedAt: at(0)}))

	must(t, s.PutTestDataset(ctx, &cleanroom.TestDataset{DraftID: "d1", Node: "data", Size: 3, SealedKey: []byte("k1")}))
	must(t, s.PutTestDataset(ctx, &cleanroom.TestDataset{DraftID: "d1", Node: "data", Size: 5, SealedKey: []byte("k2")}))
	wantCode(t, "PutTestDataset unknown draft", s.PutTestDataset(ctx, &cleanroom.TestDataset{DraftID: "nope", Node: "data", Size: 1, SealedKey: []byte("k")}), cleanroom.ENOTFOUND)
	d, err := s.FindDraft(ctx, "d1")
	must(t, err)
	if len(d.TestDatasets) != 1 || d.TestDatasets[0].Size != 5 || !bytes.Equal(d.TestDatasets[0].SealedKey, []byte("k2")) {
		t.Fatalf("test datasets %+v, want the replacement", d.TestDatasets)
	}
	must(t, s.DeleteTestDataset(ctx, "d1", "data"))
	wantCode(t, "DeleteTestDataset again", s.DeleteTestDataset(ctx, "d1", "data"), cleanroom.ENOTFOUND)

	_, err = s.LatestDraftTest(ctx, "d1")
	wantCode(t, "LatestDraftTest before any", err, cleanroom.ENOTFOUND)
	must(t, s.CreateDraftTest(ctx, &cleanroom.DraftTest{ID: "t1", DraftID: "d1", CreatedAt: at(1)}))
	must(t, s.FinishDraftTest(ctx, "t1", []cleanroom.NodeTest{{Node: "c", Status: cleanroom.NodeTestFailed, Line: 3}}, "", at(2)))
	wantCode(t, "FinishDraftTest twice", s.FinishDraftTest(ctx, "t1", nil, "", at(3)), cleanroom.ECONFLICT)
	must(t, s.CreateDraftTest(ctx, &cleanroom.DraftTest{ID: "t2", DraftID: "d1", CreatedAt: at(4)}))
	latest, err := s.LatestDraftTest(ctx, "d1")
	must(t, err)
	if latest.ID != "t2" || latest.State != cleanroom.DraftTestRunning {
		t.Fatalf("latest = %+v, want t2 running", latest)
	}
	// A restart ends tests that were running.
	_, err = s.FailRunningJobs(ctx, "server stopped", at(5))
	must(t, err)
	latest, _ = s.LatestDraftTest(ctx, "d1")
	if latest.State != cleanroom.DraftTestDone || latest.Error != "server stopped" || latest.FinishedAt == nil {
		t.Fatalf("after restart: %+v", latest)
	}
	wantCode(t, "FinishDraftTest unknown", s.FinishDraftTest(ctx, "nope", nil, "", at(6)), cleanroom.ECONFLICT)

	// Deleting a draft deletes its tests and test data.
	must(t, s.PutTestDataset(ctx, &cleanroom.TestDataset{DraftID: "d1", Node: "data", Size: 3, SealedKey: []byte("k1")}))
	must(t, s.DeleteDraft(ctx, "d1"))
	if list, _ := s.ListTestDatasets(ctx, "d1"); len(list) != 0 {
		t.Fatalf("test datasets outlived their draft: %v", list)
	}
	_, err = s.LatestDraftTest(ctx, "d1")
	wantCode(t, "LatestDraftTest of a deleted draft", err, cleanroom.ENOTFOUND)
}
