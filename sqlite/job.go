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

// CreateJob stores a new queued job; its State is set to queued and a zero
// CreatedAt to the current time. Returns ENOTFOUND if the clean room does
// not exist and ECONFLICT if the id is taken.
func (db *DB) CreateJob(ctx context.Context, job *cleanroom.Job, audit *cleanroom.AuditEntry) error {
	job.State = cleanroom.JobQueued
	job.CreatedAt = db.orNow(job.CreatedAt)
	warnings, err := encodeWarnings(job.Warnings)
	if err != nil {
		return err
	}
	err = db.write(ctx, job.DCRID, audit, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO jobs (id, dcr_id, node, created_by, state, error, warnings,
			sealed_key, result_size, has_logs, created_at, started_at, finished_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			job.ID, job.DCRID, job.Node, job.CreatedBy, job.State, job.Error, warnings,
			job.SealedKey, job.ResultSize, job.HasLogs, encodeTime(job.CreatedAt), encodeTimePtr(job.StartedAt), encodeTimePtr(job.FinishedAt))
		return err
	})
	switch {
	case isForeignKey(err):
		return cleanroom.Errorf(cleanroom.ENOTFOUND, "clean room not found")
	case isUnique(err):
		return cleanroom.Errorf(cleanroom.ECONFLICT, "job %s already exists", job.ID)
	}
	return err
}

// jobColumns selects a job from jobs.
const jobColumns = `id, dcr_id, node, created_by, state, error, warnings,
	sealed_key, result_size, has_logs, created_at, started_at, finished_at, result_deleted_at, error_log`

func scanJob(row scanner) (*cleanroom.Job, error) {
	var j cleanroom.Job
	var warnings sql.NullString
	if err := row.Scan(&j.ID, &j.DCRID, &j.Node, &j.CreatedBy, &j.State, &j.Error, &warnings,
		&j.SealedKey, &j.ResultSize, &j.HasLogs,
		timeColumn{&j.CreatedAt}, timePtrColumn{&j.StartedAt}, timePtrColumn{&j.FinishedAt}, timePtrColumn{&j.ResultDeletedAt}, &j.ErrorLog); err != nil {
		return nil, err
	}
	if warnings.Valid {
		if err := json.Unmarshal([]byte(warnings.String), &j.Warnings); err != nil {
			return nil, fmt.Errorf("sqlite: job %s: warnings: %w", j.ID, err)
		}
	}
	return &j, nil
}

// FindJob returns a job by id. Returns ENOTFOUND.
func (db *DB) FindJob(ctx context.Context, id string) (*cleanroom.Job, error) {
	j, err := scanJob(db.db.QueryRowContext(ctx, `SELECT `+jobColumns+` FROM jobs WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errNoJob()
	}
	return j, err
}

// ListJobs returns the jobs of one compute node, newest first.
func (db *DB) ListJobs(ctx context.Context, dcrID, node string) ([]*cleanroom.Job, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT `+jobColumns+` FROM jobs
		WHERE dcr_id = ? AND node = ? ORDER BY created_at DESC, rowid DESC`, dcrID, node)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	jobs := []*cleanroom.Job{}
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return nil, err
		}
		jobs = append(jobs, j)
	}
	return jobs, rows.Err()
}

// ClaimJob moves the oldest queued job to running and returns it. Returns
// ENOTFOUND when none is queued. The single UPDATE holds the write lock from
// the moment it picks the job, so concurrent claimers, in this process or
// another, never get the same job.
func (db *DB) ClaimJob(ctx context.Context, now time.Time) (*cleanroom.Job, error) {
	j, err := scanJob(db.db.QueryRowContext(ctx, `UPDATE jobs SET state = 'running', started_at = ?
		WHERE id = (SELECT id FROM jobs WHERE state = 'queued' ORDER BY created_at, rowid LIMIT 1)
			AND state = 'queued'
		RETURNING `+jobColumns, encodeTime(db.orNow(now))))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, cleanroom.Errorf(cleanroom.ENOTFOUND, "no job is queued")
	}
	return j, err
}

// FinishJob records how a running or queued job ended. A nil SealedKey keeps
// the one stored. Returns ENOTFOUND if there is no such job and ECONFLICT if
// it had already ended.
func (db *DB) FinishJob(ctx context.Context, id string, u cleanroom.JobUpdate, now time.Time) error {
	if !u.State.Done() {
		return fmt.Errorf("sqlite: finish job %s: %q is not a final state", id, u.State)
	}
	warnings, err := encodeWarnings(u.Warnings)
	if err != nil {
		return err
	}
	now = db.orNow(now)
	ended, err := db.endJob(ctx, id, u.State, now, `UPDATE jobs SET state = ?, error = ?, error_log = ?, warnings = ?,
			sealed_key = coalesce(?, sealed_key), result_size = ?, has_logs = ?, finished_at = ?
		WHERE id = ? AND state IN ('queued', 'running')`,
		u.State, u.Error, u.ErrorLog, warnings, u.SealedKey, u.ResultSize, u.HasLogs, encodeTime(now), id)
	if err != nil || ended {
		return err
	}
	j, err := db.FindJob(ctx, id)
	if err != nil {
		return err
	}
	return cleanroom.Errorf(cleanroom.ECONFLICT, "job %s has already ended (%s)", id, j.State)
}

