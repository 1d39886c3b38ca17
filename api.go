package cleanroom

import "time"

// The types below are the API's request and response bodies that are not
// domain objects themselves; the server and the Go client share them.

// PublishResult answers the publishing of a definition.
type PublishResult struct {
	ID      string `json:"id"`
	Created bool   `json:"created"` // false when the same definition was already published
}

// DCRView is a published clean room as its participants see it.
type DCRView struct {
	*DCR
	Datasets []*Dataset `json:"datasets"`
}

// DCRSummary is one entry of the list of a user's clean rooms.
type DCRSummary struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Owner       string    `json:"owner"`
	PublishedAt time.Time `json:"published_at"`
}

// PublishDatasetRequest publishes an uploaded ciphertext to a data node.
type PublishDatasetRequest struct {
	ManifestHash string `json:"manifest_hash"`
	SealedKey    []byte `json:"sealed_key"` // base64 in JSON
}
