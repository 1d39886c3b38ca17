package main

import (
	"crypto/tls"
	"log/slog"
	"os"
	"sync"
	"time"
)

// certFiles serves the certificate of a pair of PEM files, read again
// when either file changes, so that a renewed certificate (certbot and the
// like replace the files) is served without a restart. A pair that does
// not load is logged and the one before goes on being served.
type certFiles struct {
	certFile, keyFile string
	logger            *slog.Logger

	mu     sync.Mutex
	cert   *tls.Certificate
	loaded [2]time.Time // the files' modification times when cert was read
	failed [2]time.Time // and when they last failed to load
}

// loadCertFiles reads the pair, failing if it does not load.
func loadCertFiles(certFile, keyFile string, logger *slog.Logger) (*certFiles, error) {
	c := &certFiles{certFile: certFile, keyFile: keyFile, logger: logger}
	if err := c.reload(c.modTimes()); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *certFiles) modTimes() [2]time.Time {
	var t [2]time.Time
	for i, f := range []string{c.certFile, c.keyFile} {
		if fi, err := os.Stat(f); err == nil {
			t[i] = fi.ModTime()
		}
	}
	return t
}

func (c *certFiles) reload(mod [2]time.Time) error {
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return err
	}
	c.cert, c.loaded = &cert, mod
	return nil
}

// get is tls.Config.GetCertificate.
func (c *certFiles) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if mod := c.modTimes(); mod != c.loaded && mod != c.failed {
		// Files caught half-written mid-renewal fail too: they are read
		// again once they change again.
		if err := c.reload(mod); err != nil {
			c.failed = mod
			c.logger.Warn("the TLS certificate files changed but do not load; serving the one read before", "cert", c.certFile, "key", c.keyFile, "err", err)
		} else {
			c.logger.Info("serving the renewed TLS certificate", "cert", c.certFile)
		}
	}
	return c.cert, nil
}
