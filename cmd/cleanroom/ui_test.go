package main

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/cleanroom-dev/cleanroom"
	"github.com/cleanroom-dev/cleanroom/client"
	"github.com/cleanroom-dev/cleanroom/crypt"
)

// The browser tests drive Debian's chromium with playwright-core from
// ui/e2e. `make test` installs both and sets CLEANROOM_UI_TESTS=1, which
// turns a missing prerequisite into a failure instead of a skip.

const uiDir = "../../ui"

func chromiumPath() string {
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	return "/usr/bin/chromium"
}

// needBrowser skips (or, under make test, fails) when the browser tests
// cannot run: no node, no ui/node_modules, no chromium.
func needBrowser(t testing.TB) {
	t.Helper()
	why := ""
	if _, err := exec.LookPath("node"); err != nil {
		why = "node is not installed"
	} else if _, err := os.Stat(filepath.Join(uiDir, "node_modules", "playwright-core")); err != nil {
		why = "ui/node_modules is missing (cd ui && npm ci)"
	} else if _, err := os.Stat(chromiumPath()); err != nil {
		why = chromiumPath() + " is missing (apt-get install chromium)"
	}
	if why == "" {
		return
	}
	if os.Getenv("CLEANROOM_UI_TESTS") == "1" {
		t.Fatalf("browser tests cannot run: %s", why)
	}
	t.Skipf("browser tests skipped: %s; `make test` installs what they need", why)
}

// needUI fails when the binary under test was built without the web UI.
func needUI(t testing.TB, base string) {
	t.Helper()
	resp, err := http.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Contains(b, []byte(`id="root"`)) {
		if os.Getenv("CLEANROOM_UI_TESTS") == "1" {
			t.Fatal("the server was built without its web UI; run `make ui` first")
		}
		t.Skip("the server was built without its web UI (cd ui && npm run build)")
	}
}

// runNode runs a script of ui/e2e with env and fails the test on error.
func runNode(t testing.TB, script string, env []string, args ...string) {
	t.Helper()
	cmd := exec.Command("node", append([]string{filepath.Join("e2e", script)}, args...)...)
	cmd.Dir = uiDir
	cmd.Env = append(os.Environ(), env...)
	cmd.Env = append(cmd.Env, "CHROMIUM="+chromiumPath())
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	t.Logf("node %s (%s):\n%s", script, time.Since(start).Round(time.Millisecond), out.String())
	if err != nil {
		t.Fatalf("node %s: %v", script, err)
	}
}

// recordingProxy forwards to the server and keeps every request body and
// every request's origin and status, and what went up every upgraded
// connection (the upload stream), so a test can say what the server was
// sent.
type recordingProxy struct {
	mu       sync.Mutex
	bodies   [][]byte
	requests []recordedRequest
	conns    []*recordingConn // to the server
}

type recordedRequest struct {
	Method, Path, Origin, FetchSite string
	Cookie                          bool
	Status                          int
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(s int) { w.status = s; w.ResponseWriter.WriteHeader(s) }
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Hijack lets the proxy switch a connection to the WebSocket protocol.
func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return http.NewResponseController(w.ResponseWriter).Hijack()
}

// recordingConn keeps every byte written to the server.
type recordingConn struct {
	net.Conn
	mu   sync.Mutex
	sent []byte
}

func (c *recordingConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	c.sent = append(c.sent, b...)
	c.mu.Unlock()
	return c.Conn.Write(b)
}

func (p *recordingProxy) handler(target string) http.Handler {
	u, _ := url.Parse(target)
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			pr.Out.Host = pr.In.Host // the server sees the origin the browser used
		},
		Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			rc := &recordingConn{Conn: c}
			p.mu.Lock()
			p.conns = append(p.conns, rc)
			p.mu.Unlock()
			return rc, nil
		}},
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		sw := &statusWriter{ResponseWriter: w, status: 200}
		rp.ServeHTTP(sw, r)
		_, err := r.Cookie("cleanroom_session")
		p.mu.Lock()
		p.bodies = append(p.bodies, body)
		p.requests = append(p.requests, recordedRequest{r.Method, r.URL.Path, r.Header.Get("Origin"), r.Header.Get("Sec-Fetch-Site"), err == nil, sw.status})
		p.mu.Unlock()
	})
}

