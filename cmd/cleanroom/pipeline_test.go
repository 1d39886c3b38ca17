package main

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cleanroom-dev/cleanroom"
	"github.com/cleanroom-dev/cleanroom/client"
	cleanhttp "github.com/cleanroom-dev/cleanroom/http"
)

func intp(n int64) *int64 { return &n }

var (
	patientColumns = []cleanroom.Column{
		{Name: "id", FormatType: cleanroom.FormatInteger},
		{Name: "email", FormatType: cleanroom.FormatEmail, HashWith: cleanroom.HashSHA256Hex},
		{Name: "age", FormatType: cleanroom.FormatInteger},
		{Name: "smoker", FormatType: cleanroom.FormatString, IsNullable: true},
	}
	claimColumns = []cleanroom.Column{
		{Name: "patient_id", FormatType: cleanroom.FormatInteger},
		{Name: "amount", FormatType: cleanroom.FormatFloat},
	}
)

// pipeline is table -> SQL -> Python -> Python, with a second Python node
// written for the commercial product's helper module.
func pipeline() *cleanroom.Definition {
	return &cleanroom.Definition{
		Name: "claims by age", Owner: "analyst@example.com",
		Nodes: []cleanroom.Node{
			{Name: "patients", Kind: cleanroom.NodeTable, IsRequired: true, Columns: patientColumns, UniqueColumnCombinations: [][]string{{"id"}}},
			{Name: "claims", Kind: cleanroom.NodeTable, IsRequired: true, Columns: claimColumns},
			{Name: "joined", Kind: cleanroom.NodeSQL, Dependencies: []string{"patients", "claims"}, MinimumRowsCount: intp(3), Script: `
				SELECT p.id, p.age, sum(c.amount) AS total
				FROM patients p JOIN claims c ON c.patient_id = p.id
				GROUP BY p.id, p.age ORDER BY p.id`},
			{Name: "model", Kind: cleanroom.NodePython, Dependencies: []string{"joined", "patients"}, EnableLogsOnError: true, Script: `
import json
import cleanroom_util
from sklearn.linear_model import LinearRegression
df = cleanroom_util.sql.read_sql_data_from_dir("/input/joined")
assert str(df["age"].dtype) == "Int64" and str(df["total"].dtype) == "float64", df.dtypes
people = cleanroom_util.read_tabular_data("/input/patients")
# Hashed before any computation sees it: 64 hex digits, never an address.
assert all(len(e) == 64 and "@" not in e for e in people["email"]), people["email"].tolist()
fit = LinearRegression().fit(df[["age"]].astype(float), df["total"])
json.dump({"slope": fit.coef_[0], "intercept": fit.intercept_, "n": len(df)}, open("/output/coef.json", "w"))
`},
			{Name: "model_dq", Kind: cleanroom.NodePython, Dependencies: []string{"joined"}, EnableLogsOnError: true, Script: `
import decentriq_util
df = decentriq_util.sql.read_sql_data_from_dir("/input/joined")
decentriq_util.sql.write_sql_data_to_dir(df[df["age"] > 40], "/output")
`},
			{Name: "report", Kind: cleanroom.NodePython, Dependencies: []string{"model"}, EnableLogsOnError: true, Script: `
import json
c = json.load(open("/input/model/coef.json"))
open("/output/report.txt", "w").write("slope=%.2f intercept=%.2f n=%d" % (c["slope"], c["intercept"], c["n"]))
`},
		},
		Participants: []cleanroom.Participant{
			{Email: "hospital@example.com", DataOwnerOf: []string{"patients"}},
			{Email: "insurer@example.com", DataOwnerOf: []string{"claims"}},
			{Email: "analyst@example.com", AnalystOf: []string{"joined", "model", "model_dq", "report"}},
		},
	}
}

