package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/cleanroom-dev/cleanroom/blob/fs"
	"github.com/cleanroom-dev/cleanroom/enclave"
	cleanhttp "github.com/cleanroom-dev/cleanroom/http"
	"github.com/cleanroom-dev/cleanroom/sqlite"
	"github.com/cleanroom-dev/cleanroom/worker"
)

// Files of the data directory.
const (
	dbFile         = "cleanroom.db"
	blobDir        = "blobs"
	enclaveKeyFile = "enclave.key"
)

func defaultDataDir() string {
	if d := os.Getenv("CLEANROOM_DATA"); d != "" {
		return d
	}
	return "cleanroom-data"
}

// defaultMaxUpload bounds uploads unless the operator says otherwise: any
// signed-in user can upload, so the disk needs a bound.
const defaultMaxUpload = 256 << 30

// defaultMinFree is the disk space uploads leave free unless the operator
// says otherwise: a full disk would fail jobs and database writes.
const defaultMinFree = 1 << 30

// ServeConfig is what `cleanroom serve` is configured with.
type ServeConfig struct {
	Addr        string
	DataDir     string
	ScratchDir  string
	Concurrency int
	JobTimeout  time.Duration
	Limits      jobLimits       // the other limits of a computation; see limits.go
	ImagesDir   string          // worker image cache
	Images      []*worker.Built // the worker images, Python first; none runs scripts on the host's /usr
	WorkerBin   string          // the cleanroom-worker binary
	Kit         *worker.Kit     // mounted into every sandbox
	Sandbox     sandboxConfig   // what scripts run in; see sandboxflag.go
	MaxUpload   int64           // bytes of one uploaded ciphertext
	MinFree     int64           // bytes an upload must leave free on the data directory's disk
	KeepUnused  time.Duration   // how long an upload no dataset uses is kept; 0 for ever
	TLSCert     string          // PEM certificate (chain) to serve HTTPS with, and its key
	TLSKey      string
	BehindHTTPS bool // browsers come through a proxy that ends TLS
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c ServeConfig
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.Addr, "addr", "127.0.0.1:8080", "address to listen on (HOST:PORT; port 0 picks a free one)")
	fs.StringVar(&c.DataDir, "data", defaultDataDir(), "data directory: database, encrypted blobs, enclave key (created if missing; env CLEANROOM_DATA)")
	fs.StringVar(&c.ScratchDir, "scratch", os.TempDir(), "directory for the decrypted inputs of running jobs, removed after each job")
	fs.IntVar(&c.Concurrency, "jobs", runtime.NumCPU(), "how many jobs run at once")
	fs.DurationVar(&c.JobTimeout, "job-timeout", 10*time.Minute, "wall-time limit of one computation (a Go duration such as 5s or 10m)")
	addLimitFlags(fs, &c.Limits)
	addSandboxFlags(fs, &c.Sandbox)
	c.MaxUpload = defaultMaxUpload
	fs.Var(&bytesFlag{&c.MaxUpload}, "max-upload-size", "largest dataset upload (its ciphertext) the server accepts: a `size` with a unit (64GiB, 1TiB); 0 for no limit")
	c.MinFree = defaultMinFree
	fs.Var(&bytesFlag{&c.MinFree}, "min-free-space", "free space an upload must leave on the data directory's disk, for jobs, results and the database: a `size` with a unit (1GiB, 10GiB); 0 checks nothing")
	fs.DurationVar(&c.KeepUnused, "keep-unused-uploads", 24*time.Hour, "how long after its upload a ciphertext that no dataset uses (never published, replaced or removed) is kept before it is deleted; 0 keeps it for ever")
	fs.StringVar(&c.ImagesDir, "images", defaultImagesDir(), imagesUsage)
	fs.StringVar(&c.TLSCert, "tls-cert", "", "serve HTTPS with this PEM certificate (its chain after it), read again when it changes; with --tls-key")
	fs.StringVar(&c.TLSKey, "tls-key", "", "the PEM private key of --tls-cert")
	fs.BoolVar(&c.BehindHTTPS, "behind-https", false, "browsers reach this server over HTTPS through a reverse proxy that ends TLS (it must pass the Host header on): mark session cookies Secure and take browser requests only from the https:// origin")
	workerBin := workerBinFlag(fs)
	if err := fs.Parse(args); err != nil {
		return err
	} else if fs.NArg() > 0 {
		return usageError("serve takes no arguments")
	} else if err := c.Sandbox.check(fs); err != nil {
		return err
	} else if c.KeepUnused < 0 {
		return usageError("--keep-unused-uploads must not be negative (0 keeps unused uploads for ever)")
	} else if (c.TLSCert == "") != (c.TLSKey == "") {
		return usageError("--tls-cert and --tls-key go together: pass the certificate file and its private key file")
	}
	c.WorkerBin = *workerBin
	// Job directories are mounted into sandboxes, which take absolute paths only.
	var err error
	if c.ScratchDir, err = filepath.Abs(c.ScratchDir); err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	// The image is ready before the server listens: a server that could
	// accept jobs and then fail to build what they run on would leave them
	// queued with no one to run them.
	if c.Images, err = ensureImages(ctx, c.ImagesDir, logger, stderr); err != nil {
		return err
	}
	if c.Kit, err = prepareKit(c.ImagesDir, c.WorkerBin); err != nil {
		return err
	}
	m, err := openServer(c, logger)
	if err != nil {
		return err
	}
	defer m.Close()
	fmt.Fprintf(stdout, "cleanroom server listening on %s (data in %s)\n", m.HTTP.URL(), c.DataDir)
	fmt.Fprintf(stdout, "to log in, create a user and its API token (the last line it prints) with:\n  %s users add you@example.com --data %s\n", os.Args[0], c.DataDir)
	fmt.Fprintf(stdout, "then sign in at %s/ with that email and token, or use the CLI with CLEANROOM_URL=%s CLEANROOM_EMAIL=you@example.com CLEANROOM_TOKEN=<token>\n", m.HTTP.URL(), m.HTTP.URL())
	<-ctx.Done()
	fmt.Fprintln(stdout, "shutting down")
	return nil
}

