package cleanroom

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"time"
)

// Draft is a clean room being written: editable, visible to its owner
// only, and checked in full only when tested or published. Publishing
// freezes it; the published clean room has the id its definition hashes
// to, as if published directly.
type Draft struct {
	ID          string      `json:"id"`
	Owner       string      `json:"owner"` // the user who created it
	Definition  *Definition `json:"definition"`
	PublishedID string      `json:"published_id,omitempty"` // set once published
	CreatedAt   time.Time   `json:"created_at"`
	UpdatedAt   time.Time   `json:"updated_at"`
	// TestDatasets are the data nodes with test data attached.
	TestDatasets []*TestDataset `json:"test_datasets"`
}

// ParseDraftDefinition decodes a definition that may still be incomplete:
// unknown fields and oversize documents are refused as for publishing,
// but the rules of Validate are left for testing and publishing.
func ParseDraftDefinition(data []byte) (*Definition, error) {
	if len(data) > MaxDefinitionSize {
		return nil, Errorf(ETOOLARGE, "definition is %s; the limit is %s (scripts and static files included)", FormatBytes(int64(len(data))), FormatBytes(MaxDefinitionSize))
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var d Definition
	if err := dec.Decode(&d); err != nil {
		return nil, Errorf(EINVALID, "definition is not valid JSON: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, Errorf(EINVALID, "definition has data after its closing brace")
	}
	return &d, nil
}

// DraftTest is one run of "test all computations" on a draft: every
// computation, in dependency order, on empty inputs or the draft's test
// datasets. No real data is involved, so logs are always shown.
type DraftTest struct {
	ID         string     `json:"id"`
	DraftID    string     `json:"draft_id"`
	State      string     `json:"state"` // DraftTestRunning or DraftTestDone
	Nodes      []NodeTest `json:"nodes"`
	Error      string     `json:"error,omitempty"` // why nodes could not be tested, if they could not
	CreatedAt  time.Time  `json:"created_at"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
}

// States of a draft test.
const (
	DraftTestRunning = "running"
	DraftTestDone    = "done"
)

// NodeTest is how one node fared in a draft test.
type NodeTest struct {
	Node   string   `json:"node"`
	Kind   NodeKind `json:"kind"`
	Status string   `json:"status"` // NodeTestOK, NodeTestFailed or NodeTestSkipped
	Error  string   `json:"error,omitempty"`
	Logs   string   `json:"logs,omitempty"`
	// Line is the line of the main script the error points at, 0 when
	// the error names none.
	Line    int          `json:"line,omitempty"`
	Outputs []OutputFile `json:"outputs,omitempty"` // what the computation wrote to /output
}

// Outcomes of a node in a draft test.
const (
	NodeTestOK      = "ok"
	NodeTestFailed  = "failed"
	NodeTestSkipped = "skipped" // a node it depends on failed
)

// OutputFile is a file a computation wrote, relative to /output.
type OutputFile struct {
	Path string `json:"path"`
	Size int64  `json:"size"`
}

// TestDataset is test data attached to a data node of a draft. It is not
// real data; it is kept encrypted all the same.
type TestDataset struct {
	DraftID   string `json:"-"`
	Node      string `json:"node"`
	Size      int64  `json:"size"`
	SealedKey []byte `json:"-"`
}

// TestDatasetKey is the blob key of a draft's test dataset.
func TestDatasetKey(draftID, node string) string { return "drafts/" + draftID + "/" + node }

// MaxTestDatasetSize bounds test data: enough to exercise a script, not a
// way around publishing real data.
const MaxTestDatasetSize = 64 << 20

// ComputeOrder returns every compute node, each after the nodes it depends on.
func (d *Definition) ComputeOrder() []*Node {
	var roots, out []*Node
	for i := range d.Nodes {
		roots = append(roots, &d.Nodes[i])
	}
	for _, n := range d.dependencyOrder(roots...) {
		if n.Kind.IsCompute() {
			out = append(out, n)
		}
	}
	return out
}