// Two data owners upload tables, SQL joins and aggregates them, Python
// fits a model on the result and another post-processes it: the analyst
// gets the expected numbers.
func TestPipeline(t *testing.T) {
	s := startServer(t, "")
	analyst := s.addUser("analyst@example.com")
	hospital := s.addUser("hospital@example.com")
	insurer := s.addUser("insurer@example.com")
	id := publish(t, analyst, pipeline())

	var patients, claims strings.Builder
	for i := 1; i <= 6; i++ {
		age := 20 + 10*i
		fmt.Fprintf(&patients, "%d,person%d@example.com,%d,%s\n", i, i, age, map[bool]string{true: "yes", false: ""}[i%2 == 0])
		// Two claims per patient adding up to 10*age + 5.
		fmt.Fprintf(&claims, "%d,%d\n%d,%d.5\n", i, 5*age, i, 5*age+4)
		fmt.Fprintf(&claims, "%d,0.5\n", i)
	}
	uploadString(t, hospital, id, "patients", patients.String())
	uploadString(t, insurer, id, "claims", claims.String())
	ctx := context.Background()
	for _, c := range []struct {
		user *client.Client
		node string
		rows int64
	}{{hospital, "patients", 6}, {insurer, "claims", 18}} {
		rep, err := c.user.ValidationReport(ctx, id, c.node)
		if err != nil || !rep.Valid || rep.Rows != c.rows {
			t.Fatalf("validation of %s: %+v %v", c.node, rep, err)
		}
	}

	if got := resultFiles(t, analyst, runJob(t, analyst, id, "report"))["report.txt"]; got != "slope=10.00 intercept=5.00 n=6" {
		t.Fatalf("report.txt = %q", got)
	}
	joined := resultFiles(t, analyst, runJob(t, analyst, id, "joined"))
	if joined["dataset.csv"] != "1,30,305\n2,40,405\n3,50,505\n4,60,605\n5,70,705\n6,80,805\n" || !strings.Contains(joined["schema.json"], `"format_type": "FLOAT"`) {
		t.Fatalf("joined = %v", joined)
	}
	dq := resultFiles(t, analyst, runJob(t, analyst, id, "model_dq"))
	if dq["dataset.csv"] != "3,50,505.0\n4,60,605.0\n5,70,705.0\n6,80,805.0\n" || !strings.Contains(dq["schema.json"], `"INTEGER"`) {
		t.Fatalf("model_dq = %v", dq)
	}
	noPlaintextUnder(t, s.DataDir, "person1@example.com")
}

// A table with a wrong type, a missing non-nullable value or a wrong
// column count gets a report naming line and column; no computation can
// use it, and the run says why.
func TestTableValidationReport(t *testing.T) {
	s := startServer(t, "")
	analyst := s.addUser("analyst@example.com")
	hospital := s.addUser("hospital@example.com")
	insurer := s.addUser("insurer@example.com")
	id := publish(t, analyst, pipeline())
	ctx := context.Background()

	patients := uploadString(t, hospital, id, "patients", "1,a@example.com,30,yes\nx,b@example.com,40,\n3,,50,no\n4,d@example.com\n")
	rep, err := hospital.ValidationReport(ctx, id, "patients")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`2 id "x" not an integer`,
		`3 email "" missing value in a column that is not nullable`,
		`4  "" has 2 values, the table has 4 columns`,
	}
	var got []string
	for _, e := range rep.Errors {
		got = append(got, fmt.Sprintf("%d %s %q %s", e.Line, e.Column, e.Value, e.Message))
	}
	if rep.Valid || rep.ErrorCount != 3 || strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("report: valid %v, %d errors:\n%s\nwant:\n%s", rep.Valid, rep.ErrorCount, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// The report quotes the data: its data owners only.
	_, err = insurer.ValidationReport(ctx, id, "patients")
	wantCode(t, "another data owner reads the report", err, cleanroom.EFORBIDDEN)
	_, err = analyst.ValidationReport(ctx, id, "patients")
	wantCode(t, "the analyst reads the report", err, cleanroom.EFORBIDDEN)
	// Every participant sees the read in the audit log; the refused ones are not there.
	if reads := audited(t, insurer, id, cleanroom.AuditReportRead); !slices.Equal(reads, []string{"hospital@example.com patients " + patients.ValidationJob}) {
		t.Errorf("report reads in the audit log: %q, want the hospital's one", reads)
	}

	uploadString(t, insurer, id, "claims", "1,10\n")
	_, err = analyst.Run(ctx, id, "joined")
	wantCode(t, "run on an invalid table", err, cleanroom.ECONFLICT)
	if err == nil || !strings.Contains(err.Error(), `the dataset of table "patients" failed validation`) {
		t.Fatalf("run error: %v", err)
	}

	// A header row is named as such.
	uploadString(t, hospital, id, "patients", "id,email,age,smoker\n1,a@example.com,30,yes\n")
	rep, err = hospital.ValidationReport(ctx, id, "patients")
	if err != nil || rep.Valid || !strings.Contains(rep.Hint, "looks like a header") {
		t.Fatalf("header row: %+v %v", rep, err)
	}
}

