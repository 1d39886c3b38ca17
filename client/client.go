// Package client is the Go SDK of cleanroom: it speaks the HTTP API and
// encrypts datasets on the caller's machine before they leave it.
package client

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/cleanroom-dev/cleanroom"
	"github.com/cleanroom-dev/cleanroom/crypt"
)

// DefaultURL is the server a client talks to when none is given.
const DefaultURL = "http://127.0.0.1:8080"

// emailHeader must match the server's http.EmailHeader.
const emailHeader = "X-Cleanroom-Email"

// The headers of downloads sealed to the client (http/sealed.go).
const (
	recipientHeader = "X-Cleanroom-Recipient"
	sealedKeyHeader = "X-Cleanroom-Sealed-Key"
)

// statusCodes maps HTTP statuses back to error codes for responses without
// a JSON error body; it mirrors the server's table.
var statusCodes = map[int]string{
	http.StatusBadRequest:            cleanroom.EINVALID,
	http.StatusUnauthorized:          cleanroom.EUNAUTHORIZED,
	http.StatusForbidden:             cleanroom.EFORBIDDEN,
	http.StatusNotFound:              cleanroom.ENOTFOUND,
	http.StatusConflict:              cleanroom.ECONFLICT,
	http.StatusRequestEntityTooLarge: cleanroom.ETOOLARGE,
}

// Client calls one cleanroom server as one user.
type Client struct {
	URL   string
	Email string
	Token string
	HTTP  *http.Client
	// Warn, if set, is told once what the user must know before trusting
	// the server with a dataset: that its enclave runs in software.
	Warn func(message string)
	// TrustedWorkers, if not empty, pins the workers (name -> measurement)
	// a server may run: an upload to a server that runs any other worker
	// is refused before anything leaves this machine.
	TrustedWorkers map[string]string

	warnSoftware sync.Once
}

// New returns a client; url "" means DefaultURL.
func New(url, email, token string) *Client {
	if url == "" {
		url = DefaultURL
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	// Uploads stream gigabytes; the default 4 KiB buffer would cost a
	// system call per 4 KiB.
	t.WriteBufferSize = 256 << 10
	return &Client{URL: strings.TrimRight(url, "/"), Email: email, Token: token, HTTP: &http.Client{Transport: t}}
}

// do sends a request and decodes a JSON response into out (if not nil).
// API errors come back as *cleanroom.Error with the server's code and message.
func (c *Client) do(ctx context.Context, method, path string, body any, out any) error {
	var r io.Reader
	var contentType string
	switch b := body.(type) {
	case nil:
	case io.Reader:
		r, contentType = b, "application/octet-stream"
	case []byte:
		r, contentType = bytes.NewReader(b), "application/json"
	default:
		buf, err := json.Marshal(b)
		if err != nil {
			return err
		}
		r, contentType = bytes.NewReader(buf), "application/json"
	}
	resp, err := c.send(ctx, method, path, r, contentType, -1)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		return nil
	}
	return decode(resp.Body, out)
}

func decode(r io.Reader, out any) error {
	if err := json.NewDecoder(r).Decode(out); err != nil {
		return fmt.Errorf("server sent an unreadable response: %w", err)
	}
	return nil
}

