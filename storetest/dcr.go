package storetest

import (
	"bytes"
	"reflect"
	"testing"
	"time"

	"github.com/cleanroom-dev/cleanroom"
)

// testDefinition returns a valid definition owned by owner@example.com, in
// which alice owns the data node and Bob (mixed case) runs the computation.
func testDefinition(name string) *cleanroom.Definition {
	return &cleanroom.Definition{
		Name:  name,
		Owner: "owner@example.com",
		Nodes: []cleanroom.Node{
			{Name: "data", Kind: cleanroom.NodeRaw},
			{Name: "stats", Kind: cleanroom.NodePython, Script: "print(1)\n", Dependencies: []string{"data"}},
		},
		Participants: []cleanroom.Participant{
			{Email: "alice@example.com", DataOwnerOf: []string{"data"}},
			{Email: "Bob@Example.com", AnalystOf: []string{"stats"}},
		},
	}
}

// newDCR returns a published clean room of def, as the server builds it.
func newDCR(t *testing.T, def *cleanroom.Definition, publishedAt time.Time) *cleanroom.DCR {
	t.Helper()
	canonical, err := def.Canonical()
	must(t, err)
	parsed, err := cleanroom.ParseDefinition(canonical)
	must(t, err)
	return &cleanroom.DCR{
		ID:          cleanroom.DefinitionID(canonical),
		Definition:  parsed,
		Canonical:   canonical,
		PublishedBy: def.Owner,
		PublishedAt: publishedAt,
	}
}

func createDCR(t *testing.T, s cleanroom.Store, def *cleanroom.Definition, publishedAt time.Time) *cleanroom.DCR {
	t.Helper()
	d := newDCR(t, def, publishedAt)
	created, err := s.CreateDCR(ctx, d)
	must(t, err)
	if !created {
		t.Fatalf("CreateDCR(%s) reported created=false for a new clean room", def.Name)
	}
	return d
}

func testDCRs(t *testing.T, s cleanroom.Store) {
	d := createDCR(t, s, testDefinition("Room"), at(0))

	// Publishing the same definition again is not an error, and keeps the first.
	again := newDCR(t, testDefinition("Room"), at(10))
	again.PublishedBy = "alice@example.com"
	created, err := s.CreateDCR(ctx, again)
	if err != nil || created {
		t.Errorf("CreateDCR(same id) = %v, %v; want false, nil", created, err)
	}

	got, err := s.FindDCR(ctx, d.ID)
	must(t, err)
	wantDCR(t, got, d)

	_, err = s.FindDCR(ctx, hex("no such room"))
	wantCode(t, "FindDCR(unknown)", err, cleanroom.ENOTFOUND)
}

func testListDCRs(t *testing.T, s cleanroom.Store) {
	older := createDCR(t, s, testDefinition("Older"), at(0))
	newer := createDCR(t, s, testDefinition("Newer"), at(1))
	def := testDefinition("Private")
	def.Owner = "carol@example.com"
	def.Participants = []cleanroom.Participant{{Email: "dave@example.com", AnalystOf: []string{"stats"}}}
	private := createDCR(t, s, def, at(2))

	for _, email := range []string{"owner@example.com", "OWNER@example.com", "alice@example.com", "bob@example.com", "Bob@Example.com"} {
		list, err := s.ListDCRs(ctx, email)
		must(t, err)
		if len(list) != 2 {
			t.Errorf("ListDCRs(%s): %d clean rooms, want 2", email, len(list))
			continue
		}
		wantDCR(t, list[0], newer)
		wantDCR(t, list[1], older)
	}
	for _, email := range []string{"carol@example.com", "Dave@example.com"} {
		list, err := s.ListDCRs(ctx, email)
		must(t, err)
		if len(list) != 1 || list[0].ID != private.ID {
			t.Errorf("ListDCRs(%s): %d clean rooms, want only %q", email, len(list), "Private")
		}
	}
	list, err := s.ListDCRs(ctx, "mallory@example.com")
	must(t, err)
	if len(list) != 0 {
		t.Errorf("ListDCRs(stranger): %d clean rooms, want none", len(list))
	}
}

func wantDCR(t *testing.T, got, want *cleanroom.DCR) {
	t.Helper()
	if got.ID != want.ID || !bytes.Equal(got.Canonical, want.Canonical) || got.PublishedBy != want.PublishedBy {
		t.Errorf("clean room = %s %q by %s, want %s %q by %s", got.ID, got.Canonical, got.PublishedBy, want.ID, want.Canonical, want.PublishedBy)
	}
	if !reflect.DeepEqual(got.Definition, want.Definition) {
		t.Errorf("clean room %s: Definition = %+v, want %+v", want.ID, got.Definition, want.Definition)
	}
	wantTime(t, "PublishedAt", got.PublishedAt, want.PublishedAt)
}
