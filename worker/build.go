package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/cleanroom-dev/cleanroom"
	"github.com/cleanroom-dev/cleanroom/sandbox"
)

// build builds img into the cache; the caller holds its lock.
func (c *Cache) build(ctx context.Context, img *Image) (*Built, error) {
	start := time.Now()
	mmdebstrap, err := exec.LookPath("mmdebstrap")
	if err != nil {
		return nil, fmt.Errorf("worker image %s: %w", img.Name, ErrNoMmdebstrap)
	}
	final := c.path(img)
	// Builds that died before their rename left these; the lock says no
	// one is working on them.
	stale, _ := filepath.Glob(filepath.Join(c.Dir, ".build-"+filepath.Base(final)+"-*"))
	for _, dir := range stale {
		if err := os.RemoveAll(dir); err != nil {
			c.logf("worker image %s: could not remove an interrupted build: %v", img.Name, err)
		}
	}
	tmp, err := os.MkdirTemp(c.Dir, ".build-"+filepath.Base(final)+"-")
	if err != nil {
		return nil, fmt.Errorf("worker image %s: %w", img.Name, err)
	}
	defer os.RemoveAll(tmp) // gone already once renamed
	// The sandbox's unprivileged user must reach the root file system.
	if err := os.Chmod(tmp, 0o755); err != nil {
		return nil, err
	}
	root := filepath.Join(tmp, "root")

	mirror := c.Mirror
	if mirror == "" {
		mirror = HostMirror()
	}
	mode := "unshare"
	if os.Geteuid() == 0 {
		mode = "root"
	}
	c.logf("worker image %s: building Debian %s with mmdebstrap from %s (about a minute, 0.8 GB)", img.Name, img.Suite, mirror)
	out := &prefixWriter{w: c.writer(), prefix: "worker image " + img.Name + ": "}
	cmd := exec.CommandContext(ctx, mmdebstrap, img.mmdebstrapArgs(mode, root, mirror)...)
	cmd.Stdout, cmd.Stderr = out, out
	// Its own process group, killed whole when ctx ends.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if mode == "root" {
		// mmdebstrap mounts /proc, /sys and /dev into the tree while it
		// builds. In a mount namespace of its own those mounts vanish
		// with it, so removing an interrupted build can never reach the
		// host's /dev. In a PID namespace of its own, mmdebstrap is its
		// init: when this process dies, mmdebstrap gets SIGKILL and the
		// kernel ends every process it started.
		cmd.SysProcAttr.Cloneflags = syscall.CLONE_NEWPID
		cmd.SysProcAttr.Unshareflags = syscall.CLONE_NEWNS
	}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	err = cmd.Run()
	out.Flush()
	if ctx.Err() != nil {
		return nil, fmt.Errorf("worker image %s: build interrupted: %w", img.Name, context.Cause(ctx))
	} else if err != nil {
		return nil, fmt.Errorf("worker image %s: mmdebstrap failed (%v); its output above says why", img.Name, err)
	}

	pkgs, err := ReadManifest(root)
	if err != nil {
		return nil, fmt.Errorf("worker image %s: %w", img.Name, err)
	}
	manifest := Manifest(pkgs)
	if err := os.WriteFile(filepath.Join(tmp, "manifest.txt"), manifest, 0o644); err != nil {
		return nil, err
	}
	info := Info{Name: img.Name, Key: img.Key(), Suite: img.Suite, Packages: img.Packages, Mirror: mirror}
	debian, err := os.ReadFile(filepath.Join(root, "etc", "debian_version"))
	if err != nil {
		return nil, fmt.Errorf("worker image %s: %w", img.Name, err)
	}
	info.Debian = strings.TrimSpace(string(debian))
	c.logf("worker image %s: importing every library inside the sandbox", img.Name)
	if info.Python, info.Libraries, err = probe(ctx, root, img.Modules()); err != nil {
		return nil, fmt.Errorf("worker image %s: %w", img.Name, err)
	}
	if img.hasR() {
		if info.R, err = probeR(ctx, root); err != nil {
			return nil, fmt.Errorf("worker image %s: %w", img.Name, err)
		}
	}
	if info.Size, err = treeSize(root); err != nil {
		return nil, err
	}
	info.BuiltAt = time.Now().UTC().Truncate(time.Second)
	info.BuildSeconds = time.Since(start).Round(100 * time.Millisecond).Seconds()
	data, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(tmp, "image.json"), append(data, '\n'), 0o644); err != nil {
		return nil, err
	}
	// On disk before it is in place: a crash after the rename must not
	// leave a complete-looking image of truncated files.
	syscall.Sync()
	if err := os.Rename(tmp, final); err != nil {
		return nil, fmt.Errorf("worker image %s: %w", img.Name, err)
	}
	b, err := load(final)
	if err != nil {
		return nil, err
	}
	runtimes := "Python " + info.Python
	if info.R != "" {
		runtimes += ", R " + info.R
	}
	c.logf("worker image %s: built in %s: Debian %s, %s, %s, in %s", img.Name,
		time.Since(start).Round(time.Second), info.Debian, runtimes, cleanroom.FormatBytes(info.Size), final)
	return b, nil
}

