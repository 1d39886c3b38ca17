package sqlite_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cleanroom-dev/cleanroom"
	"github.com/cleanroom-dev/cleanroom/sqlite"
	"github.com/cleanroom-dev/cleanroom/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) cleanroom.Store {
		return openDB(t, filepath.Join(t.TempDir(), "cleanroom.db"))
	})
}

func openDB(t *testing.T, path string) *sqlite.DB {
	t.Helper()
	db := sqlite.NewDB(path)
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Error(err)
		}
	})
	return db
}

var ctx = context.Background()

// TestTwoProcesses has two DBs on one file write at once, as the server and
// `cleanroom users add` do: no write fails on a lock and no job is claimed twice.
func TestTwoProcesses(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cleanroom.db")
	dbs := []*sqlite.DB{openDB(t, path), openDB(t, path)}
	d := createDCR(t, dbs[0])
	const jobs = 40
	for i := range jobs {
		if err := dbs[1].CreateJob(ctx, &cleanroom.Job{ID: fmt.Sprintf("job-%02d", i), DCRID: d.ID, Node: "stats", CreatedBy: "bob@example.com"}, nil); err != nil {
			t.Fatal(err)
		}
	}

	const writers, users = 4, 25
	var mu sync.Mutex
	claimed := map[string]int{}
	var wg sync.WaitGroup
	for i, db := range dbs {
		for w := range writers {
			wg.Go(func() {
				for u := range users {
					email := fmt.Sprintf("user-%d-%d-%d@example.com", i, w, u)
					if err := db.CreateUser(ctx, email); err != nil {
						t.Error(err)
						return
					}
					if err := db.AddToken(ctx, email, cleanroom.HashToken(email)); err != nil {
						t.Error(err)
						return
					}
					if _, err := db.RevokeTokens(ctx, email); err != nil {
						t.Error(err)
						return
					}
				}
			})
			wg.Go(func() {
				for {
					j, err := db.ClaimJob(ctx, time.Now())
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
	}
	wg.Wait()

	for _, db := range dbs {
		list, err := db.ListUsers(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if want := len(dbs) * writers * users; len(list) != want {
			t.Errorf("ListUsers: %d users, want %d", len(list), want)
		}
	}
	if len(claimed) != jobs {
		t.Errorf("%d jobs claimed, want %d", len(claimed), jobs)
	}
	for id, n := range claimed {
		if n != 1 {
			t.Errorf("job %s claimed %d times", id, n)
		}
	}
}

func TestReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data dir?#%", "cleanroom.db") // created, and escaped in the DSN
	db := sqlite.NewDB(path)
	created := time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC)
	db.Now = func() time.Time { return created }
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateUser(ctx, "alice@example.com"); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = openDB(t, path)
	users, err := db.ListUsers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(users) != 1 || !users[0].CreatedAt.Equal(created) {
		t.Fatalf("after reopening: %+v, want alice created at %v", users, created)
	}

	raw := openRaw(t, path)
	var versions, latest int
	var mode string
	if err := raw.QueryRow(`SELECT count(*), max(version) FROM schema_migrations`).Scan(&versions, &latest); err != nil {
		t.Fatal(err)
	}
	if err := raw.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil {
		t.Fatal(err)
	}
	// Reopening applies nothing twice: one row per version.
	if versions != latest || mode != "wal" {
		t.Errorf("schema_migrations has %d rows for %d versions, journal mode %q; want one row each and wal", versions, latest, mode)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if fi, err := os.Stat(p); err != nil {
			t.Error(err)
		} else if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", filepath.Base(p), fi.Mode().Perm())
		}
	}
}

// TestNewerSchema checks that an older binary refuses a database a newer
// one migrated, instead of writing rows it does not understand.
func TestNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cleanroom.db")
	openDB(t, path).Close()
	if _, err := openRaw(t, path).Exec(`INSERT INTO schema_migrations (version, applied_at) VALUES (999, '')`); err != nil {
		t.Fatal(err)
	}
	err := sqlite.NewDB(path).Open()
	if err == nil || !strings.Contains(err.Error(), "upgrade cleanroom") {
		t.Errorf("Open = %v, want an error asking to upgrade", err)
	}
}

// TestAuditLogsOfOlderRooms: a clean room published before audit logs
// existed gets its first entry, its publication, when the database is
// next opened, once however often it is opened.
func TestAuditLogsOfOlderRooms(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cleanroom.db")
	db := sqlite.NewDB(path)
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	d := createDCR(t, db)
	db.Close()
	// As a database from before migration 4 would hold it: a room, no log.
	if _, err := openRaw(t, path).Exec(`DELETE FROM audit`); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		db := openDB(t, path)
		log, err := db.AuditLog(ctx, d.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(log) != 1 || log[0].Action != cleanroom.AuditPublished || log[0].Actor != d.PublishedBy || !log[0].At.Equal(cleanroom.AuditTime(d.PublishedAt)) {
			t.Fatalf("the older room's log: %+v, want its publication", log)
		}
		if err := cleanroom.VerifyAuditLog(d.ID, log); err != nil {
			t.Fatal(err)
		}
		db.Close()
	}
}

// TestReferences checks that rows pointing at missing rows are refused with
// codes a user can act on.
func TestReferences(t *testing.T) {
	db := openDB(t, filepath.Join(t.TempDir(), "cleanroom.db"))
	d := createDCR(t, db)
	hash := cleanroom.DefinitionID([]byte("ciphertext"))
	ds := &cleanroom.Dataset{DCRID: d.ID, Node: "data", ManifestHash: hash, Size: 1, SealedKey: []byte("k"), PublishedBy: "alice@example.com"}
	if err := db.PutDataset(ctx, ds, nil); cleanroom.ErrorCode(err) != cleanroom.ENOTFOUND || !strings.Contains(err.Error(), "no upload") {
		t.Errorf("PutDataset(unknown blob) = %v, want ENOTFOUND naming the upload", err)
	}
	if err := db.CreateBlob(ctx, &cleanroom.Blob{Hash: hash, Size: 1, UploadedBy: "alice@example.com"}); err != nil {
		t.Fatal(err)
	}
	ds.DCRID = cleanroom.DefinitionID([]byte("no such room"))
	if err := db.PutDataset(ctx, ds, nil); cleanroom.ErrorCode(err) != cleanroom.ENOTFOUND || !strings.Contains(err.Error(), "clean room") {
		t.Errorf("PutDataset(unknown clean room) = %v, want ENOTFOUND naming the clean room", err)
	}
	job := &cleanroom.Job{ID: "j", DCRID: ds.DCRID, Node: "stats", CreatedBy: "bob@example.com"}
	if err := db.CreateJob(ctx, job, nil); cleanroom.ErrorCode(err) != cleanroom.ENOTFOUND {
		t.Errorf("CreateJob(unknown clean room) = %v, want ENOTFOUND", err)
	}
	job.DCRID = d.ID
	if err := db.CreateJob(ctx, job, nil); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateJob(ctx, job, nil); cleanroom.ErrorCode(err) != cleanroom.ECONFLICT {
		t.Errorf("CreateJob(same id) = %v, want ECONFLICT", err)
	}
}

func createDCR(t *testing.T, db *sqlite.DB) *cleanroom.DCR {
	t.Helper()
	def := &cleanroom.Definition{
		Name:  "Room",
		Owner: "owner@example.com",
		Nodes: []cleanroom.Node{
			{Name: "data", Kind: cleanroom.NodeRaw},
			{Name: "stats", Kind: cleanroom.NodePython, Script: "print(1)\n", Dependencies: []string{"data"}},
		},
	}
	canonical, err := def.Canonical()
	if err != nil {
		t.Fatal(err)
	}
	d := &cleanroom.DCR{ID: cleanroom.DefinitionID(canonical), Definition: def, Canonical: canonical, PublishedBy: def.Owner}
	if _, err := db.CreateDCR(ctx, d); err != nil {
		t.Fatal(err)
	}
	return d
}

// openRaw opens the file without the package, to look at what it stored.
func openRaw(t *testing.T, path string) *sql.DB {
	t.Helper()
	raw, err := sql.Open("sqlite", (&url.URL{Scheme: "file", Path: path}).String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	return raw
}

// TestDeletedKeysLeaveNoTrace: once a job's result is deleted or a dataset
// replaced or removed, no piece of its sealed key is in any file of the database, not
// in its free space nor in its write-ahead log, while the server runs.
func TestDeletedKeysLeaveNoTrace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cleanroom.db")
	resultKey, replacedKey, datasetKey := make([]byte, 80), make([]byte, 80), make([]byte, 80) // the size of sealed keys
	rand.Read(resultKey)
	rand.Read(replacedKey)
	rand.Read(datasetKey)
	traces := func(key []byte) (n int) {
		for _, p := range []string{path, path + "-wal"} {
			b, _ := os.ReadFile(p)
			for i := 0; i+8 <= len(key); i += 8 {
				if bytes.Contains(b, key[i:i+8]) {
					n++
				}
			}
		}
		return n
	}
	db := openDB(t, path)
	d := createDCR(t, db)
	for _, id := range []string{"before", "j", "after"} {
		if err := db.CreateJob(ctx, &cleanroom.Job{ID: id, DCRID: d.ID, Node: "stats", CreatedBy: "bob@example.com"}, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := db.ClaimJob(ctx, time.Now()); err != nil {
			t.Fatal(err)
		}
		sealed := bytes.Repeat([]byte(id), 20)
		if id == "j" {
			sealed = resultKey
		}
		if err := db.FinishJob(ctx, id, cleanroom.JobUpdate{State: cleanroom.JobSucceeded, SealedKey: sealed, ResultSize: 1}, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	hash := strings.Repeat("a", 64)
	if err := db.CreateBlob(ctx, &cleanroom.Blob{Hash: hash, Size: 1, UploadedBy: "ann@example.com"}); err != nil {
		t.Fatal(err)
	}
	// A dataset replaced, then one removed.
	for _, key := range [][]byte{replacedKey, datasetKey} {
		if err := db.PutDataset(ctx, &cleanroom.Dataset{DCRID: d.ID, Node: "data", ManifestHash: hash, Size: 1, SealedKey: key, PublishedBy: "ann@example.com"}, nil); err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(key, replacedKey) && traces(replacedKey) == 0 {
			t.Fatal("the first dataset's sealed key is not in the database's files: the check would prove nothing")
		}
	}
	if n := traces(replacedKey); n > 0 {
		t.Errorf("%d pieces of the replaced dataset's sealed key are still in the database's files", n)
	}
	if traces(resultKey) == 0 || traces(datasetKey) == 0 {
		t.Fatal("the sealed keys are not in the database's files before the deletion: the check would prove nothing")
	}
	if err := db.DeleteJobResult(ctx, "j", time.Now(), nil); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteDataset(ctx, d.ID, "data", nil); err != nil {
		t.Fatal(err)
	}
	if n := traces(resultKey); n > 0 {
		t.Errorf("%d pieces of the deleted result's sealed key are still in the database's files", n)
	}
	if n := traces(datasetKey); n > 0 {
		t.Errorf("%d pieces of the removed dataset's sealed key are still in the database's files", n)
	}
}

// A session is found only while its token is live, even when something
// other than RevokeTokens (an operator's SQL, say) revokes the token.
func TestSessionOfRevokedToken(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cleanroom.db")
	db := openDB(t, path)
	token, id := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	if err := db.CreateUser(ctx, "ann@example.com"); err != nil {
		t.Fatal(err)
	}
	if err := db.AddToken(ctx, "ann@example.com", token); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateSession(ctx, &cleanroom.Session{IDHash: id, Email: "ann@example.com", TokenHash: token, Expires: time.Now().Add(time.Hour)}, time.Now(), 10); err != nil {
		t.Fatal(err)
	}
	if _, err := db.FindSession(ctx, id); err != nil {
		t.Fatalf("the session of a live token: %v", err)
	}
	if _, err := openRaw(t, path).Exec(`UPDATE tokens SET revoked_at = '2026-01-01T00:00:00Z'`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.FindSession(ctx, id); cleanroom.ErrorCode(err) != cleanroom.ENOTFOUND {
		t.Errorf("the session of a revoked token: %v, want not found", err)
	}
}
