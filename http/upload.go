package http

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/cleanroom-dev/cleanroom"
)

// Streamed uploads: one ciphertext sent over a WebSocket as binary
// messages, for the web UI. A browser cannot stream a request body over
// HTTP/1.1, and sending a ciphertext as many requests costs a page about
// twice the CPU of sending it as messages (each request body is copied
// between the browser's processes once more): that was half of what a
// browser upload spent. The bytes go, as they arrive, into one BlobWriter
// while being hashed, so memory stays constant whatever the size, and the
// blob is committed under its SHA-256 exactly as POST /api/v1/blobs does.
//
//	GET /api/v1/blobs/stream   WebSocket
//
//	client → {"size": N, "csrf": "..."}   text, first: the exact ciphertext length, and
//	                                      the session's CSRF token (cookie sign-in only)
//	client → <bytes> ...                  binary, in order, each at most maxStreamMessage
//	server → {"received": n}              text, as the bytes are stored
//	server → {"blob": Blob}               text, once all N bytes are stored; then it closes
//	server → {"error": ErrorResponse}     text, on any failure; then it closes
//
// Anything that goes wrong (a refused start, more bytes than announced, a
// dropped connection, streamIdleTimeout without a byte, a sign-out or a
// revoked token before the end) aborts the upload: nothing of it is kept.
// A restart ends open streams too: the blob store drops unfinished files
// when it starts. A user may have maxUserStreams open at once and the
// server maxStreams; a handshake past that is refused (409).
const (
	maxUserStreams    = 8  // open at once, per user
	maxStreams        = 64 // open at once, on the server
	maxStartMessage   = 4096
	maxStreamMessage  = 16 << 20
	streamIdleTimeout = 2 * time.Minute
	streamAckEvery    = 8 << 20 // bytes between {"received"} messages
)

// StreamStart is the first message of a streamed upload.
type StreamStart struct {
	Size int64  `json:"size"`
	CSRF string `json:"csrf,omitempty"`
}

// StreamMessage is a message the server sends on a streamed upload.
type StreamMessage struct {
	Received *int64          `json:"received,omitempty"`
	Blob     *cleanroom.Blob `json:"blob,omitempty"`
	Error    *ErrorResponse  `json:"error,omitempty"`
}

func (s *Server) handleUploadStream(w http.ResponseWriter, r *http.Request) {
	// A stream admitted with a session cookie must prove it comes from the
	// web UI with the session's CSRF token, as every request that changes
	// something does (the WebSocket handshake itself is a GET).
	var csrf string
	if sess := sessionFrom(r.Context()); sess != nil {
		csrf = sess.csrf()
	}
	user := cleanroom.UserFromContext(r.Context())
	if err := s.streams.add(user); err != nil {
		s.Error(w, r, err)
		return
	}
	defer s.streams.remove(user)
	// Accept also refuses a handshake whose Origin is not this host.
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return // Accept has answered
	}
	c.SetReadLimit(maxStreamMessage)
	ctx := r.Context()
	blob, err := s.receiveStream(ctx, c, csrf, func() error { return s.stillAdmitted(r) })
	if err != nil {
		code, msg := cleanroom.ErrorCode(err), cleanroom.ErrorMessage(err)
		if code == cleanroom.EINTERNAL {
			s.Logger.Error("streamed upload failed", "err", err)
		}
		writeStream(ctx, c, StreamMessage{Error: &ErrorResponse{Code: code, Message: msg}})
		c.Close(websocket.StatusPolicyViolation, code)
		return
	}
	writeStream(ctx, c, StreamMessage{Blob: blob})
	c.Close(websocket.StatusNormalClosure, "")
}

