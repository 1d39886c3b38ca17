package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/cleanroom-dev/cleanroom"
	"github.com/cleanroom-dev/cleanroom/client"
)

// auditLog prints a clean room's audit log once it has checked the chain
// and that the log still holds the last entry this user verified with
// this command before (kept in auditPinsFile): the chain alone cannot
// show a log rewritten from some entry on, hashes and all.
func auditLog(ctx context.Context, c *client.Client, dcrID string, stdout io.Writer) error {
	changed := func(err error) error {
		return hintError(err.Error(), "the server's copy of the log was changed; tell the clean room's owner and its operator")
	}
	log, err := c.AuditLog(ctx, dcrID)
	if errors.Is(err, cleanroom.ErrAuditLog) {
		return changed(err)
	} else if err != nil {
		return err
	}
	path, err := auditPinsFile()
	if err != nil {
		return err
	}
	pins := map[string]auditPin{}
	if b, err := os.ReadFile(path); err == nil {
		if err := json.Unmarshal(b, &pins); err != nil {
			return hintError(fmt.Sprintf("%s: %v", path, err), "this file keeps the audit log entries you verified; restore it, or remove it to start afresh")
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	key := c.URL + " " + dcrID
	pin, pinned := pins[key]
	if pinned {
		if err := cleanroom.AuditExtends(log, pin.Seq, pin.Hash); err != nil {
			return changed(err)
		}
	}
	for _, e := range log {
		fmt.Fprintln(stdout, e.String())
	}
	if len(log) == 0 {
		return nil
	}
	last := log[len(log)-1]
	fmt.Fprintf(stdout, "%d entries, chain verified", len(log))
	if pinned {
		fmt.Fprintf(stdout, ", and entry %d is the one you verified before", pin.Seq)
	}
	fmt.Fprintf(stdout, "; last hash %s\n", last.Hash)
	pins[key] = auditPin{Seq: last.Seq, Hash: last.Hash}
	return writePins(path, pins)
}

// auditPin is the last audit log entry verified of a clean room.
type auditPin struct {
	Seq  int64  `json:"seq"`
	Hash string `json:"hash"`
}

// auditPinsFile is where the CLI keeps the entries it verified, by server
// and clean room: in the user's configuration directory.
func auditPinsFile() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", hintError("no configuration directory to keep the audit log entries you verified: "+err.Error(), "set HOME or XDG_CONFIG_HOME")
	}
	return filepath.Join(dir, "cleanroom", "audit-verified.json"), nil
}

// writePins replaces the file whole, so that a crash leaves the old one.
func writePins(path string, pins map[string]auditPin) error {
	b, _ := json.MarshalIndent(pins, "", "  ")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
