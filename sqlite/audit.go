package sqlite

import (
	"context"
	"database/sql"
	"errors"

	"github.com/cleanroom-dev/cleanroom"
)

// AppendAudit appends e to the audit log of a clean room, filling in its
// Seq, Prev and Hash from the last entry, in one transaction.
func (db *DB) AppendAudit(ctx context.Context, dcrID string, e *cleanroom.AuditEntry) error {
	// One appender at a time: two reading the same last entry would both
	// claim the next number (the primary key refuses the second anyway).
	db.auditMu.Lock()
	defer db.auditMu.Unlock()
	tx, err := db.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	err = db.appendAudit(ctx, tx, dcrID, e)
	if isForeignKey(err) {
		if _, err := db.FindDCR(ctx, dcrID); err != nil {
			return err
		}
	}
	if err != nil {
		return err
	}
	return tx.Commit()
}

// appendAudit appends e within tx.
func (db *DB) appendAudit(ctx context.Context, tx *sql.Tx, dcrID string, e *cleanroom.AuditEntry) error {
	e.Seq, e.Prev = 1, ""
	err := tx.QueryRowContext(ctx, `SELECT seq + 1, hash FROM audit WHERE dcr_id = ? ORDER BY seq DESC LIMIT 1`, dcrID).Scan(&e.Seq, &e.Prev)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	e.At = cleanroom.AuditTime(db.orNow(e.At))
	e.Hash = e.ComputeHash(dcrID)
	_, err = tx.ExecContext(ctx, `INSERT INTO audit (dcr_id, seq, at, actor, action, node, detail, prev, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		dcrID, e.Seq, encodeTime(e.At), e.Actor, e.Action, e.Node, e.Detail, e.Prev, e.Hash)
	return err
}

// AuditLog returns the audit log of a clean room, oldest first.
func (db *DB) AuditLog(ctx context.Context, dcrID string) ([]cleanroom.AuditEntry, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT seq, at, actor, action, node, detail, prev, hash FROM audit WHERE dcr_id = ? ORDER BY seq`, dcrID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	log := []cleanroom.AuditEntry{}
	for rows.Next() {
		var e cleanroom.AuditEntry
		if err := rows.Scan(&e.Seq, timeColumn{&e.At}, &e.Actor, &e.Action, &e.Node, &e.Detail, &e.Prev, &e.Hash); err != nil {
			return nil, err
		}
		log = append(log, e)
	}
	return log, rows.Err()
}
