package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cleanroom-dev/cleanroom/sandbox"
)

// pythonImage returns the Python image from this machine's cache, building
// it on first use (about a minute) as every server and test on the machine
// shares it.
func pythonImage(t *testing.T) *Built {
	t.Helper()
	dir, err := DefaultDir()
	if err != nil {
		t.Fatal(err)
	}
	c := NewCache(dir)
	c.Log = testLog{t}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	b, err := c.Ensure(ctx, Python())
	if err != nil {
		t.Fatalf("%v\nthe worker image needs mmdebstrap, bubblewrap and a Debian mirror: `make deps` installs them (Debian: apt-get install mmdebstrap bubblewrap)", err)
	}
	return b
}

// testLog passes build progress to the test log.
type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// importAll imports every library of the list and exercises the ones that
// need more than an import to work in the sandbox: matplotlib draws with
// Agg to /output, gnupg runs gpg.
const importAll = `import importlib, json, sys
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import gnupg
out = {"python": "%d.%d.%d" % sys.version_info[:3], "backend": matplotlib.get_backend(), "libraries": {}}
for name in sys.argv[1:]:
    out["libraries"][name] = str(importlib.import_module(name).__version__)
plt.plot([1, 2, 3], [3, 1, 2])
plt.savefig("/output/plot.png")
import os
os.makedirs("/tmp/gnupg", mode=0o700)
out["gpg"] = ".".join(map(str, gnupg.GPG(gnupghome="/tmp/gnupg").version or ()))
import pandas, sklearn.linear_model, xgboost
df = pandas.DataFrame({"x": [0, 1, 2, 3], "y": [0, 1, 0, 1]})
out["fit"] = float(sklearn.linear_model.LinearRegression().fit(df[["x"]], df["y"]).coef_[0])
print(json.dumps(out))
`

// Every library of the list imports and works inside the real sandbox on
// the image, at the versions its spec reports.
func TestPythonImage(t *testing.T) {
	b := pythonImage(t)
	// Not t.TempDir(): its parent is closed to the sandbox's user.
	dir, err := os.MkdirTemp("", "cleanroom-image-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	for _, sub := range []string{"script", "output"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o777); err != nil {
			t.Fatal(err)
		}
		os.Chmod(filepath.Join(dir, sub), 0o777) // writable by the sandbox's user, whatever the umask
	}
	os.Chmod(dir, 0o755)
	if err := os.WriteFile(filepath.Join(dir, "script", "main.py"), []byte(importAll), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	spec := sandbox.Spec{
		Command: append([]string{"/usr/bin/python3", "/cleanroom/main.py"}, Python().Modules()...),
		Mounts: []sandbox.Mount{
			{Host: filepath.Join(dir, "output"), Sandbox: "/output", Writable: true},
			{Host: filepath.Join(dir, "script"), Sandbox: "/cleanroom"},
		},
		Stdout: &stdout, Stderr: &stderr,
		Timeout: 2 * time.Minute,
	}
	if os.Geteuid() == 0 {
		spec.User = &sandbox.User{UID: nobody, GID: nobody}
	}
	res, err := b.Sandbox().Run(context.Background(), spec)
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, stderr.String())
	}
	if err := res.Err(); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	var got struct {
		Python    string
		Backend   string
		Libraries map[string]string
		GPG       string
		Fit       float64
	}
	if err := json.Unmarshal(stdout.Bytes(), &got); err != nil {
		t.Fatalf("script printed %q: %v", stdout.String(), err)
	}
	t.Logf("Python %s, gpg %s, libraries %v", got.Python, got.GPG, got.Libraries)
	if !strings.HasPrefix(got.Python, "3.13.") {
		t.Errorf("Python %s, want 3.13", got.Python)
	}
	if v := got.Libraries["pandas"]; !strings.HasPrefix(v, "2.2.") {
		t.Errorf("pandas %s, want 2.2", v)
	}
	if got.Backend != "agg" && got.Backend != "Agg" {
		t.Errorf("matplotlib backend %q, want Agg", got.Backend)
	}
	if got.GPG == "" {
		t.Error("gnupg found no gpg")
	}
	if got.Fit <= 0 {
		t.Errorf("regression coefficient %v, want > 0", got.Fit)
	}
	if fi, err := os.Stat(filepath.Join(dir, "output", "plot.png")); err != nil || fi.Size() == 0 {
		t.Errorf("matplotlib wrote no plot: %v", err)
	}

	kit := &Kit{Digest: strings.Repeat("ab", 32)}
	spec2 := b.Spec(sandbox.Policy(), kit, "server")
	if spec2.Python != got.Python {
		t.Errorf("spec says Python %s, the sandbox runs %s", spec2.Python, got.Python)
	}
	for _, m := range Python().Modules() {
		if spec2.Libraries[m] != got.Libraries[m] {
			t.Errorf("spec says %s %s, the sandbox imports %s", m, spec2.Libraries[m], got.Libraries[m])
		}
	}
	for _, p := range Python().Packages {
		if spec2.Packages[p.Name] == "" {
			t.Errorf("spec has no version of listed package %s", p.Name)
		}
	}
	if spec2.Measurement != Measurement(b.Manifest, sandbox.Policy(), kit.Digest, "server") || len(spec2.Measurement) != 64 {
		t.Errorf("spec measurement %q", spec2.Measurement)
	}
}

// The manifest is what dpkg itself says is installed in the image.
func TestManifestMatchesDpkg(t *testing.T) {
	b := pythonImage(t)
	if _, err := exec.LookPath("dpkg-query"); err != nil {
		t.Fatal("dpkg-query is missing: the worker images are built on Debian, which has it")
	}
	cmd := exec.Command("sh", "-c", `dpkg-query --admindir="$1/var/lib/dpkg" -W -f '${Package}\t${Version}\t${Architecture}\n' | LC_ALL=C sort`, "sh", b.Root)
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, b.Manifest) {
		t.Errorf("manifest.txt differs from dpkg-query:\n%s\nvs\n%s", b.Manifest, out)
	}
}

// The image holds nothing of the machine that built it and the mount points
// the sandbox needs.
func TestImageContents(t *testing.T) {
	b := pythonImage(t)
	for _, dir := range []string{"input", "output", "cleanroom", "tmp", "proc", "dev"} {
		if fi, err := os.Stat(filepath.Join(b.Root, dir)); err != nil || !fi.IsDir() {
			t.Errorf("mount point /%s missing: %v", dir, err)
		}
	}
	for _, f := range []string{"etc/resolv.conf", "etc/apt/sources.list"} {
		if _, err := os.Lstat(filepath.Join(b.Root, f)); err == nil {
			t.Errorf("/%s is in the image", f)
		}
	}
	if host, err := os.ReadFile(filepath.Join(b.Root, "etc/hostname")); err != nil || strings.TrimSpace(string(host)) != "cleanroom" {
		t.Errorf("/etc/hostname = %q, %v", host, err)
	}
	if m, _ := filepath.Glob(filepath.Join(b.Root, "usr/share/man/man1/*")); len(m) > 0 {
		t.Errorf("manual pages in the image: %v", m[:1])
	}
}
