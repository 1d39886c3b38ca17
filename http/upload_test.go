package http

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/cleanroom-dev/cleanroom"
	"github.com/cleanroom-dev/cleanroom/blob/fs"
	"github.com/cleanroom-dev/cleanroom/sqlite"
)

type uploadEnv struct {
	t      *testing.T
	s      *Server
	ts     *httptest.Server
	blobs  string            // the blob store's directory
	tokens map[string]string // email → API token
}

// newUploadEnv returns a server with a blob store and the users ann and bob.
func newUploadEnv(t *testing.T) *uploadEnv {
	t.Helper()
	db := sqlite.NewDB(filepath.Join(t.TempDir(), "db.sqlite"))
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	e := &uploadEnv{t: t, blobs: t.TempDir(), tokens: map[string]string{}}
	for _, email := range []string{"ann@example.com", "bob@example.com"} {
		token, hash := cleanroom.NewToken()
		if err := db.CreateUser(context.Background(), email); err != nil {
			t.Fatal(err)
		}
		if err := db.AddToken(context.Background(), email, hash); err != nil {
			t.Fatal(err)
		}
		e.tokens[email] = token
	}
	bs := fs.NewStore(e.blobs)
	if err := bs.Init(); err != nil {
		t.Fatal(err)
	}
	e.s = NewServer()
	e.s.Store, e.s.Blobs = db, bs
	e.ts = httptest.NewServer(e.s.Handler())
	t.Cleanup(e.ts.Close)
	return e
}

