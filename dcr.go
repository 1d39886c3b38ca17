package cleanroom

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/mail"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// MaxDefinitionSize is the largest canonical definition accepted, scripts
// and static files included. It keeps every participant able to fetch and
// read the whole agreement.
const MaxDefinitionSize = 4 << 20

// MaxNodes bounds the nodes of a clean room: far more than any agreement
// people read, and few enough that planning a run stays instant.
const MaxNodes = 1000

// NodeKind says what a node is.
type NodeKind string

// Node kinds. Data nodes receive datasets; compute nodes run scripts.
const (
	NodeRaw    NodeKind = "raw"    // one file, any bytes, mounted as /input/<node>
	NodeTable  NodeKind = "table"  // CSV rows of declared columns, validated in the enclave
	NodePython NodeKind = "python" // a Python script
	NodeSQL    NodeKind = "sql"    // a DuckDB query over tables and SQL results
	NodeR      NodeKind = "r"      // an R script
)

var nodeKinds = []NodeKind{NodeRaw, NodeTable, NodePython, NodeSQL, NodeR}

// IsData reports whether nodes of this kind receive uploaded datasets.
func (k NodeKind) IsData() bool { return k == NodeRaw || k == NodeTable }

// IsCompute reports whether nodes of this kind run a script.
func (k NodeKind) IsCompute() bool { return k == NodePython || k == NodeSQL || k == NodeR }

// IsTabular reports whether nodes of this kind give computations a table:
// /input/<node>/dataset.csv without header, and schema.json beside it.
func (k NodeKind) IsTabular() bool { return k == NodeTable || k == NodeSQL }

// Definition is a data clean room: its nodes and who may do what with them.
// Once published it never changes; its ID is the SHA-256 of its canonical
// JSON, so every participant can recompute and pin it.
type Definition struct {
	Name         string        `json:"name"`
	Description  string        `json:"description,omitempty"`
	Owner        string        `json:"owner"`
	Nodes        []Node        `json:"nodes"`
	Participants []Participant `json:"participants"`
}

// Node is a data node or a compute node of a definition.
type Node struct {
	Name string   `json:"name"`
	Kind NodeKind `json:"kind"`

	// IsRequired marks a data node without which no computation runs.
	IsRequired bool `json:"is_required,omitempty"`

	// Table nodes only: the columns every row must have, and column
	// combinations whose values must be unique.
	Columns                  []Column   `json:"columns,omitempty"`
	UniqueColumnCombinations [][]string `json:"unique_column_combinations,omitempty"`

	// Compute nodes only. Script is the code: Python, R, or the SQL query.
	Script              string   `json:"script,omitempty"`
	Dependencies        []string `json:"dependencies,omitempty"`
	Files               []File   `json:"files,omitempty"`
	EnableLogsOnError   bool     `json:"enable_logs_on_error,omitempty"`
	EnableLogsOnSuccess bool     `json:"enable_logs_on_success,omitempty"`

	// SQL nodes only: a result with fewer rows fails and releases nothing.
	MinimumRowsCount *int64 `json:"minimum_rows_count,omitempty"`
}

// Schema returns the schema of a table node.
func (n *Node) Schema() Schema {
	return Schema{Columns: n.Columns, UniqueColumnCombinations: n.UniqueColumnCombinations}
}

// File is a static file of a compute node, mounted at /input/code/<name>.
type File struct {
	Name    string `json:"name"`
	Content string `json:"content"`
}

// Participant names what one user may do in a clean room.
type Participant struct {
	Email       string   `json:"email"`
	DataOwnerOf []string `json:"data_owner_of,omitempty"`
	AnalystOf   []string `json:"analyst_of,omitempty"`
}

