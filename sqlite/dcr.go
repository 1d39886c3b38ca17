package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/cleanroom-dev/cleanroom"
)

// CreateDCR stores a published clean room, who can read it and the first
// entry of its audit log, that it was published. It reports
// created=false, without error, when the same id is already stored. A zero
// PublishedAt is set to the current time.
func (db *DB) CreateDCR(ctx context.Context, dcr *cleanroom.DCR) (bool, error) {
	if len(dcr.Canonical) == 0 {
		return false, fmt.Errorf("sqlite: clean room %s has no canonical definition", dcr.ID)
	}
	def := dcr.Definition
	if def == nil {
		var err error
		if def, err = cleanroom.ParseDefinition(dcr.Canonical); err != nil {
			return false, err
		}
	}
	dcr.PublishedAt = db.orNow(dcr.PublishedAt)

	var created bool
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO dcrs (id, canonical, name, owner, published_by, published_at)
			VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
			dcr.ID, dcr.Canonical, def.Name, def.Owner, dcr.PublishedBy, encodeTime(dcr.PublishedAt))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return err
		}
		for _, email := range def.Members() {
			if _, err := tx.ExecContext(ctx, `INSERT INTO dcr_members (email, dcr_id) VALUES (?, ?)`, email, dcr.ID); err != nil {
				return err
			}
		}
		created = true
		return db.appendAudit(ctx, tx, dcr.ID, &cleanroom.AuditEntry{At: dcr.PublishedAt, Actor: dcr.PublishedBy, Action: cleanroom.AuditPublished})
	})
	return created && err == nil, err
}

// dcrColumns selects a clean room from dcrs d.
const dcrColumns = `d.id, d.canonical, d.published_by, d.published_at`

func scanDCR(row scanner) (*cleanroom.DCR, error) {
	var d cleanroom.DCR
	if err := row.Scan(&d.ID, &d.Canonical, &d.PublishedBy, timeColumn{&d.PublishedAt}); err != nil {
		return nil, err
	}
	def, err := cleanroom.ParseDefinition(d.Canonical)
	if err != nil {
		// A stored definition was valid when published; failing now is
		// the server's fault, not the caller's.
		return nil, fmt.Errorf("sqlite: clean room %s: stored definition: %v", d.ID, err)
	}
	d.Definition = def
	return &d, nil
}

// FindDCR returns a clean room by id. Returns ENOTFOUND.
func (db *DB) FindDCR(ctx context.Context, id string) (*cleanroom.DCR, error) {
	d, err := scanDCR(db.db.QueryRowContext(ctx, `SELECT `+dcrColumns+` FROM dcrs d WHERE d.id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, cleanroom.Errorf(cleanroom.ENOTFOUND, "clean room not found")
	}
	return d, err
}

// ListDCRs returns the clean rooms email owns or takes part in, newest first.
func (db *DB) ListDCRs(ctx context.Context, email string) ([]*cleanroom.DCR, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT `+dcrColumns+`
		FROM dcr_members m JOIN dcrs d ON d.id = m.dcr_id
		WHERE m.email = ?
		ORDER BY d.published_at DESC, d.rowid DESC`, email)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	dcrs := []*cleanroom.DCR{}
	for rows.Next() {
		d, err := scanDCR(rows)
		if err != nil {
			return nil, err
		}
		dcrs = append(dcrs, d)
	}
	return dcrs, rows.Err()
}