// streamedMessages returns the messages the browser sent up upload
// streams, unmasked (WebSocket frames from a browser are XORed with a
// random mask, so the plaintext would not show in their raw bytes).
func (p *recordingProxy) streamedMessages(t *testing.T) (texts, binaries [][]byte) {
	for _, c := range p.conns {
		c.mu.Lock()
		b := c.sent
		c.mu.Unlock()
		if !bytes.HasPrefix(b, []byte("GET /api/v1/blobs/stream ")) {
			continue
		}
		_, b, _ = bytes.Cut(b, []byte("\r\n\r\n"))
		for len(b) >= 2 {
			op, n, i := b[0]&0x0f, uint64(b[1]&0x7f), 2
			switch n {
			case 126:
				n, i = uint64(binary.BigEndian.Uint16(b[2:])), 4
			case 127:
				n, i = binary.BigEndian.Uint64(b[2:]), 10
			}
			if b[1]&0x80 == 0 || b[0]&0x80 == 0 || uint64(len(b)) < uint64(i)+4+n {
				t.Fatalf("upload stream: a frame the browser would not send (%x)", b[:min(len(b), 16)])
			}
			mask, payload := b[i:i+4], append([]byte(nil), b[i+4:i+4+int(n)]...)
			for j := range payload {
				payload[j] ^= mask[j%4]
			}
			switch op {
			case 1:
				texts = append(texts, payload)
			case 2:
				binaries = append(binaries, payload)
			}
			b = b[i+4+int(n):]
		}
	}
	return texts, binaries
}

// TestUIFlow runs the seed's flow in three browser contexts (ui/e2e/flow.mjs)
// and checks what came out and what the server saw.
func TestUIFlow(t *testing.T) {
	needBrowser(t)
	s := startServer(t, "")
	needUI(t, s.URL)
	users := map[string]string{}
	for _, who := range []string{"owner", "data", "analyst"} {
		c := s.addUser(who + "@example.com")
		users[who] = c.Token
	}
	rec := &recordingProxy{}
	proxy := httptest.NewServer(rec.handler(s.URL))
	defer proxy.Close()
	// Another origin on the same host: the cookie is same-site there, so
	// only the server's own checks stop its requests.
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, "<!doctype html><title>another site</title><p>another origin</p>")
	}))
	defer evil.Close()

	out := t.TempDir()
	shots := os.Getenv("CLEANROOM_UI_SCREENSHOTS")
	if shots == "" {
		shots = filepath.Join(out, "screenshots")
	} else if !filepath.IsAbs(shots) {
		shots = filepath.Join("../..", shots)
	}
	const plaintext = "hello world"
	runNode(t, "flow.mjs", []string{
		"CLEANROOM_URL=" + proxy.URL, "OUT=" + out, "SCREENSHOTS=" + shots, "EVIL_URL=" + evil.URL, "PLAINTEXT=" + plaintext,
		"OWNER_EMAIL=owner@example.com", "OWNER_TOKEN=" + users["owner"],
		"DATA_EMAIL=data@example.com", "DATA_TOKEN=" + users["data"],
		"ANALYST_EMAIL=analyst@example.com", "ANALYST_TOKEN=" + users["analyst"],
	})
	t.Logf("screenshots in %s", shots)

	zb, err := os.ReadFile(filepath.Join(out, "uppercase_text_node.zip"))
	if err != nil {
		t.Fatal(err)
	}
	zr, err := zip.NewReader(bytes.NewReader(zb), int64(len(zb)))
	if err != nil {
		t.Fatalf("downloaded zip: %v", err)
	}
	got := ""
	for _, f := range zr.File {
		if f.Name == "uppercase.txt" {
			rc, _ := f.Open()
			b, _ := io.ReadAll(rc)
			rc.Close()
			got = string(b)
		}
	}
	if !strings.Contains(got, "HELLO WORLD") || !strings.HasSuffix(got, "!") {
		t.Errorf("uppercase.txt in the zip = %q, want HELLO WORLD and the static file's suffix", got)
	}

	rec.mu.Lock()
	defer rec.mu.Unlock()
	for i, b := range rec.bodies {
		if bytes.Contains(b, []byte(plaintext)) {
			t.Errorf("request %s %s carried the plaintext", rec.requests[i].Method, rec.requests[i].Path)
		}
	}
	text, binary := rec.streamedMessages(t)
	sent := bytes.Join(binary, nil)
	for _, m := range append(text, sent) {
		if bytes.Contains(m, []byte(plaintext)) {
			t.Errorf("the upload stream carried the plaintext")
		}
	}
	// The ciphertext of "hello world" (header, sealed bytes, tag), after
	// a start message that reads back as sent: the frames were unmasked
	// right, or the check would prove nothing.
	var start struct{ Size int }
	if len(text) != 1 || json.Unmarshal(text[0], &start) != nil || start.Size != 40+len(plaintext)+16 || len(sent) != start.Size {
		t.Errorf("upload stream: text messages %q and %d bytes, want {\"size\": %d, ...} and the ciphertext", text, len(sent), 40+len(plaintext)+16)
	}
	noPlaintextUnder(t, s.DataDir, plaintext)

	crossSite := 0
	for _, r := range rec.requests {
		if r.Origin == evil.URL {
			crossSite++
			if r.Status < 400 {
				t.Errorf("cross-origin %s %s (cookie %v) answered %d", r.Method, r.Path, r.Cookie, r.Status)
			}
		}
	}
	if crossSite == 0 {
		t.Error("no cross-origin request reached the server: the check would prove nothing")
	}
}