// send sends a request and returns the response if its status is 2xx.
func (c *Client) send(ctx context.Context, method, path string, body io.Reader, contentType string, length int64, header ...http.Header) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.URL+path, body)
	if err != nil {
		return nil, err
	}
	for _, h := range header {
		maps.Copy(req.Header, h)
	}
	if length >= 0 {
		req.ContentLength = length
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	req.Header.Set(emailHeader, c.Email)
	resp, err := c.HTTP.Do(req)
	if err != nil {
		hint := ""
		if _, ok := errors.AsType[x509.UnknownAuthorityError](err); ok {
			hint = "; if the server's certificate comes from your own certificate authority, trust it: on Linux set SSL_CERT_FILE to that authority's PEM file, elsewhere add it to the system's certificate store"
		}
		return nil, fmt.Errorf("cannot reach the cleanroom server at %s: %w%s", c.URL, err, hint)
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var e struct{ Code, Message string }
	if json.Unmarshal(answer, &e) == nil && e.Code != "" {
		return nil, &cleanroom.Error{Code: e.Code, Message: e.Message}
	}
	code, ok := statusCodes[resp.StatusCode]
	if !ok {
		code = cleanroom.EINTERNAL
	}
	msg := fmt.Sprintf("%s %s: server answered %s", method, path, resp.Status)
	if said := plainLine(answer); said != "" {
		msg += ": " + said
	}
	return nil, &cleanroom.Error{Code: code, Message: msg}
}

// plainLine returns the first line of a plain-text answer that is not the
// API's (a proxy's, or Go's "Client sent an HTTP request to an HTTPS
// server."), or "" when it is not plain text.
func plainLine(body []byte) string {
	line, _, _ := strings.Cut(strings.TrimSpace(string(body)), "\n")
	line = strings.TrimSpace(line)
	if line == "" || len(line) > 200 || !utf8.ValidString(line) || strings.HasPrefix(line, "<") || strings.ContainsFunc(line, unicode.IsControl) {
		return "" // not text, or text that could drive the terminal it is printed on
	}
	return line
}

// Me returns the email the server authenticated.
func (c *Client) Me(ctx context.Context) (string, error) {
	var out struct{ Email string }
	err := c.do(ctx, "GET", "/api/v1/me", nil, &out)
	return out.Email, err
}

// WorkerSpec is a worker the server runs computations on, as
// GET /api/v1/enclave/specs lists it (the fields the client checks).
type WorkerSpec struct {
	Name        string `json:"name"`
	Measurement string `json:"measurement"`
}

// Workers returns the workers the server runs computations on.
func (c *Client) Workers(ctx context.Context) ([]WorkerSpec, error) {
	var out struct {
		Workers []WorkerSpec `json:"workers"`
	}
	return out.Workers, c.do(ctx, "GET", "/api/v1/enclave/specs", nil, &out)
}

// checkWorkers refuses a server that runs a worker TrustedWorkers does not
// pin: any of them may run the computations that read a dataset.
func (c *Client) checkWorkers(ctx context.Context) error {
	if len(c.TrustedWorkers) == 0 {
		return nil
	}
	served, err := c.Workers(ctx)
	if err != nil {
		return err
	}
	if len(served) == 0 {
		return fmt.Errorf("%s lists no workers, so none can be checked against the trusted ones; nothing was sent", c.URL)
	}
	for _, w := range served {
		if c.TrustedWorkers[w.Name] != w.Measurement {
			return fmt.Errorf("%s runs worker %q with measurement %s, which is not one you trust; nothing was sent. If the server was updated, check its new workers (`cleanroom specs` on its machine) and trust them", c.URL, w.Name, w.Measurement)
		}
	}
	return nil
}

// Enclave returns the enclave's attestation document.
func (c *Client) Enclave(ctx context.Context) (*cleanroom.Attestation, error) {
	var out cleanroom.Attestation
	return &out, c.do(ctx, "GET", "/api/v1/enclave", nil, &out)
}

// PublishDCR publishes a definition and returns its id. Publishing the same
// definition again returns the same id with Created false.
func (c *Client) PublishDCR(ctx context.Context, def *cleanroom.Definition) (*cleanroom.PublishResult, error) {
	canonical, err := def.Canonical()
	if err != nil {
		return nil, err
	}
	var out cleanroom.PublishResult
	if err := c.do(ctx, "POST", "/api/v1/dcrs", canonical, &out); err != nil {
		return nil, err
	}
	if err := checkID(def, out.ID); err != nil {
		return nil, err
	}
	return &out, nil
}

// checkID verifies that id is the hash of def: a server that answers
// otherwise stored something else than what the participants agreed to.
func checkID(def *cleanroom.Definition, id string) error {
	canonical, err := def.Canonical()
	if err != nil {
		return err
	}
	if want := cleanroom.DefinitionID(canonical); id != want {
		return fmt.Errorf("server returned clean room id %s, but the definition hashes to %s", id, want)
	}
	return nil
}

// DCR returns a published clean room and its datasets.
func (c *Client) DCR(ctx context.Context, id string) (*cleanroom.DCRView, error) {
	var out cleanroom.DCRView
	if err := c.do(ctx, "GET", "/api/v1/dcrs/"+url.PathEscape(id), nil, &out); err != nil {
		return nil, err
	}
	if err := checkID(out.Definition, id); err != nil {
		return nil, err
	}
	return &out, nil
}

// AuditLog returns a clean room's audit log once it has checked the chain
// (cleanroom.VerifyAuditLog): an error wrapping cleanroom.ErrAuditLog
// says the server's copy was changed.
func (c *Client) AuditLog(ctx context.Context, dcrID string) ([]cleanroom.AuditEntry, error) {
	var log []cleanroom.AuditEntry
	if err := c.do(ctx, "GET", "/api/v1/dcrs/"+url.PathEscape(dcrID)+"/audit", nil, &log); err != nil {
		return nil, err
	}
	if err := cleanroom.VerifyAuditLog(dcrID, log); err != nil {
		return nil, err
	}
	return log, nil
}

// DCRs lists the clean rooms the user owns or takes part in.
func (c *Client) DCRs(ctx context.Context) ([]cleanroom.DCRSummary, error) {
	var out []cleanroom.DCRSummary
	return out, c.do(ctx, "GET", "/api/v1/dcrs", nil, &out)
}

func nodePath(dcrID, node string) string {
	return "/api/v1/dcrs/" + url.PathEscape(dcrID) + "/nodes/" + url.PathEscape(node)
}

// RemoveDataset removes the dataset published to a data node.
func (c *Client) RemoveDataset(ctx context.Context, dcrID, node string) error {
	return c.do(ctx, "DELETE", nodePath(dcrID, node)+"/dataset", nil, nil)
}

// Run starts a computation and returns its queued job.
func (c *Client) Run(ctx context.Context, dcrID, node string) (*cleanroom.Job, error) {
	var out cleanroom.Job
	return &out, c.do(ctx, "POST", nodePath(dcrID, node)+"/jobs", nil, &out)
}

// Jobs lists the jobs of a compute node, newest first.
func (c *Client) Jobs(ctx context.Context, dcrID, node string) ([]*cleanroom.Job, error) {
	var out []*cleanroom.Job
	return out, c.do(ctx, "GET", nodePath(dcrID, node)+"/jobs", nil, &out)
}

// Job returns a job's status.
func (c *Client) Job(ctx context.Context, id string) (*cleanroom.Job, error) {
	var out cleanroom.Job
	return &out, c.do(ctx, "GET", "/api/v1/jobs/"+url.PathEscape(id), nil, &out)
}

// Cancel cancels a queued or running job.
func (c *Client) Cancel(ctx context.Context, id string) error {
	return c.do(ctx, "POST", "/api/v1/jobs/"+url.PathEscape(id)+"/cancel", nil, nil)
}

// DeleteResult deletes an ended job's result and logs for good; only the
// analyst who ran the job may.
func (c *Client) DeleteResult(ctx context.Context, id string) error {
	return c.do(ctx, "DELETE", "/api/v1/jobs/"+url.PathEscape(id)+"/result", nil, nil)
}

// Wait returns the job once it has ended. The server holds each request
// until the job ends or the wait passes, so the end is seen at once.
func (c *Client) Wait(ctx context.Context, id string) (*cleanroom.Job, error) {
	for {
		var job cleanroom.Job
		if err := c.do(ctx, "GET", "/api/v1/jobs/"+url.PathEscape(id)+"?wait=30s", nil, &job); err != nil {
			return nil, err
		}
		if job.State.Done() {
			return &job, nil
		}
	}
}

// Logs returns a job's logs, where the node's log policy releases them.
func (c *Client) Logs(ctx context.Context, id string) (string, error) {
	rc, err := c.sealedDownload(ctx, "/api/v1/jobs/"+url.PathEscape(id)+"/logs", id, crypt.LogsAD)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return "", fmt.Errorf("download logs of job %s: %w", id, err)
	}
	return string(b), nil
}