// call sends a request as who and returns the status and body.
func (e *uploadEnv) call(who, method, path string, body []byte) (int, string) {
	e.t.Helper()
	req, _ := http.NewRequest(method, e.ts.URL+path, bytes.NewReader(body))
	if body == nil {
		req.Body, req.ContentLength = nil, 0
	}
	req.Header.Set("Authorization", "Bearer "+e.tokens[who])
	req.Header.Set(EmailHeader, who)
	resp, err := e.ts.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// tmpFiles returns the files of uploads in progress in the blob store.
func (e *uploadEnv) tmpFiles() []string {
	e.t.Helper()
	entries, err := os.ReadDir(filepath.Join(e.blobs, ".tmp"))
	if err != nil {
		e.t.Fatal(err)
	}
	var names []string
	for _, d := range entries {
		names = append(names, d.Name())
	}
	return names
}

// noBlobs fails if a blob was committed or an upload's file is left.
func (e *uploadEnv) noBlobs() {
	e.t.Helper()
	if tmp := e.tmpFiles(); len(tmp) > 0 {
		e.t.Errorf("files left in the blob store's .tmp: %v", tmp)
	}
	if _, err := os.Stat(filepath.Join(e.blobs, "datasets")); !os.IsNotExist(err) {
		e.t.Errorf("a blob was committed (%v)", err)
	}
}

// blobFiles returns the committed blobs' files.
func (e *uploadEnv) blobFiles() []string {
	e.t.Helper()
	entries, err := os.ReadDir(filepath.Join(e.blobs, "datasets"))
	if err != nil && !os.IsNotExist(err) {
		e.t.Fatal(err)
	}
	var names []string
	for _, d := range entries {
		names = append(names, d.Name())
	}
	return names
}

func randomData(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// signIn exchanges who's token for a session and returns its cookie and
// CSRF token, as the web UI does.
func (e *uploadEnv) signIn(who string) (cookie, csrf string) {
	e.t.Helper()
	body, _ := json.Marshal(map[string]string{"email": who, "token": e.tokens[who]})
	resp, err := e.ts.Client().Post(e.ts.URL+"/api/v1/session", "application/json", bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var sess SessionResponse
	json.NewDecoder(resp.Body).Decode(&sess)
	for _, c := range resp.Cookies() {
		if c.Name == SessionCookie {
			cookie = c.Name + "=" + c.Value
		}
	}
	if resp.StatusCode != http.StatusCreated || cookie == "" || sess.CSRFToken == "" {
		e.t.Fatalf("sign in: %d", resp.StatusCode)
	}
	return cookie, sess.CSRFToken
}

// dial opens a streamed upload with the given request headers; a failed
// handshake returns its HTTP status and body.
func (e *uploadEnv) dial(h http.Header) (*websocket.Conn, int, string) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, strings.Replace(e.ts.URL, "http", "ws", 1)+"/api/v1/blobs/stream", &websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		if resp == nil {
			e.t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		return nil, resp.StatusCode, string(b)
	}
	c.SetReadLimit(1 << 20)
	return c, http.StatusSwitchingProtocols, ""
}

func (e *uploadEnv) bearer(who string) http.Header {
	return http.Header{"Authorization": {"Bearer " + e.tokens[who]}, EmailHeader: {who}}
}

// stream sends start (JSON) and then chunks as binary messages, and
// returns every message the server sent until it closed.
func stream(t *testing.T, c *websocket.Conn, start any, chunks ...[]byte) []StreamMessage {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	first, ok := start.([]byte) // sent as it is
	if !ok {
		first, _ = json.Marshal(start)
	}
	if err := c.Write(ctx, websocket.MessageText, first); err != nil {
		t.Fatal(err)
	}
	// Send while reading: the server may refuse before taking everything.
	go func() {
		for _, b := range chunks {
			if c.Write(ctx, websocket.MessageBinary, b) != nil {
				return
			}
		}
	}()
	return messages(t, c)
}

// messages returns every message the server sends until it closes.
func messages(t *testing.T, c *websocket.Conn) []StreamMessage {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var got []StreamMessage
	for {
		typ, b, err := c.Read(ctx)
		if err != nil {
			return got
		}
		var m StreamMessage
		if typ != websocket.MessageText || json.Unmarshal(b, &m) != nil {
			t.Fatalf("server sent %v %q", typ, b)
		}
		got = append(got, m)
	}
}

// lastError returns the error the server ended a stream with, or fails.
func lastError(t *testing.T, msgs []StreamMessage) ErrorResponse {
	t.Helper()
	if len(msgs) == 0 || msgs[len(msgs)-1].Error == nil {
		t.Fatalf("stream ended with %+v, want an error", msgs)
	}
	return *msgs[len(msgs)-1].Error
}

// A streamed upload, with a token or a session, stores the blob POST
// /api/v1/blobs stores for the same bytes, and reports progress on the way.
func TestUploadStream(t *testing.T) {
	e := newUploadEnv(t)
	const ann, bob = "ann@example.com", "bob@example.com"
	chunks := [][]byte{randomData(5 << 20), randomData(7<<20 + 3), randomData(1), randomData(1 << 20)}
	all := bytes.Join(chunks, nil)
	sum := sha256.Sum256(all)

	cookie, csrf := e.signIn(ann)
	c, status, body := e.dial(http.Header{"Cookie": {cookie}, "Origin": {e.ts.URL}})
	if c == nil {
		t.Fatalf("handshake with a session: %d %s", status, body)
	}
	msgs := stream(t, c, StreamStart{Size: int64(len(all)), CSRF: csrf}, chunks...)
	var received []int64
	var blob *cleanroom.Blob
	for _, m := range msgs {
		switch {
		case m.Received != nil:
			received = append(received, *m.Received)
		case m.Blob != nil:
			blob = m.Blob
		default:
			t.Errorf("unexpected message %+v", m)
		}
	}
	if blob == nil || blob.Hash != hex.EncodeToString(sum[:]) || blob.Size != int64(len(all)) || blob.UploadedBy != ann {
		t.Fatalf("stream ended with %+v, want the blob %x of %d bytes by %s", msgs, sum, len(all), ann)
	}
	if len(received) < 2 || received[len(received)-1] != int64(len(all)) {
		t.Errorf("progress %v, want several steps ending at %d", received, len(all))
	}
	for i := 1; i < len(received); i++ {
		if received[i] <= received[i-1] {
			t.Errorf("progress went backwards: %v", received)
		}
	}
	stored, err := os.ReadFile(filepath.Join(e.blobs, "datasets", blob.Hash))
	if err != nil || !bytes.Equal(stored, all) {
		t.Errorf("the stored blob differs from the bytes sent (%v)", err)
	}
	if tmp := e.tmpFiles(); len(tmp) > 0 {
		t.Errorf("files left in .tmp after the upload: %v", tmp)
	}

	status, body = e.call(bob, "POST", "/api/v1/blobs", all)
	var single cleanroom.Blob
	json.Unmarshal([]byte(body), &single)
	if status != http.StatusCreated || single.Hash != blob.Hash || single.Size != blob.Size {
		t.Errorf("POST /api/v1/blobs of the same bytes: %d %s; the stream gave %+v", status, body, blob)
	}

	// With a token no CSRF token is needed; an empty upload is the empty blob.
	c, status, body = e.dial(e.bearer(bob))
	if c == nil {
		t.Fatalf("handshake with a token: %d %s", status, body)
	}
	msgs = stream(t, c, StreamStart{Size: 0})
	if empty := sha256.Sum256(nil); len(msgs) == 0 || msgs[len(msgs)-1].Blob == nil || msgs[len(msgs)-1].Blob.Hash != hex.EncodeToString(empty[:]) {
		t.Errorf("empty upload: %+v", msgs)
	}
}

// Who may open a stream: a session from another origin, one without its
// CSRF token, a signed-out one and nobody at all are refused, and nothing
// is stored.
func TestUploadStreamRefused(t *testing.T) {
	e := newUploadEnv(t)
	const ann = "ann@example.com"
	cookie, csrf := e.signIn(ann)
	data := randomData(1000)

	if c, status, body := e.dial(http.Header{"Cookie": {cookie}, "Origin": {"http://evil.example"}}); c != nil || status != http.StatusForbidden || !strings.Contains(body, "origin http://evil.example refused") {
		t.Errorf("session cookie from another origin: %d %s, want 403", status, body)
	}
	if c, status, body := e.dial(http.Header{"Cookie": {cookie}, "Origin": {e.ts.URL}, "Sec-Fetch-Site": {"cross-site"}}); c != nil || status != http.StatusForbidden {
		t.Errorf("session cookie from another site: %d %s, want 403", status, body)
	}
	if c, status, body := e.dial(nil); c != nil || status != http.StatusUnauthorized {
		t.Errorf("no credentials: %d %s, want 401", status, body)
	}
	for _, wrong := range []string{"", csrf + "x"} {
		c, status, body := e.dial(http.Header{"Cookie": {cookie}, "Origin": {e.ts.URL}})
		if c == nil {
			t.Fatalf("handshake: %d %s", status, body)
		}
		if got := lastError(t, stream(t, c, StreamStart{Size: int64(len(data)), CSRF: wrong}, data)); got.Code != cleanroom.EFORBIDDEN || !strings.Contains(got.Message, "CSRF") {
			t.Errorf("CSRF token %q: %+v, want forbidden", wrong, got)
		}
	}
	// After sign-out the cookie opens nothing.
	req, _ := http.NewRequest("DELETE", e.ts.URL+"/api/v1/session", nil)
	req.Header.Set("Cookie", cookie)
	req.Header.Set(CSRFHeader, csrf)
	if resp, err := e.ts.Client().Do(req); err != nil || resp.StatusCode >= 300 {
		t.Fatalf("sign out: %v %v", resp, err)
	}
	if c, status, body := e.dial(http.Header{"Cookie": {cookie}, "Origin": {e.ts.URL}}); c != nil || status != http.StatusUnauthorized {
		t.Errorf("cookie after sign-out: %d %s, want 401", status, body)
	}
	e.noBlobs()
}

// Streams that go wrong are aborted with an error that says what to do,
// and leave nothing behind.
func TestUploadStreamFailures(t *testing.T) {
	e := newUploadEnv(t)
	const ann = "ann@example.com"
	e.s.MaxUploadSize = 10 << 20
	cases := []struct {
		name   string
		start  any
		chunks [][]byte
		code   string
		msg    string
	}{
		{"first message not JSON", "hello", nil, cleanroom.EINVALID, `must be JSON text {"size"`},
		{"unknown field", map[string]any{"size": 1, "name": "x"}, nil, cleanroom.EINVALID, `must be JSON text`},
		{"negative size", StreamStart{Size: -1}, nil, cleanroom.EINVALID, "negative"},
		{"over the server's limit", StreamStart{Size: 10<<20 + 1}, nil, cleanroom.ETOOLARGE, "--max-upload-size"},
		{"more than announced", StreamStart{Size: 100}, [][]byte{randomData(60), randomData(41)}, cleanroom.EINVALID, "more than the 100 bytes"},
		{"more after the JSON", []byte(`{"size": 1} {"size": 2}`), nil, cleanroom.EINVALID, `must be JSON text`},
		{"start message too long", []byte(`{"size": 1}` + strings.Repeat(" ", maxStartMessage)), nil, cleanroom.EINVALID, `must be JSON text`},
		{"binary start", randomData(10), nil, cleanroom.EINVALID, `must be JSON text`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, status, body := e.dial(e.bearer(ann))
			if c == nil {
				t.Fatalf("handshake: %d %s", status, body)
			}
			msgs := stream(t, c, tc.start, tc.chunks...)
			if got := lastError(t, msgs); got.Code != tc.code || !strings.Contains(got.Message, tc.msg) {
				t.Errorf("%+v, want %s with %q", got, tc.code, tc.msg)
			}
			waitUntil(t, "the upload is aborted", func() bool { return len(e.tmpFiles()) == 0 })
			e.noBlobs()
		})
	}

	// A connection dropped half-way: nothing is kept.
	c, _, _ := e.dial(e.bearer(ann))
	ctx := context.Background()
	first, _ := json.Marshal(StreamStart{Size: 1 << 20})
	c.Write(ctx, websocket.MessageText, first)
	c.Write(ctx, websocket.MessageBinary, randomData(1000))
	waitUntil(t, "the upload has begun", func() bool { return len(e.tmpFiles()) == 1 })
	c.CloseNow()
	waitUntil(t, "the dropped upload is aborted", func() bool { return len(e.tmpFiles()) == 0 })
	e.noBlobs()
}

// A message over the server's limit ends the stream (1009), and nothing is
// kept.
func TestUploadStreamMessageLimit(t *testing.T) {
	e := newUploadEnv(t)
	ctx := context.Background()
	c, _, _ := e.dial(e.bearer("ann@example.com"))
	if msgs := stream(t, c, StreamStart{Size: maxStreamMessage}, randomData(maxStreamMessage)); len(msgs) == 0 || msgs[len(msgs)-1].Blob == nil {
		t.Fatalf("a message of exactly %d bytes: %+v, want it stored", maxStreamMessage, msgs)
	}
	c, _, _ = e.dial(e.bearer("ann@example.com"))
	first, _ := json.Marshal(StreamStart{Size: maxStreamMessage + 1})
	c.Write(ctx, websocket.MessageText, first)
	go c.Write(ctx, websocket.MessageBinary, randomData(maxStreamMessage+1))
	var err error
	for err == nil {
		_, _, err = c.Read(ctx)
	}
	if websocket.CloseStatus(err) != websocket.StatusMessageTooBig {
		t.Errorf("a message over %d bytes: the stream ended with %v, want status 1009", maxStreamMessage, err)
	}
	waitUntil(t, "the oversize upload is aborted", func() bool { return len(e.tmpFiles()) == 0 })
	if entries, _ := os.ReadDir(filepath.Join(e.blobs, "datasets")); len(entries) != 1 {
		t.Errorf("%d blobs stored, want only the first upload's", len(entries))
	}
}

// An idle stream is aborted with a message saying so; empty messages do
// not keep it alive, and a slow link is not idle.
func TestUploadStreamIdle(t *testing.T) {
	e := newUploadEnv(t)
	const ann = "ann@example.com"
	ctx := context.Background()
	// Wide margins: test machines under load are slow.
	e.s.streamIdleTimeout = 3 * time.Second

	idle, _, _ := e.dial(e.bearer(ann))
	first, _ := json.Marshal(StreamStart{Size: 1 << 20})
	idle.Write(ctx, websocket.MessageText, first)
	idle.Write(ctx, websocket.MessageBinary, randomData(1000))
	go func() {
		for range 40 {
			if idle.Write(ctx, websocket.MessageBinary, nil) != nil {
				return
			}
			time.Sleep(250 * time.Millisecond)
		}
	}()
	if got := lastError(t, messages(t, idle)); !strings.Contains(got.Message, "no data for 3s") {
		t.Errorf("idle upload sending empty messages: %+v", got)
	}
	waitUntil(t, "the idle upload is aborted", func() bool { return len(e.tmpFiles()) == 0 })
	e.noBlobs()

	// A message arriving in pieces, each within the timeout though the
	// whole takes longer, is stored.
	c, _, _ := e.dial(e.bearer(ann))
	first, _ = json.Marshal(StreamStart{Size: 3 << 16})
	c.Write(ctx, websocket.MessageText, first)
	w, err := c.Writer(ctx, websocket.MessageBinary)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		w.Write(randomData(1 << 16)) // a frame each, past the writer's buffer
		time.Sleep(500 * time.Millisecond)
	}
	w.Close()
	if msgs := messages(t, c); len(msgs) == 0 || msgs[len(msgs)-1].Blob == nil {
		t.Errorf("slow upload ended with %+v, want the blob", msgs)
	}
}

