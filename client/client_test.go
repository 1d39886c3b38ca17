package client

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cleanroom-dev/cleanroom"
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

// UploadDataset checks the enclave's attestation before anything leaves
// the machine: an enclave it cannot trust gets no ciphertext and no key,
// and one in software mode is named to the user once.
func TestUploadChecksTheEnclave(t *testing.T) {
	good := cleanroom.Attestation{Platform: "software", PublicKey: make([]byte, 32), KEM: 0x0020, KDF: 0x0001, AEAD: 0x0001}
	good.PublicKey[0] = 9 // the X25519 base point: a valid public key
	for _, tc := range []struct {
		name   string
		change func(*cleanroom.Attestation)
		want   string
	}{
		{"another platform", func(a *cleanroom.Attestation) { a.Platform = "sev-snp" }, `platform "sev-snp"`},
		{"another AEAD", func(a *cleanroom.Attestation) { a.AEAD = 0x0003 }, "HPKE suite"},
		{"a short key", func(a *cleanroom.Attestation) { a.PublicKey = a.PublicKey[:31] }, "not an X25519 key"},
		{"software", func(*cleanroom.Attestation) {}, ""},
	} {
		att := good
		tc.change(&att)
		var other []string
		ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/api/v1/enclave" {
				json.NewEncoder(w).Encode(att)
				return
			}
			other = append(other, r.Method+" "+r.URL.Path)
			w.WriteHeader(http.StatusTeapot)
		}))
		c := New(ts.URL, "a@example.com", "t")
		var warnings []string
		c.Warn = func(m string) { warnings = append(warnings, m) }
		var err error
		for range 2 {
			_, err = c.UploadDataset(context.Background(), Upload{DCRID: "d", Node: "n", Data: strings.NewReader("secret"), Size: 6})
		}
		ts.Close()
		if tc.want != "" {
			if err == nil || !strings.Contains(err.Error(), tc.want) || len(other) != 0 {
				t.Errorf("%s: %v, requests %v; want %q and nothing sent", tc.name, err, other, tc.want)
			}
			continue
		}
		if len(other) == 0 {
			t.Errorf("%s: nothing was uploaded to a trusted enclave", tc.name)
		}
		if len(warnings) != 1 || !strings.Contains(warnings[0], "software mode") {
			t.Errorf("%s: warnings %q; want one naming software mode", tc.name, warnings)
		}
	}
}