// Main is a running server: the pieces wired together.
type Main struct {
	DB      *sqlite.DB
	Blobs   *fs.Store
	Enclave *enclave.Enclave
	HTTP    *cleanhttp.Server
}

func openServer(c ServeConfig, logger *slog.Logger) (*Main, error) {
	if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
		return nil, hintError(fmt.Sprintf("create data directory: %v", err), "pass a writable --data directory")
	}
	m := &Main{}
	m.DB = sqlite.NewDB(filepath.Join(c.DataDir, dbFile))
	if err := m.DB.Open(); err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	m.Blobs = fs.NewStore(filepath.Join(c.DataDir, blobDir))
	if err := m.Blobs.Init(); err != nil {
		m.Close()
		return nil, fmt.Errorf("open blob store: %w", err)
	}
	key, err := enclave.LoadOrCreateKey(filepath.Join(c.DataDir, enclaveKeyFile))
	if err != nil {
		m.Close()
		return nil, err
	}
	e := enclave.NewEnclave(key)
	root := ""
	if len(c.Images) > 0 {
		root = c.Images[0].Root
	}
	runner := c.Sandbox.newRunner(root, c.ScratchDir)
	server, err := serverDigest()
	if err != nil {
		m.Close()
		return nil, err
	}
	var specs []worker.Spec
	e.Images = map[string]string{}
	for _, img := range c.Images {
		specs = append(specs, img.Spec(runner.Policy(), c.Kit, server))
		e.Images[img.Name] = img.Root
	}
	if c.Kit != nil {
		e.Kit = c.Kit.Dir
	}
	e.Store, e.Blobs, e.Sandbox, e.Logger = m.DB, m.Blobs, runner, logger
	e.ScratchDir, e.JobTimeout = c.ScratchDir, c.JobTimeout
	if err := c.Limits.apply(e, runner, logger); err != nil {
		m.Close()
		return nil, err
	}
	if c.Concurrency > 0 {
		e.Concurrency = c.Concurrency
	}
	if err := e.Open(); err != nil {
		m.Close()
		return nil, err
	}
	m.Enclave = e
	s := cleanhttp.NewServer()
	s.Addr, s.Store, s.Blobs, s.Enclave, s.Logger = c.Addr, m.DB, m.Blobs, e, logger
	s.Specs, s.MaxUploadSize, s.MinFreeSpace, s.KeepUnused, s.BehindHTTPS = specs, c.MaxUpload, c.MinFree, c.KeepUnused, c.BehindHTTPS
	if c.TLSCert != "" {
		certs, err := loadCertFiles(c.TLSCert, c.TLSKey, logger)
		if err != nil {
			m.Close()
			return nil, hintError(fmt.Sprintf("load the TLS certificate: %v", err), "pass --tls-cert a PEM certificate (its chain after it) and --tls-key its PEM private key")
		}
		// HTTP/1.1 only (no h2 offered): upload streams are WebSockets,
		// which start with an HTTP/1.1 upgrade.
		s.TLS = &tls.Config{GetCertificate: certs.get, MinVersion: tls.VersionTLS12}
	}
	if err := s.Open(); err != nil {
		m.Close()
		return nil, hintError(fmt.Sprintf("listen on %s: %v", c.Addr, err), "pick another --addr, or stop what uses that port")
	}
	m.HTTP = s
	return m, nil
}

// Close stops the server: first the API, then the jobs, then storage.
func (m *Main) Close() error {
	if m.HTTP != nil {
		m.HTTP.Close()
	}
	if m.Enclave != nil {
		m.Enclave.Close()
	}
	if m.DB != nil {
		return m.DB.Close()
	}
	return nil
}