// A user may have maxUserStreams uploads open at once; others are not held
// back by that, and a finished one makes room.
func TestUploadStreamLimit(t *testing.T) {
	e := newUploadEnv(t)
	const ann, bob = "ann@example.com", "bob@example.com"
	var open []*websocket.Conn
	for range maxUserStreams {
		c, status, body := e.dial(e.bearer(ann))
		if c == nil {
			t.Fatalf("stream %d: %d %s", len(open)+1, status, body)
		}
		open = append(open, c)
	}
	if c, status, body := e.dial(e.bearer(ann)); c != nil || status != http.StatusConflict || !strings.Contains(body, "uploads in progress") {
		t.Errorf("stream %d of one user: %d %s, want 409", maxUserStreams+1, status, body)
	}
	if c, status, body := e.dial(e.bearer(bob)); c == nil {
		t.Errorf("another user's stream: %d %s", status, body)
	}
	open[0].CloseNow()
	waitUntil(t, "a closed stream makes room", func() bool {
		c, _, _ := e.dial(e.bearer(ann))
		if c != nil {
			c.CloseNow()
		}
		return c != nil
	})
}

// The server as a whole holds at most maxStreams open, whoever opens
// them, and each one closed makes room for one more.
func TestStreamCountServerLimit(t *testing.T) {
	var sc streamCount
	users := maxStreams / maxUserStreams
	for u := range users {
		for range maxUserStreams {
			if err := sc.add(fmt.Sprintf("user%d@example.com", u)); err != nil {
				t.Fatalf("stream %d: %v", sc.total+1, err)
			}
		}
	}
	err := sc.add("newcomer@example.com")
	if cleanroom.ErrorCode(err) != cleanroom.ECONFLICT || !strings.Contains(cleanroom.ErrorMessage(err), "the server has 64 uploads in progress") {
		t.Fatalf("stream %d on the server: %v, want the server's limit", maxStreams+1, err)
	}
	sc.remove("user0@example.com")
	if err := sc.add("newcomer@example.com"); err != nil {
		t.Fatalf("after one closed: %v", err)
	}
	if err := sc.add("newcomer@example.com"); err == nil {
		t.Fatal("the room one closed stream made was given twice")
	}
}

