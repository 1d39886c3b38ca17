//go:build linux

package sandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

const python = "/usr/bin/python3"

// newRunner returns the Bubblewrap under test, failing the test when the
// machine lacks what the sandbox needs.
func newRunner(t testing.TB) *Bubblewrap {
	t.Helper()
	r := NewBubblewrap()
	if r.Path == "" {
		t.Fatal("bubblewrap (bwrap) is not installed: `make test` installs it (Debian: apt-get install bubblewrap)")
	}
	if _, err := os.Stat(python); err != nil {
		t.Fatalf("%s is missing: `make test` installs it (Debian: apt-get install python3)", python)
	}
	return r
}

var testUIDs atomic.Int64

// withUser returns spec with a User of its own when the test runs as root,
// as scripts never run as root: each run gets the next of a range of
// unused uids, apart from the server's.
func withUser(spec Spec) Spec {
	if os.Geteuid() == 0 && spec.User == nil {
		id := 2_100_000 + int(testUIDs.Add(1))
		spec.User = &User{UID: id, GID: id}
	}
	return spec
}

// hostDir returns a new directory that the sandbox's user can reach, unlike
// t.TempDir(), whose parent is private to root. With writable set, the
// directory belongs to user.
func hostDir(t testing.TB, user *User, writable bool) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "cleanroom-sandbox-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if writable && user != nil {
		if err := os.Chown(dir, user.UID, user.GID); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// run is one sandboxed Python script and what it printed.
type run struct {
	res            Result
	err            error
	stdout, stderr string
}

// runIn runs script as /cleanroom/script.py in r, as the job user.
func runIn(t *testing.T, r Runner, ctx context.Context, script string, spec Spec) run {
	t.Helper()
	spec = withUser(spec)
	dir := hostDir(t, spec.User, false)
	file := filepath.Join(dir, "script.py")
	if err := os.WriteFile(file, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if spec.Stdout == nil {
		spec.Stdout = &stdout
	}
	spec.Stderr = &stderr
	spec.Command = []string{python, "/cleanroom/script.py"}
	spec.Mounts = append(spec.Mounts, Mount{Host: file, Sandbox: "/cleanroom/script.py"})
	res, err := r.Run(ctx, spec)
	return run{res: res, err: err, stdout: stdout.String(), stderr: stderr.String()}
}

// runPython runs script as /cleanroom/script.py with mounts, under spec's
// Timeout and Dir.
func runPython(t *testing.T, ctx context.Context, script string, spec Spec) run {
	t.Helper()
	return runIn(t, newRunner(t), ctx, script, spec)
}

// mustSucceed fails the test unless the script ran and exited with status 0.
func (r run) mustSucceed(t *testing.T) run {
	t.Helper()
	if r.err != nil {
		t.Fatalf("Run: %v\nstderr:\n%s", r.err, r.stderr)
	}
	if err := r.res.Err(); err != nil {
		t.Fatalf("%v\nstdout:\n%s\nstderr:\n%s", err, r.stdout, r.stderr)
	}
	return r
}

// decode parses the script's stdout as JSON into v.
func (r run) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(r.stdout), v); err != nil {
		t.Fatalf("script output is not JSON: %v\n%s", err, r.stdout)
	}
}

func TestOutputReachesWriters(t *testing.T) {
	t.Parallel()
	r := runPython(t, context.Background(), `
import sys
print("hello from the sandbox")
print("a warning", file=sys.stderr)
`, Spec{}).mustSucceed(t)
	if r.stdout != "hello from the sandbox\n" {
		t.Errorf("stdout = %q", r.stdout)
	}
	if r.stderr != "a warning\n" {
		t.Errorf("stderr = %q", r.stderr)
	}
	if r.res.ExitCode != 0 || r.res.Signal != 0 || r.res.TimedOut || r.res.Duration <= 0 {
		t.Errorf("result = %+v", r.res)
	}
}

