package cleanroom_test

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cleanroom-dev/cleanroom"
)

// uppercase is the seed's "Secure Uppercase" clean room.
func uppercase() *cleanroom.Definition {
	return &cleanroom.Definition{
		Name:  "Secure Uppercase",
		Owner: "owner@example.com",
		Nodes: []cleanroom.Node{
			{Name: "input_data_node", Kind: cleanroom.NodeRaw, IsRequired: true},
			{Name: "uppercase_text_node", Kind: cleanroom.NodePython, Script: "print(1)\n", Dependencies: []string{"input_data_node"}},
		},
		Participants: []cleanroom.Participant{
			{Email: "owner@example.com", DataOwnerOf: []string{"input_data_node"}, AnalystOf: []string{"uppercase_text_node"}},
		},
	}
}

func TestValidateAcceptsSeedExample(t *testing.T) {
	if err := uppercase().Validate(); err != nil {
		t.Fatal(err)
	}
}

// A pipeline of every node kind validates: table -> SQL -> Python, R beside.
func TestValidateAcceptsPipeline(t *testing.T) {
	min := int64(10)
	d := &cleanroom.Definition{
		Name: "pipeline", Owner: "owner@example.com",
		Nodes: []cleanroom.Node{
			{Name: "people", Kind: cleanroom.NodeTable, Columns: []cleanroom.Column{
				{Name: "id", FormatType: cleanroom.FormatInteger},
				{Name: "email", FormatType: cleanroom.FormatEmail, HashWith: cleanroom.HashSHA256Hex, IsNullable: true},
			}, UniqueColumnCombinations: [][]string{{"id"}}},
			{Name: "counts", Kind: cleanroom.NodeSQL, Script: "SELECT count(*) FROM people", Dependencies: []string{"people"}, MinimumRowsCount: &min},
			{Name: "model", Kind: cleanroom.NodePython, Script: "pass", Dependencies: []string{"counts", "people"}},
			{Name: "stats", Kind: cleanroom.NodeR, Script: "1", Dependencies: []string{"people"}},
		},
		Participants: []cleanroom.Participant{{Email: "owner@example.com", DataOwnerOf: []string{"people"}, AnalystOf: []string{"counts", "model", "stats"}}},
	}
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
}