// An upload over the server's limit is refused and nothing of it is kept.
func TestUploadSizeLimit(t *testing.T) {
	e := newUploadEnv(t)
	const ann = "ann@example.com"
	e.s.MaxUploadSize = 1000
	status, body := e.call(ann, "POST", "/api/v1/blobs", randomData(1001))
	if status != http.StatusRequestEntityTooLarge || !strings.Contains(body, "limit of 1000 B") || !strings.Contains(body, "--max-upload-size") {
		t.Errorf("single upload over the limit: %d %s", status, body)
	}
	if status, body := e.call(ann, "POST", "/api/v1/blobs", randomData(1000)); status != http.StatusCreated {
		t.Errorf("single upload at the limit: %d %s", status, body)
	}
	if files := e.tmpFiles(); len(files) != 0 {
		t.Errorf("refused uploads left %v", files)
	}
}

// An upload whose user signs out, or whose token is revoked, before it
// ends is not stored: what admitted it is checked again at the end.
func TestUploadStreamCredentialsEndMidway(t *testing.T) {
	e := newUploadEnv(t)
	const ann, bob = "ann@example.com", "bob@example.com"
	half := randomData(1 << 20)

	// A browser session signed out from another tab.
	cookie, csrf := e.signIn(ann)
	c, status, body := e.dial(http.Header{"Cookie": {cookie}, "Origin": {e.ts.URL}})
	if c == nil {
		t.Fatalf("handshake: %d %s", status, body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start, _ := json.Marshal(StreamStart{Size: 2 << 20, CSRF: csrf})
	c.Write(ctx, websocket.MessageText, start)
	c.Write(ctx, websocket.MessageBinary, half)
	req, _ := http.NewRequest("DELETE", e.ts.URL+"/api/v1/session", nil)
	req.Header.Set("Cookie", cookie)
	req.Header.Set(CSRFHeader, csrf)
	if resp, err := e.ts.Client().Do(req); err != nil || resp.StatusCode >= 300 {
		t.Fatalf("sign out: %v %v", resp, err)
	}
	c.Write(ctx, websocket.MessageBinary, half)
	if got := lastError(t, messages(t, c)); got.Code != cleanroom.EUNAUTHORIZED || !strings.Contains(got.Message, "you signed out") {
		t.Errorf("upload after sign-out: %+v, want refused", got)
	}

	// A token revoked by the operator.
	c, status, body = e.dial(e.bearer(bob))
	if c == nil {
		t.Fatalf("handshake: %d %s", status, body)
	}
	start, _ = json.Marshal(StreamStart{Size: 2 << 20})
	c.Write(ctx, websocket.MessageText, start)
	c.Write(ctx, websocket.MessageBinary, half)
	if _, err := e.s.Store.RevokeTokens(ctx, bob); err != nil {
		t.Fatal(err)
	}
	c.Write(ctx, websocket.MessageBinary, half)
	if got := lastError(t, messages(t, c)); got.Code != cleanroom.EUNAUTHORIZED || !strings.Contains(got.Message, "revoked while uploading") {
		t.Errorf("upload after revocation: %+v, want refused", got)
	}
	e.noBlobs()

	// A session that merely expires meanwhile (and is forgotten, as the
	// next request with it does) began in time: its upload is stored.
	now := time.Now()
	e.s.Now = func() time.Time { return now }
	cookie, csrf = e.signIn(ann)
	c, status, body = e.dial(http.Header{"Cookie": {cookie}, "Origin": {e.ts.URL}})
	if c == nil {
		t.Fatalf("handshake: %d %s", status, body)
	}
	start, _ = json.Marshal(StreamStart{Size: 2 << 20, CSRF: csrf})
	c.Write(ctx, websocket.MessageText, start)
	c.Write(ctx, websocket.MessageBinary, half)
	e.s.Now = func() time.Time { return now.Add(SessionTTL + time.Minute) }
	req, _ = http.NewRequest("GET", e.ts.URL+"/api/v1/session", nil)
	req.Header.Set("Cookie", cookie)
	if resp, err := e.ts.Client().Do(req); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("the expired session answers %v %v, want 401", resp, err)
	}
	c.Write(ctx, websocket.MessageBinary, half)
	if msgs := messages(t, c); len(msgs) == 0 || msgs[len(msgs)-1].Blob == nil {
		t.Errorf("upload whose session expired meanwhile: %+v, want it stored", msgs)
	}
}

// The same holds for an upload in one request: a token revoked while the
// body is still coming stores nothing.
func TestUploadRequestTokenRevokedMidway(t *testing.T) {
	e := newUploadEnv(t)
	const bob = "bob@example.com"
	body, send := io.Pipe()
	req, _ := http.NewRequest("POST", e.ts.URL+"/api/v1/blobs", body)
	req.Header = e.bearer(bob)
	done := make(chan *http.Response)
	go func() {
		resp, err := e.ts.Client().Do(req)
		if err != nil {
			t.Error(err)
		}
		done <- resp
	}()
	send.Write(randomData(1 << 20))
	// Revoked once the request was admitted: its upload file exists.
	waitUntil(t, "the upload to be admitted", func() bool { return len(e.tmpFiles()) > 0 })
	if _, err := e.s.Store.RevokeTokens(context.Background(), bob); err != nil {
		t.Fatal(err)
	}
	send.Write(randomData(1 << 20))
	send.Close()
	resp := <-done
	if resp == nil {
		return
	}
	got, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(got), "revoked while uploading") {
		t.Errorf("upload whose token was revoked midway: %d %s, want 401", resp.StatusCode, got)
	}
	e.noBlobs()
}

