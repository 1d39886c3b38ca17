package worker

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestPythonList(t *testing.T) {
	img := Python()
	if img.Name != "python" || img.Suite != "trixie" {
		t.Errorf("Python() = %s on %s, want python on trixie", img.Name, img.Suite)
	}
	want := []string{"numpy", "pandas", "scipy", "sklearn", "statsmodels", "seaborn", "matplotlib", "xgboost", "imblearn", "pyreadstat", "gnupg"}
	if got := img.Modules(); !reflect.DeepEqual(got, want) {
		t.Errorf("modules = %v, want %v", got, want)
	}
	if img.Packages[0] != (Package{Name: "python3"}) {
		t.Errorf("first package = %+v, want python3", img.Packages[0])
	}
}

func TestParseList(t *testing.T) {
	got, err := ParseList(strings.NewReader("# comment\n\npython3   # the interpreter\n  python3-pandas\tpandas\npython3-matplotlib matplotlib.pyplot\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []Package{{Name: "python3"}, {Name: "python3-pandas", Module: "pandas"}, {Name: "python3-matplotlib", Module: "matplotlib.pyplot"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ParseList = %+v, want %+v", got, want)
	}
	for _, tt := range []struct{ list, want string }{
		{"", "names no package"},
		{"# only a comment\n", "names no package"},
		{"python3\npython3\n", "line 2: package python3 is already listed on line 1"},
		{"Python3\n", `line 1: "Python3" is not a Debian package name`},
		{"python3;rm\n", "not a Debian package name"},
		{"python3-pandas pandas extra\n", "line 1: want a package and at most one module"},
		{"python3-pandas pan-das\n", `"pan-das" is not a Python module name`},
	} {
		if _, err := ParseList(strings.NewReader(tt.list)); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseList(%q) = %v, want an error with %q", tt.list, err, tt.want)
		}
	}
}

func TestKey(t *testing.T) {
	img := Python()
	key := img.Key()
	if len(key) != 64 {
		t.Fatalf("Key() = %q, want 64 hex digits", key)
	}
	if again := Python().Key(); again != key {
		t.Errorf("Key() differs between calls: %s, %s", key, again)
	}
	changed := func(what string, edit func(*Image)) {
		t.Helper()
		c := Python()
		edit(c)
		if c.Key() == key {
			t.Errorf("Key() does not change when %s", what)
		}
	}
	changed("a package is added", func(c *Image) { c.Packages = append(c.Packages, Package{Name: "r-base-core"}) })
	changed("a package is dropped", func(c *Image) { c.Packages = c.Packages[1:] })
	changed("a module changes", func(c *Image) { c.Packages[1].Module = "numpy.linalg" })
	changed("the suite changes", func(c *Image) { c.Suite = "forky" })
	changed("the name changes", func(c *Image) { c.Name = "python2" })

	// What the key leaves out is only where the build happens and how.
	a := img.mmdebstrapArgs("root", "/a", "http://deb.debian.org/debian")
	b := img.mmdebstrapArgs("unshare", "/b", "http://mirror.example/debian")
	if len(a) != len(b) {
		t.Fatalf("argument lists differ in length")
	}
	for i := range a {
		if a[i] != b[i] && !strings.HasPrefix(a[i], "--mode=") && a[i] != "/a" && !strings.Contains(a[i], "deb.debian.org") {
			t.Errorf("argument %d differs by more than mode, target and mirror: %q vs %q", i, a[i], b[i])
		}
	}
}

func TestMeasurement(t *testing.T) {
	manifest := []byte("python3\t3.13.5-1\tamd64\n")
	policy := []byte(`{"runner":"bubblewrap"}`)
	kit, server := "kitdigest", "serverdigest"
	m := Measurement(manifest, policy, kit, server)
	// The documented construction, so that clients can recompute it.
	doc := "cleanroom worker measurement 3\nmanifest 23\n" + string(manifest) + "policy 23\n" + string(policy) + "kit 9\n" + kit + "server 12\n" + server
	sum := sha256.Sum256([]byte(doc))
	if want := hex.EncodeToString(sum[:]); m != want {
		t.Errorf("Measurement = %s, want %s", m, want)
	}
	if Measurement(manifest, policy, kit, server) != m {
		t.Error("Measurement is not deterministic")
	}
	for _, other := range []string{
		Measurement([]byte("python3\t3.13.5-2\tamd64\n"), policy, kit, server),
		Measurement(manifest, []byte(`{"runner":"runsc"}`), kit, server),
		Measurement(manifest, policy, "otherkit", server),
		Measurement(manifest, policy, kit, "otherserver"),
		// Moving bytes between the parts changes it too.
		Measurement(append(append([]byte{}, manifest...), policy[:1]...), policy[1:], kit, server),
		Measurement(manifest, policy, kit+"s", server[1:]),
	} {
		if other == m {
			t.Errorf("different input, same measurement %s", m)
		}
	}
}

