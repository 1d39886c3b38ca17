// Package storetest is the conformance suite every cleanroom.Store
// implementation passes.
package storetest

import (
	"bytes"
	"context"
	"slices"
	"testing"
	"time"

	"github.com/cleanroom-dev/cleanroom"
)

// Run runs the suite. open returns a new, empty store; it is called once per
// subtest and must arrange its own cleanup with t.Cleanup.
func Run(t *testing.T, open func(t *testing.T) cleanroom.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s cleanroom.Store)
	}{
		{"Users", testUsers},
		{"Tokens", testTokens},
		{"RevokeTokens", testRevokeTokens},
		{"Sessions", testSessions},
		{"DCRs", testDCRs},
		{"ListDCRs", testListDCRs},
		{"Blobs", testBlobs},
		{"Datasets", testDatasets},
		{"UnusedBlobs", testUnusedBlobs},
		{"Audit", testAudit},
		{"Jobs", testJobs},
		{"ClaimOrder", testClaimOrder},
		{"ConcurrentClaims", testConcurrentClaims},
		{"FinishJob", testFinishJob},
		{"DeleteJobResult", testDeleteJobResult},
		{"FailRunningJobs", testFailRunningJobs},
		{"Drafts", testDrafts},
		{"DraftTests", testDraftTests},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.fn(t, open(t))
		})
	}
}

var ctx = context.Background()

// t0 is the suite's clock. Times are whole microseconds, the finest
// resolution every backend keeps, and not UTC, so that the suite sees
// stores return them in UTC.
var t0 = time.Date(2025, 3, 4, 5, 6, 7, 123456000, time.FixedZone("CET", 3600))

func at(minutes int) time.Time { return t0.Add(time.Duration(minutes) * time.Minute) }

func testUsers(t *testing.T, s cleanroom.Store) {
	must(t, s.CreateUser(ctx, "bob@example.com"))
	must(t, s.CreateUser(ctx, "alice@example.com"))
	wantCode(t, "CreateUser again", s.CreateUser(ctx, "bob@example.com"), cleanroom.ECONFLICT)
	wantCode(t, "CreateUser in other case", s.CreateUser(ctx, "Bob@Example.COM"), cleanroom.ECONFLICT)

	users, err := s.ListUsers(ctx)
	must(t, err)
	if len(users) != 2 || users[0].Email != "alice@example.com" || users[1].Email != "bob@example.com" {
		t.Fatalf("ListUsers = %v, want alice then bob", emails(users))
	}
	for _, u := range users {
		if u.CreatedAt.IsZero() || u.CreatedAt.Location() != time.UTC {
			t.Errorf("%s: CreatedAt = %v, want a UTC time", u.Email, u.CreatedAt)
		}
		if u.ActiveTokens != 0 {
			t.Errorf("%s: ActiveTokens = %d, want 0", u.Email, u.ActiveTokens)
		}
	}
}

func testTokens(t *testing.T, s cleanroom.Store) {
	must(t, s.CreateUser(ctx, "alice@example.com"))
	must(t, s.CreateUser(ctx, "bob@example.com"))
	_, h1 := cleanroom.NewToken()
	_, h2 := cleanroom.NewToken()
	_, h3 := cleanroom.NewToken()
	must(t, s.AddToken(ctx, "alice@example.com", h1))
	must(t, s.AddToken(ctx, "ALICE@example.com", h2)) // emails match in any case
	must(t, s.AddToken(ctx, "bob@example.com", h3))
	wantCode(t, "AddToken for unknown user", s.AddToken(ctx, "carol@example.com", hash("x")), cleanroom.ENOTFOUND)

	for _, h := range [][]byte{h1, h2} {
		u, err := s.UserByToken(ctx, h)
		must(t, err)
		if u.Email != "alice@example.com" || u.ActiveTokens != 2 || u.CreatedAt.IsZero() {
			t.Errorf("UserByToken = %+v, want alice@example.com with 2 active tokens", u)
		}
	}
	if u, err := s.UserByToken(ctx, h3); err != nil || u.Email != "bob@example.com" {
		t.Errorf("UserByToken(bob's token) = %v, %v", u, err)
	}
	_, err := s.UserByToken(ctx, hash("unknown"))
	wantCode(t, "UserByToken(unknown)", err, cleanroom.EUNAUTHORIZED)
	_, err = s.UserByToken(ctx, h1[:16])
	wantCode(t, "UserByToken(prefix of a hash)", err, cleanroom.EUNAUTHORIZED)

	users, err := s.ListUsers(ctx)
	must(t, err)
	if len(users) != 2 || users[0].ActiveTokens != 2 || users[1].ActiveTokens != 1 {
		t.Errorf("ListUsers active tokens: %+v %+v, want 2 and 1", users[0], users[1])
	}
}