// A watchdog that fires after the last byte but before the commit has told
// the client nothing was stored, and so nothing is.
func TestUploadStreamIdleBeforeCommit(t *testing.T) {
	e := newUploadEnv(t)
	e.s.streamIdleTimeout = time.Second
	ended := make(chan error, 1)
	told := make(chan struct{})
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			ended <- err
			return
		}
		// The last check before the commit outlasts the watchdog: it
		// returns once the client has been told.
		_, err = e.s.receiveStream(r.Context(), c, "", func() error { <-told; return nil })
		ended <- err
	}))
	defer ts.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, strings.Replace(ts.URL, "http", "ws", 1), nil)
	if err != nil {
		t.Fatal(err)
	}
	msgs := stream(t, c, StreamStart{Size: 10}, randomData(10))
	close(told)
	if got := lastError(t, msgs); !strings.Contains(got.Message, "no data for 1s") {
		t.Errorf("the client was told %+v, want the watchdog's words", got)
	}
	if err := <-ended; err == nil || !strings.Contains(err.Error(), "idle too long") {
		t.Errorf("receiveStream = %v, want it to keep nothing", err)
	}
	e.noBlobs()
}

// spaceStore is a blob store on a disk with free bytes free (or that
// cannot tell, with err), whose writes fail with ENOSPC past full bytes
// (when full > 0).
type spaceStore struct {
	cleanroom.BlobStore
	free int64
	err  error
	full int64
}

