package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cleanroom-dev/cleanroom"
	"github.com/cleanroom-dev/cleanroom/client"
)

// selfSignedCert writes a certificate for 127.0.0.1 and its key to dir and
// returns their paths.
func selfSignedCert(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "cleanroom test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600)
	return certFile, keyFile
}

// browserSignIn signs c's user in as the web UI does, with hc, and returns
// the session cookie, failing unless the server made one.
func browserSignIn(t *testing.T, hc *http.Client, url string, c *client.Client) *http.Cookie {
	t.Helper()
	body := `{"email": "` + c.Email + `", "token": "` + c.Token + `"}`
	resp, err := hc.Post(url+"/api/v1/session", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || len(resp.Cookies()) != 1 {
		t.Fatalf("sign-in: %d, cookies %v; want 201 and a session cookie", resp.StatusCode, resp.Cookies())
	}
	return resp.Cookies()[0]
}

// TestServeTLS: with --tls-cert and --tls-key the server speaks HTTPS only,
// its session cookies are Secure, and the CLI reaches it when it trusts
// the certificate (SSL_CERT_FILE, as for any Go program).
func TestServeTLS(t *testing.T) {
	certFile, keyFile := selfSignedCert(t, t.TempDir())
	s := startServer(t, "", "--tls-cert", certFile, "--tls-key", keyFile)
	if !strings.HasPrefix(s.URL, "https://") {
		t.Fatalf("server says it listens on %s, want https://", s.URL)
	}
	owner := s.addUser("owner@example.com")

	pool := x509.NewCertPool()
	pemBytes, _ := os.ReadFile(certFile)
	pool.AppendCertsFromPEM(pemBytes)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	if c := browserSignIn(t, hc, s.URL, owner); !c.Secure {
		t.Errorf("sign-in over HTTPS: cookie %v; want it Secure", c)
	}
	if resp, err := http.Get("http://" + strings.TrimPrefix(s.URL, "https://") + "/api/v1/openapi.json"); err == nil && resp.StatusCode == http.StatusOK {
		t.Error("the HTTPS server answered plain HTTP")
	}

	cmd := exec.Command(binPath, "dcrs")
	cmd.Env = append(os.Environ(), "CLEANROOM_URL="+s.URL, "CLEANROOM_EMAIL="+owner.Email, "CLEANROOM_TOKEN="+owner.Token, "SSL_CERT_FILE="+certFile)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("cleanroom dcrs over HTTPS, trusting the certificate: %v\n%s", err, out)
	}
	if _, stderr, err := s.cli(owner, "dcrs"); err == nil || !strings.Contains(stderr, "set SSL_CERT_FILE") {
		t.Errorf("cleanroom dcrs over HTTPS, not trusting the certificate: %v\n%s\nwant a hint to set SSL_CERT_FILE", err, stderr)
	}
	plain := *s
	plain.URL = "http://" + strings.TrimPrefix(s.URL, "https://")
	if _, stderr, err := plain.cli(owner, "dcrs"); err == nil || !strings.Contains(stderr, "HTTP request to an HTTPS server") {
		t.Errorf("cleanroom dcrs over plain HTTP to the HTTPS server: %v\n%s\nwant the server's words", err, stderr)
	}
}

// TestServeTLSRefused: a certificate without its key, or with another
// key, is refused before the server listens, saying what to pass.
func TestServeTLSRefused(t *testing.T) {
	certFile, _ := selfSignedCert(t, t.TempDir())
	_, otherKey := selfSignedCert(t, t.TempDir())
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--tls-cert", certFile}, "--tls-cert and --tls-key go together"},
		{[]string{"--tls-cert", certFile, "--tls-key", otherKey}, "--tls-key its PEM private key"},
		{[]string{"--tls-cert", filepath.Join(t.TempDir(), "missing.pem"), "--tls-key", otherKey}, "load the TLS certificate"},
	} {
		cmd := exec.Command(binPath, append([]string{"serve", "--addr", "127.0.0.1:0", "--data", t.TempDir(), "--worker-bin", filepath.Join(filepath.Dir(binPath), "cleanroom-worker")}, tc.args...)...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		done := make(chan error, 1)
		go func() { done <- cmd.Run() }()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(stderr.String(), tc.want) || strings.Contains(stdout.String(), "listening") {
				t.Errorf("serve %v: %v\nstdout: %s\nstderr: %s\nwant the error to say %q", tc.args, err, stdout.String(), stderr.String(), tc.want)
			}
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			t.Errorf("serve %v did not refuse; stdout: %s", tc.args, stdout.String())
		}
	}
}