func testRevokeTokens(t *testing.T, s cleanroom.Store) {
	must(t, s.CreateUser(ctx, "alice@example.com"))
	must(t, s.CreateUser(ctx, "bob@example.com"))
	must(t, s.AddToken(ctx, "alice@example.com", hash("a1")))
	must(t, s.AddToken(ctx, "alice@example.com", hash("a2")))
	must(t, s.AddToken(ctx, "bob@example.com", hash("b1")))

	n, err := s.RevokeTokens(ctx, "Alice@Example.com")
	if err != nil || n != 2 {
		t.Fatalf("RevokeTokens = %d, %v; want 2", n, err)
	}
	for _, h := range []string{"a1", "a2"} {
		_, err := s.UserByToken(ctx, hash(h))
		wantCode(t, "UserByToken(revoked "+h+")", err, cleanroom.EUNAUTHORIZED)
	}
	if u, err := s.UserByToken(ctx, hash("b1")); err != nil || u.Email != "bob@example.com" {
		t.Errorf("bob's token after revoking alice's: %v, %v", u, err)
	}
	if n, err := s.RevokeTokens(ctx, "alice@example.com"); err != nil || n != 0 {
		t.Errorf("RevokeTokens again = %d, %v; want 0", n, err)
	}
	_, err = s.RevokeTokens(ctx, "carol@example.com")
	wantCode(t, "RevokeTokens(unknown user)", err, cleanroom.ENOTFOUND)

	// A new token works again; the revoked ones stay revoked.
	must(t, s.AddToken(ctx, "alice@example.com", hash("a3")))
	if u, err := s.UserByToken(ctx, hash("a3")); err != nil || u.ActiveTokens != 1 {
		t.Errorf("UserByToken(new token) = %+v, %v; want 1 active token", u, err)
	}
	_, err = s.UserByToken(ctx, hash("a1"))
	wantCode(t, "UserByToken(revoked a1) after a new token", err, cleanroom.EUNAUTHORIZED)
}

func testBlobs(t *testing.T, s cleanroom.Store) {
	b := &cleanroom.Blob{Hash: hex("blob"), Size: 1234, UploadedBy: "alice@example.com", UploadedAt: at(0)}
	must(t, s.CreateBlob(ctx, b))
	again := &cleanroom.Blob{Hash: b.Hash, Size: 1234, UploadedBy: "bob@example.com", UploadedAt: at(5)}
	must(t, s.CreateBlob(ctx, again))

	got, err := s.FindBlob(ctx, b.Hash)
	must(t, err)
	if got.Hash != b.Hash || got.Size != b.Size || got.UploadedBy != "alice@example.com" {
		t.Errorf("FindBlob = %+v, want %+v", got, b)
	}
	wantTime(t, "UploadedAt after the same bytes again", got.UploadedAt, at(5))
	must(t, s.CreateBlob(ctx, &cleanroom.Blob{Hash: b.Hash, Size: 1234, UploadedBy: "carol@example.com", UploadedAt: at(1)}))
	got, err = s.FindBlob(ctx, b.Hash)
	must(t, err)
	wantTime(t, "UploadedAt after an earlier time", got.UploadedAt, at(5))
	_, err = s.FindBlob(ctx, hex("other"))
	wantCode(t, "FindBlob(unknown)", err, cleanroom.ENOTFOUND)
}