// DCR is a published clean room.
type DCR struct {
	ID          string      `json:"id"`
	Definition  *Definition `json:"definition"`
	Canonical   []byte      `json:"-"` // the exact bytes ID is the hash of
	PublishedBy string      `json:"published_by"`
	PublishedAt time.Time   `json:"published_at"`
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$`)

// ParseDefinition decodes and validates a definition. Unknown fields are
// refused rather than dropped: a dropped field would silently change what
// participants agree to. Returns EINVALID or ETOOLARGE.
func ParseDefinition(data []byte) (*Definition, error) {
	d, err := ParseDraftDefinition(data)
	if err != nil {
		return nil, err
	}
	if err := d.Validate(); err != nil {
		return nil, err
	}
	return d, nil
}

// Validate checks every rule of a definition and reports all the problems
// it finds in one EINVALID error, each naming its node or participant.
func (d *Definition) Validate() error {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	if strings.TrimSpace(d.Name) == "" {
		add("name is empty")
	} else if len(d.Name) > 200 {
		add("name is longer than 200 bytes")
	}
	if !validEmail(d.Owner) {
		add("owner %q is not an email address", d.Owner)
	}
	if len(d.Nodes) == 0 {
		add("there are no nodes; add at least one data or compute node")
	} else if len(d.Nodes) > MaxNodes {
		return Errorf(ETOOLARGE, "definition has %d nodes; the limit is %d", len(d.Nodes), MaxNodes)
	}

	nodes := map[string]*Node{}
	for i := range d.Nodes {
		n := &d.Nodes[i]
		switch {
		case n.Name == "code":
			add("node %q: the name is reserved for static files (/input/code)", n.Name)
		case !nameRE.MatchString(n.Name):
			add("node %q: invalid name; use 1-64 letters, digits, '_', '.' or '-', not starting with '.' or '-'", n.Name)
		case nodes[n.Name] != nil:
			add("node %q: duplicate name", n.Name)
		}
		nodes[n.Name] = n
	}
	for i := range d.Nodes {
		for _, p := range nodeProblems(&d.Nodes[i], nodes) {
			add("node %q: %s", d.Nodes[i].Name, p)
		}
	}
	if cycle := d.findCycle(nodes); cycle != nil {
		add("dependency cycle: %s", strings.Join(cycle, " -> "))
	}

	emails := map[string]bool{}
	for _, p := range d.Participants {
		key := lowerASCII(p.Email)
		switch {
		case !validEmail(p.Email):
			add("participant %q: not an email address", p.Email)
		case emails[key]:
			add("participant %q: listed twice; merge the permissions into one entry", p.Email)
		}
		emails[key] = true
		for _, name := range p.DataOwnerOf {
			switch n := nodes[name]; {
			case n == nil:
				add("participant %q: data_owner_of names unknown node %q", p.Email, name)
			case !n.Kind.IsData():
				add("participant %q: data_owner_of names compute node %q; only data nodes receive datasets", p.Email, name)
			}
		}
		for _, name := range p.AnalystOf {
			switch n := nodes[name]; {
			case n == nil:
				add("participant %q: analyst_of names unknown node %q", p.Email, name)
			case !n.Kind.IsCompute():
				add("participant %q: analyst_of names data node %q; only compute nodes can be run", p.Email, name)
			}
		}
	}

	if len(problems) == 1 {
		return Errorf(EINVALID, "definition: %s", problems[0])
	} else if len(problems) > 1 {
		return Errorf(EINVALID, "definition has %d problems: %s", len(problems), strings.Join(problems, "; "))
	}
	return nil
}

// nodeProblems returns what is wrong with one node, given all nodes by name.
func nodeProblems(n *Node, nodes map[string]*Node) []string {
	var out []string
	add := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	if !slices.Contains(nodeKinds, n.Kind) {
		add("unknown kind %q; use one of raw, table, python, sql, r", n.Kind)
		return out
	}
	if n.Kind.IsData() {
		if n.Script != "" || len(n.Dependencies) > 0 || len(n.Files) > 0 || n.EnableLogsOnError || n.EnableLogsOnSuccess {
			add("a %s data node has no script, dependencies, files or log policy", n.Kind)
		}
	} else {
		if n.IsRequired {
			add("is_required applies to data nodes only")
		}
		if strings.TrimSpace(n.Script) == "" {
			add("script is empty")
		} else if !utf8.ValidString(n.Script) {
			add("script is not UTF-8 text")
		}
	}
	if n.Kind == NodeTable {
		out = append(out, n.Schema().Problems()...)
	} else if len(n.Columns) > 0 || len(n.UniqueColumnCombinations) > 0 {
		add("columns belong to table nodes only")
	}
	if n.MinimumRowsCount != nil && n.Kind != NodeSQL {
		add("minimum_rows_count belongs to SQL nodes only")
	} else if n.MinimumRowsCount != nil && *n.MinimumRowsCount < 0 {
		add("minimum_rows_count is negative")
	}
	if n.Kind == NodeSQL && len(n.Files) > 0 {
		add("a SQL node has no static files")
	}

	seen := map[string]bool{}
	for _, dep := range n.Dependencies {
		switch d := nodes[dep]; {
		case dep == n.Name:
			add("depends on itself")
		case d == nil:
			add("unknown dependency %q", dep)
		case seen[dep]:
			add("dependency %q listed twice", dep)
		case n.Kind == NodeSQL && !d.Kind.IsTabular():
			add("a SQL query reads tables and SQL results, but dependency %q is a %s node", dep, d.Kind)
		}
		seen[dep] = true
	}
	files := map[string]bool{}
	for _, f := range n.Files {
		switch {
		case !nameRE.MatchString(f.Name):
			add("static file %q: invalid name; use 1-64 letters, digits, '_', '.' or '-'", f.Name)
		case files[f.Name]:
			add("static file %q listed twice", f.Name)
		case !utf8.ValidString(f.Content):
			add("static file %q is not UTF-8 text", f.Name)
		}
		files[f.Name] = true
	}
	return out
}

// findCycle returns one dependency cycle as a path of node names, or nil.
func (d *Definition) findCycle(nodes map[string]*Node) []string {
	const (
		unvisited = iota
		inProgress
		done
	)
	state := map[string]int{}
	var stack []string
	var visit func(name string) []string
	visit = func(name string) []string {
		switch state[name] {
		case inProgress:
			for i, s := range stack {
				if s == name {
					return append(append([]string{}, stack[i:]...), name)
				}
			}
		case done:
			return nil
		}
		state[name] = inProgress
		stack = append(stack, name)
		if n := nodes[name]; n != nil {
			for _, dep := range n.Dependencies {
				if dep != name && nodes[dep] != nil {
					if c := visit(dep); c != nil {
						return c
					}
				}
			}
		}
		stack = stack[:len(stack)-1]
		state[name] = done
		return nil
	}
	for _, n := range d.Nodes {
		if c := visit(n.Name); c != nil {
			return c
		}
	}
	return nil
}

// CheckEmail returns EINVALID unless s is a bare ASCII email address.
func CheckEmail(s string) error {
	if !validEmail(s) {
		return Errorf(EINVALID, "%q is not an email address (bare ASCII addresses only, such as alice@example.com)", s)
	}
	return nil
}

// validEmail accepts bare ASCII addresses only. Unicode case folding makes
// look-alikes equal (U+017F ſ folds to s), so a non-ASCII address could
// claim another user's rights in a comparison that ignores case.
func validEmail(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	a, err := mail.ParseAddress(s)
	return err == nil && a.Address == s && a.Name == ""
}

// SameEmail reports whether a and b are the same address, ignoring the case
// of ASCII letters only.
func SameEmail(a, b string) bool {
	return len(a) == len(b) && lowerASCII(a) == lowerASCII(b)
}

func lowerASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// Canonical returns the canonical JSON of the definition: object keys
// sorted, no insignificant whitespace, no HTML escaping, empty optional
// fields omitted. docs/formats.md states the rule for other implementations.
func (d *Definition) Canonical() ([]byte, error) {
	c := *d
	// "participants": null and [] mean the same; they must hash the same.
	if c.Nodes == nil {
		c.Nodes = []Node{}
	}
	if c.Participants == nil {
		c.Participants = []Participant{}
	}
	b, err := json.Marshal(&c)
	if err != nil {
		return nil, err
	}
	return CanonicalJSON(b)
}

// CanonicalJSON re-encodes any JSON document in canonical form.
func CanonicalJSON(b []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil { // maps encode with sorted keys
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// DefinitionID returns the id of canonical definition bytes: lowercase hex SHA-256.
func DefinitionID(canonical []byte) string {
	sum := sha256.Sum256(canonical)
	return hex.EncodeToString(sum[:])
}

// Node returns the node with the given name, or nil.
func (d *Definition) Node(name string) *Node {
	for i := range d.Nodes {
		if d.Nodes[i].Name == name {
			return &d.Nodes[i]
		}
	}
	return nil
}

func (d *Definition) participant(email string) *Participant {
	for i := range d.Participants {
		if SameEmail(d.Participants[i].Email, email) {
			return &d.Participants[i]
		}
	}
	return nil
}

// CanRead reports whether email may see the clean room: its owner and its
// participants. Everyone else must not learn that it exists.
func (d *Definition) CanRead(email string) bool {
	return SameEmail(d.Owner, email) || d.participant(email) != nil
}

// IsDataOwner reports whether email may upload, publish and remove the dataset of node.
func (d *Definition) IsDataOwner(email, node string) bool {
	p := d.participant(email)
	return p != nil && contains(p.DataOwnerOf, node)
}

// IsAnalyst reports whether email may run node and download its results.
func (d *Definition) IsAnalyst(email, node string) bool {
	p := d.participant(email)
	return p != nil && contains(p.AnalystOf, node)
}

// Members returns every email that can read the clean room, lowercased.
func (d *Definition) Members() []string {
	seen := map[string]bool{lowerASCII(d.Owner): true}
	out := []string{lowerASCII(d.Owner)}
	for _, p := range d.Participants {
		if e := lowerASCII(p.Email); !seen[e] {
			seen[e] = true
			out = append(out, e)
		}
	}
	return out
}

// Plan returns the compute nodes that running node needs, dependencies
// first and node last, and the data nodes they read.
func (d *Definition) Plan(node string) (compute []*Node, data []*Node, err error) {
	target := d.Node(node)
	if target == nil {
		return nil, nil, Errorf(ENOTFOUND, "node %q does not exist in this clean room", node)
	} else if !target.Kind.IsCompute() {
		return nil, nil, Errorf(EINVALID, "node %q is a data node; only compute nodes can be run", node)
	}
	for _, n := range d.dependencyOrder(target) {
		if n.Kind.IsCompute() {
			compute = append(compute, n)
		} else {
			data = append(data, n)
		}
	}
	return compute, data, nil
}

// dependencyOrder returns roots and every node they depend on, each after
// its dependencies, in one walk of the graph. The definition must be valid
// (no unknown dependency, no cycle).
func (d *Definition) dependencyOrder(roots ...*Node) []*Node {
	byName := make(map[string]*Node, len(d.Nodes))
	for i := range d.Nodes {
		byName[d.Nodes[i].Name] = &d.Nodes[i]
	}
	seen := map[string]bool{}
	var out []*Node
	var visit func(n *Node)
	visit = func(n *Node) {
		if n == nil || seen[n.Name] {
			return
		}
		seen[n.Name] = true
		for _, dep := range n.Dependencies {
			visit(byName[dep])
		}
		out = append(out, n)
	}
	for _, n := range roots {
		visit(n)
	}
	return out
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// FormatBytes formats n with IEC units, e.g. "512 MiB".
func FormatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	v := float64(n) / float64(div)
	if v == float64(int64(v)) {
		return fmt.Sprintf("%d %ciB", int64(v), "KMGTPE"[exp])
	}
	return fmt.Sprintf("%.1f %ciB", v, "KMGTPE"[exp])
}
