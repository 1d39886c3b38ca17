// Package http serves the cleanroom API over HTTP.
package http

import (
	"context"
	"crypto/tls"
	_ "embed"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cleanroom-dev/cleanroom"
	"github.com/cleanroom-dev/cleanroom/enclave"
	"github.com/cleanroom-dev/cleanroom/worker"
)

// EmailHeader carries the caller's email beside the token. A token used
// with someone else's email is refused, so a pasted token of the wrong
// account fails loudly instead of acting as another user.
const EmailHeader = "X-Cleanroom-Email"

// statusByCode maps error codes to HTTP statuses; the client maps them back.
var statusByCode = map[string]int{
	cleanroom.EINVALID:      http.StatusBadRequest,
	cleanroom.EUNAUTHORIZED: http.StatusUnauthorized,
	cleanroom.EFORBIDDEN:    http.StatusForbidden,
	cleanroom.ENOTFOUND:     http.StatusNotFound,
	cleanroom.ECONFLICT:     http.StatusConflict,
	cleanroom.ETOOLARGE:     http.StatusRequestEntityTooLarge,
	cleanroom.EINTERNAL:     http.StatusInternalServerError,
}

// ErrorStatus returns the HTTP status of an error code.
func ErrorStatus(code string) int {
	if s, ok := statusByCode[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// Server is the API server. NewServer sets defaults; exported fields
// configure it before Open.
type Server struct {
	Addr    string
	Store   cleanroom.Store
	Blobs   cleanroom.BlobStore
	Enclave *enclave.Enclave
	Specs   []worker.Spec // the workers jobs run on, for GET /api/v1/enclave/specs
	// MaxUploadSize bounds one uploaded ciphertext, sent in one request
	// or over a stream; 0 sets no bound.
	MaxUploadSize int64
	// MinFreeSpace is what an upload must leave free on the blob store's
	// disk, when the store can tell its free space; 0 checks nothing.
	MinFreeSpace int64
	// KeepUnused is how long an upload no dataset uses is kept
	// (prune.go); 0 keeps it for ever.
	KeepUnused time.Duration
	// TLS, if set, makes the server speak HTTPS only.
	TLS *tls.Config
	// BehindHTTPS says that browsers reach the server over HTTPS through a
	// proxy that ends TLS: session cookies are marked Secure, and browser
	// requests must come from the https:// origin, as under TLS.
	BehindHTTPS bool
	Logger      *slog.Logger
	Now         func() time.Time

	ln          net.Listener
	server      *http.Server
	blobLock    sync.RWMutex // storing an upload (read) against deleting one (write)
	stopPruning context.CancelFunc
	pruning     sync.WaitGroup
	streams     streamCount // streamed uploads in progress (upload.go)
	claimMu     sync.Mutex
	claimed     int64 // bytes uploads in progress announced (claimSpace)
	// streamIdleTimeout overrides streamIdleTimeout (tests).
	streamIdleTimeout time.Duration
}

// NewServer returns a server with defaults.
func NewServer() *Server {
	return &Server{Addr: "127.0.0.1:8080", Logger: slog.Default(), Now: time.Now}
}

// Open starts listening and serving in the background.
func (s *Server) Open() error {
	ln, err := net.Listen("tcp", s.Addr)
	if err != nil {
		return err
	}
	if s.TLS != nil {
		ln = tls.NewListener(ln, s.TLS)
	}
	s.ln = ln
	// The server's own complaints (TLS handshakes that fail, for one) go
	// to the structured log with the rest.
	s.server = &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 30 * time.Second, ErrorLog: slog.NewLogLogger(s.Logger.Handler(), slog.LevelWarn)}
	go s.server.Serve(ln)
	ctx, cancel := context.WithCancel(context.Background())
	s.stopPruning = cancel
	s.pruning.Add(1)
	go func() {
		defer s.pruning.Done()
		s.prune(ctx)
	}()
	return nil
}

// Close stops the server, giving requests in flight a moment to finish.
func (s *Server) Close() error {
	if s.server == nil {
		return nil
	}
	if s.stopPruning != nil {
		s.stopPruning()
		s.pruning.Wait() // it uses the store, which the caller closes next
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return s.server.Shutdown(ctx)
}

// URL returns the base URL the server listens on.
func (s *Server) URL() string {
	addr := s.ln.Addr().(*net.TCPAddr)
	host := addr.IP.String()
	if addr.IP.IsUnspecified() {
		host = "127.0.0.1"
	}
	scheme := "http"
	if s.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + net.JoinHostPort(host, strconv.Itoa(addr.Port))
}

// Handler returns the API's routes.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	for _, r := range s.routes() {
		h := r.handler
		if !r.public {
			h = s.authenticate(h)
		}
		mux.Handle(r.method+" "+r.path, h)
	}
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		s.Error(w, r, cleanroom.Errorf(cleanroom.ENOTFOUND, "no API endpoint %s %s; see /api/v1/openapi.json", r.Method, r.URL.Path))
	})
	mux.HandleFunc("/", s.handleUI)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.viaHTTPS(r) {
			// Browsers that have seen the server over HTTPS go on using it,
			// even when a link or a typed address says http://; this binds
			// every port of the host name. Not its subdomains: other
			// services may live there.
			w.Header().Set("Strict-Transport-Security", "max-age=31536000")
		}
		mux.ServeHTTP(w, r)
	})
}

type route struct {
	method, path string
	public       bool
	handler      http.HandlerFunc
}

