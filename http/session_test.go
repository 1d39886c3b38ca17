package http

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cleanroom-dev/cleanroom"
	"github.com/cleanroom-dev/cleanroom/sqlite"
)

// newSessionServer returns a test server with one user and its token,
// configured by configure before it serves.
func newSessionServer(t testing.TB, tls bool, configure ...func(*Server)) (*httptest.Server, *sqlite.DB, string) {
	t.Helper()
	db := sqlite.NewDB(filepath.Join(t.TempDir(), "db.sqlite"))
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ctx := context.Background()
	token, hash := cleanroom.NewToken()
	if err := db.CreateUser(ctx, "ann@example.com"); err != nil {
		t.Fatal(err)
	}
	if err := db.AddToken(ctx, "ann@example.com", hash); err != nil {
		t.Fatal(err)
	}
	s := NewServer()
	s.Store = db
	for _, f := range configure {
		f(s)
	}
	var ts *httptest.Server
	if tls {
		ts = httptest.NewTLSServer(s.Handler())
	} else {
		ts = httptest.NewServer(s.Handler())
	}
	t.Cleanup(ts.Close)
	return ts, db, token
}

type call struct {
	method, path, body string
	header             map[string]string
	cookie             *http.Cookie
}

func do(t testing.TB, ts *httptest.Server, c call) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(c.method, ts.URL+c.path, strings.NewReader(c.body))
	for k, v := range c.header {
		req.Header.Set(k, v)
	}
	if c.cookie != nil {
		req.AddCookie(c.cookie)
	}
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return resp, b.String()
}

func signIn(t testing.TB, ts *httptest.Server, token string) (*http.Cookie, SessionResponse) {
	t.Helper()
	resp, body := do(t, ts, call{method: "POST", path: "/api/v1/session", body: `{"email":"ann@example.com","token":"` + token + `"}`, header: map[string]string{"Sec-Fetch-Site": "same-origin"}})
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("sign in: %d %s", resp.StatusCode, body)
	}
	var sr SessionResponse
	json.Unmarshal([]byte(body), &sr)
	for _, c := range resp.Cookies() {
		if c.Name == SessionCookie {
			return c, sr
		}
	}
	t.Fatal("sign in set no session cookie")
	return nil, sr
}

func TestSessionCookieFlags(t *testing.T) {
	for _, tc := range []struct{ tls, behindHTTPS bool }{{false, false}, {true, false}, {false, true}} {
		ts, _, token := newSessionServer(t, tc.tls, func(s *Server) { s.BehindHTTPS = tc.behindHTTPS })
		c, sr := signIn(t, ts, token)
		if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || c.MaxAge <= 0 || c.Secure != (tc.tls || tc.behindHTTPS) {
			t.Errorf("%+v: cookie %+v; want HttpOnly, SameSite=Strict, Path=/, a Max-Age, Secure only under TLS (direct or through a proxy)", tc, c)
		}
		if sr.Email != "ann@example.com" || len(sr.CSRFToken) < 32 || time.Until(sr.ExpiresAt) > SessionTTL {
			t.Errorf("session response %+v", sr)
		}
		if strings.Contains(c.Value, token) {
			t.Error("the cookie carries the API token")
		}
		for _, path := range []string{"/", "/api/v1/openapi.json", "/api/v1/nothing"} {
			resp, _ := do(t, ts, call{method: "GET", path: path})
			if got, want := resp.Header.Get("Strict-Transport-Security") != "", tc.tls || tc.behindHTTPS; got != want {
				t.Errorf("%+v: GET %s sends Strict-Transport-Security: %v, want %v (only over HTTPS)", tc, path, got, want)
			}
		}
	}
}

func TestSessionSignInRefused(t *testing.T) {
	ts, _, token := newSessionServer(t, false)
	for _, tc := range []struct {
		body string
		want int
	}{
		{`{"email":"ann@example.com","token":"crt_wrong"}`, 401},
		{`{"email":"bob@example.com","token":"` + token + `"}`, 401},
		{`{"email":"ann@example.com","token":""}`, 400},
	} {
		resp, body := do(t, ts, call{method: "POST", path: "/api/v1/session", body: tc.body})
		if resp.StatusCode != tc.want || len(resp.Cookies()) != 0 {
			t.Errorf("%s: %d %s, cookies %v; want %d and no cookie", tc.body, resp.StatusCode, body, resp.Cookies(), tc.want)
		}
	}
	// A sign-in posted by another site's page (login CSRF) is refused.
	resp, _ := do(t, ts, call{method: "POST", path: "/api/v1/session", body: `{"email":"ann@example.com","token":"` + token + `"}`, header: map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "http://evil.example"}})
	if resp.StatusCode != 403 {
		t.Errorf("cross-site sign-in: %d, want 403", resp.StatusCode)
	}
}

