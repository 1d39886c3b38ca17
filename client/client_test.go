package client

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
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

// An answer that is not the API's (a proxy's, or Go's to plain HTTP sent to
// its HTTPS port) shows its first line when it is plain text, and nothing
// of it otherwise.
func TestErrorShowsPlainAnswer(t *testing.T) {
	for _, tc := range []struct{ answer, want, not string }{
		{"Client sent an HTTP request to an HTTPS server.\n", "400 Bad Request: Client sent an HTTP request to an HTTPS server.", ""},
		{"<html><body><h1>502 Bad Gateway</h1></body></html>", "400 Bad Request", "<html>"},
		{"\x1b[31mred\x1b[0m", "400 Bad Request", "\x1b"},
	} {
		ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, tc.answer)
		}))
		_, err := New(ts.URL, "a@example.com", "t").Me(context.Background())
		ts.Close()
		if err == nil || !strings.HasSuffix(err.Error(), tc.want) || tc.not != "" && strings.Contains(err.Error(), tc.not) {
			t.Errorf("answer %q: error %v; want it to end with %q", tc.answer, err, tc.want)
		}
	}
}

// The client's header names are the server's.
func TestSealedHeadersMirrorServer(t *testing.T) {
	if recipientHeader != cleanhttp.RecipientHeader || sealedKeyHeader != cleanhttp.SealedKeyHeader {
		t.Error("the client's sealed-download headers differ from the server's")
	}
}
