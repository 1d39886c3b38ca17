package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/cleanroom-dev/cleanroom"
)

// CreateBlob records an uploaded blob; uploading the same bytes again is not
// an error: the first uploader is kept, and the later upload time. A zero
// UploadedAt is set to the current time.
func (db *DB) CreateBlob(ctx context.Context, b *cleanroom.Blob) error {
	b.UploadedAt = db.orNow(b.UploadedAt)
	_, err := db.db.ExecContext(ctx, `INSERT INTO blobs (hash, size, uploaded_by, uploaded_at)
		VALUES (?, ?, ?, ?) ON CONFLICT (hash) DO UPDATE SET uploaded_at = max(uploaded_at, excluded.uploaded_at)`,
		b.Hash, b.Size, b.UploadedBy, encodeTime(b.UploadedAt))
	return err
}

// FindBlob returns a blob by hash. Returns ENOTFOUND.
func (db *DB) FindBlob(ctx context.Context, hash string) (*cleanroom.Blob, error) {
	var b cleanroom.Blob
	err := db.db.QueryRowContext(ctx, `SELECT hash, size, uploaded_by, uploaded_at FROM blobs WHERE hash = ?`, hash).
		Scan(&b.Hash, &b.Size, &b.UploadedBy, timeColumn{&b.UploadedAt})
	if errors.Is(err, sql.ErrNoRows) {
		return nil, cleanroom.Errorf(cleanroom.ENOTFOUND, "no upload has hash %s", hash)
	} else if err != nil {
		return nil, err
	}
	return &b, nil
}

// UnusedBlobs returns up to limit blobs that no dataset uses and that were
// uploaded before t, oldest first.
func (db *DB) UnusedBlobs(ctx context.Context, before time.Time, limit int) ([]cleanroom.Blob, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT hash, size, uploaded_by, uploaded_at FROM blobs
		WHERE uploaded_at < ? AND NOT EXISTS (SELECT 1 FROM datasets WHERE manifest_hash = blobs.hash)
		ORDER BY uploaded_at LIMIT ?`, encodeTime(before), limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var blobs []cleanroom.Blob
	for rows.Next() {
		var b cleanroom.Blob
		if err := rows.Scan(&b.Hash, &b.Size, &b.UploadedBy, timeColumn{&b.UploadedAt}); err != nil {
			return nil, err
		}
		blobs = append(blobs, b)
	}
	return blobs, rows.Err()
}

// DeleteUnusedBlob forgets a blob uploaded before t if no dataset uses
// it: the checks and the delete are one statement, so a dataset published
// in between, or the same bytes uploaded again, keep it.
func (db *DB) DeleteUnusedBlob(ctx context.Context, hash string, before time.Time) error {
	res, err := db.db.ExecContext(ctx, `DELETE FROM blobs WHERE hash = ? AND uploaded_at < ?
		AND NOT EXISTS (SELECT 1 FROM datasets WHERE manifest_hash = blobs.hash)`, hash, encodeTime(before))
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 1 {
		return nil
	}
	if _, err := db.FindBlob(ctx, hash); err != nil {
		return err
	}
	return cleanroom.Errorf(cleanroom.ECONFLICT, "blob %s is in use by a dataset or was uploaded again", hash)
}

// PutDataset publishes a dataset to a data node, replacing any earlier one.
// A zero PublishedAt is set to the current time. Returns ENOTFOUND if the
// clean room or the blob does not exist.
func (db *DB) PutDataset(ctx context.Context, ds *cleanroom.Dataset, audit *cleanroom.AuditEntry) error {
	defer db.scrubLog(ctx) // the key of a dataset it replaces
	ds.PublishedAt = db.orNow(ds.PublishedAt)
	err := db.write(ctx, ds.DCRID, audit, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO datasets (dcr_id, node, manifest_hash, size, sealed_key, published_by, published_at, validation_job)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (dcr_id, node) DO UPDATE SET
			manifest_hash = excluded.manifest_hash,
			size = excluded.size,
			sealed_key = excluded.sealed_key,
			published_by = excluded.published_by,
			published_at = excluded.published_at,
			validation_job = excluded.validation_job`,
			ds.DCRID, ds.Node, ds.ManifestHash, ds.Size, ds.SealedKey, ds.PublishedBy, encodeTime(ds.PublishedAt), ds.ValidationJob)
		return err
	})
	if isForeignKey(err) {
		if _, err := db.FindDCR(ctx, ds.DCRID); err != nil {
			return err
		}
		if _, err := db.FindBlob(ctx, ds.ManifestHash); err != nil {
			return err
		}
	}
	return err
}

// FindDataset returns the dataset of a data node. Returns ENOTFOUND if none is published.
func (db *DB) FindDataset(ctx context.Context, dcrID, node string) (*cleanroom.Dataset, error) {
	var ds cleanroom.Dataset
	err := db.db.QueryRowContext(ctx, `SELECT dcr_id, node, manifest_hash, size, sealed_key, published_by, published_at, validation_job
		FROM datasets WHERE dcr_id = ? AND node = ?`, dcrID, node).
		Scan(&ds.DCRID, &ds.Node, &ds.ManifestHash, &ds.Size, &ds.SealedKey, &ds.PublishedBy, timeColumn{&ds.PublishedAt}, &ds.ValidationJob)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errNoDataset(node)
	} else if err != nil {
		return nil, err
	}
	return &ds, nil
}

// DeleteDataset removes the dataset of a data node. Returns ENOTFOUND if none is published.
func (db *DB) DeleteDataset(ctx context.Context, dcrID, node string, audit *cleanroom.AuditEntry) error {
	defer db.scrubLog(ctx)
	return db.write(ctx, dcrID, audit, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM datasets WHERE dcr_id = ? AND node = ?`, dcrID, node)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return errNoDataset(node)
		}
		return nil
	})
}

func errNoDataset(node string) error {
	return cleanroom.Errorf(cleanroom.ENOTFOUND, "no dataset is published to node %q", node)
}