const sampleStatus = `Package: zlib1g
Status: install ok installed
Priority: optional
Architecture: amd64
Version: 1:1.3.dfsg+really1.3.1-1+b1
Description: compression library - runtime
 zlib is a library implementing the deflate compression method found
 .
 in gzip and PKZIP.

Package: old-conf
Status: deinstall ok config-files
Architecture: all
Version: 1.0

Package: libc6
Status: install ok installed
Architecture: amd64
Multi-Arch: same
Version: 2.41-12
Description: GNU C Library
 shared libraries
`

func TestParseStatus(t *testing.T) {
	pkgs, err := parseStatus(strings.NewReader(sampleStatus))
	if err != nil {
		t.Fatal(err)
	}
	want := "libc6\t2.41-12\tamd64\nzlib1g\t1:1.3.dfsg+really1.3.1-1+b1\tamd64\n"
	if got := string(Manifest(pkgs)); got != want {
		t.Errorf("manifest =\n%s\nwant\n%s", got, want)
	}
	if _, err := parseStatus(strings.NewReader("Package: x\nStatus: install ok installed\n")); err == nil {
		t.Error("an entry without version and architecture parsed")
	}
}

func TestSourceURIs(t *testing.T) {
	deb822 := "# http://snapshot.debian.org/archive/debian/20250520T000000Z\nTypes: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm\n"
	if got := sourceURIs(strings.NewReader(deb822), true); !reflect.DeepEqual(got, []string{"http://deb.debian.org/debian"}) {
		t.Errorf("deb822 URIs = %v", got)
	}
	list := "# deb http://commented.example/debian bookworm main\ndeb-src http://src.example/debian bookworm main\ndeb [arch=amd64 signed-by=/k.gpg] http://mirror.example/debian/ bookworm main\n"
	if got := sourceURIs(strings.NewReader(list), false); !reflect.DeepEqual(got, []string{"http://mirror.example/debian/"}) {
		t.Errorf("one-line URIs = %v", got)
	}
}

func TestPrefixWriter(t *testing.T) {
	var b bytes.Buffer
	w := &prefixWriter{w: &b, prefix: "> "}
	w.Write([]byte("one\ntw"))
	w.Write([]byte("o\nthree"))
	w.Flush()
	if got := b.String(); got != "> one\n> two\n> three\n" {
		t.Errorf("output = %q", got)
	}
}

