package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/cleanroom-dev/cleanroom"
)

// CreateSession stores a new session. Returns ECONFLICT if its user
// already has max sessions that have not expired at now (RevokeTokens
// deletes those of revoked tokens).
func (db *DB) CreateSession(ctx context.Context, s *cleanroom.Session, now time.Time, max int) error {
	return db.inTx(ctx, func(tx *sql.Tx) error {
		var live int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM sessions WHERE email = ? AND expires_at > ?`, s.Email, encodeTime(now)).Scan(&live); err != nil {
			return err
		}
		if live >= max {
			return cleanroom.Errorf(cleanroom.ECONFLICT, "you have %d browser sessions open, the most one user may have; sign out of one, or wait until one expires", live)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO sessions (id_hash, email, token_hash, expires_at) VALUES (?, ?, ?, ?)`,
			s.IDHash, s.Email, s.TokenHash, encodeTime(s.Expires))
		if isForeignKey(err) {
			return errNoUser(s.Email)
		}
		return err
	})
}

// FindSession returns a session by the hash of its id, expired or not,
// while the token it was made from is live. Returns ENOTFOUND.
func (db *DB) FindSession(ctx context.Context, idHash []byte) (*cleanroom.Session, error) {
	s := cleanroom.Session{IDHash: idHash}
	err := db.db.QueryRowContext(ctx, `SELECT s.email, s.token_hash, s.expires_at FROM sessions s
		JOIN tokens t ON t.hash = s.token_hash AND t.revoked_at IS NULL WHERE s.id_hash = ?`, idHash).
		Scan(&s.Email, &s.TokenHash, timeColumn{&s.Expires})
	if errors.Is(err, sql.ErrNoRows) {
		return nil, cleanroom.Errorf(cleanroom.ENOTFOUND, "no such session")
	} else if err != nil {
		return nil, err
	}
	return &s, nil
}

// DeleteSession forgets a session. Returns ENOTFOUND.
func (db *DB) DeleteSession(ctx context.Context, idHash []byte) error {
	res, err := db.db.ExecContext(ctx, `DELETE FROM sessions WHERE id_hash = ?`, idHash)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return cleanroom.Errorf(cleanroom.ENOTFOUND, "no such session")
	}
	return nil
}

// DeleteExpiredSessions forgets the sessions that expired before t and
// returns how many.
func (db *DB) DeleteExpiredSessions(ctx context.Context, before time.Time) (int, error) {
	res, err := db.db.ExecContext(ctx, `DELETE FROM sessions WHERE expires_at < ?`, encodeTime(before))
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	return int(n), err
}