// TestUIUploadLarge uploads a file of several parts through the web UI
// (so both seal workers, the ordering of their parts and a short last
// part are all used) and has a job hash what it finds in /input: the
// browser's ciphertext must decrypt in the enclave to the very bytes.
func TestUIUploadLarge(t *testing.T) {
	needBrowser(t)
	s := startServer(t, "")
	needUI(t, s.URL)
	owner := s.addUser("owner@example.com")
	id := publish(t, owner, &cleanroom.Definition{
		Name: "large", Owner: "owner@example.com",
		Nodes: []cleanroom.Node{
			{Name: "data", Kind: cleanroom.NodeRaw},
			{Name: "hash", Kind: cleanroom.NodePython, Dependencies: []string{"data"}, Script: `
import hashlib, os
h = hashlib.sha256(open("/input/data", "rb").read()).hexdigest()
open("/output/sum.txt", "w").write(f"{h} {os.path.getsize('/input/data')}")
`},
		},
		Participants: []cleanroom.Participant{{Email: "owner@example.com", DataOwnerOf: []string{"data"}, AnalystOf: []string{"hash"}}},
	})
	// Four parts of 32 segments at most, the last a few bytes.
	data := make([]byte, 3*32*1048560+12345)
	rand.Read(data)
	file := filepath.Join(t.TempDir(), "large.bin")
	os.WriteFile(file, data, 0o600)
	runNode(t, "bench.mjs", []string{"CLEANROOM_URL=" + s.URL, "EMAIL=" + owner.Email, "TOKEN=" + owner.Token, "DCR=" + id, "NODE=data", "FILE=" + file, "SERVER_PID=" + strconv.Itoa(s.cmd.Process.Pid)})

	sum := sha256.Sum256(data)
	want := fmt.Sprintf("%x %d", sum, len(data))
	if got := resultFiles(t, owner, runJob(t, owner, id, "hash"))["sum.txt"]; got != want {
		t.Errorf("the job read %q from the browser's upload, want %q", got, want)
	}
}

// rawNodeRoom adds owner@example.com to s and publishes a clean room of one
// raw data node, "data", whose data owner that user is.
func rawNodeRoom(t testing.TB, s *testServer, name string) (owner *client.Client, id string) {
	t.Helper()
	owner = s.addUser("owner@example.com")
	return owner, publish(t, owner, &cleanroom.Definition{
		Name: name, Owner: owner.Email,
		Nodes:        []cleanroom.Node{{Name: "data", Kind: cleanroom.NodeRaw}},
		Participants: []cleanroom.Participant{{Email: owner.Email, DataOwnerOf: []string{"data"}}},
	})
}

