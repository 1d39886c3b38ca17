package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/cleanroom-dev/cleanroom/sandbox"
)

// ErrNotBuilt is wrapped by the error Lookup returns for an image that is
// not in the cache.
var ErrNotBuilt = errors.New("worker image not built")

// ErrNoMmdebstrap is wrapped by the error Ensure returns when an image has
// to be built and mmdebstrap is missing.
var ErrNoMmdebstrap = errors.New("mmdebstrap not found; install it (Debian: apt-get install mmdebstrap, or `make deps`)")

// DefaultDir returns the image cache of this machine: $CLEANROOM_IMAGES if
// set, else the user's cache directory. For root that is
// /var/cache/cleanroom/images rather than one under /root: sandboxed
// scripts run as an unprivileged user, who must reach the image, and /root
// is closed to other users.
func DefaultDir() (string, error) {
	if d := os.Getenv("CLEANROOM_IMAGES"); d != "" {
		return d, nil
	}
	if os.Geteuid() == 0 {
		return "/var/cache/cleanroom/images", nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no cache directory for worker images (%v); set CLEANROOM_IMAGES or pass --images", err)
	}
	return filepath.Join(d, "cleanroom", "images"), nil
}

// Cache is a directory of built images. An image lives in NAME-KEY/ (KEY:
// the first 16 hex digits of its cache key) with:
//
//	root/         the root file system, the sandbox's /
//	manifest.txt  its installed packages (see Manifest)
//	image.json    what was built, when, and what the probe found (Info)
//
// A build goes to a temporary directory beside it, renamed into place once
// complete, under an exclusive lock on NAME-KEY.lock: a directory NAME-KEY
// is always a complete image, and two processes never build the same image
// at once.
type Cache struct {
	Dir    string
	Mirror string    // Debian mirror to build from; default: HostMirror()
	Log    io.Writer // progress of builds and waits for other builders; nil discards
}

// NewCache returns a cache in dir.
func NewCache(dir string) *Cache { return &Cache{Dir: dir} }

// Info is what image.json records about a built image.
type Info struct {
	Name         string    `json:"name"`
	Key          string    `json:"key"` // full cache key
	Suite        string    `json:"suite"`
	Packages     []Package `json:"packages"` // the list it was built from
	Mirror       string    `json:"mirror"`
	BuiltAt      time.Time `json:"built_at"`
	BuildSeconds float64   `json:"build_seconds"`
	Size         int64     `json:"size"` // bytes of the root file system

	Debian    string            `json:"debian_version"` // /etc/debian_version, e.g. 13.1
	Python    string            `json:"python_version"`
	R         string            `json:"r_version,omitempty"` // images with R
	Libraries map[string]string `json:"libraries"`           // module -> version it reports
}

// Built is an image in the cache.
type Built struct {
	Info
	Dir      string // its directory in the cache
	Root     string // its root file system: Dir/root
	Manifest []byte // its installed packages (see Manifest)
}

// Spec returns the worker spec of b as a server running the given sandbox
// policy and kit offers it, from a binary of digest server.
func (b *Built) Spec(policy []byte, kit *Kit, server string) Spec {
	installed := map[string]string{}
	for _, line := range bytes.Split(b.Manifest, []byte("\n")) {
		if f := bytes.Split(line, []byte("\t")); len(f) == 3 {
			installed[string(f[0])] = string(f[1])
		}
	}
	s := Spec{
		Name:        b.Name,
		Measurement: Measurement(b.Manifest, policy, kit.Digest, server),
		KitDigest:   kit.Digest,
		Server:      server,
		Suite:       b.Suite,
		Debian:      b.Debian,
		Python:      b.Python,
		R:           b.R,
		Libraries:   b.Libraries,
		Packages:    map[string]string{},
	}
	for _, p := range b.Packages {
		s.Packages[p.Name] = installed[p.Name]
	}
	return s
}

func (c *Cache) path(img *Image) string {
	return filepath.Join(c.Dir, img.Name+"-"+img.Key()[:16])
}

// Lookup returns img from the cache. It returns an error wrapping
// ErrNotBuilt if the image is not there, and another error if what is
// there cannot be read or no longer matches what was built.
func (c *Cache) Lookup(img *Image) (*Built, error) {
	dir := c.path(img)
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s is not in %s; build it with `cleanroom images build`", ErrNotBuilt, img.Name, c.Dir)
	}
	b, err := load(dir)
	if err != nil {
		return nil, err
	}
	if b.Key != img.Key() {
		return nil, fmt.Errorf("worker image %s: %s holds the image of cache key %s, want %s; remove it", img.Name, dir, b.Key, img.Key())
	}
	return b, nil
}