func testDatasets(t *testing.T, s cleanroom.Store) {
	d := createDCR(t, s, testDefinition("Datasets"), at(0))
	other := createDCR(t, s, testDefinition("Other"), at(0))
	for _, h := range []string{"v1", "v2"} {
		must(t, s.CreateBlob(ctx, &cleanroom.Blob{Hash: hex(h), Size: 10, UploadedBy: "alice@example.com", UploadedAt: at(0)}))
	}
	ds := &cleanroom.Dataset{DCRID: d.ID, Node: "data", ManifestHash: hex("v1"), Size: 10,
		SealedKey: []byte("sealed-1"), PublishedBy: "alice@example.com", PublishedAt: at(1)}
	must(t, s.PutDataset(ctx, ds, nil))
	got, err := s.FindDataset(ctx, d.ID, "data")
	must(t, err)
	wantDataset(t, got, ds)

	// Publishing again replaces the dataset.
	ds2 := &cleanroom.Dataset{DCRID: d.ID, Node: "data", ManifestHash: hex("v2"), Size: 10,
		SealedKey: []byte("sealed-2"), PublishedBy: "alice@example.com", PublishedAt: at(2), ValidationJob: "job-2"}
	must(t, s.PutDataset(ctx, ds2, nil))
	got, err = s.FindDataset(ctx, d.ID, "data")
	must(t, err)
	wantDataset(t, got, ds2)

	// The same blob, published to another clean room, is a separate dataset.
	ds3 := &cleanroom.Dataset{DCRID: other.ID, Node: "data", ManifestHash: hex("v2"), Size: 10,
		SealedKey: []byte("sealed-3"), PublishedBy: "alice@example.com", PublishedAt: at(3)}
	must(t, s.PutDataset(ctx, ds3, nil))

	_, err = s.FindDataset(ctx, d.ID, "stats")
	wantCode(t, "FindDataset(unpublished node)", err, cleanroom.ENOTFOUND)
	_, err = s.FindDataset(ctx, hex("no such room"), "data")
	wantCode(t, "FindDataset(unknown clean room)", err, cleanroom.ENOTFOUND)

	must(t, s.DeleteDataset(ctx, d.ID, "data", nil))
	_, err = s.FindDataset(ctx, d.ID, "data")
	wantCode(t, "FindDataset after delete", err, cleanroom.ENOTFOUND)
	wantCode(t, "DeleteDataset again", s.DeleteDataset(ctx, d.ID, "data", nil), cleanroom.ENOTFOUND)
	got, err = s.FindDataset(ctx, other.ID, "data")
	must(t, err)
	wantDataset(t, got, ds3)
}

func testUnusedBlobs(t *testing.T, s cleanroom.Store) {
	d := createDCR(t, s, testDefinition("Unused"), at(0))
	other := createDCR(t, s, testDefinition("Other"), at(0))
	for i, h := range []string{"old", "published", "replaced", "fresh"} {
		must(t, s.CreateBlob(ctx, &cleanroom.Blob{Hash: hex(h), Size: 10, UploadedBy: "alice@example.com", UploadedAt: at(i)}))
	}
	publish := func(dcrID, h string) {
		must(t, s.PutDataset(ctx, &cleanroom.Dataset{DCRID: dcrID, Node: "data", ManifestHash: hex(h), Size: 10,
			SealedKey: []byte("sealed"), PublishedBy: "alice@example.com", PublishedAt: at(10)}, nil))
	}
	publish(d.ID, "replaced")
	publish(d.ID, "published") // replaces it
	unused := func(before time.Time, limit int) []string {
		t.Helper()
		blobs, err := s.UnusedBlobs(ctx, before, limit)
		must(t, err)
		var hashes []string
		for _, b := range blobs {
			hashes = append(hashes, b.Hash)
		}
		return hashes
	}
	if got, want := unused(at(3), 10), []string{hex("old"), hex("replaced")}; !slices.Equal(got, want) {
		t.Errorf("UnusedBlobs(before the fresh one) = %q, want the old and the replaced one, oldest first: %q", got, want)
	}
	if got := unused(at(10), 1); !slices.Equal(got, []string{hex("old")}) {
		t.Errorf("UnusedBlobs(limit 1) = %q, want the oldest", got)
	}

	wantCode(t, "DeleteUnusedBlob(published)", s.DeleteUnusedBlob(ctx, hex("published"), at(10)), cleanroom.ECONFLICT)
	if _, err := s.FindBlob(ctx, hex("published")); err != nil {
		t.Errorf("a refused DeleteUnusedBlob lost the blob: %v", err)
	}
	// The same bytes uploaded again after the blob was found unused keep it.
	must(t, s.CreateBlob(ctx, &cleanroom.Blob{Hash: hex("old"), Size: 10, UploadedBy: "bob@example.com", UploadedAt: at(20)}))
	wantCode(t, "DeleteUnusedBlob(uploaded again)", s.DeleteUnusedBlob(ctx, hex("old"), at(10)), cleanroom.ECONFLICT)
	must(t, s.DeleteUnusedBlob(ctx, hex("old"), at(21)))
	_, err := s.FindBlob(ctx, hex("old"))
	wantCode(t, "FindBlob after DeleteUnusedBlob", err, cleanroom.ENOTFOUND)
	wantCode(t, "DeleteUnusedBlob again", s.DeleteUnusedBlob(ctx, hex("old"), at(21)), cleanroom.ENOTFOUND)
	// A blob published again is in use again.
	publish(other.ID, "replaced")
	wantCode(t, "DeleteUnusedBlob(published again)", s.DeleteUnusedBlob(ctx, hex("replaced"), at(21)), cleanroom.ECONFLICT)
	if got := unused(at(10), 10); !slices.Equal(got, []string{hex("fresh")}) {
		t.Errorf("UnusedBlobs at the end = %q, want only the fresh one", got)
	}
}