func (s *spaceStore) FreeSpace() (int64, error) { return s.free, s.err }

func (s *spaceStore) Create(ctx context.Context) (cleanroom.BlobWriter, error) {
	bw, err := s.BlobStore.Create(ctx)
	if err != nil || s.full == 0 {
		return bw, err
	}
	return &fillingWriter{BlobWriter: bw, left: s.full}, nil
}

type fillingWriter struct {
	cleanroom.BlobWriter
	left int64
}

func (w *fillingWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > w.left {
		n, _ := w.BlobWriter.Write(p[:w.left])
		w.left = 0
		return n, &os.PathError{Op: "write", Path: "upload", Err: syscall.ENOSPC}
	}
	w.left -= int64(len(p))
	return w.BlobWriter.Write(p)
}

// An upload that would leave the disk with less than MinFreeSpace is
// refused before a byte is stored, in a request or a stream, and so is
// every upload when the free space cannot be told.
func TestUploadLeavesFreeSpace(t *testing.T) {
	e := newUploadEnv(t)
	const ann = "ann@example.com"
	store := &spaceStore{BlobStore: e.s.Blobs, free: 3 << 20}
	e.s.Blobs, e.s.MinFreeSpace = store, 1<<20
	if status, body := e.call(ann, "POST", "/api/v1/blobs", randomData(2<<20)); status != http.StatusCreated {
		t.Errorf("an upload that leaves the reserve: %d %s", status, body)
	}
	before := e.blobFiles()
	status, body := e.call(ann, "POST", "/api/v1/blobs", randomData(2<<20+1))
	if status != http.StatusRequestEntityTooLarge || !strings.Contains(body, "3 MiB free") || !strings.Contains(body, "--min-free-space") {
		t.Errorf("an upload that would eat into the reserve: %d %s; want 413 naming the free space and the flag", status, body)
	}
	c, _, _ := e.dial(e.bearer(ann))
	if msg := lastError(t, stream(t, c, StreamStart{Size: 2<<20 + 1})).Message; !strings.Contains(msg, "keeps free") {
		t.Errorf("a stream that would eat into the reserve: %q", msg)
	}

	// Uploads that each fit alone but not together: the one in progress
	// holds its size until it ends.
	ctx := context.Background()
	c, _, _ = e.dial(e.bearer(ann))
	first, _ := json.Marshal(StreamStart{Size: 2 << 20})
	c.Write(ctx, websocket.MessageText, first)
	c.Write(ctx, websocket.MessageBinary, randomData(1<<20))
	waitUntil(t, "the stream to claim its size", func() bool {
		e.s.claimMu.Lock()
		defer e.s.claimMu.Unlock()
		return e.s.claimed == 2<<20
	})
	if status, body := e.call(ann, "POST", "/api/v1/blobs", randomData(10)); status != http.StatusRequestEntityTooLarge || !strings.Contains(body, "with those in progress") {
		t.Errorf("an upload that fits alone, during one that takes the room: %d %s; want 413", status, body)
	}
	c.Write(ctx, websocket.MessageBinary, randomData(1<<20))
	if msgs := messages(t, c); len(msgs) == 0 || msgs[len(msgs)-1].Blob == nil {
		t.Fatalf("the stream in progress: %+v, want it stored", msgs)
	}
	if status, body := e.call(ann, "POST", "/api/v1/blobs", randomData(10)); status != http.StatusCreated {
		t.Errorf("an upload once the other ended: %d %s", status, body)
	}
	before = e.blobFiles()

	store.err = errors.New("statfs: input/output error")
	if status, body := e.call(ann, "POST", "/api/v1/blobs", randomData(10)); status != http.StatusInternalServerError {
		t.Errorf("an upload when the free space cannot be told: %d %s; want 500", status, body)
	}
	if after := e.blobFiles(); !slices.Equal(before, after) || len(e.tmpFiles()) != 0 {
		t.Errorf("refused uploads stored something: %v then %v, in progress %v", before, after, e.tmpFiles())
	}
}