// TestSessionSurvivesRestart: a browser signed in before the server
// restarts is still signed in after, and one that signed out is not.
func TestSessionSurvivesRestart(t *testing.T) {
	s := startServer(t, "")
	owner := s.addUser("owner@example.com")
	get := func(url string, c *http.Cookie) int {
		req, _ := http.NewRequest("GET", url+"/api/v1/session", nil)
		req.AddCookie(c)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	kept, dropped := browserSignIn(t, http.DefaultClient, s.URL, owner), browserSignIn(t, http.DefaultClient, s.URL, owner)
	var csrf struct {
		CSRFToken string `json:"csrf_token"`
	}
	req, _ := http.NewRequest("GET", s.URL+"/api/v1/session", nil)
	req.AddCookie(dropped)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(resp.Body).Decode(&csrf)
	resp.Body.Close()
	req, _ = http.NewRequest("DELETE", s.URL+"/api/v1/session", nil)
	req.AddCookie(dropped)
	req.Header.Set("X-Cleanroom-CSRF", csrf.CSRFToken)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("sign-out: %v %v", resp, err)
	}

	s.kill()
	s = startServer(t, s.DataDir)
	if got := get(s.URL, kept); got != http.StatusOK {
		t.Errorf("a session from before the restart: %d, want 200", got)
	}
	if got := get(s.URL, dropped); got != http.StatusUnauthorized {
		t.Errorf("a session signed out before the restart: %d, want 401", got)
	}
}

// TestServeBehindHTTPS: behind a proxy that ends TLS, the session cookie
// the proxy passes back is marked Secure.
func TestServeBehindHTTPS(t *testing.T) {
	s := startServer(t, "", "--behind-https")
	owner := s.addUser("owner@example.com")
	if c := browserSignIn(t, http.DefaultClient, s.URL, owner); !c.Secure {
		t.Errorf("sign-in through the proxy: cookie %v; want it Secure", c)
	}
}

// TestServeTLSRenewal: certificate files replaced while the server runs
// are served from the next connection on, without a restart; a pair that
// does not load is logged and the one before goes on being served.
func TestServeTLSRenewal(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := selfSignedCert(t, dir)
	s := startServer(t, "", "--tls-cert", certFile, "--tls-key", keyFile)
	served := func() []byte {
		t.Helper()
		conn, err := tls.Dial("tcp", strings.TrimPrefix(s.URL, "https://"), &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].Raw
	}
	fileCert := func(f string) []byte {
		b, _ := os.ReadFile(f)
		block, _ := pem.Decode(b)
		return block.Bytes
	}
	replace := func(src, dst string, at time.Time) {
		b, _ := os.ReadFile(src)
		os.WriteFile(dst, b, 0o600)
		os.Chtimes(dst, at, at)
	}
	first := fileCert(certFile)
	if !bytes.Equal(served(), first) {
		t.Fatal("the server does not serve --tls-cert")
	}

	// A new certificate without its key: refused, the old one stays.
	newCert, newKey := selfSignedCert(t, t.TempDir())
	replace(newCert, certFile, time.Now().Add(time.Minute))
	if !bytes.Equal(served(), first) {
		t.Error("a certificate whose key did not come with it is served")
	}
	// The server's log reaches the test through a pipe, after the handshake.
	waitFor(t, "the server to log that the new pair does not load", func() bool {
		return strings.Contains(s.log.String(), "do not load")
	})
	// Then its key: the renewed certificate is served.
	replace(newKey, keyFile, time.Now().Add(2*time.Minute))
	if got := served(); !bytes.Equal(got, fileCert(newCert)) {
		t.Error("the renewed certificate is not served")
	}
}

// TestServeMinFreeSpace: serve --min-free-space reaches the server, and a
// user whose upload would eat into it is told why, with the flag to ask for.
func TestServeMinFreeSpace(t *testing.T) {
	s := startServer(t, "", "--min-free-space", "1000TiB")
	owner, id := rawNodeRoom(t, s, "data")
	file := filepath.Join(t.TempDir(), "data.txt")
	os.WriteFile(file, []byte("hello world"), 0o644)
	_, stderr, err := s.cli(owner, "upload", "--dcr", id, "--node", "data", file)
	if err == nil || !strings.Contains(stderr, "keeps free") || !strings.Contains(stderr, "--min-free-space") {
		t.Errorf("an upload into the reserve: %v\n%s\nwant it refused, naming the reserve and the flag", err, stderr)
	}
}