// load reads the image in dir and checks that its packages are still those
// it was built with.
func load(dir string) (*Built, error) {
	b := &Built{Dir: dir, Root: filepath.Join(dir, "root")}
	data, err := os.ReadFile(filepath.Join(dir, "image.json"))
	if err != nil {
		return nil, fmt.Errorf("worker image in %s: %w", dir, err)
	}
	if err := json.Unmarshal(data, &b.Info); err != nil {
		return nil, fmt.Errorf("worker image in %s: image.json: %w", dir, err)
	}
	if b.Manifest, err = os.ReadFile(filepath.Join(dir, "manifest.txt")); err != nil {
		return nil, fmt.Errorf("worker image in %s: %w", dir, err)
	}
	pkgs, err := ReadManifest(b.Root)
	if err != nil {
		return nil, fmt.Errorf("worker image in %s: %w", dir, err)
	}
	if !bytes.Equal(Manifest(pkgs), b.Manifest) {
		return nil, fmt.Errorf("worker image in %s: its installed packages changed since it was built; remove the directory and build it again", dir)
	}
	return b, nil
}

var imageDirRE = regexp.MustCompile(`^[a-z0-9]+-[0-9a-f]{16}$`)

// List returns every image in the cache, current or not, sorted by name
// and then newest first.
func (c *Cache) List() ([]*Built, error) {
	entries, err := os.ReadDir(c.Dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	var list []*Built
	for _, e := range entries {
		if !e.IsDir() || !imageDirRE.MatchString(e.Name()) {
			continue
		}
		if _, err := os.Stat(filepath.Join(c.Dir, e.Name(), "image.json")); errors.Is(err, os.ErrNotExist) {
			continue // not an image: kits of earlier versions lived here too
		}
		b, err := load(filepath.Join(c.Dir, e.Name()))
		if err != nil {
			return nil, err
		}
		list = append(list, b)
	}
	sort.Slice(list, func(i, j int) bool {
		if list[i].Name != list[j].Name {
			return list[i].Name < list[j].Name
		}
		return list[i].BuiltAt.After(list[j].BuiltAt)
	})
	return list, nil
}

// Ensure returns img from the cache, building it first if it is missing.
// While another process builds it, Ensure waits for that build and says so
// on Log. A build that fails or is interrupted leaves nothing in the cache
// that Lookup would take for an image.
func (c *Cache) Ensure(ctx context.Context, img *Image) (*Built, error) {
	b, err := c.Lookup(img)
	if !errors.Is(err, ErrNotBuilt) {
		return b, err
	}
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("worker image cache: %w", err)
	}
	unlock, err := c.lock(ctx, img)
	if err != nil {
		return nil, err
	}
	defer unlock()
	// Another process may have built it while this one waited.
	if b, err := c.Lookup(img); !errors.Is(err, ErrNotBuilt) {
		return b, err
	}
	return c.build(ctx, img)
}

// lock takes the exclusive build lock of img, waiting while another
// process holds it. The kernel drops the lock when its holder exits, so a
// killed builder never blocks the next one.
func (c *Cache) lock(ctx context.Context, img *Image) (unlock func(), err error) {
	name := c.path(img) + ".lock"
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("worker image cache: %w", err)
	}
	said := false
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if err != syscall.EWOULDBLOCK && err != syscall.EINTR {
			f.Close()
			return nil, fmt.Errorf("worker image cache: lock %s: %w", name, err)
		}
		if !said {
			c.logf("worker image %s: another process is building it (lock %s); waiting for it", img.Name, name)
			said = true
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("waiting for worker image %s: %w", img.Name, context.Cause(ctx))
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func (c *Cache) logf(format string, args ...any) {
	if c.Log != nil {
		fmt.Fprintf(c.Log, format+"\n", args...)
	}
}

// prefixWriter writes each line it is given to w after prefix.
type prefixWriter struct {
	mu     sync.Mutex
	w      io.Writer
	prefix string
	buf    []byte
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.buf = append(p.buf, b...)
	for {
		i := bytes.IndexByte(p.buf, '\n')
		if i < 0 {
			return len(b), nil
		}
		fmt.Fprintf(p.w, "%s%s\n", p.prefix, p.buf[:i])
		p.buf = p.buf[i+1:]
	}
}

// Flush writes a last line that has no newline.
func (p *prefixWriter) Flush() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.buf) > 0 {
		fmt.Fprintf(p.w, "%s%s\n", p.prefix, p.buf)
		p.buf = nil
	}
}

// Sandbox returns a Bubblewrap sandbox running on b.
func (b *Built) Sandbox() *sandbox.Bubblewrap {
	bw := sandbox.NewBubblewrap()
	bw.Root = b.Root
	return bw
}
