package sqlite

import (
	"errors"
	"fmt"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// timeLayout has a fixed width, so stored times sort as text.
const timeLayout = "2006-01-02T15:04:05.000000000Z"

// encodeTime returns t as stored: UTC text, or NULL for the zero time.
func encodeTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format(timeLayout)
}

// timeColumn scans a stored time into T; NULL gives the zero time.
type timeColumn struct{ T *time.Time }

func (c timeColumn) Scan(src any) error {
	var s string
	switch v := src.(type) {
	case nil:
		*c.T = time.Time{}
		return nil
	case string:
		s = v
	case []byte:
		s = string(v)
	default:
		return fmt.Errorf("sqlite: cannot scan %T as a time", src)
	}
	t, err := time.Parse(timeLayout, s)
	*c.T = t.UTC()
	return err
}

// encodeTimePtr is encodeTime for optional times.
func encodeTimePtr(t *time.Time) any {
	if t == nil {
		return nil
	}
	return encodeTime(*t)
}

// timePtrColumn scans an optional stored time into T; NULL gives nil.
type timePtrColumn struct{ T **time.Time }

func (c timePtrColumn) Scan(src any) error {
	if src == nil {
		*c.T = nil
		return nil
	}
	*c.T = new(time.Time)
	return timeColumn{*c.T}.Scan(src)
}

// scanner is a *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

// isConstraint reports whether err is a violation of the given kind of
// constraint (an extended SQLITE_CONSTRAINT_* code).
func isConstraint(err error, codes ...int) bool {
	var e *sqlite.Error
	if !errors.As(err, &e) {
		return false
	}
	for _, c := range codes {
		if e.Code() == c {
			return true
		}
	}
	return false
}

func isUnique(err error) bool {
	return isConstraint(err, sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY)
}

func isForeignKey(err error) bool {
	return isConstraint(err, sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY)
}