func TestOneWriterForBothStreams(t *testing.T) {
	t.Parallel()
	var log bytes.Buffer
	res, err := newRunner(t).Run(context.Background(), withUser(Spec{
		Command: []string{python, "-c", `
import sys
for i in range(200):
    print("out", i)
    print("err", i, file=sys.stderr)
`},
		Stdout: &log, Stderr: &log,
	}))
	if err != nil || res.Err() != nil {
		t.Fatalf("Run: %v, %v", err, res.Err())
	}
	if n := strings.Count(log.String(), "\n"); n != 400 {
		t.Errorf("got %d lines, want 400:\n%s", n, log.String())
	}
}

func TestExitStatusPropagates(t *testing.T) {
	t.Parallel()
	r := runPython(t, context.Background(), "import sys; sys.exit(3)", Spec{})
	if r.err != nil {
		t.Fatalf("Run: %v", r.err)
	}
	if r.res.ExitCode != 3 || r.res.Signal != 0 || r.res.TimedOut {
		t.Errorf("result = %+v, want exit status 3", r.res)
	}
	if err := r.res.Err(); err == nil || err.Error() != "script exited with status 3" {
		t.Errorf("Err() = %v", err)
	}
}

func TestUncaughtExceptionFails(t *testing.T) {
	t.Parallel()
	r := runPython(t, context.Background(), "raise ValueError('bad row')", Spec{})
	if r.err != nil {
		t.Fatalf("Run: %v", r.err)
	}
	if r.res.ExitCode != 1 {
		t.Errorf("result = %+v, want exit status 1", r.res)
	}
	if !strings.Contains(r.stderr, "ValueError: bad row") {
		t.Errorf("stderr lacks the traceback:\n%s", r.stderr)
	}
}

func TestSignalDeathIsNamed(t *testing.T) {
	t.Parallel()
	r := runPython(t, context.Background(), `
import os, signal
os.kill(os.getpid(), signal.SIGSEGV)
`, Spec{})
	if r.err != nil {
		t.Fatalf("Run: %v", r.err)
	}
	if r.res.Signal != syscall.SIGSEGV || r.res.ExitCode != -1 {
		t.Errorf("result = %+v, want killed by SIGSEGV", r.res)
	}
	want := "script was killed by signal SIGSEGV (segmentation fault)"
	if err := r.res.Err(); err == nil || err.Error() != want {
		t.Errorf("Err() = %v, want %q", err, want)
	}
}

// daemon is Python that leaves a process behind, as hard to end as a script
// can make it: double-forked, in its own session, ignoring SIGTERM and
// SIGHUP, with stdio closed and marker as its argv[0]. It returns once the
// process runs.
const daemon = `
import os, signal, sys, time

def leave_daemon(marker):
    pid = os.fork()
    if pid == 0:
        os.setsid()
        if os.fork() == 0:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            signal.signal(signal.SIGHUP, signal.SIG_IGN)
            null = os.open("/dev/null", os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            os.execv("/usr/bin/sleep", [marker, "1000"])
        os._exit(0)
    os.waitpid(pid, 0)
    for _ in range(1000):
        for p in os.listdir("/proc"):
            try:
                with open("/proc/%s/cmdline" % p, "rb") as f:
                    if f.read().startswith(marker.encode()):
                        return
            except OSError:
                pass
        time.sleep(0.01)
    sys.exit("the daemon did not start")
`

// newMarker returns a string to find the test's leftover processes by.
func newMarker(t *testing.T) string {
	return fmt.Sprintf("cleanroom-test-%s-%d-%d", t.Name(), os.Getpid(), time.Now().UnixNano())
}

