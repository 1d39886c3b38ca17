package sqlite

import (
	"context"
	"database/sql"
	"errors"

	"github.com/cleanroom-dev/cleanroom"
)

// CreateUser adds a user. Returns ECONFLICT if the email is taken, in any case.
func (db *DB) CreateUser(ctx context.Context, email string) error {
	_, err := db.db.ExecContext(ctx, `INSERT INTO users (email, created_at) VALUES (?, ?)`, email, encodeTime(db.now()))
	if isUnique(err) {
		return cleanroom.Errorf(cleanroom.ECONFLICT, "user %s already exists", email)
	}
	return err
}

// AddToken stores the hash of a new token of an existing user. Returns ENOTFOUND if there is no such user.
func (db *DB) AddToken(ctx context.Context, email string, tokenHash []byte) error {
	_, err := db.db.ExecContext(ctx, `INSERT INTO tokens (hash, email, created_at) VALUES (?, ?, ?)`, tokenHash, email, encodeTime(db.now()))
	switch {
	case isForeignKey(err):
		return errNoUser(email)
	case isUnique(err):
		return cleanroom.Errorf(cleanroom.ECONFLICT, "this API token is already stored")
	}
	return err
}

// userColumns selects a user from users u, with the count of its live tokens.
const userColumns = `u.email, u.created_at,
	(SELECT count(*) FROM tokens t WHERE t.email = u.email AND t.revoked_at IS NULL)`

func scanUser(row scanner) (*cleanroom.User, error) {
	var u cleanroom.User
	err := row.Scan(&u.Email, timeColumn{&u.CreatedAt}, &u.ActiveTokens)
	return &u, err
}

// UserByToken returns the user a live token belongs to. Returns EUNAUTHORIZED for unknown or revoked tokens.
func (db *DB) UserByToken(ctx context.Context, tokenHash []byte) (*cleanroom.User, error) {
	u, err := scanUser(db.db.QueryRowContext(ctx, `SELECT `+userColumns+`
		FROM tokens tok JOIN users u ON u.email = tok.email
		WHERE tok.hash = ? AND tok.revoked_at IS NULL`, tokenHash))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, cleanroom.Errorf(cleanroom.EUNAUTHORIZED, "invalid or revoked API token; hint: create a new one with `cleanroom users add EMAIL`")
	} else if err != nil {
		return nil, err
	}
	return u, nil
}

// RevokeTokens revokes every token of a user, and ends its sessions, and
// returns how many tokens were live. Returns ENOTFOUND if there is no such user.
func (db *DB) RevokeTokens(ctx context.Context, email string) (int, error) {
	var revoked int64
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM users WHERE email = ?`, email).Scan(&n); err != nil {
			return err
		} else if n == 0 {
			return errNoUser(email)
		}
		res, err := tx.ExecContext(ctx, `UPDATE tokens SET revoked_at = ? WHERE email = ? AND revoked_at IS NULL`, encodeTime(db.now()), email)
		if err != nil {
			return err
		}
		if revoked, err = res.RowsAffected(); err != nil {
			return err
		}
		// The browser sessions made from those tokens end with them.
		_, err = tx.ExecContext(ctx, `DELETE FROM sessions WHERE email = ?`, email)
		return err
	})
	return int(revoked), err
}

// ListUsers returns all users, by email.
func (db *DB) ListUsers(ctx context.Context) ([]*cleanroom.User, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT `+userColumns+` FROM users u ORDER BY u.email`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	users := []*cleanroom.User{}
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, err
		}
		users = append(users, u)
	}
	return users, rows.Err()
}

func errNoUser(email string) error {
	return cleanroom.Errorf(cleanroom.ENOTFOUND, "user %s does not exist; hint: add it with `cleanroom users add %s`", email, email)
}
