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

// FindDraft returns a draft by id, with its test datasets. Returns ENOTFOUND.
func (db *DB) FindDraft(ctx context.Context, id string) (*cleanroom.Draft, error) {
	d, err := scanDraft(db.db.QueryRowContext(ctx, `SELECT `+draftColumns+` FROM drafts WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, draftNotFound(id)
	} else if err != nil {
		return nil, err
	}
	d.TestDatasets, err = db.ListTestDatasets(ctx, id)
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

// PutTestDataset attaches test data to a data node of a draft, replacing
// any earlier. Returns ENOTFOUND for an unknown draft.
func (db *DB) PutTestDataset(ctx context.Context, ds *cleanroom.TestDataset) error {
	_, err := db.db.ExecContext(ctx, `INSERT INTO draft_test_datasets (draft_id, node, size, sealed_key) VALUES (?, ?, ?, ?)
		ON CONFLICT (draft_id, node) DO UPDATE SET size = excluded.size, sealed_key = excluded.sealed_key`,
		ds.DraftID, ds.Node, ds.Size, ds.SealedKey)
	if isForeignKey(err) {
		return draftNotFound(ds.DraftID)
	}
	return err
}

// ListTestDatasets returns the test datasets of a draft, by node.
func (db *DB) ListTestDatasets(ctx context.Context, draftID string) ([]*cleanroom.TestDataset, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT draft_id, node, size, sealed_key FROM draft_test_datasets WHERE draft_id = ? ORDER BY node`, draftID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []*cleanroom.TestDataset{}
	for rows.Next() {
		var ds cleanroom.TestDataset
		if err := rows.Scan(&ds.DraftID, &ds.Node, &ds.Size, &ds.SealedKey); err != nil {
			return nil, err
		}
		out = append(out, &ds)
	}
	return out, rows.Err()
}

// DeleteTestDataset detaches test data. Returns ENOTFOUND if there is none.
func (db *DB) DeleteTestDataset(ctx context.Context, draftID, node string) error {
	res, err := db.db.ExecContext(ctx, `DELETE FROM draft_test_datasets WHERE draft_id = ? AND node = ?`, draftID, node)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return cleanroom.Errorf(cleanroom.ENOTFOUND, "node %q of draft %s has no test dataset", node, draftID)
	}
	return nil
}

// CreateDraftTest stores a draft test that has started.
func (db *DB) CreateDraftTest(ctx context.Context, t *cleanroom.DraftTest) error {
	t.CreatedAt = db.orNow(t.CreatedAt)
	t.State = cleanroom.DraftTestRunning
	_, err := db.db.ExecContext(ctx, `INSERT INTO draft_tests (id, draft_id, state, created_at) VALUES (?, ?, ?, ?)`,
		t.ID, t.DraftID, t.State, encodeTime(t.CreatedAt))
	if isForeignKey(err) {
		return draftNotFound(t.DraftID)
	}
	return err
}

// FinishDraftTest records the outcome of a draft test; errMsg says why it
// could not test the nodes, if it could not.
func (db *DB) FinishDraftTest(ctx context.Context, id string, nodes []cleanroom.NodeTest, errMsg string, now time.Time) error {
	if nodes == nil {
		nodes = []cleanroom.NodeTest{}
	}
	b, err := json.Marshal(nodes)
	if err != nil {
		return err
	}
	res, err := db.db.ExecContext(ctx, `UPDATE draft_tests SET state = 'done', nodes = ?, error = ?, finished_at = ? WHERE id = ? AND state = 'running'`,
		b, errMsg, encodeTime(db.orNow(now)), id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return cleanroom.Errorf(cleanroom.ECONFLICT, "draft test %s is not running", id)
	}
	return nil
}

// LatestDraftTest returns a draft's most recent test. Returns ENOTFOUND if it has none.
func (db *DB) LatestDraftTest(ctx context.Context, draftID string) (*cleanroom.DraftTest, error) {
	var t cleanroom.DraftTest
	var nodes []byte
	err := db.db.QueryRowContext(ctx, `SELECT id, draft_id, state, nodes, error, created_at, finished_at FROM draft_tests
		WHERE draft_id = ? ORDER BY created_at DESC, rowid DESC LIMIT 1`, draftID).
		Scan(&t.ID, &t.DraftID, &t.State, &nodes, &t.Error, timeColumn{&t.CreatedAt}, timePtrColumn{&t.FinishedAt})
	if errors.Is(err, sql.ErrNoRows) {
		return nil, cleanroom.Errorf(cleanroom.ENOTFOUND, "draft %s has not been tested yet", draftID)
	} else if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(nodes, &t.Nodes); err != nil {
		return nil, fmt.Errorf("sqlite: draft test %s: %v", t.ID, err)
	}
	return &t, nil
}
