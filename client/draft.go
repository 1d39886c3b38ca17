package client

import (
	"context"
	"encoding/json"
	"io"
	"net/url"

	"github.com/cleanroom-dev/cleanroom"
)

func draftPath(id string) string { return "/api/v1/drafts/" + url.PathEscape(id) }

// draftBody encodes a possibly incomplete definition for the drafts API.
func draftBody(def *cleanroom.Definition) ([]byte, error) { return json.Marshal(def) }

// CreateDraft saves a new draft of a clean room.
func (c *Client) CreateDraft(ctx context.Context, def *cleanroom.Definition) (*cleanroom.Draft, error) {
	body, err := draftBody(def)
	if err != nil {
		return nil, err
	}
	var out cleanroom.Draft
	return &out, c.do(ctx, "POST", "/api/v1/drafts", body, &out)
}

// UpdateDraft replaces a draft's definition.
func (c *Client) UpdateDraft(ctx context.Context, id string, def *cleanroom.Definition) (*cleanroom.Draft, error) {
	body, err := draftBody(def)
	if err != nil {
		return nil, err
	}
	var out cleanroom.Draft
	return &out, c.do(ctx, "PUT", draftPath(id), body, &out)
}

// Draft returns one of the user's drafts.
func (c *Client) Draft(ctx context.Context, id string) (*cleanroom.Draft, error) {
	var out cleanroom.Draft
	return &out, c.do(ctx, "GET", draftPath(id), nil, &out)
}

// Drafts lists the user's drafts.
func (c *Client) Drafts(ctx context.Context) ([]*cleanroom.Draft, error) {
	var out []*cleanroom.Draft
	return out, c.do(ctx, "GET", "/api/v1/drafts", nil, &out)
}

// DeleteDraft deletes a draft.
func (c *Client) DeleteDraft(ctx context.Context, id string) error {
	return c.do(ctx, "DELETE", draftPath(id), nil, nil)
}

// PublishDraft validates and publishes a draft, which is then frozen. The
// returned id is checked against the draft's definition, as PublishDCR does.
func (c *Client) PublishDraft(ctx context.Context, id string) (*cleanroom.PublishResult, error) {
	d, err := c.Draft(ctx, id)
	if err != nil {
		return nil, err
	}
	var out cleanroom.PublishResult
	if err := c.do(ctx, "POST", draftPath(id)+"/publish", nil, &out); err != nil {
		return nil, err
	}
	if err := checkID(d.Definition, out.ID); err != nil {
		return nil, err
	}
	return &out, nil
}

// StartDraftTest starts "test all computations" on a draft.
func (c *Client) StartDraftTest(ctx context.Context, id string) (*cleanroom.DraftTest, error) {
	var started cleanroom.DraftTest
	return &started, c.do(ctx, "POST", draftPath(id)+"/tests", nil, &started)
}

// TestDraft starts "test all computations" on a draft and waits for its
// outcome.
func (c *Client) TestDraft(ctx context.Context, id string) (*cleanroom.DraftTest, error) {
	if _, err := c.StartDraftTest(ctx, id); err != nil {
		return nil, err
	}
	for {
		var t cleanroom.DraftTest
		if err := c.do(ctx, "GET", draftPath(id)+"/tests/latest?wait=30s", nil, &t); err != nil {
			return nil, err
		}
		if t.State == cleanroom.DraftTestDone {
			return &t, nil
		}
	}
}

// PutTestDataset attaches test data to a data node of a draft. Test data
// is not real data: it is sent as is (over TLS where the server has it).
func (c *Client) PutTestDataset(ctx context.Context, id, node string, r io.Reader, size int64) error {
	resp, err := c.send(ctx, "PUT", draftPath(id)+"/nodes/"+url.PathEscape(node)+"/test-dataset", r, "application/octet-stream", size)
	if err != nil {
		return err
	}
	return resp.Body.Close()
}

// DeleteTestDataset detaches a draft data node's test data.
func (c *Client) DeleteTestDataset(ctx context.Context, id, node string) error {
	return c.do(ctx, "DELETE", draftPath(id)+"/nodes/"+url.PathEscape(node)+"/test-dataset", nil, nil)
}
