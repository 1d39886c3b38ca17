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