func TestSessionCSRF(t *testing.T) {
	ts, _, token := newSessionServer(t, false)
	c, sr := signIn(t, ts, token)
	draft := `{"name":"x","owner":"ann@example.com","nodes":[],"participants":[]}`
	host := strings.TrimPrefix(ts.URL, "http://")
	for _, tc := range []struct {
		name   string
		c      call
		status int
	}{
		{"read with the cookie", call{method: "GET", path: "/api/v1/me", header: map[string]string{"Sec-Fetch-Site": "same-origin"}}, 200},
		{"session read back", call{method: "GET", path: "/api/v1/session"}, 200},
		{"write without the CSRF token", call{method: "POST", path: "/api/v1/drafts", body: draft, header: map[string]string{"Origin": ts.URL}}, 403},
		{"write with a wrong CSRF token", call{method: "POST", path: "/api/v1/drafts", body: draft, header: map[string]string{CSRFHeader: "x" + sr.CSRFToken}}, 403},
		{"write from another site", call{method: "POST", path: "/api/v1/drafts", body: draft, header: map[string]string{CSRFHeader: sr.CSRFToken, "Sec-Fetch-Site": "cross-site"}}, 403},
		{"write from a sibling subdomain", call{method: "POST", path: "/api/v1/drafts", body: draft, header: map[string]string{CSRFHeader: sr.CSRFToken, "Sec-Fetch-Site": "same-site"}}, 403},
		{"write from another origin", call{method: "POST", path: "/api/v1/drafts", body: draft, header: map[string]string{CSRFHeader: sr.CSRFToken, "Origin": "http://evil.example"}}, 403},
		{"read from another site", call{method: "GET", path: "/api/v1/me", header: map[string]string{"Sec-Fetch-Site": "cross-site"}}, 403},
		{"write from the UI", call{method: "POST", path: "/api/v1/drafts", body: draft, header: map[string]string{CSRFHeader: sr.CSRFToken, "Sec-Fetch-Site": "same-origin", "Origin": "http://" + host}}, 201},
	} {
		tc.c.cookie = c
		resp, body := do(t, ts, tc.c)
		if resp.StatusCode != tc.status {
			t.Errorf("%s: %d %s, want %d", tc.name, resp.StatusCode, body, tc.status)
		}
	}
	// Bearer-token clients are unaffected by the browser rules.
	resp, body := do(t, ts, call{method: "POST", path: "/api/v1/drafts", body: draft, header: map[string]string{"Authorization": "Bearer " + token, EmailHeader: "ann@example.com"}})
	if resp.StatusCode != 201 {
		t.Errorf("bearer write: %d %s", resp.StatusCode, body)
	}
}

func TestSessionSignOut(t *testing.T) {
	ts, _, token := newSessionServer(t, false)
	c, sr := signIn(t, ts, token)
	if resp, _ := do(t, ts, call{method: "DELETE", path: "/api/v1/session", cookie: c}); resp.StatusCode != 403 {
		t.Errorf("sign-out without the CSRF token: %d, want 403", resp.StatusCode)
	}
	resp, _ := do(t, ts, call{method: "DELETE", path: "/api/v1/session", cookie: c, header: map[string]string{CSRFHeader: sr.CSRFToken}})
	if resp.StatusCode != 204 {
		t.Fatalf("sign-out: %d", resp.StatusCode)
	}
	if len(resp.Cookies()) != 1 || resp.Cookies()[0].MaxAge >= 0 {
		t.Errorf("sign-out does not clear the cookie: %v", resp.Cookies())
	}
	if resp, body := do(t, ts, call{method: "GET", path: "/api/v1/me", cookie: c}); resp.StatusCode != 401 {
		t.Errorf("old cookie after sign-out: %d %s, want 401", resp.StatusCode, body)
	}
}

func TestSessionEndsWithToken(t *testing.T) {
	ts, db, token := newSessionServer(t, false)
	c, _ := signIn(t, ts, token)
	if _, err := db.RevokeTokens(context.Background(), "ann@example.com"); err != nil {
		t.Fatal(err)
	}
	if resp, body := do(t, ts, call{method: "GET", path: "/api/v1/me", cookie: c}); resp.StatusCode != 401 {
		t.Errorf("cookie of a revoked token: %d %s, want 401", resp.StatusCode, body)
	}
}