// Result writes the zip of a succeeded job to w and returns its size. On
// an error w may hold a part of it, which must be discarded.
func (c *Client) Result(ctx context.Context, id string, w io.Writer) (int64, error) {
	rc, err := c.sealedDownload(ctx, "/api/v1/jobs/"+url.PathEscape(id)+"/result", id, crypt.ResultAD)
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	n, err := io.Copy(w, rc)
	if err != nil {
		return n, fmt.Errorf("download result of job %s: %w", id, err)
	}
	return n, nil
}

// sealedDownload fetches a job's stored result, logs or validation report
// (path) sealed to a key made for this download (http/sealed.go) and
// returns it decrypted as it is read; ad is its associated data, of the
// job jobID. The plaintext is authenticated segment by segment: a
// tampered or cut download, or a key for another ciphertext, fails a read,
// possibly after earlier segments were returned, so a caller writing a
// file must discard it on error.
func (c *Client) sealedDownload(ctx context.Context, path, jobID string, ad func(string) []byte) (io.ReadCloser, error) {
	recipient, err := crypt.GeneratePrivateKey()
	if err != nil {
		return nil, err
	}
	h := http.Header{}
	h.Set(recipientHeader, base64.StdEncoding.EncodeToString(recipient.PublicKey()))
	resp, err := c.send(ctx, "GET", path, nil, "", -1, h)
	if err != nil {
		return nil, err
	}
	sealed, err := base64.StdEncoding.DecodeString(resp.Header.Get(sealedKeyHeader))
	if err != nil || len(sealed) == 0 {
		resp.Body.Close()
		return nil, fmt.Errorf("the server sent no key sealed to this client (%s): it, or a proxy between, is older than this client or drops the header", sealedKeyHeader)
	}
	fileKey, err := recipient.Open(crypt.DownloadKeyInfo(ad(jobID)), sealed)
	if err != nil {
		resp.Body.Close()
		return nil, fmt.Errorf("the key the server sent does not open job %s's download: %w", jobID, err)
	}
	r, err := crypt.NewFileKeyDecryptReader(resp.Body, fileKey)
	if err != nil {
		resp.Body.Close()
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{r, resp.Body}, nil
}
