package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/cleanroom-dev/cleanroom"
)

// AppendAudit appends e to the audit log of a clean room, filling in its
// Seq, Prev and Hash from the last entry.
func (db *DB) AppendAudit(ctx context.Context, dcrID string, e *cleanroom.AuditEntry) error {
	err := db.inTx(ctx, func(tx *sql.Tx) error { return db.appendAudit(ctx, tx, dcrID, e) })
	if isForeignKey(err) {
		if _, err := db.FindDCR(ctx, dcrID); err != nil {
			return err
		}
	}
	return err
}

// write runs change in one transaction with appending audit, unless nil,
// to the log of clean room dcrID: both are stored or neither. As write
// transactions begin IMMEDIATE (inTx), two appends cannot claim the same
// number.
func (db *DB) write(ctx context.Context, dcrID string, audit *cleanroom.AuditEntry, change func(tx *sql.Tx) error) error {
	return db.inTx(ctx, func(tx *sql.Tx) error {
		if err := change(tx); err != nil {
			return err
		}
		return db.appendAudit(ctx, tx, dcrID, audit)
	})
}

// appendAudit appends e, unless nil, within tx.
func (db *DB) appendAudit(ctx context.Context, tx *sql.Tx, dcrID string, e *cleanroom.AuditEntry) error {
	if e == nil {
		return nil
	}
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

// jobEnded appends, within tx, that job id ended in state: the enclave's
// entry, in the log of the job's clean room.
func (db *DB) jobEnded(ctx context.Context, tx *sql.Tx, id string, state cleanroom.JobState, at time.Time) error {
	var dcrID, node string
	if err := tx.QueryRowContext(ctx, `SELECT dcr_id, node FROM jobs WHERE id = ?`, id).Scan(&dcrID, &node); err != nil {
		return err
	}
	return db.appendAudit(ctx, tx, dcrID, &cleanroom.AuditEntry{At: at, Actor: cleanroom.AuditEnclave, Action: cleanroom.AuditJobEnded, Node: node, Detail: id + " " + string(state)})
}

// startAuditLogs gives each clean room published before audit logs existed
// (migration 4) the first entry every log has, its publication, so that
// its log starts as any other does. The hash needs Go, not SQL.
func (db *DB) startAuditLogs(ctx context.Context) error {
	rows, err := db.db.QueryContext(ctx, `SELECT id, published_by, published_at FROM dcrs d
		WHERE NOT EXISTS (SELECT 1 FROM audit WHERE dcr_id = d.id)`)
	if err != nil {
		return err
	}
	var entries []*cleanroom.AuditEntry
	var ids []string
	for rows.Next() {
		e := &cleanroom.AuditEntry{Action: cleanroom.AuditPublished}
		var id string
		if err := rows.Scan(&id, &e.Actor, timeColumn{&e.At}); err != nil {
			rows.Close()
			return err
		}
		ids, entries = append(ids, id), append(entries, e)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for i, e := range entries {
		// Checked again in the transaction: another process may have
		// opened the database and done it meanwhile.
		err := db.inTx(ctx, func(tx *sql.Tx) error {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM audit WHERE dcr_id = ?`, ids[i]).Scan(&n); err != nil || n > 0 {
				return err
			}
			return db.appendAudit(ctx, tx, ids[i], e)
		})
		if err != nil {
			return err
		}
	}
	return nil
}
