// Package duckdb runs the query of a SQL computation with DuckDB, inside the
// sandbox, over the tables and SQL results the computation depends on.
// Each input is loaded first; then every file, extension and network
// feature of DuckDB is switched off and the configuration locked, so the
// query itself can only read the inputs it was given.
package duckdb

import (
	"context"
	"database/sql"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/cleanroom-dev/cleanroom"
	_ "github.com/duckdb/duckdb-go/v2" // registers the "duckdb" driver
)

// Input is a table or SQL result: a directory holding dataset.csv (no
// header) and schema.json.
type Input struct {
	Name string // the node's name: the view the query reads
	Dir  string
}

// Options configure one query run.
type Options struct {
	// MinimumRowsCount, if set, is a privacy floor: a result with fewer
	// rows fails the run and nothing is written.
	MinimumRowsCount *int64
	// TempDir is where the result is written before it is released and
	// where DuckDB may spill; it must not be the output directory.
	TempDir string
}

// ErrTooFewRows is returned when a result is below its minimum rows count.
var ErrTooFewRows = errors.New("too few rows")

var duckTypes = map[string]string{
	cleanroom.FormatString:        "VARCHAR",
	cleanroom.FormatInteger:       "BIGINT",
	cleanroom.FormatFloat:         "DOUBLE",
	cleanroom.FormatEmail:         "VARCHAR",
	cleanroom.FormatDateISO8601:   "DATE",
	cleanroom.FormatPhoneE164:     "VARCHAR",
	cleanroom.FormatHashSHA256Hex: "VARCHAR",
}

// lockdown runs after the inputs are loaded and before the query.
var lockdown = []string{
	"SET enable_external_access = false", // no files, no ATTACH, no COPY, no extension install
	"SET autoinstall_known_extensions = false",
	"SET autoload_known_extensions = false",
	"SET allow_community_extensions = false",
	"SET lock_configuration = true", // the query cannot switch any of this back on
}

// Run executes query over inputs and writes dataset.csv (no header) and
// schema.json of the result to outDir. It returns the number of rows.
func Run(ctx context.Context, inputs []Input, query string, outDir string, opt Options) (int64, error) {
	db, err := sql.Open("duckdb", "")
	if err != nil {
		return 0, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1) // one connection: settings and views live on it
	conn, err := db.Conn(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Close()

	tmp := opt.TempDir
	if tmp == "" {
		tmp = os.TempDir()
	}
	setup := []string{fmt.Sprintf("SET temp_directory = %s", quoteString(filepath.Join(tmp, "duckdb")))}
	for _, in := range inputs {
		stmts, err := loadStatements(in)
		if err != nil {
			return 0, err
		}
		setup = append(setup, stmts...)
	}
	for _, stmt := range append(setup, lockdown...) {
		if _, err := conn.ExecContext(ctx, stmt); err != nil {
			return 0, fmt.Errorf("preparing the inputs: %w", err)
		}
	}

	rows, err := conn.QueryContext(ctx, query)
	if err != nil {
		return 0, fmt.Errorf("query failed: %w", err)
	}
	defer rows.Close()
	staged := filepath.Join(tmp, "result.csv")
	n, schema, err := writeRows(rows, staged)
	if err != nil {
		return 0, err
	}
	if opt.MinimumRowsCount != nil && n < *opt.MinimumRowsCount {
		os.Remove(staged)
		// The count itself is withheld: below the floor it may identify people.
		return n, fmt.Errorf("%w: the result has fewer rows than its minimum_rows_count of %d; nothing is released", ErrTooFewRows, *opt.MinimumRowsCount)
	}
	if err := moveFile(staged, filepath.Join(outDir, "dataset.csv")); err != nil {
		return 0, err
	}
	b, err := json.MarshalIndent(schema, "", "  ")
	if err != nil {
		return 0, err
	}
	return n, os.WriteFile(filepath.Join(outDir, "schema.json"), append(b, '\n'), 0o644)
}

// loadStatements returns the statements that load an input as a table and
// expose it as a view named after its node.
func loadStatements(in Input) ([]string, error) {
	b, err := os.ReadFile(filepath.Join(in.Dir, "schema.json"))
	if err != nil {
		return nil, fmt.Errorf("input %s: %w", in.Name, err)
	}
	var s cleanroom.Schema
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("input %s: schema.json: %w", in.Name, err)
	}
	if problems := s.Problems(); len(problems) > 0 {
		return nil, fmt.Errorf("input %s: schema.json: %s", in.Name, strings.Join(problems, "; "))
	}
	var cols []string
	for _, c := range s.Columns {
		cols = append(cols, quoteString(c.Name)+": "+quoteString(duckTypes[c.FormatType]))
	}
	table := quoteIdent("cleanroom_input_" + in.Name)
	return []string{
		fmt.Sprintf("CREATE TABLE %s AS SELECT * FROM read_csv(%s, header = false, auto_detect = false, delim = ',', quote = '\"', escape = '\"', columns = {%s})",
			table, quoteString(filepath.Join(in.Dir, "dataset.csv")), strings.Join(cols, ", ")),
		fmt.Sprintf("CREATE VIEW %s AS SELECT * FROM %s", quoteIdent(in.Name), table),
	}, nil
}