// receiveStream reads a streamed upload from c and stores it if, once all
// is received, admitted still says yes.
func (s *Server) receiveStream(ctx context.Context, c *websocket.Conn, csrf string, admitted func() error) (*cleanroom.Blob, error) {
	// An idle stream is told why and closed by a watchdog (a Reader whose
	// context expires closes the connection without a word).
	idle := time.AfterFunc(s.streamIdle(), func() {
		writeStream(ctx, c, StreamMessage{Error: &ErrorResponse{Code: cleanroom.EINVALID, Message: fmt.Sprintf("no data for %s; the upload is aborted and nothing was stored, upload again", s.streamIdle())}})
		c.Close(websocket.StatusPolicyViolation, cleanroom.EINVALID)
	})
	defer idle.Stop()
	read := func() (websocket.MessageType, io.Reader, error) {
		typ, rd, err := c.Reader(ctx)
		if err != nil {
			return 0, nil, cleanroom.Errorf(cleanroom.EINVALID, "upload interrupted: %v; nothing was stored, upload again", err)
		}
		// Only bytes count: empty messages do not keep a stream alive.
		return typ, &resetReader{rd, idle, s.streamIdle()}, nil
	}

	typ, rd, err := read()
	if err != nil {
		return nil, err
	}
	// The whole message is read: what is left of one would be taken for
	// the next.
	first, err := io.ReadAll(io.LimitReader(rd, maxStartMessage+1))
	var start StreamStart
	if err == nil {
		dec := json.NewDecoder(bytes.NewReader(first))
		dec.DisallowUnknownFields()
		if err = dec.Decode(&start); err == nil && dec.More() {
			err = errors.New("more after the JSON object")
		}
	}
	switch {
	case typ != websocket.MessageText || len(first) > maxStartMessage || err != nil:
		return nil, cleanroom.Errorf(cleanroom.EINVALID, `the first message of a streamed upload must be JSON text {"size": <ciphertext bytes>}`)
	case csrf != "" && subtle.ConstantTimeCompare([]byte(start.CSRF), []byte(csrf)) != 1:
		return nil, cleanroom.Errorf(cleanroom.EFORBIDDEN, "missing or wrong CSRF token; uploads with a session must come from the cleanroom web UI")
	case start.Size < 0:
		return nil, cleanroom.Errorf(cleanroom.EINVALID, "upload size %d is negative", start.Size)
	case s.MaxUploadSize > 0 && start.Size > s.MaxUploadSize:
		return nil, s.uploadTooLarge()
	}
	release, err := s.claimSpace(start.Size)
	if err != nil {
		return nil, err
	}
	defer release()

	bw, err := s.Blobs.Create(ctx)
	if err != nil {
		return nil, err
	}
	defer bw.Abort()
	h := sha256.New()
	sink := io.MultiWriter(bw, h)
	buf := make([]byte, 256<<10)
	var got, acked int64
	for got < start.Size {
		typ, rd, err := read()
		if err != nil {
			return nil, err
		}
		if typ != websocket.MessageBinary {
			return nil, cleanroom.Errorf(cleanroom.EINVALID, "after the first message a streamed upload takes only binary messages; nothing was stored")
		}
		// One byte past what was announced is enough to refuse.
		n, err := io.CopyBuffer(sink, io.LimitReader(rd, start.Size-got+1), buf)
		got += n
		if err != nil {
			return nil, uploadFailed(err, got)
		}
		if got > start.Size {
			return nil, cleanroom.Errorf(cleanroom.EINVALID, "the upload sent more than the %d bytes it announced; nothing was stored", start.Size)
		}
		if got-acked >= streamAckEvery || got == start.Size {
			acked = got
			if err := writeStream(ctx, c, StreamMessage{Received: &acked}); err != nil {
				return nil, cleanroom.Errorf(cleanroom.EINVALID, "upload interrupted after %s: %v; nothing was stored, upload again", cleanroom.FormatBytes(got), err)
			}
		}
	}
	// An upload may take hours: one whose user signed out or lost the
	// token meanwhile is not stored.
	if err := admitted(); err != nil {
		return nil, err
	}
	// All is here: a slow commit (fsync) is not idleness. If the watchdog
	// has fired it has told the client nothing was stored: keep it so.
	if !idle.Stop() {
		return nil, cleanroom.Errorf(cleanroom.EINVALID, "the upload was idle too long; nothing was stored, upload again")
	}
	return s.commitBlob(ctx, bw, h.Sum(nil), got)
}

// streamCount counts the open streams, each holding a file being written,
// so that no user (and not all together) can hold too many.
type streamCount struct {
	mu     sync.Mutex
	byUser map[string]int
	total  int
}

func (sc *streamCount) add(user string) error {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	switch {
	case sc.byUser[user] >= maxUserStreams:
		return cleanroom.Errorf(cleanroom.ECONFLICT, "you have %d uploads in progress, the most one user may have at once; wait for one to finish", sc.byUser[user])
	case sc.total >= maxStreams:
		return cleanroom.Errorf(cleanroom.ECONFLICT, "the server has %d uploads in progress, its limit; try again in a few minutes", sc.total)
	}
	if sc.byUser == nil {
		sc.byUser = map[string]int{}
	}
	sc.byUser[user]++
	sc.total++
	return nil
}

func (sc *streamCount) remove(user string) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if sc.byUser[user]--; sc.byUser[user] == 0 {
		delete(sc.byUser, user)
	}
	sc.total--
}

// resetReader resets an idle timer whenever bytes arrive, so that a slow
// link is not taken for an idle one in the middle of a large message.
type resetReader struct {
	r     io.Reader
	timer *time.Timer
	idle  time.Duration
}

func (r *resetReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if n > 0 {
		r.timer.Reset(r.idle)
	}
	return n, err
}

func (s *Server) streamIdle() time.Duration {
	if s.streamIdleTimeout > 0 {
		return s.streamIdleTimeout
	}
	return streamIdleTimeout
}

func writeStream(ctx context.Context, c *websocket.Conn, m StreamMessage) error {
	b, _ := json.Marshal(m)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return c.Write(ctx, websocket.MessageText, b)
}