// Every mistake the issue lists gets an EINVALID error naming its node or participant.
func TestValidateMistakes(t *testing.T) {
	tests := []struct {
		name   string
		change func(d *cleanroom.Definition)
		want   string
	}{
		{"duplicate node", func(d *cleanroom.Definition) {
			d.Nodes = append(d.Nodes, cleanroom.Node{Name: "input_data_node", Kind: cleanroom.NodeRaw})
		}, `node "input_data_node": duplicate name`},
		{"invalid name", func(d *cleanroom.Definition) { d.Nodes[0].Name = "../etc" }, `node "../etc": invalid name`},
		{"empty name", func(d *cleanroom.Definition) { d.Nodes[0].Name = "" }, `node "": invalid name`},
		{"reserved name", func(d *cleanroom.Definition) { d.Nodes[0].Name = "code" }, `node "code": the name is reserved`},
		{"unknown dependency", func(d *cleanroom.Definition) { d.Nodes[1].Dependencies = []string{"nope"} }, `node "uppercase_text_node": unknown dependency "nope"`},
		{"self dependency", func(d *cleanroom.Definition) { d.Nodes[1].Dependencies = []string{"uppercase_text_node"} }, `node "uppercase_text_node": depends on itself`},
		{"cycle", func(d *cleanroom.Definition) {
			d.Nodes = append(d.Nodes,
				cleanroom.Node{Name: "a", Kind: cleanroom.NodePython, Script: "x", Dependencies: []string{"b"}},
				cleanroom.Node{Name: "b", Kind: cleanroom.NodePython, Script: "x", Dependencies: []string{"a"}})
		}, "dependency cycle: a -> b -> a"},
		{"data_owner_of compute", func(d *cleanroom.Definition) {
			d.Participants[0].DataOwnerOf = []string{"uppercase_text_node"}
		}, `participant "owner@example.com": data_owner_of names compute node "uppercase_text_node"`},
		{"analyst_of data", func(d *cleanroom.Definition) { d.Participants[0].AnalystOf = []string{"input_data_node"} }, `participant "owner@example.com": analyst_of names data node "input_data_node"`},
		{"unknown node in permission", func(d *cleanroom.Definition) { d.Participants[0].AnalystOf = []string{"ghost"} }, `participant "owner@example.com": analyst_of names unknown node "ghost"`},
		{"unknown node in data permission", func(d *cleanroom.Definition) { d.Participants[0].DataOwnerOf = []string{"ghost"} }, `data_owner_of names unknown node "ghost"`},
		{"empty script", func(d *cleanroom.Definition) { d.Nodes[1].Script = "  \n" }, `node "uppercase_text_node": script is empty`},
		{"bad participant email", func(d *cleanroom.Definition) { d.Participants[0].Email = "not-an-email" }, `participant "not-an-email": not an email address`},
		{"duplicate participant", func(d *cleanroom.Definition) {
			d.Participants = append(d.Participants, cleanroom.Participant{Email: "OWNER@example.com"})
		}, `participant "OWNER@example.com": listed twice`},
		{"unknown kind", func(d *cleanroom.Definition) { d.Nodes[0].Kind = "csv" }, `node "input_data_node": unknown kind "csv"`},
		{"script on data node", func(d *cleanroom.Definition) { d.Nodes[0].Script = "x" }, `node "input_data_node": a raw data node has no script`},
		{"duplicate static file", func(d *cleanroom.Definition) {
			d.Nodes[1].Files = []cleanroom.File{{Name: "a.txt"}, {Name: "a.txt"}}
		}, `node "uppercase_text_node": static file "a.txt" listed twice`},
		{"bad static file name", func(d *cleanroom.Definition) { d.Nodes[1].Files = []cleanroom.File{{Name: "../x"}} }, `static file "../x": invalid name`},
		{"no name", func(d *cleanroom.Definition) { d.Name = "" }, "name is empty"},
		{"table without columns", func(d *cleanroom.Definition) { d.Nodes[0].Kind = cleanroom.NodeTable }, `node "input_data_node": a table needs at least one column`},
		{"table column type", func(d *cleanroom.Definition) {
			d.Nodes[0].Kind = cleanroom.NodeTable
			d.Nodes[0].Columns = []cleanroom.Column{{Name: "age", FormatType: "NUMBER"}}
		}, `node "input_data_node": column "age": unknown format_type "NUMBER"`},
		{"duplicate column", func(d *cleanroom.Definition) {
			d.Nodes[0].Kind = cleanroom.NodeTable
			d.Nodes[0].Columns = []cleanroom.Column{{Name: "a", FormatType: "STRING"}, {Name: "A", FormatType: "STRING"}}
		}, `column "A": duplicate name`},
		{"unique combination of unknown column", func(d *cleanroom.Definition) {
			d.Nodes[0].Kind = cleanroom.NodeTable
			d.Nodes[0].Columns = []cleanroom.Column{{Name: "a", FormatType: "STRING"}}
			d.Nodes[0].UniqueColumnCombinations = [][]string{{"b"}}
		}, `unique column combination names unknown column "b"`},
		{"columns on raw node", func(d *cleanroom.Definition) {
			d.Nodes[0].Columns = []cleanroom.Column{{Name: "a", FormatType: "STRING"}}
		}, `node "input_data_node": columns belong to table nodes only`},
		{"sql over raw", func(d *cleanroom.Definition) { d.Nodes[1].Kind = cleanroom.NodeSQL }, `node "uppercase_text_node": a SQL query reads tables and SQL results, but dependency "input_data_node" is a raw node`},
		{"minimum rows on python", func(d *cleanroom.Definition) { n := int64(3); d.Nodes[1].MinimumRowsCount = &n }, `minimum_rows_count belongs to SQL nodes only`},
		{"bad owner", func(d *cleanroom.Definition) { d.Owner = "x" }, `owner "x" is not an email address`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := uppercase()
			tt.change(d)
			err := d.Validate()
			if cleanroom.ErrorCode(err) != cleanroom.EINVALID {
				t.Fatalf("code = %q (%v), want invalid", cleanroom.ErrorCode(err), err)
			}
			if !strings.Contains(cleanroom.ErrorMessage(err), tt.want) {
				t.Fatalf("message %q does not contain %q", cleanroom.ErrorMessage(err), tt.want)
			}
		})
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	d := uppercase()
	d.Nodes[1].Script = ""
	d.Participants[0].AnalystOf = []string{"ghost"}
	msg := cleanroom.ErrorMessage(d.Validate())
	if !strings.Contains(msg, "2 problems") || !strings.Contains(msg, "script is empty") || !strings.Contains(msg, `"ghost"`) {
		t.Fatalf("got %q", msg)
	}
}

