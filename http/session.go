package http

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/cleanroom-dev/cleanroom"
)

// Browser sessions. The web UI signs in once with an email and API token
// and then carries a session cookie instead of the token, so the token
// never has to live in the page's storage.
//
// Sessions are kept in the store, so a restart of the server signs no one
// out and every server sharing the store knows them. Only the SHA-256 of
// a session id is stored, so the database yields no usable cookie. A
// session lasts SessionTTL from sign-in, without sliding, and dies with
// the token it was made from: every request checks that the token is
// still live. A user may have maxUserSessions at once.
//
// Cross-site request forgery: the cookie is SameSite=Strict, requests the
// browser labels as coming from another site (Sec-Fetch-Site) or another
// origin (Origin) are refused, and every cookie-authenticated request that
// changes state must carry the session's CSRF token in CSRFHeader. The UI
// reads that token from the session endpoints and keeps it in memory only;
// another origin cannot read it, as the API sends no CORS headers. The
// token is derived from the session id (session.csrf), so it is not stored.
// Requests with a bearer token (the CLI and the SDKs) carry no cookie and
// are not affected.

// SessionCookie is the name of the cookie that carries a browser session.
const SessionCookie = "cleanroom_session"

// CSRFHeader carries a session's CSRF token on cookie-authenticated
// requests that change state.
const CSRFHeader = "X-Cleanroom-CSRF"

// SessionTTL is how long a session lasts after sign-in.
const SessionTTL = 12 * time.Hour

// maxUserSessions bounds the live sessions of one user, so that signing
// in over and over cannot fill the store.
const maxUserSessions = 100

// keepExpiredSessions is how long an expired session stays stored before
// the pruner forgets it: an upload that began in time is still stored if
// it ends within it, and stillAdmitted takes a session that is gone for
// one signed out.
const keepExpiredSessions = 24 * time.Hour

// session is a live browser session.
type session struct {
	id      string // the cookie's value
	email   string
	expires time.Time
}

func sessionIDHash(id string) []byte {
	h := sha256.Sum256([]byte(id))
	return h[:]
}

// csrf returns the session's CSRF token: a hash of its id under another
// label than the stored one, so that neither gives the other.
func (s *session) csrf() string {
	h := sha256.Sum256([]byte("cleanroom csrf v1\x00" + s.id))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

func randomString() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// SessionRequest is the body of POST /api/v1/session.
type SessionRequest struct {
	Email string `json:"email"`
	Token string `json:"token"`
}

// SessionResponse describes the caller's session. CSRFToken goes into
// CSRFHeader on every request that changes state.
type SessionResponse struct {
	Email     string    `json:"email"`
	CSRFToken string    `json:"csrf_token"`
	ExpiresAt time.Time `json:"expires_at"`
}

// handleCreateSession exchanges an email and API token for a session cookie.
func (s *Server) handleCreateSession(w http.ResponseWriter, r *http.Request) {
	if err := checkSameOrigin(r, s.viaHTTPS(r)); err != nil {
		s.Error(w, r, err)
		return
	}
	var req SessionRequest
	if err := decodeJSON(w, r, &req); err != nil {
		s.Error(w, r, err)
		return
	}
	if strings.TrimSpace(req.Email) == "" {
		s.Error(w, r, cleanroom.Errorf(cleanroom.EINVALID, "email is empty"))
		return
	}
	if req.Token == "" {
		s.Error(w, r, cleanroom.Errorf(cleanroom.EINVALID, "API token is empty; `cleanroom users add EMAIL` prints one"))
		return
	}
	hash := cleanroom.HashToken(strings.TrimSpace(req.Token))
	user, err := s.Store.UserByToken(r.Context(), hash)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	if !cleanroom.SameEmail(strings.TrimSpace(req.Email), user.Email) {
		s.Error(w, r, cleanroom.Errorf(cleanroom.EUNAUTHORIZED, "this API token does not belong to %s", req.Email))
		return
	}
	now := s.Now()
	sess := &session{id: randomString(), email: user.Email, expires: now.Add(SessionTTL)}
	stored := &cleanroom.Session{IDHash: sessionIDHash(sess.id), Email: sess.email, TokenHash: hash, Expires: sess.expires}
	if err := s.Store.CreateSession(r.Context(), stored, now, maxUserSessions); err != nil {
		s.Error(w, r, err)
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: SessionCookie, Value: sess.id, Path: "/",
		Expires: sess.expires, MaxAge: int(SessionTTL / time.Second),
		HttpOnly: true, Secure: s.viaHTTPS(r), SameSite: http.SameSiteStrictMode,
	})
	writeJSON(w, http.StatusCreated, SessionResponse{Email: sess.email, CSRFToken: sess.csrf(), ExpiresAt: sess.expires.UTC()})
}

// viaHTTPS says whether the browser reached the server over HTTPS,
// directly or through a proxy (BehindHTTPS): then session cookies are
// marked Secure and only an https:// origin is this one.
func (s *Server) viaHTTPS(r *http.Request) bool {
	return r.TLS != nil || s.BehindHTTPS
}

// handleGetSession returns the session of the cookie, so a reloaded page
// learns who is signed in and its CSRF token without asking for the API
// token again.
func (s *Server) handleGetSession(w http.ResponseWriter, r *http.Request) {
	sess, err := s.cookieSession(r)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, SessionResponse{Email: sess.email, CSRFToken: sess.csrf(), ExpiresAt: sess.expires.UTC()})
}

