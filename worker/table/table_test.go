package table

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/cleanroom-dev/cleanroom"
)

var people = cleanroom.Schema{
	Columns: []cleanroom.Column{
		{Name: "id", FormatType: cleanroom.FormatInteger},
		{Name: "email", FormatType: cleanroom.FormatEmail, HashWith: cleanroom.HashSHA256Hex},
		{Name: "score", FormatType: cleanroom.FormatFloat, IsNullable: true},
		{Name: "born", FormatType: cleanroom.FormatDateISO8601},
	},
	UniqueColumnCombinations: [][]string{{"id"}},
}

func validate(t *testing.T, csv string, s cleanroom.Schema) (*Report, string) {
	t.Helper()
	var out bytes.Buffer
	rep, err := Validate(strings.NewReader(csv), &out, s)
	if err != nil {
		t.Fatal(err)
	}
	return rep, out.String()
}

func TestValidTableIsHashedAndCounted(t *testing.T) {
	rep, out := validate(t, "1,a@example.com,0.5,1990-01-31\n2,b@example.com,,2001-12-01\n", people)
	if !rep.Valid || rep.Rows != 2 || rep.Columns != 4 || rep.ErrorCount != 0 {
		t.Fatalf("report %+v", rep)
	}
	sum := sha256.Sum256([]byte("a@example.com"))
	if want := "1," + hex.EncodeToString(sum[:]) + ",0.5,1990-01-31\n"; !strings.HasPrefix(out, want) {
		t.Fatalf("output %q, want prefix %q", out, want)
	}
	if strings.Contains(out, "a@example.com") {
		t.Fatal("a hashed column's plaintext reached the output")
	}
}

// Each kind of mistake is reported with its line and column.
func TestReportNamesLineAndColumn(t *testing.T) {
	tests := []struct {
		name, csv string
		want      Issue
	}{
		{"wrong type", "1,a@example.com,0.5,1990-01-31\nx,b@example.com,1,1990-01-31\n", Issue{Line: 2, Column: "id", Value: "x", Message: "not an integer"}},
		{"missing non-nullable", "1,,0.5,1990-01-31\n", Issue{Line: 1, Column: "email", Message: "missing value in a column that is not nullable"}},
		{"wrong column count", "1,a@example.com,0.5,1990-01-31\n2,b@example.com\n", Issue{Line: 2, Message: "has 2 values, the table has 4 columns"}},
		{"bad date", "1,a@example.com,0.5,31/01/1990\n", Issue{Line: 1, Column: "born", Value: "31/01/1990", Message: "not an ISO 8601 date (YYYY-MM-DD)"}},
		{"bad email", "1,nobody,0.5,1990-01-31\n", Issue{Line: 1, Column: "email", Value: "nobody", Message: "not an email address"}},
		{"infinite float", "1,a@example.com,inf,1990-01-31\n", Issue{Line: 1, Column: "score", Value: "inf", Message: "not a finite number"}},
		{"duplicate key", "1,a@example.com,,1990-01-31\n1,b@example.com,,1990-01-31\n", Issue{Line: 2, Column: "id", Message: "duplicates line 1 in a unique column combination"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep, _ := validate(t, tt.csv, people)
			if rep.Valid || rep.ErrorCount != 1 || rep.Errors[0] != tt.want {
				t.Fatalf("report %+v, want the one issue %+v", rep, tt.want)
			}
		})
	}
}

func TestOtherFormatTypes(t *testing.T) {
	s := cleanroom.Schema{Columns: []cleanroom.Column{
		{Name: "phone", FormatType: cleanroom.FormatPhoneE164},
		{Name: "digest", FormatType: cleanroom.FormatHashSHA256Hex},
		{Name: "any", FormatType: cleanroom.FormatString},
	}}
	good := "+41791234567," + strings.Repeat("ab", 32) + ",\"quoted, with comma\"\n"
	if rep, out := validate(t, good, cleanroom.Schema{Columns: []cleanroom.Column{s.Columns[0], s.Columns[1], s.Columns[2]}}); !rep.Valid || out != good {
		t.Fatalf("good row: %+v, out %q", rep, out)
	}
	rep, _ := validate(t, "0791234567,abc,x\n", s)
	if rep.ErrorCount != 2 || rep.Errors[0].Column != "phone" || rep.Errors[1].Column != "digest" {
		t.Fatalf("report %+v", rep)
	}
}

func TestHeaderRowHint(t *testing.T) {
	rep, _ := validate(t, "id,email,score,born\n1,a@example.com,0.5,1990-01-31\n", people)
	if rep.Valid || !strings.Contains(rep.Hint, "looks like a header") {
		t.Fatalf("report %+v", rep)
	}
	rep, _ = validate(t, "x,a@example.com,0.5,1990-01-31\n", people)
	if rep.Hint != "" {
		t.Fatalf("hint for an ordinary bad value: %q", rep.Hint)
	}
}

func TestManyErrorsAreCountedButCapped(t *testing.T) {
	csv := strings.Repeat("x,a@example.com,,1990-01-31\n", MaxIssues+50)
	rep, _ := validate(t, csv, cleanroom.Schema{Columns: people.Columns})
	if rep.ErrorCount != MaxIssues+50 || len(rep.Errors) != MaxIssues {
		t.Fatalf("count %d, listed %d", rep.ErrorCount, len(rep.Errors))
	}
}

func TestMalformedCSV(t *testing.T) {
	rep, _ := validate(t, "1,\"a@example.com,0.5,1990-01-31\n", people)
	if rep.Valid || !strings.Contains(rep.Errors[0].Message, "malformed CSV") {
		t.Fatalf("report %+v", rep)
	}
}

func TestEmptyTableIsValid(t *testing.T) {
	if rep, _ := validate(t, "", people); !rep.Valid || rep.Rows != 0 {
		t.Fatalf("report %+v", rep)
	}
}

// A schema that cannot be evaluated is refused, never treated as "no rules".
func TestInvalidSchemaRefused(t *testing.T) {
	bad := cleanroom.Schema{Columns: people.Columns, UniqueColumnCombinations: [][]string{{"ghost"}}}
	if _, err := Validate(strings.NewReader("1\n"), io.Discard, bad); err == nil {
		t.Fatal("a unique combination naming an unknown column was accepted")
	}
	if _, err := Validate(strings.NewReader("1\n"), io.Discard, cleanroom.Schema{}); err == nil {
		t.Fatal("a schema without columns was accepted")
	}
}

// BenchmarkValidate reports validation throughput in MB/s on a typical table.
func BenchmarkValidate(b *testing.B) {
	var buf bytes.Buffer
	for i := range 200_000 {
		fmt.Fprintf(&buf, "%d,user%d@example.com,%d.25,1990-01-%02d\n", i, i, i%1000, i%28+1)
	}
	data := buf.Bytes()
	b.SetBytes(int64(len(data)))
	for range b.N {
		rep, err := Validate(bytes.NewReader(data), io.Discard, people)
		if err != nil || !rep.Valid {
			b.Fatalf("%v %+v", err, rep)
		}
	}
}