func TestParseDefinitionRefusesUnknownFieldsAndOversize(t *testing.T) {
	_, err := cleanroom.ParseDefinition([]byte(`{"name":"x","owner":"a@b.c","nodes":[],"participants":[],"colour":"red"}`))
	if cleanroom.ErrorCode(err) != cleanroom.EINVALID || !strings.Contains(err.Error(), `unknown field "colour"`) {
		t.Fatalf("unknown field: %v", err)
	}
	big := uppercase()
	big.Nodes[1].Script = strings.Repeat("x", cleanroom.MaxDefinitionSize)
	b, _ := json.Marshal(big)
	_, err = cleanroom.ParseDefinition(b)
	if cleanroom.ErrorCode(err) != cleanroom.ETOOLARGE || !strings.Contains(err.Error(), "the limit is 4 MiB") {
		t.Fatalf("oversize: %v", err)
	}
}

// The id is the hash of the canonical bytes: key order and whitespace of
// the input do not change it, any change of content does.
func TestCanonicalID(t *testing.T) {
	a, err := cleanroom.ParseDefinition([]byte(`{"participants":[{"email":"owner@example.com","analyst_of":["c"]}], "owner":"owner@example.com","name":"n <&>",
		"nodes":[{"kind":"python","name":"c","script":"print('<é>')"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	canon, err := a.Canonical()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"name":"n <&>","nodes":[{"kind":"python","name":"c","script":"print('<é>')"}],"owner":"owner@example.com","participants":[{"analyst_of":["c"],"email":"owner@example.com"}]}`
	if string(canon) != want {
		t.Fatalf("canonical:\n got %s\nwant %s", canon, want)
	}
	b, err := cleanroom.ParseDefinition(canon)
	if err != nil {
		t.Fatal(err)
	}
	canon2, _ := b.Canonical()
	if cleanroom.DefinitionID(canon) != cleanroom.DefinitionID(canon2) {
		t.Fatal("re-parsing canonical bytes changed the id")
	}
	b.Nodes[0].Script += " "
	canon3, _ := b.Canonical()
	if cleanroom.DefinitionID(canon) == cleanroom.DefinitionID(canon3) {
		t.Fatal("a changed script kept the id")
	}
}

func TestPermissions(t *testing.T) {
	d := uppercase()
	d.Participants = append(d.Participants, cleanroom.Participant{Email: "viewer@example.com"})
	if !d.CanRead("Viewer@Example.com") || d.CanRead("stranger@example.com") {
		t.Fatal("CanRead wrong")
	}
	if d.IsDataOwner("viewer@example.com", "input_data_node") || !d.IsDataOwner("owner@example.com", "input_data_node") {
		t.Fatal("IsDataOwner wrong")
	}
	if d.IsAnalyst("viewer@example.com", "uppercase_text_node") || !d.IsAnalyst("owner@example.com", "uppercase_text_node") {
		t.Fatal("IsAnalyst wrong")
	}
}

func TestPlanOrdersDependenciesFirst(t *testing.T) {
	d := uppercase()
	d.Nodes = append(d.Nodes,
		cleanroom.Node{Name: "second", Kind: cleanroom.NodePython, Script: "x", Dependencies: []string{"uppercase_text_node", "input_data_node"}},
		cleanroom.Node{Name: "unrelated", Kind: cleanroom.NodePython, Script: "x"})
	compute, data, err := d.Plan("second")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, n := range compute {
		names = append(names, n.Name)
	}
	if strings.Join(names, ",") != "uppercase_text_node,second" || len(data) != 1 || data[0].Name != "input_data_node" {
		t.Fatalf("plan = %v, data = %v", names, data)
	}
}

// Look-alike Unicode addresses are refused: Unicode case folding would make
// "ſam@x.com" equal to "sam@x.com" and hand one the other's rights.
func TestEmailsAreASCII(t *testing.T) {
	for _, e := range []string{"ſam@example.com", "\u212aim@example.com", "josé@example.com"} {
		if cleanroom.CheckEmail(e) == nil {
			t.Errorf("%q accepted", e)
		}
		d := uppercase()
		d.Participants = append(d.Participants, cleanroom.Participant{Email: e})
		if d.Validate() == nil {
			t.Errorf("participant %q accepted", e)
		}
	}
	d := uppercase()
	if d.CanRead("ſwner@example.com") || d.IsAnalyst("\u212a@example.com", "uppercase_text_node") {
		t.Error("a look-alike address reads the clean room")
	}
	if !cleanroom.SameEmail("Owner@Example.COM", "owner@example.com") || cleanroom.SameEmail("ſam@x.com", "sam@x.com") {
		t.Error("SameEmail folds other than ASCII case")
	}
}

// A long chain plans at once, and a definition past MaxNodes is refused
// before anything walks it.
func TestLargeDefinitions(t *testing.T) {
	d := &cleanroom.Definition{Name: "chain", Owner: "owner@example.com"}
	for i := range cleanroom.MaxNodes {
		n := cleanroom.Node{Name: fmt.Sprintf("n%d", i), Kind: cleanroom.NodePython, Script: "pass"}
		if i > 0 {
			n.Dependencies = []string{fmt.Sprintf("n%d", i-1)}
		}
		d.Nodes = append(d.Nodes, n)
	}
	start := time.Now()
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	if order := d.ComputeOrder(); len(order) != cleanroom.MaxNodes || order[0].Name != "n0" {
		t.Fatalf("order of %d nodes starts %s", len(order), order[0].Name)
	}
	if compute, _, _ := d.Plan(fmt.Sprintf("n%d", cleanroom.MaxNodes-1)); len(compute) != cleanroom.MaxNodes {
		t.Fatalf("plan has %d nodes", len(compute))
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("validating and planning %d nodes took %v", cleanroom.MaxNodes, took)
	}
	d.Nodes = append(d.Nodes, cleanroom.Node{Name: "one_more", Kind: cleanroom.NodeRaw})
	if err := d.Validate(); cleanroom.ErrorCode(err) != cleanroom.ETOOLARGE {
		t.Fatalf("%d nodes: %v, want too_large", len(d.Nodes), err)
	}
}

func TestFormatBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1 KiB", 512 << 20: "512 MiB", 1536: "1.5 KiB", 4 << 30: "4 GiB"} {
		if got := cleanroom.FormatBytes(n); got != want {
			t.Errorf("FormatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

// docBlock returns the fenced block of docs/formats.md whose info string
// ends with name.
func docBlock(t *testing.T, name string) string {
	t.Helper()
	doc, err := os.ReadFile("docs/formats.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), " "+name+"\n")
	block, _, closed := strings.Cut(rest, "\n```")
	if !ok || !closed {
		t.Fatalf("docs/formats.md has no block %q", name)
	}
	return block
}

// The worked example of docs/formats.md section 5 is what the code does.
func TestCanonicalDocExample(t *testing.T) {
	d, err := cleanroom.ParseDefinition([]byte(docBlock(t, "definition-example")))
	if err != nil {
		t.Fatal(err)
	}
	canonical, err := d.Canonical()
	if err != nil {
		t.Fatal(err)
	}
	if want := docBlock(t, "canonical-example"); string(canonical) != want {
		t.Errorf("canonical bytes:\n%s\nthe doc says:\n%s", canonical, want)
	}
	if got, want := cleanroom.DefinitionID(canonical), docBlock(t, "id-example"); got != want {
		t.Errorf("id %s, the doc says %s", got, want)
	}
}

// A job's log line and warnings are its analyst's alone: another analyst
// of the node sees how the job ended and nothing they tell.
func TestJobForViewer(t *testing.T) {
	j := &cleanroom.Job{CreatedBy: "Ann@example.com", Error: "script exited with status 1", ErrorLog: "ValueError: 42", Warnings: []string{"skipped /output/secret-name.csv"}}
	own := j.ForViewer("ann@example.com")
	if own.Error != "script exited with status 1: ValueError: 42" || len(own.Warnings) != 1 || own.ErrorLog != "" {
		t.Errorf("the job's analyst sees %+v, want the error with its log line, and the warnings", own)
	}
	other := j.ForViewer("bob@example.com")
	if other.Error != "script exited with status 1" || other.Warnings != nil || other.ErrorLog != "" {
		t.Errorf("another analyst sees %+v, want how it ended only", other)
	}
	if j.Error != "script exited with status 1" || len(j.Warnings) != 1 {
		t.Error("ForViewer changed the job it was given")
	}
}