// uploadFails has the owner upload content to the data node of room id in
// the browser, through the page at url, and checks the page shows want
// next to the node and that nothing was published or stored.
func uploadFails(t *testing.T, s *testServer, url string, owner *client.Client, id string, content []byte, want string, env ...string) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "data.bin")
	os.WriteFile(file, content, 0o600)
	runNode(t, "upload-refused.mjs", append([]string{
		"CLEANROOM_URL=" + url, "EMAIL=" + owner.Email, "TOKEN=" + owner.Token, "DCR=" + id, "NODE=data", "FILE=" + file, "WANT=" + want,
	}, env...))
	if dcr, err := owner.DCR(context.Background(), id); err != nil || len(dcr.Datasets) != 0 {
		t.Errorf("after a failed upload the clean room has datasets %+v (%v)", dcr, err)
	}
	if entries, _ := os.ReadDir(filepath.Join(s.DataDir, "blobs", "datasets")); len(entries) != 0 {
		t.Errorf("a failed upload left %d blobs", len(entries))
	}
}

// TestUIUploadRefused uploads a file over the server's limit from the
// browser: the server's message shows next to the node and nothing is
// kept or published.
func TestUIUploadRefused(t *testing.T) {
	needBrowser(t)
	s := startServer(t, "", "--max-upload-size", "1KiB")
	needUI(t, s.URL)
	owner, id := rawNodeRoom(t, s, "limit")
	uploadFails(t, s, s.URL, owner, id, bytes.Repeat([]byte("x"), 4096),
		"larger than this server's limit of 1 KiB; nothing was stored (the operator sets the limit with `cleanroom serve --max-upload-size`)")
}

// TestUIUploadProxyWithoutWebSockets puts the server behind a reverse
// proxy that drops the WebSocket upgrade, as one set up for plain HTTP
// does: the page must say so and what its operator must change, not only
// that the connection failed, and nothing is stored.
func TestUIUploadProxyWithoutWebSockets(t *testing.T) {
	needBrowser(t)
	s := startServer(t, "")
	needUI(t, s.URL)
	owner, id := rawNodeRoom(t, s, "proxied")
	target, _ := url.Parse(s.URL)
	rp := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(target)
		pr.Out.Host = pr.In.Host
		// What a proxy without WebSocket configuration forwards: a plain GET.
		pr.Out.Header.Del("Upgrade")
		pr.Out.Header.Del("Connection")
	}}
	var upgradesAsked atomic.Int32
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "" {
			upgradesAsked.Add(1)
		}
		rp.ServeHTTP(w, r)
	}))
	defer proxy.Close()
	uploadFails(t, s, proxy.URL, owner, id, []byte("hello world"),
		"does not pass WebSocket connections on. Its operator must let GET /api/v1/blobs/stream upgrade to a WebSocket")
	if upgradesAsked.Load() == 0 {
		t.Error("the page never asked for a WebSocket: the test proves nothing")
	}
}

// TestUIUploadUntrustedEnclave: a page shown an enclave on a platform it
// cannot verify, or sealing with another HPKE suite, uploads nothing and
// seals no key, and says why next to the node.
func TestUIUploadUntrustedEnclave(t *testing.T) {
	needBrowser(t)
	s := startServer(t, "")
	needUI(t, s.URL)
	owner, id := rawNodeRoom(t, s, "untrusted")
	genuine, err := owner.Enclave(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	target, _ := url.Parse(s.URL)
	rp := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(target); pr.Out.Host = pr.In.Host }}
	platform := func(a *cleanroom.Attestation) { a.Platform = "sev-snp" }
	for _, tc := range []struct {
		change func(*cleanroom.Attestation)
		want   string
		// changedLater serves the page the true attestation first, as if
		// the enclave changed while the page was open: the page lets the
		// user try, and the upload itself must refuse.
		changedLater bool
	}{
		{platform, `runs on platform "sev-snp", which this page cannot verify; nothing was uploaded`, false},
		{func(a *cleanroom.Attestation) { a.AEAD = 0x0003 }, "seals with HPKE suite (0x0020, 0x0001, 0x0003), but this page only with (0x0020, 0x0001, 0x0001); nothing was uploaded", false},
		{platform, `runs on platform "sev-snp", which this page cannot verify; nothing was uploaded`, true},
	} {
		forged := *genuine
		tc.change(&forged)
		var asked atomic.Int32
		proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/api/v1/enclave" {
				if asked.Add(1) == 1 && tc.changedLater {
					json.NewEncoder(w).Encode(genuine)
				} else {
					json.NewEncoder(w).Encode(forged)
				}
				return
			}
			rp.ServeHTTP(w, r)
		}))
		if tc.changedLater {
			uploadFails(t, s, proxy.URL, owner, id, []byte("hello world"), tc.want)
		} else {
			// The page shows why before anyone tries: no upload is possible.
			uploadFails(t, s, proxy.URL, owner, id, []byte("hello world"), tc.want, "BLOCKED=1")
		}
		proxy.Close()
	}
}