func (s *Server) routes() []route {
	return []route{
		{"GET", "/api/v1/openapi.json", true, s.handleOpenAPI},
		{"GET", "/api/v1/enclave", false, s.handleEnclave},
		{"GET", "/api/v1/enclave/specs", false, s.handleSpecs},
		{"GET", "/api/v1/me", false, s.handleMe},
		{"POST", "/api/v1/session", true, s.handleCreateSession},
		{"GET", "/api/v1/session", true, s.handleGetSession},
		{"DELETE", "/api/v1/session", true, s.handleDeleteSession},
		{"POST", "/api/v1/dcrs", false, s.handlePublishDCR},
		{"GET", "/api/v1/dcrs", false, s.handleListDCRs},
		{"GET", "/api/v1/dcrs/{id}", false, s.handleGetDCR},
		{"GET", "/api/v1/dcrs/{id}/audit", false, s.handleAuditLog},
		{"POST", "/api/v1/drafts", false, s.handleCreateDraft},
		{"GET", "/api/v1/drafts", false, s.handleListDrafts},
		{"GET", "/api/v1/drafts/{id}", false, s.handleGetDraft},
		{"PUT", "/api/v1/drafts/{id}", false, s.handleUpdateDraft},
		{"DELETE", "/api/v1/drafts/{id}", false, s.handleDeleteDraft},
		{"POST", "/api/v1/drafts/{id}/publish", false, s.handlePublishDraft},
		{"POST", "/api/v1/drafts/{id}/tests", false, s.handleTestDraft},
		{"GET", "/api/v1/drafts/{id}/tests/latest", false, s.handleLatestDraftTest},
		{"PUT", "/api/v1/drafts/{id}/nodes/{node}/test-dataset", false, s.handlePutTestDataset},
		{"DELETE", "/api/v1/drafts/{id}/nodes/{node}/test-dataset", false, s.handleDeleteTestDataset},
		{"POST", "/api/v1/blobs", false, s.handleUploadBlob},
		{"GET", "/api/v1/blobs/stream", false, s.handleUploadStream},
		{"PUT", "/api/v1/dcrs/{id}/nodes/{node}/dataset", false, s.handlePublishDataset},
		{"DELETE", "/api/v1/dcrs/{id}/nodes/{node}/dataset", false, s.handleRemoveDataset},
		{"GET", "/api/v1/dcrs/{id}/nodes/{node}/dataset/report", false, s.handleValidationReport},
		{"POST", "/api/v1/dcrs/{id}/nodes/{node}/jobs", false, s.handleRunJob},
		{"GET", "/api/v1/dcrs/{id}/nodes/{node}/jobs", false, s.handleListJobs},
		{"GET", "/api/v1/jobs/{id}", false, s.handleGetJob},
		{"POST", "/api/v1/jobs/{id}/cancel", false, s.handleCancelJob},
		{"GET", "/api/v1/jobs/{id}/logs", false, s.handleJobLogs},
		{"GET", "/api/v1/jobs/{id}/result", false, s.handleJobResult},
		{"DELETE", "/api/v1/jobs/{id}/result", false, s.handleDeleteJobResult},
	}
}

// authenticate admits requests with a live bearer token whose user matches
// the email header, or with a browser session cookie, and puts that user on
// the request's context.
func (s *Server) authenticate(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		// The web UI authenticates with a session cookie instead (session.go).
		if r.Header.Get("Authorization") == "" {
			if _, err := r.Cookie(SessionCookie); err == nil {
				email, sess, err := s.authenticateSession(r)
				if err != nil {
					s.Error(w, r, err)
					return
				}
				ctx := context.WithValue(cleanroom.NewContextWithUser(r.Context(), email), sessionCtxKey{}, sess)
				next(w, r.WithContext(ctx))
				return
			}
		}
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || token == "" {
			s.Error(w, r, cleanroom.Errorf(cleanroom.EUNAUTHORIZED, "missing API token; send 'Authorization: Bearer <token>' (create one with `cleanroom users add EMAIL`)"))
			return
		}
		user, err := s.Store.UserByToken(r.Context(), cleanroom.HashToken(token))
		if err != nil {
			s.Error(w, r, err)
			return
		}
		email := r.Header.Get(EmailHeader)
		if email == "" {
			s.Error(w, r, cleanroom.Errorf(cleanroom.EUNAUTHORIZED, "missing %s header; send the email the token was made for", EmailHeader))
			return
		} else if !cleanroom.SameEmail(email, user.Email) {
			s.Error(w, r, cleanroom.Errorf(cleanroom.EUNAUTHORIZED, "this API token does not belong to %s", email))
			return
		}
		next(w, r.WithContext(cleanroom.NewContextWithUser(r.Context(), user.Email)))
	}
}

// Error writes err as a JSON {"code","message"} with the status of its code.
// Internal causes are logged, never sent.
func (s *Server) Error(w http.ResponseWriter, r *http.Request, err error) {
	code, msg := cleanroom.ErrorCode(err), cleanroom.ErrorMessage(err)
	var maxErr *http.MaxBytesError
	if errors.As(err, &maxErr) {
		code, msg = cleanroom.ETOOLARGE, "request body is larger than "+cleanroom.FormatBytes(maxErr.Limit)
	}
	if code == cleanroom.EINTERNAL {
		s.Logger.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	writeJSON(w, ErrorStatus(code), ErrorResponse{Code: code, Message: msg})
}

// ErrorResponse is the body of every error response.
type ErrorResponse struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}

// decodeJSON reads a small JSON request body into v, refusing unknown fields.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var maxErr *http.MaxBytesError
		if errors.As(err, &maxErr) {
			return err
		}
		return cleanroom.Errorf(cleanroom.EINVALID, "request body is not valid JSON: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
	return nil
}

//go:embed openapi.json
var openapiDoc []byte

func (s *Server) handleOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Write(openapiDoc)
}

func (s *Server) handleEnclave(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.Enclave.Attestation())
}

func (s *Server) handleMe(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"email": cleanroom.UserFromContext(r.Context())})
}
