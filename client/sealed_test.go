package client

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cleanroom-dev/cleanroom"
	"github.com/cleanroom-dev/cleanroom/crypt"
)

// sealedServer answers sealed downloads of job "job" as the server does
// (http/sealed.go), with plaintext report as both its result and the
// validation report of node "people" of the clean room whose id it
// returns, after change alters the ciphertext
// or the sealed key.
func sealedServer(t *testing.T, report []byte, change func(ct, sealed []byte) ([]byte, []byte)) (*Client, string) {
	t.Helper()
	key := bytes.Repeat([]byte{1}, crypt.KeySize)
	ad := crypt.ResultAD("job")
	var ct bytes.Buffer
	w, _ := crypt.NewEncryptWriter(&ct, key, ad)
	w.Write(report)
	w.Close()
	def := &cleanroom.Definition{Name: "sealed", Owner: "a@example.com"}
	canonical, _ := def.Canonical()
	dcrID := cleanroom.DefinitionID(canonical)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/v1/dcrs/" + dcrID:
			json.NewEncoder(w).Encode(cleanroom.DCRView{DCR: &cleanroom.DCR{ID: dcrID, Definition: def}, Datasets: []*cleanroom.Dataset{{Node: "people", ValidationJob: "job"}}})
			return
		case "/api/v1/jobs/job":
			json.NewEncoder(w).Encode(cleanroom.Job{ID: "job", State: cleanroom.JobSucceeded})
			return
		}
		pub, _ := base64.StdEncoding.DecodeString(r.Header.Get(recipientHeader))
		fileKey, _ := crypt.FileKey(key, ct.Bytes()[:crypt.HeaderSize], ad)
		sealed, err := crypt.Seal(pub, crypt.DownloadKeyInfo(ad), fileKey)
		if err != nil {
			t.Errorf("seal: %v", err)
		}
		body, sealed := change(bytes.Clone(ct.Bytes()), sealed)
		w.Header().Set(sealedKeyHeader, base64.StdEncoding.EncodeToString(sealed))
		w.Write(body)
	}))
	t.Cleanup(ts.Close)
	return New(ts.URL, "a@example.com", "t"), dcrID
}

// The Go client opens a sealed download, and refuses one whose ciphertext
// was changed or cut, whose key was changed, or that came without a key,
// for a result and for a validation report. A cut at a segment boundary
// is caught too: the last segment is sealed as the last.
func TestSealedDownload(t *testing.T) {
	// A JSON value that ends in the first segment, padded into a second.
	report := append([]byte(`{"valid":true,"rows":4}`), bytes.Repeat([]byte(" "), 1<<20)...)
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		change func(ct, sealed []byte) ([]byte, []byte)
		ok     bool
	}{
		{"as sent", func(ct, sealed []byte) ([]byte, []byte) { return ct, sealed }, true},
		{"a ciphertext byte changed", func(ct, sealed []byte) ([]byte, []byte) { ct[100] ^= 1; return ct, sealed }, false},
		{"the last segment cut off", func(ct, sealed []byte) ([]byte, []byte) { return ct[:1<<20], sealed }, false},
		{"the sealed key changed", func(ct, sealed []byte) ([]byte, []byte) { sealed[40] ^= 1; return ct, sealed }, false},
		{"no sealed key", func(ct, _ []byte) ([]byte, []byte) { return ct, nil }, false},
	} {
		c, dcrID := sealedServer(t, report, tc.change)
		var got bytes.Buffer
		_, err := c.Result(ctx, "job", &got)
		if tc.ok && (err != nil || !bytes.Equal(got.Bytes(), report)) {
			t.Errorf("result %s: %v", tc.name, err)
		}
		if !tc.ok && err == nil {
			t.Errorf("result %s: no error", tc.name)
		}
		rep, err := c.ValidationReport(ctx, dcrID, "people")
		if tc.ok && (err != nil || !rep.Valid || rep.Rows != 4) {
			t.Errorf("report %s: %+v, %v", tc.name, rep, err)
		}
		if !tc.ok && err == nil {
			t.Errorf("report %s: no error", tc.name)
		}
		if tc.name == "the last segment cut off" && err != nil && !errors.Is(err, crypt.ErrIntegrity) {
			t.Errorf("report %s: %v, want an integrity error", tc.name, err)
		}
		if tc.name == "no sealed key" && err != nil && !strings.Contains(err.Error(), "no key sealed to this client") {
			t.Errorf("report %s: %v", tc.name, err)
		}
	}
}