// TestUIUploadTooManyAtOnce: a data owner who already has as many uploads
// open as the server allows one user gets the server's words in the page
// (the browser hides why a WebSocket handshake failed; the page asks).
func TestUIUploadTooManyAtOnce(t *testing.T) {
	needBrowser(t)
	s := startServer(t, "")
	needUI(t, s.URL)
	owner, id := rawNodeRoom(t, s, "busy")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	header := http.Header{"Authorization": {"Bearer " + owner.Token}, "X-Cleanroom-Email": {owner.Email}}
	for i := range 8 { // the server's limit per user
		c, _, err := websocket.Dial(ctx, strings.Replace(s.URL, "http", "ws", 1)+"/api/v1/blobs/stream", &websocket.DialOptions{HTTPHeader: header})
		if err != nil {
			t.Fatalf("upload stream %d: %v", i+1, err)
		}
		defer c.CloseNow()
	}
	uploadFails(t, s, s.URL, owner, id, []byte("hello world"),
		"you have 8 uploads in progress, the most one user may have at once; wait for one to finish")
}

// TestUICrypto checks the browser's encryption against Go's: the shared
// vectors and RFC 9180 in the browser, a Go ciphertext decrypted there,
// and a browser ciphertext and sealed key opened here.
func TestUICrypto(t *testing.T) {
	needBrowser(t)
	dir := t.TempDir()
	// Three segments, the last partial, so segment boundaries are crossed.
	plain := make([]byte, 2*1048560+12345)
	rand.Read(plain)
	key, _ := crypt.NewKey()
	var ct bytes.Buffer
	w, err := crypt.NewEncryptWriter(&ct, key, crypt.DatasetAD)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(plain)
	w.Close()
	os.WriteFile(filepath.Join(dir, "go.ct"), ct.Bytes(), 0o600)
	enclave, _ := crypt.GeneratePrivateKey()
	sum := sha256.Sum256(plain)
	dcrID := strings.Repeat("ab", 32)
	const browserSize = 1048520 + 1048560 + 1 // three segments, the last one byte
	// An audit log as the server sends it, with what the hash must escape
	// and times whose JSON drops trailing zeros, for the browser to verify.
	var audit []cleanroom.AuditEntry
	for i, actor := range []string{"owner@example.com", "o'brien&co@example.com", "data<at>@example.com"} {
		e := cleanroom.AuditEntry{Seq: int64(i + 1), At: cleanroom.AuditTime(time.Date(2026, 1, 2, 3, 4, 5, 120000000+i*456000, time.UTC)),
			Actor: actor, Action: cleanroom.AuditDatasetPublished, Node: "input_data_node", Detail: "caf\u00e9 \u2028 line"}
		if i > 0 {
			e.Prev = audit[i-1].Hash
		}
		e.Hash = e.ComputeHash(dcrID)
		audit = append(audit, e)
	}
	facts, _ := json.Marshal(map[string]any{
		"key": hex.EncodeToString(key), "plaintext_sha256": hex.EncodeToString(sum[:]), "plaintext_size": len(plain),
		"enclave_public_key": hex.EncodeToString(enclave.PublicKey()), "dcr_id": dcrID, "node": "input_data_node", "browser_plaintext_size": browserSize,
		"audit_log": audit,
	})
	os.WriteFile(filepath.Join(dir, "go.json"), facts, 0o600)

	runNode(t, "crypto.mjs", nil, dir)

	var got struct{ ManifestHash, Key, Sealed string }
	b, err := os.ReadFile(filepath.Join(dir, "browser.json"))
	if err != nil {
		t.Fatal(err)
	}
	json.Unmarshal(b, &struct {
		ManifestHash *string `json:"manifest_hash"`
		Key          *string `json:"key"`
		Sealed       *string `json:"sealed"`
	}{&got.ManifestHash, &got.Key, &got.Sealed})
	bct, _ := os.ReadFile(filepath.Join(dir, "browser.ct"))
	if h, _, _ := crypt.ManifestHash(bytes.NewReader(bct)); h != got.ManifestHash {
		t.Errorf("browser manifest hash %s, Go computes %s", got.ManifestHash, h)
	}
	if int64(len(bct)) != crypt.CiphertextSize(browserSize) {
		t.Errorf("browser ciphertext is %d bytes, want %d", len(bct), crypt.CiphertextSize(browserSize))
	}
	bkey, _ := hex.DecodeString(got.Key)
	r, err := crypt.NewDecryptReader(bytes.NewReader(bct), bkey, crypt.DatasetAD)
	if err != nil {
		t.Fatal(err)
	}
	pt, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("Go cannot decrypt the browser's ciphertext: %v", err)
	}
	if len(pt) != browserSize {
		t.Fatalf("browser plaintext is %d bytes, want %d", len(pt), browserSize)
	}
	for i, c := range pt {
		if c != byte(i%251) {
			t.Fatalf("browser plaintext differs at byte %d", i)
		}
	}
	sealed, _ := base64.StdEncoding.DecodeString(got.Sealed)
	opened, err := enclave.OpenDatasetKey(dcrID, "input_data_node", got.ManifestHash, sealed)
	if err != nil || !bytes.Equal(opened, bkey) {
		t.Errorf("Go cannot open the key the browser sealed: %v", err)
	}
	if _, err := enclave.OpenDatasetKey(dcrID, "other_node", got.ManifestHash, sealed); err == nil {
		t.Error("the browser's sealed key opens for another node")
	}
}