func TestSessionExpires(t *testing.T) {
	db := sqlite.NewDB(filepath.Join(t.TempDir(), "db.sqlite"))
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	token, hash := cleanroom.NewToken()
	db.CreateUser(context.Background(), "ann@example.com")
	db.AddToken(context.Background(), "ann@example.com", hash)
	now := time.Now()
	s := NewServer()
	s.Store, s.Now = db, func() time.Time { return now }
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	c, _ := signIn(t, ts, token)
	now = now.Add(SessionTTL + time.Second)
	if resp, _ := do(t, ts, call{method: "GET", path: "/api/v1/me", cookie: c}); resp.StatusCode != 401 {
		t.Errorf("expired session: %d, want 401", resp.StatusCode)
	}
}

// A session is kept in the store: another server on the same store (or
// this one after a restart) knows it and its CSRF token, and a sign-out on
// one holds on the other.
func TestSessionSharedByServers(t *testing.T) {
	ts, db, token := newSessionServer(t, false)
	c, sr := signIn(t, ts, token)
	other := NewServer()
	other.Store = db
	ts2 := httptest.NewServer(other.Handler())
	defer ts2.Close()
	draft := `{"name":"x","owner":"ann@example.com","nodes":[],"participants":[]}`
	if resp, body := do(t, ts2, call{method: "POST", path: "/api/v1/drafts", body: draft, cookie: c, header: map[string]string{CSRFHeader: sr.CSRFToken}}); resp.StatusCode != 201 {
		t.Errorf("the session on another server: %d %s, want 201", resp.StatusCode, body)
	}
	if resp, _ := do(t, ts2, call{method: "DELETE", path: "/api/v1/session", cookie: c, header: map[string]string{CSRFHeader: sr.CSRFToken}}); resp.StatusCode != 204 {
		t.Fatalf("sign-out on the other server: %d", resp.StatusCode)
	}
	if resp, body := do(t, ts, call{method: "GET", path: "/api/v1/me", cookie: c}); resp.StatusCode != 401 {
		t.Errorf("the cookie on the first server after a sign-out on the other: %d %s, want 401", resp.StatusCode, body)
	}
}

// The store holds no usable cookie or CSRF token.
func TestSessionStoredAsHash(t *testing.T) {
	ts, db, token := newSessionServer(t, false)
	c, sr := signIn(t, ts, token)
	stored, err := db.FindSession(context.Background(), sessionIDHash(c.Value))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.FindSession(context.Background(), []byte(c.Value)); cleanroom.ErrorCode(err) != cleanroom.ENOTFOUND {
		t.Errorf("the session is found by its plain id: %v", err)
	}
	// What is stored, in any usual encoding, is neither the cookie, nor the
	// CSRF token, nor the API token.
	var stores []string
	for _, b := range [][]byte{stored.IDHash, stored.TokenHash} {
		stores = append(stores, string(b), hex.EncodeToString(b), base64.RawURLEncoding.EncodeToString(b), base64.StdEncoding.EncodeToString(b))
	}
	for _, secret := range []string{c.Value, sr.CSRFToken, token} {
		if slices.Contains(stores, secret) || strings.Contains(stored.Email, secret) {
			t.Errorf("the stored session %+v holds a secret", stored)
		}
	}
}

// Behind a proxy that ends TLS, a browser write must come from the https://
// origin, as under TLS.
func TestSessionBehindHTTPSOrigin(t *testing.T) {
	ts, _, token := newSessionServer(t, false, func(s *Server) { s.BehindHTTPS = true })
	c, sr := signIn(t, ts, token)
	host := strings.TrimPrefix(ts.URL, "http://")
	draft := `{"name":"x","owner":"ann@example.com","nodes":[],"participants":[]}`
	for origin, want := range map[string]int{"http://" + host: 403, "https://" + host: 201} {
		resp, body := do(t, ts, call{method: "POST", path: "/api/v1/drafts", body: draft, cookie: c, header: map[string]string{CSRFHeader: sr.CSRFToken, "Origin": origin}})
		if resp.StatusCode != want {
			t.Errorf("write from %s: %d %s, want %d", origin, resp.StatusCode, body, want)
		}
	}
}