// The SQL query reads its inputs and nothing else, and a result under the
// privacy floor releases nothing.
func TestSQLConfinement(t *testing.T) {
	s := startServer(t, "")
	analyst := s.addUser("analyst@example.com")
	owner := s.addUser("owner@example.com")
	queries := map[string]string{
		"passwd":  "SELECT * FROM read_csv('/etc/passwd')",
		"httpfs":  "INSTALL httpfs",
		"attach":  "ATTACH '/tmp/other.db' AS other",
		"unlock":  "SET enable_external_access = true",
		"input":   "SELECT * FROM read_csv('/input/people/dataset.csv')",
		"floor":   "SELECT * FROM people WHERE id = 1",
		"allowed": "SELECT count(*) AS n FROM people",
	}
	def := &cleanroom.Definition{Name: "sql", Owner: "analyst@example.com",
		Nodes:        []cleanroom.Node{{Name: "people", Kind: cleanroom.NodeTable, Columns: []cleanroom.Column{{Name: "id", FormatType: cleanroom.FormatInteger}}}},
		Participants: []cleanroom.Participant{{Email: "owner@example.com", DataOwnerOf: []string{"people"}}, {Email: "analyst@example.com"}},
	}
	for name, q := range queries {
		n := cleanroom.Node{Name: name, Kind: cleanroom.NodeSQL, Script: q, Dependencies: []string{"people"}}
		if name == "floor" {
			n.MinimumRowsCount = intp(2)
		}
		def.Nodes = append(def.Nodes, n)
		def.Participants[1].AnalystOf = append(def.Participants[1].AnalystOf, name)
	}
	id := publish(t, analyst, def)
	uploadString(t, owner, id, "people", "1\n2\n3\n")
	for name := range queries {
		job := runJob(t, analyst, id, name)
		switch name {
		case "allowed":
			if files := resultFiles(t, analyst, job); files["dataset.csv"] != "3\n" {
				t.Errorf("allowed query: %v", files)
			}
		case "floor":
			if job.State != cleanroom.JobFailed || !strings.Contains(job.Error, `fewer rows than its minimum_rows_count of 2; nothing is released`) {
				t.Errorf("floor: %s %q", job.State, job.Error)
			}
		default:
			if job.State != cleanroom.JobFailed {
				t.Errorf("%s: %q succeeded, want it refused", name, queries[name])
			}
		}
	}
}

// The validated rows stored at publishing are authenticated like every
// ciphertext: a flipped byte fails the run instead of feeding it.
func TestTamperedValidatedTable(t *testing.T) {
	s := startServer(t, "")
	analyst := s.addUser("analyst@example.com")
	hospital := s.addUser("hospital@example.com")
	insurer := s.addUser("insurer@example.com")
	id := publish(t, analyst, pipeline())
	ds := uploadString(t, hospital, id, "patients", "1,a@example.com,30,yes\n2,b@example.com,40,\n3,c@example.com,50,no\n")
	uploadString(t, insurer, id, "claims", "1,10\n2,20\n3,30\n")
	if rep, err := hospital.ValidationReport(context.Background(), id, "patients"); err != nil || !rep.Valid {
		t.Fatalf("validation: %+v %v", rep, err)
	}
	path := filepath.Join(s.DataDir, "blobs", "tables", ds.ValidationJob)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("validated rows not stored where expected: %v", err)
	}
	b[len(b)-20] ^= 1
	os.WriteFile(path, b, 0o600)
	job := runJob(t, analyst, id, "joined")
	if job.State != cleanroom.JobFailed || !strings.Contains(job.Error, `integrity check failed for the validated rows of table "patients"`) {
		t.Fatalf("job %s: %q", job.State, job.Error)
	}
}