// TestServeJobCPUs: serve --job-cpus reaches the sandbox, and an analyst
// whose computation it slowed is told so with the job, not left guessing;
// one it did not slow gets no such warning.
func TestServeJobCPUs(t *testing.T) {
	s := startServer(t, "", "--job-cpus", "0.25")
	waitFor(t, "the server log to state the CPU limit", func() bool { return strings.Contains(s.log.String(), "cpus=0.25") })
	analyst := s.addUser("analyst@example.com")
	id := publish(t, analyst, &cleanroom.Definition{
		Name: "cpu", Owner: analyst.Email,
		Nodes: []cleanroom.Node{
			{Name: "spin", Kind: cleanroom.NodePython, Script: `
import os, time
for _ in range(2):
    if os.fork() == 0:
        end = time.monotonic() + 2
        while time.monotonic() < end:
            pass
        os._exit(0)
for _ in range(2):
    os.wait()
open("/output/done", "w").write("done")
`},
			{Name: "idle", Kind: cleanroom.NodePython, Script: "import time\ntime.sleep(0.5)\n"},
		},
		Participants: []cleanroom.Participant{{Email: analyst.Email, AnalystOf: []string{"spin", "idle"}}},
	})
	spin := runJob(t, analyst, id, "spin")
	if spin.State != cleanroom.JobSucceeded || len(spin.Warnings) != 1 || !strings.Contains(spin.Warnings[0], `computation "spin" ran slower than it could: the CPU limit of 0.25 CPUs held it back`) {
		t.Errorf("a computation the limit slowed: %s, warnings %q; want succeeded with a warning naming the limit", spin.State, spin.Warnings)
	}
	if idle := runJob(t, analyst, id, "idle"); idle.State != cleanroom.JobSucceeded || len(idle.Warnings) != 0 {
		t.Errorf("a computation the limit did not slow: %s, warnings %q; want none", idle.State, idle.Warnings)
	}
}

// TestTrustedWorkers: `cleanroom upload --trusted-workers FILE` uploads
// only to a server whose workers are all pinned in FILE, as `cleanroom
// specs --json` wrote it; a worker that changed stops the upload before
// anything is sent.
func TestTrustedWorkers(t *testing.T) {
	s := startServer(t, "")
	owner, id := rawNodeRoom(t, s, "pinned")
	dir := t.TempDir()
	data := filepath.Join(dir, "data.txt")
	os.WriteFile(data, []byte("hello world"), 0o644)
	specs, err := exec.Command(binPath, "specs", "--json").Output()
	if err != nil {
		t.Fatal(err)
	}
	trusted := filepath.Join(dir, "trusted.json")
	os.WriteFile(trusted, specs, 0o644)
	if _, stderr, err := s.cli(owner, "upload", "--dcr", id, "--node", "data", "--trusted-workers", trusted, data); err != nil {
		t.Fatalf("upload with every worker trusted: %v\n%s", err, stderr)
	}

	var doc struct {
		Workers []map[string]any `json:"workers"`
	}
	json.Unmarshal(specs, &doc)
	changed := doc.Workers[1]["measurement"].(string)
	doc.Workers[1]["measurement"] = strings.Repeat("0", 64)
	b, _ := json.Marshal(doc)
	os.WriteFile(trusted, b, 0o644)
	before, _ := os.ReadDir(filepath.Join(s.DataDir, "blobs", "datasets"))
	_, stderr, err := s.cli(owner, "upload", "--dcr", id, "--node", "data", "--trusted-workers", trusted, data)
	want := fmt.Sprintf("runs worker %q with measurement %s, which is not one you trust; nothing was sent", doc.Workers[1]["name"], changed)
	if err == nil || !strings.Contains(stderr, want) {
		t.Errorf("upload with a worker not trusted: %v\n%s\nwant %q", err, stderr, want)
	}
	if after, _ := os.ReadDir(filepath.Join(s.DataDir, "blobs", "datasets")); len(after) != len(before) {
		t.Errorf("a refused upload stored %d blobs", len(after)-len(before))
	}
	os.WriteFile(trusted, []byte(`{"workers": []}`), 0o644)
	if _, stderr, err := s.cli(owner, "upload", "--dcr", id, "--node", "data", "--trusted-workers", trusted, data); err == nil || !strings.Contains(stderr, "is not a list of workers") {
		t.Errorf("upload with an empty trusted list: %v\n%s", err, stderr)
	}
}