// hostProcesses returns the host PIDs whose command line contains marker.
func hostProcesses(t *testing.T, marker string) []string {
	t.Helper()
	cmdlines, err := filepath.Glob("/proc/[0-9]*/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	var pids []string
	for _, file := range cmdlines {
		b, err := os.ReadFile(file)
		if err == nil && bytes.Contains(b, []byte(marker)) {
			pids = append(pids, filepath.Base(filepath.Dir(file)))
		}
	}
	return pids
}

func TestLeftoverProcessesEndWithRun(t *testing.T) {
	t.Parallel()
	marker := newMarker(t)
	start := time.Now()
	runPython(t, context.Background(), daemon+fmt.Sprintf(`
leave_daemon(%q)
print("left a daemon")
`, marker), Spec{}).mustSucceed(t)
	if pids := hostProcesses(t, marker); len(pids) > 0 {
		t.Errorf("processes %v left running after Run returned", pids)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Run took %s: it waited for the daemon", d)
	}
}

func TestTimeoutEndsRun(t *testing.T) {
	t.Parallel()
	marker := newMarker(t)
	start := time.Now()
	r := runPython(t, context.Background(), daemon+fmt.Sprintf(`
leave_daemon(%q)
print("started", flush=True)
time.sleep(60)
print("never")
`, marker), Spec{Timeout: 1500 * time.Millisecond})
	took := time.Since(start)
	if r.err != nil {
		t.Fatalf("Run: %v", r.err)
	}
	if !r.res.TimedOut {
		t.Fatalf("result = %+v, want timed out", r.res)
	}
	if r.stdout != "started\n" {
		t.Errorf("stdout = %q, want the output from before the limit", r.stdout)
	}
	want := "script exceeded its time limit of 1.5s"
	if err := r.res.Err(); err == nil || err.Error() != want {
		t.Errorf("Err() = %v, want %q", err, want)
	}
	if took > 5*time.Second {
		t.Errorf("Run returned after %s for a 1.5s limit", took)
	}
	if pids := hostProcesses(t, marker); len(pids) > 0 {
		t.Errorf("processes %v left running after the time limit", pids)
	}
}

// notifier is a Writer that closes ready once line has been written.
type notifier struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	line  string
	ready chan struct{}
}

func (n *notifier) Write(p []byte) (int, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	had := strings.Contains(n.buf.String(), n.line)
	n.buf.Write(p)
	if !had && strings.Contains(n.buf.String(), n.line) {
		close(n.ready)
	}
	return len(p), nil
}