// A hashed column of any type reaches computations as SHA-256s in hex,
// and its schema says so: SQL loads it as text, Python reads the type.
func TestHashedNumberColumn(t *testing.T) {
	s := startServer(t, "")
	analyst, owner := s.addUser("analyst@example.com"), s.addUser("owner@example.com")
	id := publish(t, analyst, &cleanroom.Definition{Name: "hashed", Owner: analyst.Email,
		Nodes: []cleanroom.Node{
			{Name: "people", Kind: cleanroom.NodeTable, Columns: []cleanroom.Column{
				{Name: "id", FormatType: cleanroom.FormatInteger, HashWith: cleanroom.HashSHA256Hex},
				{Name: "age", FormatType: cleanroom.FormatInteger},
			}},
			{Name: "ids", Kind: cleanroom.NodeSQL, Script: "SELECT id, age + 1 AS next FROM people ORDER BY age", Dependencies: []string{"people"}, EnableLogsOnError: true},
			{Name: "schema", Kind: cleanroom.NodePython, Dependencies: []string{"people"},
				Script: "import json\ns = json.load(open('/input/people/schema.json'))\nopen('/output/types.txt', 'w').write(' '.join(c['format_type'] for c in s['columns']))\n"},
		},
		Participants: []cleanroom.Participant{{Email: owner.Email, DataOwnerOf: []string{"people"}}, {Email: analyst.Email, AnalystOf: []string{"ids", "schema"}}},
	})
	// Both ways computations get a table: validated as they start, and
	// the rows the upload's own validation stored.
	ds := uploadString(t, owner, id, "people", "7,30\n8,40\n")
	want := fmt.Sprintf("%x,31\n%x,41\n", sha256.Sum256([]byte("7")), sha256.Sum256([]byte("8")))
	if got := resultFiles(t, analyst, runJob(t, analyst, id, "ids"))["dataset.csv"]; got != want {
		t.Errorf("SQL over a hashed INTEGER column: %q, want %q", got, want)
	}
	if got := resultFiles(t, analyst, runJob(t, analyst, id, "schema"))["types.txt"]; got != "HASH_SHA256_HEX INTEGER" {
		t.Errorf("the schema computations read says %q, want the hashed column's type HASH_SHA256_HEX", got)
	}
	if _, err := owner.Wait(context.Background(), ds.ValidationJob); err != nil {
		t.Fatal(err)
	}
	if got := resultFiles(t, analyst, runJob(t, analyst, id, "ids"))["dataset.csv"]; got != want {
		t.Errorf("SQL over a hashed INTEGER column, from the stored rows: %q, want %q", got, want)
	}
	if got := resultFiles(t, analyst, runJob(t, analyst, id, "schema"))["types.txt"]; got != "HASH_SHA256_HEX INTEGER" {
		t.Errorf("the schema computations read from the stored rows says %q, want HASH_SHA256_HEX for the hashed column", got)
	}
}

// A data owner asking for the report of a dataset that was replaced since
// is told so, naming the report to ask for: the report sent would not open
// with the key the client expects.
func TestReportOfReplacedDataset(t *testing.T) {
	s := startServer(t, "")
	owner := s.addUser("owner@example.com")
	id := publish(t, owner, &cleanroom.Definition{Name: "replaced", Owner: owner.Email,
		Nodes:        []cleanroom.Node{{Name: "people", Kind: cleanroom.NodeTable, Columns: []cleanroom.Column{{Name: "id", FormatType: cleanroom.FormatInteger}}}},
		Participants: []cleanroom.Participant{{Email: owner.Email, DataOwnerOf: []string{"people"}}},
	})
	first := uploadString(t, owner, id, "people", "1\n")
	second := uploadString(t, owner, id, "people", "2\n3\n")
	req, _ := http.NewRequest("GET", s.URL+"/api/v1/dcrs/"+id+"/nodes/people/dataset/report?job="+first.ValidationJob, nil)
	req.Header.Set("Authorization", "Bearer "+owner.Token)
	req.Header.Set(cleanhttp.EmailHeader, owner.Email)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusConflict || !strings.Contains(string(body), "its report is now job "+second.ValidationJob) || resp.Header.Get(cleanhttp.SealedKeyHeader) != "" {
		t.Errorf("the report of a replaced dataset: %d %s; want 409 naming the current one, and no key", resp.StatusCode, body)
	}
	rep, err := owner.ValidationReport(context.Background(), id, "people")
	if err != nil || rep.Rows != 2 {
		t.Errorf("the current report: %+v %v, want 2 rows", rep, err)
	}
}