// fakeImage writes what a build leaves for img into the cache at its
// place: a root with a dpkg database, manifest.txt and image.json.
func fakeImage(t *testing.T, c *Cache, img *Image) string {
	t.Helper()
	dir := c.path(img)
	if err := os.MkdirAll(filepath.Join(dir, "root", "var", "lib", "dpkg"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "root", dpkgStatus), []byte(sampleStatus), 0o644); err != nil {
		t.Fatal(err)
	}
	pkgs, err := parseStatus(strings.NewReader(sampleStatus))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "manifest.txt"), Manifest(pkgs), 0o644); err != nil {
		t.Fatal(err)
	}
	info, _ := json.Marshal(Info{Name: img.Name, Key: img.Key(), Suite: img.Suite, Packages: img.Packages,
		Python: "3.13.5", Libraries: map[string]string{"pandas": "2.2.3"}, BuiltAt: time.Now()})
	if err := os.WriteFile(filepath.Join(dir, "image.json"), info, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestLookup(t *testing.T) {
	c := NewCache(t.TempDir())
	img := Python()
	if _, err := c.Lookup(img); !errors.Is(err, ErrNotBuilt) {
		t.Fatalf("Lookup in an empty cache = %v, want ErrNotBuilt", err)
	}
	// An interrupted build is not an image.
	if err := os.MkdirAll(filepath.Join(c.Dir, ".build-"+filepath.Base(c.path(img))+"-123", "root"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Lookup(img); !errors.Is(err, ErrNotBuilt) {
		t.Fatalf("Lookup with only a temporary build = %v, want ErrNotBuilt", err)
	}
	if list, err := c.List(); err != nil || len(list) != 0 {
		t.Fatalf("List with only a temporary build = %v, %v", list, err)
	}

	dir := fakeImage(t, c, img)
	b, err := c.Lookup(img)
	if err != nil {
		t.Fatal(err)
	}
	if b.Root != filepath.Join(dir, "root") || b.Python != "3.13.5" {
		t.Errorf("Lookup = %+v", b)
	}
	spec := b.Spec([]byte("policy"), &Kit{Digest: "kit"}, "server")
	if spec.Measurement != Measurement(b.Manifest, []byte("policy"), "kit", "server") || spec.KitDigest != "kit" || spec.Server != "server" || spec.Libraries["pandas"] != "2.2.3" {
		t.Errorf("Spec = %+v", spec)
	}
	if list, err := c.List(); err != nil || len(list) != 1 || list[0].Key != img.Key() {
		t.Errorf("List = %v, %v; want the one image", list, err)
	}

	// An image whose packages changed after the build is refused.
	status := filepath.Join(dir, "root", dpkgStatus)
	if err := os.WriteFile(status, []byte(strings.Replace(sampleStatus, "2.41-12", "2.41-13", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Lookup(img); err == nil || !strings.Contains(err.Error(), "changed since it was built") {
		t.Errorf("Lookup of a changed image = %v", err)
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A second Ensure waits for the build in progress, says so, and takes its
// image instead of building another.
func TestEnsureWaitsForBuilder(t *testing.T) {
	dir := t.TempDir()
	builder := NewCache(dir)
	img := Python()
	unlock, err := builder.lock(context.Background(), img)
	if err != nil {
		t.Fatal(err)
	}
	var log syncBuffer
	waiter := &Cache{Dir: dir, Log: &log}
	done := make(chan error, 1)
	var got *Built
	go func() {
		var err error
		got, err = waiter.Ensure(context.Background(), img)
		done <- err
	}()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(log.String(), "another process is building it") {
		if time.Now().After(deadline) {
			t.Fatalf("the second Ensure did not say it waits; its log: %q", log.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case err := <-done:
		t.Fatalf("Ensure returned while the lock was held: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	fakeImage(t, builder, img) // the build completes
	unlock()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Ensure after the build: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Ensure still waits after the lock was released")
	}
	if got.Key != img.Key() {
		t.Errorf("Ensure returned %+v", got)
	}
	if strings.Contains(log.String(), "building Debian") {
		t.Errorf("the waiter built the image again: %q", log.String())
	}
}

func TestLockWaitCanceled(t *testing.T) {
	c := NewCache(t.TempDir())
	img := Python()
	unlock, err := c.lock(context.Background(), img)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := c.lock(ctx, img); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("lock while held, canceled = %v, want the context's error", err)
	}
}

func TestDefaultDir(t *testing.T) {
	t.Setenv("CLEANROOM_IMAGES", "/srv/images")
	if d, err := DefaultDir(); err != nil || d != "/srv/images" {
		t.Errorf("DefaultDir with CLEANROOM_IMAGES = %q, %v", d, err)
	}
}

// A kit is laid out once per content, readable by job users, and its
// digest follows the worker binary.
func TestPrepareKit(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(t.TempDir(), "cleanroom-worker")
	os.WriteFile(bin, []byte("binary v1"), 0o755)
	k1, err := PrepareKit(dir, bin)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(k1.Dir, "bin", "cleanroom-worker")); err != nil || string(b) != "binary v1" {
		t.Fatalf("kit binary %q %v", b, err)
	}
	for _, f := range []string{"python/cleanroom_util/sql.py", "python/decentriq_util/__init__.py"} {
		fi, err := os.Stat(filepath.Join(k1.Dir, f))
		if err != nil || fi.Mode().Perm()&0o004 == 0 {
			t.Errorf("%s: %v %v, want a file every user can read", f, fi, err)
		}
	}
	again, err := PrepareKit(dir, bin)
	if err != nil || again.Dir != k1.Dir || again.Digest != k1.Digest {
		t.Fatalf("same content gave another kit: %+v vs %+v (%v)", again, k1, err)
	}
	os.WriteFile(bin, []byte("binary v2"), 0o755)
	k2, err := PrepareKit(dir, bin)
	if err != nil || k2.Digest == k1.Digest || k2.Dir == k1.Dir {
		t.Fatalf("a changed binary kept the digest: %+v vs %+v (%v)", k2, k1, err)
	}
	if _, err := PrepareKit(dir, filepath.Join(dir, "missing")); !errors.Is(err, ErrNoWorkerBinary) {
		t.Fatalf("missing binary: %v", err)
	}
}
