package duckdb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cleanroom-dev/cleanroom"
)

func writeInput(t testing.TB, dir, name, csv string, cols ...cleanroom.Column) Input {
	t.Helper()
	d := filepath.Join(dir, name)
	os.MkdirAll(d, 0o755)
	os.WriteFile(filepath.Join(d, "dataset.csv"), []byte(csv), 0o644)
	b, _ := json.Marshal(cleanroom.Schema{Columns: cols})
	os.WriteFile(filepath.Join(d, "schema.json"), b, 0o644)
	return Input{Name: name, Dir: d}
}

func run(t *testing.T, inputs []Input, query string, opt Options) (string, cleanroom.Schema, error) {
	t.Helper()
	out := t.TempDir()
	opt.TempDir = t.TempDir()
	_, err := Run(context.Background(), inputs, query, out, opt)
	if err != nil {
		return "", cleanroom.Schema{}, err
	}
	csv, _ := os.ReadFile(filepath.Join(out, "dataset.csv"))
	var s cleanroom.Schema
	b, _ := os.ReadFile(filepath.Join(out, "schema.json"))
	json.Unmarshal(b, &s)
	return string(csv), s, nil
}

func salaries(t *testing.T) []Input {
	dir := t.TempDir()
	return []Input{
		writeInput(t, dir, "people", "1,alice,2020-01-02\n2,bob,\n3,carol,2021-03-04\n",
			cleanroom.Column{Name: "id", FormatType: cleanroom.FormatInteger},
			cleanroom.Column{Name: "name", FormatType: cleanroom.FormatString},
			cleanroom.Column{Name: "joined", FormatType: cleanroom.FormatDateISO8601, IsNullable: true}),
		writeInput(t, dir, "pay", "1,100.5\n2,200\n3,300\n1,50\n",
			cleanroom.Column{Name: "id", FormatType: cleanroom.FormatInteger},
			cleanroom.Column{Name: "amount", FormatType: cleanroom.FormatFloat}),
	}
}

func TestJoinAndAggregate(t *testing.T) {
	csv, schema, err := run(t, salaries(t), `SELECT p.name, sum(amount) AS total, count(*) AS n, min(joined) AS joined
		FROM people p JOIN pay USING (id) GROUP BY p.name ORDER BY p.name`, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := "alice,150.5,2,2020-01-02\nbob,200,1,\ncarol,300,1,2021-03-04\n"
	if csv != want {
		t.Fatalf("result:\n%s\nwant:\n%s", csv, want)
	}
	var types []string
	for _, c := range schema.Columns {
		types = append(types, c.Name+":"+c.FormatType)
	}
	if got := strings.Join(types, ","); got != "name:STRING,total:FLOAT,n:INTEGER,joined:DATE_ISO8601" {
		t.Fatalf("schema %s", got)
	}
}

// The query can read its inputs and nothing else: no files, no
// extensions, no databases, and it cannot turn that back on.
func TestQueryCannotEscape(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "secret.csv")
	os.WriteFile(secret, []byte("top,secret\n"), 0o644)
	for _, q := range []string{
		"SELECT * FROM read_csv('/etc/passwd')",
		fmt.Sprintf("SELECT * FROM read_csv('%s')", secret),
		fmt.Sprintf("SELECT * FROM '%s'", secret),
		"INSTALL httpfs",
		"LOAD httpfs",
		"SELECT * FROM read_parquet('https://example.com/x.parquet')",
		fmt.Sprintf("ATTACH '%s' AS other", filepath.Join(t.TempDir(), "x.db")),
		"SET enable_external_access = true",
		"COPY people TO '/tmp/leak.csv'",
		"SELECT * FROM cleanroom_input_people, read_text('/etc/hostname')",
	} {
		if _, _, err := run(t, salaries(t), q, Options{}); err == nil {
			t.Errorf("%s: succeeded, want it refused", q)
		}
	}
}

func TestMinimumRowsCountReleasesNothing(t *testing.T) {
	min := int64(5)
	out := t.TempDir()
	_, err := Run(context.Background(), salaries(t), "SELECT * FROM people", out, Options{MinimumRowsCount: &min, TempDir: t.TempDir()})
	if !errors.Is(err, ErrTooFewRows) || !strings.Contains(err.Error(), "fewer rows than its minimum_rows_count of 5") || strings.Contains(err.Error(), "3") {
		t.Fatalf("err = %v", err)
	}
	if entries, _ := os.ReadDir(out); len(entries) != 0 {
		t.Fatalf("output written despite the floor: %v", entries)
	}
	min = 3
	if _, _, err := run(t, salaries(t), "SELECT * FROM people", Options{MinimumRowsCount: &min}); err != nil {
		t.Fatalf("exactly the floor: %v", err)
	}
}

func TestSQLResultFeedsSQL(t *testing.T) {
	inputs := salaries(t)
	out := t.TempDir()
	if _, err := Run(context.Background(), inputs, "SELECT id, sum(amount) AS total FROM pay GROUP BY id", out, Options{TempDir: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	csv, _, err := run(t, []Input{{Name: "totals", Dir: out}}, "SELECT max(total) FROM totals", Options{})
	if err != nil || csv != "300\n" {
		t.Fatalf("%q %v", csv, err)
	}
}

func TestQueryErrorIsReported(t *testing.T) {
	_, _, err := run(t, salaries(t), "SELEC nonsense", Options{})
	if err == nil || !strings.Contains(err.Error(), "query failed") || !strings.Contains(err.Error(), "syntax error") {
		t.Fatalf("err = %v", err)
	}
}
