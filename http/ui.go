package http

import (
	"bytes"
	"embed"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
)

// The web UI is built from ../ui by Vite into uidist/app (ignored by git)
// and embedded here. A binary built without Node has only the committed
// placeholder, which says how to build the UI; the API works either way.
//
//go:embed all:uidist
var uiFiles embed.FS

// uiApp returns the built UI, or nil if this binary was built without it.
func uiApp() fs.FS {
	app, err := fs.Sub(uiFiles, "uidist/app")
	if err != nil {
		return nil
	}
	if _, err := fs.Stat(app, "index.html"); err != nil {
		return nil
	}
	return app
}

// nonceMark is replaced in index.html by the response's CSP nonce, which
// the UI hands to the code editor for the styles it injects.
const nonceMark = "__CSP_NONCE__"

// setUIHeaders sets the security headers of every UI response: scripts
// only from our own files (no inline script, no WebAssembly), styles from
// our files or carrying this response's nonce, no framing, no MIME
// sniffing, no referrer.
func setUIHeaders(w http.ResponseWriter, nonce string) {
	h := w.Header()
	style := "'self'"
	if nonce != "" {
		style += " 'nonce-" + nonce + "'"
	}
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src "+style+
		"; img-src 'self' data: blob:; connect-src 'self'; worker-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
}

// handleUI serves the web UI: files of the build as they are, and
// index.html for every other path, so the UI's own routes survive a reload.
func (s *Server) handleUI(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	app := uiApp()
	if app == nil {
		page, _ := uiFiles.ReadFile("uidist/placeholder.html")
		setUIHeaders(w, "")
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(page)
		return
	}
	name := strings.TrimPrefix(path.Clean(r.URL.Path), "/")
	if name != "" && name != "index.html" && !strings.HasPrefix(name, ".") && !strings.Contains(name, "/.") {
		if b, err := fs.ReadFile(app, name); err == nil {
			setUIHeaders(w, "")
			if ct := mime.TypeByExtension(path.Ext(name)); ct != "" {
				w.Header().Set("Content-Type", ct)
			}
			// Vite names assets by their content hash: they never change.
			if strings.HasPrefix(name, "assets/") {
				w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
			}
			w.Write(b)
			return
		}
		if strings.HasPrefix(name, "assets/") {
			setUIHeaders(w, "")
			http.NotFound(w, r)
			return
		}
	}
	page, err := fs.ReadFile(app, "index.html")
	if err != nil {
		s.Error(w, r, err)
		return
	}
	nonce := randomString()
	setUIHeaders(w, nonce)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.Write(bytes.ReplaceAll(page, []byte(nonceMark), []byte(nonce)))
}