// A disk that fills up during an upload is named as the reason, and the
// upload leaves nothing behind.
func TestUploadDiskFull(t *testing.T) {
	e := newUploadEnv(t)
	const ann = "ann@example.com"
	e.s.Blobs = &spaceStore{BlobStore: e.s.Blobs, full: 1 << 20}
	status, body := e.call(ann, "POST", "/api/v1/blobs", randomData(2<<20))
	if status != http.StatusRequestEntityTooLarge || !strings.Contains(body, "disk filled up") {
		t.Errorf("an upload that fills the disk: %d %s; want 413 saying the disk filled up", status, body)
	}
	c, _, _ := e.dial(e.bearer(ann))
	if msg := lastError(t, stream(t, c, StreamStart{Size: 2 << 20}, randomData(2<<20))).Message; !strings.Contains(msg, "disk filled up") {
		t.Errorf("a stream that fills the disk: %q", msg)
	}
	e.noBlobs()
}

// sessionsFailAfter is a store whose session lookups fail after the first
// ok ones.
type sessionsFailAfter struct {
	cleanroom.Store
	ok atomic.Int32
}

func (s *sessionsFailAfter) FindSession(ctx context.Context, idHash []byte) (*cleanroom.Session, error) {
	if s.ok.Add(-1) < 0 {
		return nil, errors.New("disk I/O error")
	}
	return s.Store.FindSession(ctx, idHash)
}

// An upload whose session cannot be looked up again at its end (to tell
// whether it was signed out meanwhile) stores nothing.
func TestUploadSessionCheckFailsClosed(t *testing.T) {
	e := newUploadEnv(t)
	cookie, csrf := e.signIn("ann@example.com")
	store := &sessionsFailAfter{Store: e.s.Store}
	store.ok.Store(1) // admission
	e.s.Store = store
	req, _ := http.NewRequest("POST", e.ts.URL+"/api/v1/blobs", bytes.NewReader(randomData(1<<20)))
	req.Header.Set("Cookie", cookie)
	req.Header.Set(CSRFHeader, csrf)
	resp, err := e.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError {
		t.Errorf("upload whose session cannot be checked at its end: %d %s, want 500", resp.StatusCode, got)
	}
	e.noBlobs()
}