func testAudit(t *testing.T, s cleanroom.Store) {
	d := createDCR(t, s, testDefinition("Audited"), at(0))
	other := createDCR(t, s, testDefinition("Other"), at(0))
	// A clean room's log starts with its publication.
	log, err := s.AuditLog(ctx, d.ID)
	must(t, err)
	if len(log) != 1 || log[0].Action != cleanroom.AuditPublished || log[0].Actor != d.PublishedBy || log[0].Seq != 1 {
		t.Fatalf("a new clean room's audit log: %+v, want its publication", log)
	}
	wantTime(t, "publication entry", log[0].At, d.PublishedAt)
	appended := log
	for i, action := range []string{cleanroom.AuditDatasetPublished, cleanroom.AuditRunRequested} {
		e := &cleanroom.AuditEntry{At: at(i + 1), Actor: "alice@example.com", Action: action, Node: "data", Detail: "d"}
		must(t, s.AppendAudit(ctx, d.ID, e))
		if e.Seq != int64(i+2) || e.Hash == "" {
			t.Fatalf("AppendAudit filled in seq %d hash %q, want seq %d", e.Seq, e.Hash, i+2)
		}
		appended = append(appended, *e)
	}
	// A change and its entry are stored together or not at all.
	must(t, s.CreateBlob(ctx, &cleanroom.Blob{Hash: hex("audited"), Size: 1, UploadedBy: "alice@example.com", UploadedAt: at(3)}))
	put := &cleanroom.AuditEntry{At: at(3), Actor: "alice@example.com", Action: cleanroom.AuditDatasetPublished, Node: "data", Detail: hex("audited")}
	must(t, s.PutDataset(ctx, &cleanroom.Dataset{DCRID: d.ID, Node: "data", ManifestHash: hex("audited"), Size: 1, SealedKey: []byte("k"), PublishedBy: "alice@example.com", PublishedAt: at(3)}, put))
	appended = append(appended, *put)
	remove := &cleanroom.AuditEntry{At: at(4), Actor: "alice@example.com", Action: cleanroom.AuditDatasetRemoved, Node: "stats"}
	wantCode(t, "DeleteDataset(none) with an entry", s.DeleteDataset(ctx, d.ID, "stats", remove), cleanroom.ENOTFOUND)
	job := &cleanroom.Job{ID: "audited-job", DCRID: d.ID, Node: "stats", CreatedBy: "bob@example.com", CreatedAt: at(4)}
	run := &cleanroom.AuditEntry{At: at(4), Actor: "bob@example.com", Action: cleanroom.AuditRunRequested, Node: "stats", Detail: job.ID}
	must(t, s.CreateJob(ctx, job, run))
	appended = append(appended, *run)
	wantCode(t, "CreateJob(same id) with an entry", s.CreateJob(ctx, job, &cleanroom.AuditEntry{At: at(5), Actor: "bob@example.com", Action: cleanroom.AuditRunRequested}), cleanroom.ECONFLICT)
	// A job's end is the enclave's entry, with the job's state.
	must(t, s.FinishJob(ctx, job.ID, cleanroom.JobUpdate{State: cleanroom.JobFailed, Error: "boom"}, at(6)))
	appended = append(appended, cleanroom.AuditEntry{At: at(6), Actor: cleanroom.AuditEnclave, Action: cleanroom.AuditJobEnded, Node: "stats", Detail: job.ID + " failed"})
	// Publishing the same definition again adds nothing.
	if created, err := s.CreateDCR(ctx, newDCR(t, testDefinition("Audited"), at(5))); err != nil || created {
		t.Fatalf("CreateDCR again: %v %v", created, err)
	}
	must(t, s.AppendAudit(ctx, other.ID, &cleanroom.AuditEntry{At: at(9), Actor: "bob@example.com", Action: cleanroom.AuditPublished}))
	log, err = s.AuditLog(ctx, d.ID)
	must(t, err)
	if len(log) != len(appended) {
		t.Fatalf("AuditLog has %d entries, want %d (another room's are not in it)", len(log), len(appended))
	}
	for i := range log {
		wantTime(t, "audit entry time", log[i].At, appended[i].At)
		log[i].At = appended[i].At
		if appended[i].Hash == "" { // an entry the store made: its chaining is checked below
			appended[i].Seq, appended[i].Prev, appended[i].Hash = log[i].Seq, log[i].Prev, log[i].Hash
		}
		if log[i] != appended[i] {
			t.Errorf("entry %d = %+v, want %+v", i+1, log[i], appended[i])
		}
	}
	if err := cleanroom.VerifyAuditLog(d.ID, log); err != nil {
		t.Errorf("the stored log does not verify: %v", err)
	}
	wantCode(t, "AppendAudit(unknown clean room)", s.AppendAudit(ctx, hex("none"), &cleanroom.AuditEntry{Actor: "a", Action: "x"}), cleanroom.ENOTFOUND)
}