// writeRows writes rows as header-less CSV to path and returns the row
// count and the schema of the result.
func writeRows(rows *sql.Rows, path string) (int64, cleanroom.Schema, error) {
	types, err := rows.ColumnTypes()
	if err != nil {
		return 0, cleanroom.Schema{}, err
	}
	var schema cleanroom.Schema
	for _, t := range types {
		schema.Columns = append(schema.Columns, cleanroom.Column{Name: t.Name(), FormatType: formatType(t.DatabaseTypeName()), IsNullable: true})
	}
	f, err := os.Create(path)
	if err != nil {
		return 0, schema, err
	}
	defer f.Close()
	w := csv.NewWriter(f)
	vals := make([]any, len(types))
	ptrs := make([]any, len(types))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	rec := make([]string, len(types))
	var n int64
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return n, schema, err
		}
		for i, v := range vals {
			rec[i] = formatValue(v, schema.Columns[i].FormatType == cleanroom.FormatDateISO8601)
		}
		if err := w.Write(rec); err != nil {
			return n, schema, err
		}
		n++
	}
	if err := rows.Err(); err != nil {
		return n, schema, fmt.Errorf("query failed: %w", err)
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return n, schema, err
	}
	return n, schema, f.Close()
}

// formatType maps a DuckDB result type to the closest column format type.
func formatType(duck string) string {
	switch {
	case strings.Contains(duck, "INT"):
		return cleanroom.FormatInteger
	case duck == "DOUBLE" || duck == "FLOAT" || duck == "REAL" || strings.HasPrefix(duck, "DECIMAL"):
		return cleanroom.FormatFloat
	case duck == "DATE":
		return cleanroom.FormatDateISO8601
	}
	return cleanroom.FormatString
}

func formatValue(v any, dateOnly bool) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case []byte:
		return string(x)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case float32:
		return strconv.FormatFloat(float64(x), 'g', -1, 32)
	case time.Time:
		if dateOnly {
			return x.Format(time.DateOnly)
		}
		return x.Format(time.RFC3339Nano)
	case *big.Int:
		return x.String()
	case fmt.Stringer:
		return x.String()
	}
	return fmt.Sprint(v)
}

func quoteIdent(s string) string  { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
func quoteString(s string) string { return `'` + strings.ReplaceAll(s, `'`, `''`) + `'` }

// moveFile renames, or copies where the two paths are on different file systems.
func moveFile(from, to string) error {
	if err := os.Rename(from, to); err == nil {
		return nil
	}
	src, err := os.Open(from)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return err
	}
	if err := dst.Close(); err != nil {
		return err
	}
	return os.Remove(from)
}