func (c *Cache) writer() io.Writer {
	if c.Log == nil {
		return io.Discard
	}
	return c.Log
}

// probeScript imports the modules named by its arguments and prints the
// Python version and theirs as JSON.
const probeScript = `import importlib, json, sys
libraries = {}
for name in sys.argv[1:]:
    module = importlib.import_module(name)
    libraries[name] = str(getattr(module, "__version__", ""))
print(json.dumps({"python": "%d.%d.%d" % sys.version_info[:3], "libraries": libraries}))
`

// probeR returns the version of R that Rscript runs in the sandbox on
// the image at root.
func probeR(ctx context.Context, root string) (string, error) {
	out, err := runProbe(ctx, root, []string{"/usr/bin/Rscript", "-e", `cat(R.version$major, ".", R.version$minor, sep = "")`}, "", "")
	if err != nil {
		return "", fmt.Errorf("running R in the sandbox: %w", err)
	}
	return strings.TrimSpace(out), nil
}

// probe runs probeScript in the sandbox on the image at root: an image
// whose libraries do not import is not an image.
func probe(ctx context.Context, root string, modules []string) (python string, libraries map[string]string, err error) {
	out, err := runProbe(ctx, root, append([]string{"/usr/bin/python3", "/cleanroom/probe.py"}, modules...), "probe.py", probeScript)
	if err != nil {
		return "", nil, fmt.Errorf("importing its libraries in the sandbox: %w", err)
	}
	var got struct {
		Python    string            `json:"python"`
		Libraries map[string]string `json:"libraries"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		return "", nil, fmt.Errorf("probe printed %q: %v", out, err)
	}
	return got.Python, got.Libraries, nil
}

// runProbe runs command in the sandbox on the image at root, with script
// (if any) at /cleanroom/<name>, and returns its standard output.
func runProbe(ctx context.Context, root string, command []string, name, script string) (string, error) {
	dir, err := os.MkdirTemp("", "cleanroom-probe-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o755); err != nil {
		return "", err
	}
	if name != "" {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(script), 0o644); err != nil {
			return "", err
		}
	}
	var stdout, stderr bytes.Buffer
	spec := sandbox.Spec{
		Command: command,
		Mounts:  []sandbox.Mount{{Host: dir, Sandbox: "/cleanroom"}},
		Stdout:  &stdout, Stderr: &stderr,
		Timeout: 2 * time.Minute,
	}
	if os.Geteuid() == 0 {
		spec.User = &sandbox.User{UID: nobody, GID: nobody}
	}
	bw := sandbox.NewBubblewrap()
	bw.Root = root
	res, err := bw.Run(ctx, spec)
	if err != nil {
		return "", fmt.Errorf("starting the sandbox: %w", err)
	}
	if err := res.Err(); err != nil {
		return "", fmt.Errorf("%v:\n%s", err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// nobody is the unprivileged user the probe runs as when the builder is
// root: Debian's nobody and nogroup.
const nobody = 65534

// treeSize returns the bytes of the regular files under dir.
func treeSize(dir string) (int64, error) {
	var size int64
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			fi, err := d.Info()
			if err != nil {
				return err
			}
			size += fi.Size()
		}
		return nil
	})
	return size, err
}