func wantDataset(t *testing.T, got, want *cleanroom.Dataset) {
	t.Helper()
	if got.DCRID != want.DCRID || got.Node != want.Node || got.ManifestHash != want.ManifestHash ||
		got.Size != want.Size || !bytes.Equal(got.SealedKey, want.SealedKey) || got.PublishedBy != want.PublishedBy ||
		got.ValidationJob != want.ValidationJob {
		t.Errorf("dataset = %+v, want %+v", got, want)
	}
	wantTime(t, "PublishedAt", got.PublishedAt, want.PublishedAt)
}

func emails(users []*cleanroom.User) []string {
	var list []string
	for _, u := range users {
		list = append(list, u.Email)
	}
	return list
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if got := cleanroom.ErrorCode(err); got != code {
		t.Errorf("%s: error %v, want code %s", what, err, code)
	}
}

// wantTime checks that got is the instant want, in UTC.
func wantTime(t *testing.T, what string, got, want time.Time) {
	t.Helper()
	if !got.Equal(want) || got.Location() != time.UTC {
		t.Errorf("%s = %v, want %v in UTC", what, got, want.UTC())
	}
}

func hash(s string) []byte { return cleanroom.HashToken(s) }

// hex returns a manifest-hash-shaped string derived from s.
func hex(s string) string { return cleanroom.DefinitionID([]byte(s)) }