// handleDeleteSession signs out: the server forgets the session, so the
// cookie is worthless even if a copy survives, and the browser is told to
// drop it.
func (s *Server) handleDeleteSession(w http.ResponseWriter, r *http.Request) {
	sess, err := s.cookieSession(r)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	// Gone already is as good: a sign-out elsewhere got there first.
	if err := s.Store.DeleteSession(r.Context(), sessionIDHash(sess.id)); err != nil && cleanroom.ErrorCode(err) != cleanroom.ENOTFOUND {
		s.Error(w, r, err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: s.viaHTTPS(r), SameSite: http.SameSiteStrictMode})
	w.WriteHeader(http.StatusNoContent)
}

// cookieSession returns the live session of the request's cookie after
// the cross-site checks. Returns EUNAUTHORIZED without a live session and
// EFORBIDDEN for a request from another site or, when it changes state,
// without the session's CSRF token.
func (s *Server) cookieSession(r *http.Request) (*session, error) {
	c, err := r.Cookie(SessionCookie)
	if err != nil || c.Value == "" {
		return nil, cleanroom.Errorf(cleanroom.EUNAUTHORIZED, "not signed in; sign in with your email and API token")
	}
	if err := checkSameOrigin(r, s.viaHTTPS(r)); err != nil {
		return nil, err
	}
	stored, err := s.Store.FindSession(r.Context(), sessionIDHash(c.Value))
	switch {
	case cleanroom.ErrorCode(err) == cleanroom.ENOTFOUND || err == nil && !s.Now().Before(stored.Expires):
		return nil, cleanroom.Errorf(cleanroom.EUNAUTHORIZED, "your session has ended; sign in again")
	case err != nil:
		return nil, err // a session that cannot be looked up admits nothing
	}
	sess := &session{id: c.Value, email: stored.Email, expires: stored.Expires}
	if !safeMethod(r.Method) && subtle.ConstantTimeCompare([]byte(r.Header.Get(CSRFHeader)), []byte(sess.csrf())) != 1 {
		return nil, cleanroom.Errorf(cleanroom.EFORBIDDEN, "missing or wrong %s header; requests that change something must come from the cleanroom web UI", CSRFHeader)
	}
	return sess, nil
}

// authenticateSession admits a request carrying a live session cookie,
// for the user whose token made it: the store finds a session only while
// that token is live. It returns that user and the session, for handlers
// that check its CSRF token themselves (sessionFrom).
func (s *Server) authenticateSession(r *http.Request) (string, *session, error) {
	sess, err := s.cookieSession(r)
	if err != nil {
		return "", nil, err
	}
	return sess.email, sess, nil
}

// stillAdmitted tells whether what admitted a long request (an upload)
// still holds at its end: its API token is not revoked and, for a
// browser session, the session is not signed out. A session that merely
// expired meanwhile is not held against it: the request began in time.
func (s *Server) stillAdmitted(r *http.Request) error {
	if sess := sessionFrom(r.Context()); sess != nil {
		// Signing out and revoking the token delete the session; expiry
		// does not (for keepExpiredSessions).
		_, err := s.Store.FindSession(r.Context(), sessionIDHash(sess.id))
		if cleanroom.ErrorCode(err) == cleanroom.ENOTFOUND {
			return cleanroom.Errorf(cleanroom.EUNAUTHORIZED, "your session ended while uploading (you signed out, your API token was revoked, or it expired over a day ago); nothing was stored, sign in and upload again")
		}
		return err // a check that cannot be made refuses too
	}
	token, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	_, err := s.Store.UserByToken(r.Context(), cleanroom.HashToken(token))
	if cleanroom.ErrorCode(err) == cleanroom.EUNAUTHORIZED {
		return cleanroom.Errorf(cleanroom.EUNAUTHORIZED, "your API token was revoked while uploading; nothing was stored")
	}
	return err // a check that cannot be made refuses too
}

type sessionCtxKey struct{}

// sessionFrom returns the browser session a request was admitted with, or
// nil when it came with an API token.
func sessionFrom(ctx context.Context) *session {
	sess, _ := ctx.Value(sessionCtxKey{}).(*session)
	return sess
}

func safeMethod(m string) bool { return m == http.MethodGet || m == http.MethodHead }

// checkSameOrigin refuses requests the browser says come from another site
// or origin (an http:// one, when the browser reached the server over
// HTTPS: secure). Browsers send Sec-Fetch-Site and, on requests that
// change state, Origin; clients that are not browsers send neither and
// pass. Behind a proxy, the origin is compared with the Host header the
// proxy passes on.
func checkSameOrigin(r *http.Request, secure bool) error {
	switch site := r.Header.Get("Sec-Fetch-Site"); site {
	case "", "same-origin":
	case "none": // typed into the address bar or opened from a bookmark
		if !safeMethod(r.Method) {
			return crossSite(site)
		}
	default:
		return crossSite(site)
	}
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if err != nil || !strings.EqualFold(u.Host, r.Host) || (secure && u.Scheme != "https") {
			return cleanroom.Errorf(cleanroom.EFORBIDDEN, "request from origin %s refused; the API accepts browser requests only from its own web UI", o)
		}
	}
	return nil
}

func crossSite(site string) error {
	return cleanroom.Errorf(cleanroom.EFORBIDDEN, "request from another site (Sec-Fetch-Site: %s) refused; the API accepts browser requests only from its own web UI", site)
}