// DeleteJobResult forgets the key of an ended job's result and logs and
// marks them deleted. Returns ENOTFOUND, or ECONFLICT if the job has not
// ended or its result is already deleted.
func (db *DB) DeleteJobResult(ctx context.Context, id string, now time.Time, audit *cleanroom.AuditEntry) error {
	defer db.scrubLog(ctx)
	return db.inTx(ctx, func(tx *sql.Tx) error {
		j, err := resultState(ctx, tx, id)
		switch {
		case err != nil:
			return err
		case j.ResultDeletedAt != nil:
			return cleanroom.Errorf(cleanroom.ECONFLICT, "the result of job %s was already deleted on %s", id, j.ResultDeletedAt.UTC().Format(time.RFC3339))
		case !j.State.Done():
			return cleanroom.Errorf(cleanroom.ECONFLICT, "job %s is %s: cancel it, or wait for it to end, before deleting its result", id, j.State)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE jobs SET sealed_key = NULL, result_size = 0, has_logs = 0, error_log = '', warnings = NULL, result_deleted_at = ?
			WHERE id = ?`, encodeTime(db.orNow(now)), id); err != nil {
			return err
		}
		return db.appendAudit(ctx, tx, j.DCRID, audit)
	})
}

// AuditJobRead appends audit, a read of job id's result or logs, unless
// they were deleted (ENOTFOUND).
func (db *DB) AuditJobRead(ctx context.Context, id string, audit *cleanroom.AuditEntry) error {
	return db.inTx(ctx, func(tx *sql.Tx) error {
		j, err := resultState(ctx, tx, id)
		if err != nil {
			return err
		}
		if j.ResultDeletedAt != nil {
			return cleanroom.Errorf(cleanroom.ENOTFOUND, "the result and logs of job %s were deleted by its analyst", id)
		}
		return db.appendAudit(ctx, tx, j.DCRID, audit)
	})
}

// resultState reads, within tx, what decides whether job id's result may
// be read or deleted: its clean room, state and deletion time.
func resultState(ctx context.Context, tx *sql.Tx, id string) (*cleanroom.Job, error) {
	j := cleanroom.Job{ID: id}
	err := tx.QueryRowContext(ctx, `SELECT dcr_id, state, result_deleted_at FROM jobs WHERE id = ?`, id).
		Scan(&j.DCRID, &j.State, timePtrColumn{&j.ResultDeletedAt})
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errNoJob()
	}
	return &j, err
}

// CancelQueuedJob ends a job that has not started. Returns ECONFLICT if it
// has started or ended, ENOTFOUND if there is no such job.
func (db *DB) CancelQueuedJob(ctx context.Context, id, reason string, now time.Time) error {
	now = db.orNow(now)
	ended, err := db.endJob(ctx, id, cleanroom.JobCancelled, now, `UPDATE jobs SET state = 'cancelled', error = ?, finished_at = ?
		WHERE id = ? AND state = 'queued'`, reason, encodeTime(now), id)
	if err != nil || ended {
		return err
	}
	j, err := db.FindJob(ctx, id)
	if err != nil {
		return err
	}
	return cleanroom.Errorf(cleanroom.ECONFLICT, "job %s is %s, no longer queued", id, j.State)
}

// endJob runs update, which ends job id in state if it may, and in the
// same transaction, if it did, the enclave's audit entry that it ended.
func (db *DB) endJob(ctx context.Context, id string, state cleanroom.JobState, now time.Time, update string, args ...any) (ended bool, err error) {
	err = db.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, update, args...)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return err
		}
		ended = true
		return db.jobEnded(ctx, tx, id, state, now)
	})
	return ended && err == nil, err
}

// FailRunningJobs marks every running job failed with reason, each with
// its audit entry. Returns how many it marked.
func (db *DB) FailRunningJobs(ctx context.Context, reason string, now time.Time) (int, error) {
	now = db.orNow(now)
	var ids []string
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `UPDATE jobs SET state = 'failed', error = ?, finished_at = ?
			WHERE state = 'running' RETURNING id`, reason, encodeTime(now))
		if err != nil {
			return err
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			ids = append(ids, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, id := range ids {
			if err := db.jobEnded(ctx, tx, id, cleanroom.JobFailed, now); err != nil {
				return err
			}
		}
		_, err = tx.ExecContext(ctx, `UPDATE draft_tests SET state = 'done', error = ?, finished_at = ?
			WHERE state = 'running'`, reason, encodeTime(now))
		return err
	})
	if err != nil {
		return 0, err
	}
	return len(ids), nil
}

// encodeWarnings returns warnings as stored: a JSON array, or NULL if empty.
func encodeWarnings(warnings []string) (any, error) {
	if len(warnings) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(warnings)
	return string(b), err
}

func errNoJob() error { return cleanroom.Errorf(cleanroom.ENOTFOUND, "job not found") }