func TestCancelKillsRun(t *testing.T) {
	t.Parallel()
	marker := newMarker(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &notifier{line: "ready\n", ready: make(chan struct{})}
	done := make(chan run, 1)
	go func() {
		done <- runPython(t, ctx, daemon+fmt.Sprintf(`
leave_daemon(%q)
print("ready", flush=True)
time.sleep(60)
`, marker), Spec{Stdout: out})
	}()
	select {
	case <-out.ready:
	case r := <-done:
		t.Fatalf("run ended before it was canceled: %+v, %v\n%s", r.res, r.err, r.stderr)
	case <-time.After(10 * time.Second):
		t.Fatal("script did not start")
	}
	if len(hostProcesses(t, marker)) == 0 {
		t.Fatal("the daemon is not visible on the host; the test cannot tell whether it ends")
	}
	canceled := time.Now()
	cancel()
	var r run
	select {
	case r = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if d := time.Since(canceled); d > 3*time.Second {
		t.Errorf("Run returned %s after cancel", d)
	}
	if !errors.Is(r.err, context.Canceled) {
		t.Errorf("Run error = %v, want context.Canceled", r.err)
	}
	if r.res.TimedOut || r.res.Signal != syscall.SIGKILL {
		t.Errorf("result = %+v, want killed, not timed out", r.res)
	}
	if pids := hostProcesses(t, marker); len(pids) > 0 {
		t.Errorf("processes %v left running after cancel", pids)
	}
}

func TestInputReadOnlyOutputWritable(t *testing.T) {
	t.Parallel()
	user := withUser(Spec{}).User
	input, output := hostDir(t, user, false), hostDir(t, user, true)
	if err := os.WriteFile(filepath.Join(input, "data.csv"), []byte("1,2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := runPython(t, context.Background(), `
import json, os
res = {"read": open("/input/data.csv").read()}
for name, f in [("write", lambda: open("/input/data.csv", "w")),
                ("create", lambda: open("/input/new.csv", "w")),
                ("remove", lambda: os.remove("/input/data.csv"))]:
    try:
        f()
        res[name] = "succeeded"
    except OSError as e:
        res[name] = e.strerror
os.makedirs("/output/plots")
with open("/output/result.txt", "w") as f:
    f.write("42\n")
with open("/output/plots/a.txt", "w") as f:
    f.write("a\n")
print(json.dumps(res))
`, Spec{User: user, Mounts: []Mount{
		{Host: input, Sandbox: "/input"},
		{Host: output, Sandbox: "/output", Writable: true},
	}}).mustSucceed(t)
	var got map[string]string
	r.decode(t, &got)
	if got["read"] != "1,2\n" {
		t.Errorf("read /input/data.csv = %q", got["read"])
	}
	for _, op := range []string{"write", "create", "remove"} {
		if got[op] != "Read-only file system" {
			t.Errorf("%s in /input: %s, want Read-only file system", op, got[op])
		}
	}
	for file, want := range map[string]string{"result.txt": "42\n", "plots/a.txt": "a\n"} {
		b, err := os.ReadFile(filepath.Join(output, file))
		if err != nil || string(b) != want {
			t.Errorf("host output %s = %q, %v; want %q", file, b, err, want)
		}
	}
	if _, err := os.Stat(filepath.Join(input, "new.csv")); err == nil {
		t.Error("a file appeared in the host's input directory")
	}
}

func TestTmpIsPrivateAndFresh(t *testing.T) {
	t.Parallel()
	hostFile, err := os.CreateTemp("", "cleanroom-host-tmp-*")
	if err != nil {
		t.Fatal(err)
	}
	hostFile.Close()
	t.Cleanup(func() { os.Remove(hostFile.Name()) })
	script := fmt.Sprintf(`
import json, os
before = os.listdir("/tmp")
with open("/tmp/scratch.txt", "w") as f:
    f.write("x" * 100000)
print(json.dumps({"before": before, "host_file": os.path.exists(%q), "cwd": os.getcwd(),
                  "home": os.path.expanduser("~")}))
`, filepath.Join("/tmp", filepath.Base(hostFile.Name())))
	for i := range 2 {
		r := runPython(t, context.Background(), script, Spec{}).mustSucceed(t)
		var got struct {
			Before   []string
			HostFile bool `json:"host_file"`
			Cwd      string
			Home     string
		}
		r.decode(t, &got)
		if len(got.Before) != 0 {
			t.Errorf("run %d: /tmp held %v at the start", i+1, got.Before)
		}
		if got.HostFile {
			t.Errorf("run %d: the host's /tmp is visible", i+1)
		}
		if got.Cwd != "/tmp" || got.Home != "/tmp" {
			t.Errorf("run %d: cwd %q, home %q; want /tmp", i+1, got.Cwd, got.Home)
		}
	}
}

func TestRootIsReadOnly(t *testing.T) {
	t.Parallel()
	r := runPython(t, context.Background(), `
import json
res = {}
for p in ["/file", "/usr/file", "/cleanroom/file", "/tmp/file", "/dev/shm/file"]:
    try:
        open(p, "w").close()
        res[p] = "ok"
    except OSError as e:
        res[p] = e.strerror
print(json.dumps(res))
`, Spec{}).mustSucceed(t)
	var got map[string]string
	r.decode(t, &got)
	want := map[string]string{
		"/file":           "Read-only file system",
		"/usr/file":       "Read-only file system",
		"/cleanroom/file": "Read-only file system",
		"/tmp/file":       "ok",
		"/dev/shm/file":   "ok", // multiprocessing needs it; private like /tmp
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("writes: got %v, want %v", got, want)
	}
}

func TestNoNetwork(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan struct{}, 1)
	go func() {
		if c, err := ln.Accept(); err == nil {
			accepted <- struct{}{}
			c.Close()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	r := runPython(t, context.Background(), fmt.Sprintf(`
import json, socket
res = {"interfaces": [name for _, name in socket.if_nameindex()]}
for name, addr in [("loopback", ("127.0.0.1", %d)), ("internet", ("192.0.2.1", 80))]:
    try:
        socket.create_connection(addr, timeout=2).close()
        res[name] = "connected"
    except OSError as e:
        res[name] = str(e)
try:
    socket.getaddrinfo("example.com", 443)
    res["dns"] = "resolved"
except OSError as e:
    res["dns"] = str(e)
print(json.dumps(res))
`, port), Spec{}).mustSucceed(t)
	var got struct {
		Interfaces              []string
		Loopback, Internet, DNS string
	}
	r.decode(t, &got)
	if !reflect.DeepEqual(got.Interfaces, []string{"lo"}) {
		t.Errorf("interfaces = %v, want only lo", got.Interfaces)
	}
	if !strings.Contains(got.Loopback, "refused") {
		t.Errorf("connecting to the host's loopback port %d: %s", port, got.Loopback)
	}
	if !strings.Contains(got.Internet, "unreachable") {
		t.Errorf("connecting to the internet: %s", got.Internet)
	}
	if got.DNS == "resolved" {
		t.Error("a host name resolved")
	}
	select {
	case <-accepted:
		t.Error("the host's listener accepted a connection from the sandbox")
	default:
	}
}

func TestHostFilesHidden(t *testing.T) {
	t.Parallel()
	repo, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(t.TempDir(), "secret.txt")
	if err := os.WriteFile(secret, []byte("secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	paths := []string{"/etc/shadow", "/etc/passwd", "/etc", "/root", "/home", "/var", "/run", "/sys", repo, secret}
	for _, p := range []string{"/etc/shadow", repo, secret} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%s missing on the host; the test cannot tell whether it is hidden", p)
		}
	}
	list, _ := json.Marshal(paths)
	r := runPython(t, context.Background(), fmt.Sprintf(`
import json, os
print(json.dumps(sorted(os.listdir("/")) + [p for p in %s if os.path.lexists(p)]))
`, list), Spec{}).mustSucceed(t)
	var got []string
	r.decode(t, &got)
	want := []string{"cleanroom", "dev", "proc", "tmp", "usr"}
	for _, dir := range []string{"bin", "sbin", "lib", "lib32", "lib64", "libx32"} {
		if _, err := os.Lstat("/" + dir); err == nil {
			want = append(want, dir)
		}
	}
	slices.Sort(want)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("sandbox / and visible host paths = %v, want only %v", got, want)
	}
}

// The environment test sets a variable of the test process, so it runs
// alone.
func TestEnvironmentIsAllowListOnly(t *testing.T) {
	t.Setenv("CLEANROOM_TEST_CANARY", "must-not-leak")
	r := runPython(t, context.Background(), `
import json, os
print(json.dumps(dict(os.environ)))
`, Spec{}).mustSucceed(t)
	var got map[string]string
	r.decode(t, &got)
	want := map[string]string{
		"PATH":                    "/usr/local/bin:/usr/bin:/bin",
		"HOME":                    "/tmp",
		"LANG":                    "C.UTF-8",
		"MPLBACKEND":              "Agg",
		"PYTHONDONTWRITEBYTECODE": "1",
		"PYTHONUNBUFFERED":        "1",
		"PYTHONPATH":              "/input/code:/opt/cleanroom/python",
		"PWD":                     "/tmp",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("environment = %v, want %v", got, want)
	}
}

func TestOnlyOwnProcessesVisible(t *testing.T) {
	t.Parallel()
	r := runPython(t, context.Background(), fmt.Sprintf(`
import json, os, socket
pids = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
print(json.dumps({"pids": pids, "host_pid_visible": os.path.exists("/proc/%d/cmdline"),
                  "init": open("/proc/1/cmdline").read().split("\0")[:4],
                  "hostname": socket.gethostname()}))
`, os.Getpid()), Spec{}).mustSucceed(t)
	var got struct {
		Pids           []int
		HostPidVisible bool `json:"host_pid_visible"`
		Init           []string
		Hostname       string
	}
	r.decode(t, &got)
	// PID 1 is bwrap's reaper, PID 2 the script.
	if !reflect.DeepEqual(got.Pids, []int{1, 2}) {
		t.Errorf("sandbox sees PIDs %v, want [1 2]", got.Pids)
	}
	if got.HostPidVisible {
		t.Errorf("the test process (PID %d) is visible", os.Getpid())
	}
	// PID 1's command line is readable; bwrap's options, which name host
	// paths, are not on it.
	if len(got.Init) != 4 || !slices.Equal(got.Init[1:], []string{"--args", "3", "--"}) {
		t.Errorf("PID 1 command line starts %q, want bwrap --args 3 --", got.Init)
	}
	if got.Hostname != "cleanroom" {
		t.Errorf("hostname = %q", got.Hostname)
	}
}

func TestSetupFailureIsRunError(t *testing.T) {
	t.Parallel()
	r := newRunner(t)
	var stderr bytes.Buffer
	_, err := r.Run(context.Background(), withUser(Spec{Command: []string{"/usr/bin/no-such-interpreter"}, Stderr: &stderr}))
	if err == nil || !strings.Contains(err.Error(), "/usr/bin/no-such-interpreter") {
		t.Errorf("Run error = %v, want one naming the missing command", err)
	}
	_, err = r.Run(context.Background(), withUser(Spec{Command: []string{python, "-c", "pass"}, Dir: "/nowhere"}))
	if err == nil || !strings.Contains(err.Error(), "/nowhere") {
		t.Errorf("Run error = %v, want one naming the missing directory", err)
	}
	_, err = r.Run(context.Background(), withUser(Spec{
		Command: []string{python, "-c", "pass"},
		Mounts:  []Mount{{Host: "/no/such/dir", Sandbox: "/input"}},
	}))
	if !errors.Is(err, ErrInvalidSpec) || !strings.Contains(err.Error(), "/no/such/dir") {
		t.Errorf("Run error = %v, want an invalid spec naming the missing host path", err)
	}
}

func TestMissingBubblewrap(t *testing.T) {
	t.Parallel()
	r := &Bubblewrap{Path: "/no/such/bwrap"}
	_, err := r.Run(context.Background(), withUser(Spec{Command: []string{python, "-c", "pass"}}))
	if !errors.Is(err, ErrNoBubblewrap) || !strings.Contains(err.Error(), "install the bubblewrap package") {
		t.Errorf("Run error = %v, want ErrNoBubblewrap with an install hint", err)
	}
}

func TestCanceledBeforeStart(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := newRunner(t).Run(ctx, withUser(Spec{Command: []string{python, "-c", "pass"}}))
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Run error = %v, want context.Canceled", err)
	}
}

func BenchmarkStartup(b *testing.B) {
	r := newRunner(b)
	b.Run("sandbox", func(b *testing.B) {
		for b.Loop() {
			res, err := r.Run(context.Background(), withUser(Spec{Command: []string{python, "-c", "pass"}}))
			if err != nil || res.Err() != nil {
				b.Fatal(err, res.Err())
			}
		}
	})
	b.Run("direct", func(b *testing.B) {
		for b.Loop() {
			if err := exec.Command(python, "-c", "pass").Run(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// A script runs as the Spec's unprivileged host user, never as the
// server's: what it writes belongs to that user on the host. As root, a
// Spec without a User is refused.
func TestRunsAsTheJobUser(t *testing.T) {
	t.Parallel()
	spec := withUser(Spec{})
	out := hostDir(t, spec.User, true)
	spec.Mounts = []Mount{{Host: out, Sandbox: "/output", Writable: true}}
	runPython(t, context.Background(), `open("/output/mine", "w").write("x")`, spec).mustSucceed(t)
	fi, err := os.Stat(filepath.Join(out, "mine"))
	if err != nil {
		t.Fatal(err)
	}
	want := os.Geteuid()
	if spec.User != nil {
		want = spec.User.UID
	}
	if uid := int(fi.Sys().(*syscall.Stat_t).Uid); uid != want || (os.Geteuid() == 0 && uid == 0) {
		t.Fatalf("the script's file belongs to uid %d, want %d", uid, want)
	}
	if os.Geteuid() == 0 {
		_, err := newRunner(t).Run(context.Background(), Spec{Command: []string{python, "-c", "pass"}})
		if !errors.Is(err, ErrInvalidSpec) {
			t.Fatalf("as root without a User: %v, want refused", err)
		}
	}
}