func testSessions(t *testing.T, s cleanroom.Store) {
	must(t, s.CreateUser(ctx, "ann@example.com"))
	must(t, s.CreateUser(ctx, "bob@example.com"))
	tokens := map[string][]byte{"ann@example.com": bytes.Repeat([]byte{101}, 32), "bob@example.com": bytes.Repeat([]byte{102}, 32), "nobody@example.com": bytes.Repeat([]byte{103}, 32)}
	must(t, s.AddToken(ctx, "ann@example.com", tokens["ann@example.com"]))
	must(t, s.AddToken(ctx, "bob@example.com", tokens["bob@example.com"]))
	sess := func(id byte, email string, expires time.Time) *cleanroom.Session {
		return &cleanroom.Session{IDHash: bytes.Repeat([]byte{id}, 32), Email: email, TokenHash: tokens[email], Expires: expires}
	}
	must(t, s.CreateSession(ctx, sess(1, "ann@example.com", at(60)), at(0), 2))
	must(t, s.CreateSession(ctx, sess(2, "ann@example.com", at(10)), at(0), 2))
	wantCode(t, "CreateSession past the user's limit", s.CreateSession(ctx, sess(3, "ann@example.com", at(60)), at(0), 2), cleanroom.ECONFLICT)
	must(t, s.CreateSession(ctx, sess(4, "bob@example.com", at(60)), at(0), 2)) // the limit is per user
	// Once one has expired, there is room again.
	must(t, s.CreateSession(ctx, sess(3, "ann@example.com", at(60)), at(10), 2))
	wantCode(t, "CreateSession for an unknown user", s.CreateSession(ctx, sess(5, "nobody@example.com", at(60)), at(0), 2), cleanroom.ENOTFOUND)

	got, err := s.FindSession(ctx, sess(1, "", time.Time{}).IDHash)
	must(t, err)
	want := sess(1, "ann@example.com", at(60))
	if !bytes.Equal(got.IDHash, want.IDHash) || got.Email != want.Email || !bytes.Equal(got.TokenHash, want.TokenHash) || !got.Expires.Equal(want.Expires) || got.Expires.Location() != time.UTC {
		t.Errorf("FindSession = %+v, want %+v in UTC", got, want)
	}
	if got, err := s.FindSession(ctx, sess(2, "", time.Time{}).IDHash); err != nil || !got.Expires.Equal(at(10)) {
		t.Errorf("FindSession of an expired session = %+v, %v; want it, expired", got, err)
	}
	_, err = s.FindSession(ctx, sess(9, "", time.Time{}).IDHash)
	wantCode(t, "FindSession unknown", err, cleanroom.ENOTFOUND)

	must(t, s.DeleteSession(ctx, want.IDHash))
	_, err = s.FindSession(ctx, want.IDHash)
	wantCode(t, "FindSession after DeleteSession", err, cleanroom.ENOTFOUND)
	wantCode(t, "DeleteSession again", s.DeleteSession(ctx, want.IDHash), cleanroom.ENOTFOUND)

	n, err := s.DeleteExpiredSessions(ctx, at(30))
	must(t, err)
	if n != 1 {
		t.Errorf("DeleteExpiredSessions = %d, want 1 (the one expiring at 10)", n)
	}
	_, err = s.FindSession(ctx, sess(2, "", time.Time{}).IDHash)
	wantCode(t, "FindSession of a deleted expired session", err, cleanroom.ENOTFOUND)
	for _, id := range []byte{3, 4} {
		if _, err := s.FindSession(ctx, sess(id, "", time.Time{}).IDHash); err != nil {
			t.Errorf("session %d, not expired, was deleted: %v", id, err)
		}
	}

	// Revoking a user's tokens ends their sessions, which then no longer
	// count: a new token may sign in at once.
	must(t, s.CreateSession(ctx, sess(6, "ann@example.com", at(60)), at(10), 2))
	wantCode(t, "CreateSession past the user's limit", s.CreateSession(ctx, sess(7, "ann@example.com", at(60)), at(10), 2), cleanroom.ECONFLICT)
	if _, err := s.RevokeTokens(ctx, "ann@example.com"); err != nil {
		t.Fatal(err)
	}
	for _, id := range []byte{3, 6} {
		_, err := s.FindSession(ctx, sess(id, "", time.Time{}).IDHash)
		wantCode(t, "FindSession after RevokeTokens", err, cleanroom.ENOTFOUND)
	}
	if _, err := s.FindSession(ctx, sess(4, "", time.Time{}).IDHash); err != nil {
		t.Errorf("revoking ann's tokens ended bob's session: %v", err)
	}
	tokens["ann@example.com"] = bytes.Repeat([]byte{104}, 32)
	must(t, s.AddToken(ctx, "ann@example.com", tokens["ann@example.com"]))
	must(t, s.CreateSession(ctx, sess(7, "ann@example.com", at(60)), at(10), 2))
	must(t, s.CreateSession(ctx, sess(8, "ann@example.com", at(60)), at(10), 2))
}