// A user may have maxUserSessions; past them, signing in is refused with
// the reason, until one is signed out.
func TestSessionLimit(t *testing.T) {
	ts, _, token := newSessionServer(t, false)
	var last *http.Cookie
	var lastSR SessionResponse
	for range maxUserSessions {
		last, lastSR = signIn(t, ts, token)
	}
	resp, body := do(t, ts, call{method: "POST", path: "/api/v1/session", body: `{"email":"ann@example.com","token":"` + token + `"}`})
	if resp.StatusCode != http.StatusConflict || !strings.Contains(body, "sign out of one") {
		t.Errorf("sign-in past the limit: %d %s, want 409 saying to sign out of one", resp.StatusCode, body)
	}
	do(t, ts, call{method: "DELETE", path: "/api/v1/session", cookie: last, header: map[string]string{CSRFHeader: lastSR.CSRFToken}})
	signIn(t, ts, token)
}

// failingSessions is a store whose session lookups fail.
type failingSessions struct{ cleanroom.Store }

func (failingSessions) FindSession(context.Context, []byte) (*cleanroom.Session, error) {
	return nil, errors.New("disk I/O error")
}

// A session that cannot be looked up admits nothing.
func TestSessionLookupFailsClosed(t *testing.T) {
	var s *Server
	ts, _, token := newSessionServer(t, false, func(srv *Server) { s = srv })
	c, _ := signIn(t, ts, token)
	s.Store = failingSessions{s.Store}
	if resp, body := do(t, ts, call{method: "GET", path: "/api/v1/me", cookie: c}); resp.StatusCode != 500 {
		t.Errorf("a session that cannot be looked up: %d %s, want 500", resp.StatusCode, body)
	}
}

// Expired sessions are forgotten keepExpiredSessions after they expire,
// not before (an upload begun in one may still be arriving).
func TestExpiredSessionsForgotten(t *testing.T) {
	now := time.Now()
	var s *Server
	ts, db, token := newSessionServer(t, false, func(srv *Server) {
		s = srv
		srv.Now = func() time.Time { return now }
	})
	c, _ := signIn(t, ts, token)
	stored := func() bool {
		_, err := db.FindSession(context.Background(), sessionIDHash(c.Value))
		return err == nil
	}
	now = now.Add(SessionTTL + keepExpiredSessions - time.Minute)
	if n, err := s.forgetExpiredSessions(context.Background()); err != nil || n != 0 || !stored() {
		t.Errorf("within keepExpiredSessions of its expiry: forgot %d, %v; want it kept", n, err)
	}
	now = now.Add(2 * time.Minute)
	if n, err := s.forgetExpiredSessions(context.Background()); err != nil || n != 1 || stored() {
		t.Errorf("past keepExpiredSessions: forgot %d, %v; want it gone", n, err)
	}
}

func TestUIServing(t *testing.T) {
	ts, _, _ := newSessionServer(t, false)
	for _, p := range []string{"/", "/dcrs/abc", "/drafts/x/edit"} {
		resp, body := do(t, ts, call{method: "GET", path: p})
		csp := resp.Header.Get("Content-Security-Policy")
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || !strings.Contains(body, "cleanroom") {
			t.Errorf("GET %s: %d %s", p, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		if !strings.Contains(csp, "frame-ancestors 'none'") || strings.Contains(csp, "unsafe-") || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: security headers %v", p, resp.Header)
		}
		if strings.Contains(body, nonceMark) {
			t.Errorf("GET %s: nonce placeholder left in the page", p)
		}
	}
	if resp, body := do(t, ts, call{method: "GET", path: "/api/v1/nothing"}); resp.StatusCode != 404 || !strings.Contains(body, `"code":"not_found"`) {
		t.Errorf("unknown API path: %d %s", resp.StatusCode, body)
	}
	if resp, _ := do(t, ts, call{method: "GET", path: "/.gitignore"}); strings.Contains(resp.Header.Get("Content-Type"), "octet") {
		t.Errorf("dot files are served")
	}
}

// BenchmarkAuthenticate: what a browser's session cookie costs a request
// against an API token (go test ./http -run '^$' -bench Authenticate).
func BenchmarkAuthenticate(b *testing.B) {
	ts, _, token := newSessionServer(b, false)
	cookie, _ := signIn(b, ts, token)
	for _, tc := range []struct {
		name string
		call call
	}{
		{"bearer", call{method: "GET", path: "/api/v1/me", header: map[string]string{"Authorization": "Bearer " + token, EmailHeader: "ann@example.com"}}},
		{"cookie", call{method: "GET", path: "/api/v1/me", header: map[string]string{"Sec-Fetch-Site": "same-origin"}, cookie: cookie}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				if resp, body := do(b, ts, tc.call); resp.StatusCode != http.StatusOK {
					b.Fatalf("%d %s", resp.StatusCode, body)
				}
			}
		})
	}
}