// TestUIEditor runs ui/e2e/editor.mjs: a table node with a test dataset,
// SQL, Python and R computations made and tested in the editor, the
// validation report of a bad CSV, and the SQL and R runs, whose zips it
// checks here.
func TestUIEditor(t *testing.T) {
	needBrowser(t)
	s := startServer(t, "")
	needUI(t, s.URL)
	users := map[string]string{}
	for _, who := range []string{"owner", "data", "analyst"} {
		users[who] = s.addUser(who + "@example.com").Token
	}
	out := t.TempDir()
	shots := os.Getenv("CLEANROOM_UI_SCREENSHOTS")
	if shots == "" {
		shots = filepath.Join(out, "screenshots")
	} else if !filepath.IsAbs(shots) {
		shots = filepath.Join("../..", shots)
	}
	shots = filepath.Join(shots, "editor")
	runNode(t, "editor.mjs", []string{
		"CLEANROOM_URL=" + s.URL, "OUT=" + out, "SCREENSHOTS=" + shots,
		"TEST_CSV=ann,34\nbob,17\ncid,52\n", "BAD_CSV=ann,34\nbob,old\n", "GOOD_CSV=ann,34\nbob,17\ncid,52\ndee,41\n",
		"OWNER_EMAIL=owner@example.com", "OWNER_TOKEN=" + users["owner"],
		"DATA_EMAIL=data@example.com", "DATA_TOKEN=" + users["data"],
		"ANALYST_EMAIL=analyst@example.com", "ANALYST_TOKEN=" + users["analyst"],
	})
	// The analyst deleted r_stats's result and logs in the page.
	analyst := client.New(s.URL, "analyst@example.com", users["analyst"])
	rooms, err := analyst.DCRs(context.Background())
	if err != nil || len(rooms) != 1 {
		t.Fatalf("the analyst's clean rooms: %v %v", rooms, err)
	}
	jobs, err := analyst.Jobs(context.Background(), rooms[0].ID, "r_stats")
	if err != nil || len(jobs) != 1 || jobs[0].ResultDeletedAt == nil {
		t.Fatalf("r_stats's runs: %+v %v; want one, its result deleted", jobs, err)
	}
	for _, key := range []string{cleanroom.JobResultKey(jobs[0].ID), cleanroom.JobLogsKey(jobs[0].ID)} {
		if _, err := os.Stat(filepath.Join(s.DataDir, "blobs", key)); err == nil {
			t.Errorf("%s is still stored after the page deleted it", key)
		}
	}
	// The name column is hashed: the SQL sees, and sorts, SHA-256s.
	var adults []string
	for _, row := range []string{"ann,34", "cid,52", "dee,41"} {
		name, age, _ := strings.Cut(row, ",")
		adults = append(adults, fmt.Sprintf("%x,%s\n", sha256.Sum256([]byte(name)), age))
	}
	slices.Sort(adults)
	for name, want := range map[string]map[string]string{
		"adults":  {"dataset.csv": strings.Join(adults, "")},
		"r_stats": {"mean.txt": "36\n"},
	} {
		b, err := os.ReadFile(filepath.Join(out, name+".zip"))
		if err != nil {
			t.Fatal(err)
		}
		files := unzip(t, b)
		for f, content := range want {
			if files[f] != content {
				t.Errorf("%s.zip: %s = %q, want %q (files %v)", name, f, files[f], content, files)
			}
		}
	}
}

