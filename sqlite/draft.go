package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cleanroom-dev/cleanroom"
)

// CreateDraft stores a new draft. Zero times are set to the current time.
func (db *DB) CreateDraft(ctx context.Context, d *cleanroom.Draft) error {
	def, err := json.Marshal(d.Definition)
	if err != nil {
		return err
	}
	d.CreatedAt = db.orNow(d.CreatedAt)
	d.UpdatedAt = db.orNow(d.UpdatedAt)
	_, err = db.db.ExecContext(ctx, `INSERT INTO drafts (id, owner, definition, created_at, updated_at) VALUES (?, ?, ?, ?, ?)`,
		d.ID, d.Owner, def, encodeTime(d.CreatedAt), encodeTime(d.UpdatedAt))
	if isUnique(err) {
		return cleanroom.Errorf(cleanroom.ECONFLICT, "draft %s already exists", d.ID)
	}
	return err
}

const draftColumns = `id, owner, definition, published_id, created_at, updated_at`

func scanDraft(row scanner) (*cleanroom.Draft, error) {
	var d cleanroom.Draft
	var def []byte
	var published sql.NullString
	if err := row.Scan(&d.ID, &d.Owner, &def, &published, timeColumn{&d.CreatedAt}, timeColumn{&d.UpdatedAt}); err != nil {
		return nil, err
	}
	d.PublishedID = published.String
	var err error
	if d.Definition, err = cleanroom.ParseDraftDefinition(def); err != nil {
		return nil, fmt.Errorf("sqlite: draft %s: stored definition: %v", d.ID, err)
	}
	return &d, nil
}

func draftNotFound(id string) error {
	return cleanroom.Errorf(cleanroom.ENOTFOUND, "draft %s not found", id)
}

// FindDraft returns a draft by id. Returns ENOTFOUND.
func (db *DB) FindDraft(ctx context.Context, id string) (*cleanroom.Draft, error) {
	d, err := scanDraft(db.db.QueryRowContext(ctx, `SELECT `+draftColumns+` FROM drafts WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, draftNotFound(id)
	}
	return d, err
}

// ListDrafts returns the drafts owner created, most recently updated first.
func (db *DB) ListDrafts(ctx context.Context, owner string) ([]*cleanroom.Draft, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT `+draftColumns+` FROM drafts WHERE owner = ? ORDER BY updated_at DESC, id`, owner)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*cleanroom.Draft
	for rows.Next() {
		d, err := scanDraft(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// UpdateDraft replaces a draft's definition. Returns ENOTFOUND, or
// ECONFLICT once the draft is published.
func (db *DB) UpdateDraft(ctx context.Context, id string, def *cleanroom.Definition, now time.Time) (*cleanroom.Draft, error) {
	b, err := json.Marshal(def)
	if err != nil {
		return nil, err
	}
	res, err := db.db.ExecContext(ctx, `UPDATE drafts SET definition = ?, updated_at = ? WHERE id = ? AND published_id IS NULL`, b, encodeTime(db.orNow(now)), id)
	if err != nil {
		return nil, err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil, db.draftUnchangeable(ctx, id)
	}
	return db.FindDraft(ctx, id)
}

// PublishDraft freezes a draft as published under dcrID.
func (db *DB) PublishDraft(ctx context.Context, id, dcrID string, now time.Time) error {
	res, err := db.db.ExecContext(ctx, `UPDATE drafts SET published_id = ?, updated_at = ? WHERE id = ? AND published_id IS NULL`, dcrID, encodeTime(db.orNow(now)), id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return db.draftUnchangeable(ctx, id)
	}
	return nil
}

// draftUnchangeable says why an update matched no draft.
func (db *DB) draftUnchangeable(ctx context.Context, id string) error {
	d, err := db.FindDraft(ctx, id)
	if err != nil {
		return err
	}
	return cleanroom.Errorf(cleanroom.ECONFLICT, "draft %s was published as clean room %s and can no longer change", id, d.PublishedID)
}

// DeleteDraft removes a draft. Returns ENOTFOUND.
func (db *DB) DeleteDraft(ctx context.Context, id string) error {
	res, err := db.db.ExecContext(ctx, `DELETE FROM drafts WHERE id = ?`, id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return draftNotFound(id)
	}
	return nil
}
