package cleanroom

import (
	"errors"
	"testing"
	"time"
)

func chain(dcrID string, n int) []AuditEntry {
	var log []AuditEntry
	prev := ""
	for i := range n {
		e := AuditEntry{Seq: int64(i + 1), At: AuditTime(time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC).Add(time.Duration(i) * time.Minute)),
			Actor: "ann@example.com", Action: AuditDatasetPublished, Node: "data", Detail: "hash", Prev: prev}
		e.Hash = e.ComputeHash(dcrID)
		prev = e.Hash
		log = append(log, e)
	}
	return log
}

// Any change to an entry, any entry removed or moved, and a log presented
// for another clean room fail verification.
func TestVerifyAuditLog(t *testing.T) {
	const id = "room"
	if err := VerifyAuditLog(id, chain(id, 4)); err != nil {
		t.Fatalf("an intact log: %v", err)
	}
	if err := VerifyAuditLog(id, nil); err != nil {
		t.Fatalf("an empty log: %v", err)
	}
	tampered := map[string]func(log []AuditEntry) []AuditEntry{
		"actor changed":         func(l []AuditEntry) []AuditEntry { l[1].Actor = "eve@example.com"; return l },
		"time changed":          func(l []AuditEntry) []AuditEntry { l[1].At = l[1].At.Add(time.Microsecond); return l },
		"detail changed":        func(l []AuditEntry) []AuditEntry { l[2].Detail = "other"; return l },
		"action changed":        func(l []AuditEntry) []AuditEntry { l[0].Action = AuditLogsRead; return l },
		"node changed":          func(l []AuditEntry) []AuditEntry { l[3].Node = "x"; return l },
		"entry removed":         func(l []AuditEntry) []AuditEntry { return append(l[:1], l[2:]...) },
		"first removed":         func(l []AuditEntry) []AuditEntry { return l[1:] },
		"entries swapped":       func(l []AuditEntry) []AuditEntry { l[1], l[2] = l[2], l[1]; return l },
		"rehashed, not chained": func(l []AuditEntry) []AuditEntry { l[1].Detail = "x"; l[1].Hash = l[1].ComputeHash(id); return l },
	}
	for name, tamper := range tampered {
		if err := VerifyAuditLog(id, tamper(chain(id, 4))); !errors.Is(err, ErrAuditLog) {
			t.Errorf("%s: %v, want ErrAuditLog", name, err)
		}
	}
	if err := VerifyAuditLog("other room", chain(id, 2)); !errors.Is(err, ErrAuditLog) {
		t.Errorf("another clean room's log: %v, want ErrAuditLog", err)
	}
}

// A log rewritten from some entry on, hashes and all, verifies on its own;
// only a hash kept from before shows it, as does a log cut short.
func TestAuditExtends(t *testing.T) {
	const id = "room"
	log := chain(id, 4)
	if err := AuditExtends(log, 3, log[2].Hash); err != nil {
		t.Fatalf("the same log: %v", err)
	}
	if err := AuditExtends(append(log, chain(id, 5)[4]), 4, log[3].Hash); err != nil {
		t.Fatalf("a log that grew: %v", err)
	}
	rewritten := chain(id, 4)
	rewritten[1].Actor = "eve@example.com"
	for i := 1; i < len(rewritten); i++ {
		rewritten[i].Prev = rewritten[i-1].Hash
		rewritten[i].Hash = rewritten[i].ComputeHash(id)
	}
	if err := VerifyAuditLog(id, rewritten); err != nil {
		t.Fatalf("a fully rehashed log should verify on its own (that is the point of this test): %v", err)
	}
	if err := AuditExtends(rewritten, 3, log[2].Hash); !errors.Is(err, ErrAuditLog) {
		t.Errorf("a rewritten log against a kept hash: %v, want ErrAuditLog", err)
	}
	if err := AuditExtends(log[:2], 3, log[2].Hash); !errors.Is(err, ErrAuditLog) {
		t.Errorf("a log cut short: %v, want ErrAuditLog", err)
	}
}