// TestUIAccessibility runs ui/e2e/a11y.mjs on the sign-in page, the clean
// rooms list, each tab of the draft editor and a published clean room's
// overview as its data owner and its analyst: every control has an
// accessible name, Tab reaches every control of the list and the editor
// with a visible focus indicator, and at 1280x800 and 390x844 the page
// neither scrolls sideways nor clips text nor shows text under 12 px.
func TestUIAccessibility(t *testing.T) {
	needBrowser(t)
	s := startServer(t, "")
	needUI(t, s.URL)
	users := map[string]string{}
	for _, who := range []string{"owner", "data", "analyst"} {
		users[who] = s.addUser(who + "@example.com").Token
	}
	shots := os.Getenv("CLEANROOM_UI_SCREENSHOTS")
	if shots == "" {
		shots = filepath.Join(t.TempDir(), "screenshots")
	} else if !filepath.IsAbs(shots) {
		shots = filepath.Join("../..", shots)
	}
	shots = filepath.Join(shots, "a11y")
	runNode(t, "a11y.mjs", []string{
		"CLEANROOM_URL=" + s.URL, "SCREENSHOTS=" + shots,
		"OWNER_EMAIL=owner@example.com", "OWNER_TOKEN=" + users["owner"],
		"DATA_EMAIL=data@example.com", "DATA_TOKEN=" + users["data"],
		"ANALYST_EMAIL=analyst@example.com", "ANALYST_TOKEN=" + users["analyst"],
	})
	t.Logf("screenshots in %s", shots)
}

// TestServeWithoutUI builds the server as `go build` does on a machine
// without Node (no http/uidist/app: the build is hidden from the compiler
// with an overlay) and checks that it serves the page saying how to build
// the UI, and the API.
func TestServeWithoutUI(t *testing.T) {
	hide := map[string]string{}
	filepath.WalkDir("../../http/uidist/app", func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			abs, _ := filepath.Abs(path)
			hide[abs] = "" // deleted
		}
		return nil
	})
	overlay := filepath.Join(t.TempDir(), "overlay.json")
	b, _ := json.Marshal(map[string]any{"Replace": hide})
	os.WriteFile(overlay, b, 0o644)
	bin := filepath.Join(t.TempDir(), "cleanroom")
	if out, err := exec.Command("go", "build", "-overlay", overlay, "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build without the UI: %v\n%s", err, out)
	}
	s := startServerOf(t, bin, "", "--worker-bin", filepath.Join(filepath.Dir(binPath), "cleanroom-worker"))
	for _, path := range []string{"/", "/dcrs/abc"} {
		resp, err := http.Get(s.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !bytes.Contains(body, []byte("built without its web UI")) || !bytes.Contains(body, []byte("make build")) || bytes.Contains(body, []byte(`id="root"`)) {
			t.Errorf("GET %s: %d\n%s", path, resp.StatusCode, body)
		}
	}
	resp, err := http.Get(s.URL + "/api/v1/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("the API without the UI: GET /api/v1/openapi.json %d", resp.StatusCode)
	}
}
