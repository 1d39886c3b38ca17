package client

import (
	"testing"

	cleanhttp "github.com/cleanroom-dev/cleanroom/http"
)

// The client's status table is the server's, read backwards.
func TestStatusCodesMirrorServer(t *testing.T) {
	for status, code := range statusCodes {
		if got := cleanhttp.ErrorStatus(code); got != status {
			t.Errorf("client maps %d to %s, but the server sends %s as %d", status, code, code, got)
		}
	}
	for _, code := range []string{"invalid", "unauthorized", "forbidden", "not_found", "conflict", "too_large"} {
		if _, ok := statusCodes[cleanhttp.ErrorStatus(code)]; !ok {
			t.Errorf("client cannot map the status of %s back", code)
		}
	}
}
