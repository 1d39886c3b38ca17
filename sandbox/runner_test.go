//go:build linux

package sandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// The behaviour suite: what every Runner of the package must do, run over
// each of them. Where the runners genuinely differ, a test says so where it
// checks, with the reason.

const python = "/usr/bin/python3"

// runnerUnderTest is one Runner of the package, made for one test.
type runnerUnderTest struct {
	Runner
	gvisor  *GVisor                  // the runner, when it is gVisor; nil for bubblewrap
	cgroups func() (*cgroups, error) // where the runner makes the cgroups of its runs
}

// runners are the Runners of the package. Each test gets one of its own:
// a GVisor keeps its runs' files in a directory of the test's.
var runners = []struct {
	name string
	new  func(t *testing.T) runnerUnderTest
}{
	{"bubblewrap", func(t *testing.T) runnerUnderTest {
		b := newRunner(t)
		return runnerUnderTest{Runner: b, cgroups: b.cgroups}
	}},
	{"gvisor", func(t *testing.T) runnerUnderTest {
		g := newGVisor(t)
		return runnerUnderTest{Runner: g, gvisor: g, cgroups: g.cgroups}
	}},
}

// forEachRunner runs test for each runner, in parallel subtests named after
// the runner.
func forEachRunner(t *testing.T, test func(t *testing.T, r runnerUnderTest)) {
	t.Helper()
	for _, rt := range runners {
		t.Run(rt.name, func(t *testing.T) {
			t.Parallel()
			test(t, rt.new(t))
		})
	}
}

// leftNothing fails the test if r's runs left something of gVisor's behind:
// a process, a run directory or a cgroup. It waits for the cgroups of every
// run in flight to go, holding up one of the few tests `make test` runs at
// once: the tests of how runs end call it, the others do not. A bubblewrap
// run leaves nothing on the host but its cgroup, and Run fails when it
// cannot remove that; the limit tests check it with noCgroupsLeft.
func (r runnerUnderTest) leftNothing(t *testing.T) {
	t.Helper()
	if r.gvisor != nil {
		gvisorLeftNothing(t, r.gvisor)
	}
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

// withOutput returns spec, with a User where it needs one, and a new host
// directory mounted writable as /output.
func withOutput(t *testing.T, spec Spec) (Spec, string) {
	t.Helper()
	spec = withUser(spec)
	output := hostDir(t, spec.User, true)
	spec.Mounts = append(spec.Mounts, Mount{Host: output, Sandbox: "/output", Writable: true})
	return spec, output
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

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

func TestOutputReachesWriters(t *testing.T) {
	t.Parallel()
	forEachRunner(t, func(t *testing.T, r runnerUnderTest) {
		out := runIn(t, r, context.Background(), `
import sys
print("hello from the sandbox")
print("a warning", file=sys.stderr)
`, Spec{}).mustSucceed(t)
		if out.stdout != "hello from the sandbox\n" {
			t.Errorf("stdout = %q", out.stdout)
		}
		if out.stderr != "a warning\n" {
			t.Errorf("stderr = %q", out.stderr)
		}
		if out.res.ExitCode != 0 || out.res.Signal != 0 || out.res.TimedOut || out.res.Duration <= 0 {
			t.Errorf("result = %+v", out.res)
		}
		r.leftNothing(t)
	})
}

func TestOneWriterForBothStreams(t *testing.T) {
	t.Parallel()
	command := []string{python, "-c", `
import sys
for i in range(200):
    print("out", i)
    print("err", i, file=sys.stderr)
`}
	forEachRunner(t, func(t *testing.T, r runnerUnderTest) {
		var log bytes.Buffer
		res, err := r.Run(context.Background(), withUser(Spec{Command: command, Stdout: &log, Stderr: &log}))
		if err != nil || res.Err() != nil {
			t.Fatalf("Run: %v, %v", err, res.Err())
		}
		if n := strings.Count(log.String(), "\n"); n != 400 {
			t.Errorf("got %d lines, want 400:\n%s", n, log.String())
		}

		// An *os.File goes through a pipe: gVisor's kernel would write to
		// a file from its start.
		file, err := os.CreateTemp(t.TempDir(), "log")
		if err != nil {
			t.Fatal(err)
		}
		defer file.Close()
		file.WriteString("before\n")
		res, err = r.Run(context.Background(), withUser(Spec{Command: command, Stdout: file, Stderr: file}))
		if err != nil || res.Err() != nil {
			t.Fatalf("Run: %v, %v", err, res.Err())
		}
		b, _ := os.ReadFile(file.Name())
		if n := strings.Count(string(b), "\n"); n != 401 || !strings.HasPrefix(string(b), "before\nout 0\n") {
			t.Errorf("got %d lines, want 401:\n%s", n, b)
		}
	})
}

func TestExitStatusAndSignals(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, script string
		exitCode     int
		signal       syscall.Signal
		err          string // Result.Err()
		stderr       string // in stderr
	}{
		{"exit", "import sys; sys.exit(3)", 3, 0, "script exited with status 3", ""},
		{"exception", "raise ValueError('bad row')", 1, 0, "script exited with status 1", "ValueError: bad row"},
		{"signal", "import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)", -1, syscall.SIGSEGV,
			"script was killed by signal SIGSEGV (segmentation fault)", ""},
	}
	forEachRunner(t, func(t *testing.T, r runnerUnderTest) {
		t.Cleanup(func() { r.leftNothing(t) }) // once the cases, which share r, have run
		for _, tt := range cases {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				out := runIn(t, r, context.Background(), tt.script, Spec{})
				if out.err != nil {
					t.Fatalf("Run: %v", out.err)
				}
				if out.res.ExitCode != tt.exitCode || out.res.Signal != tt.signal || out.res.TimedOut {
					t.Errorf("result = %+v, want exit status %d, signal %d", out.res, tt.exitCode, tt.signal)
				}
				if err := out.res.Err(); err == nil || err.Error() != tt.err {
					t.Errorf("Err() = %v, want %q", err, tt.err)
				}
				if !strings.Contains(out.stderr, tt.stderr) {
					t.Errorf("stderr lacks %q:\n%s", tt.stderr, out.stderr)
				}
			})
		}
	})
}

// leftover is Python that leaves a process behind, as hard to end as a
// script can make it: double-forked, in its own session, ignoring SIGTERM
// and SIGHUP (exec keeps them ignored), with stdio closed. It shows in two
// ways, for leftoverEnded: marker is its argv[0], and it writes the time to
// /output/beat every 20 ms. It returns once the process beats.
const leftover = `
import os, signal, sys, time

HEARTBEAT = """
import os, time
while True:
    with open("/output/beat.tmp", "w") as f:
        f.write(repr(time.time()))
    os.rename("/output/beat.tmp", "/output/beat")
    time.sleep(0.02)
"""

def leave_process(marker):
    pid = os.fork()
    if pid == 0:
        os.setsid()
        if os.fork() == 0:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            signal.signal(signal.SIGHUP, signal.SIG_IGN)
            null = os.open("/dev/null", os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            os.execv("/usr/bin/python3", [marker, "-c", HEARTBEAT])
        os._exit(0)
    os.waitpid(pid, 0)
    for _ in range(1000):
        if os.path.exists("/output/beat"):
            return
        time.sleep(0.01)
    sys.exit("the process left behind did not start")
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

// leftoverEnded fails the test if the process of leftover still runs: if
// its heartbeat in output still beats, or a host process bears marker. The
// processes of a bubblewrap sandbox are host processes; those of a gVisor
// sandbox are tasks of its own kernel, which only the heartbeat shows.
func leftoverEnded(t *testing.T, output, marker string) {
	t.Helper()
	if pids := hostProcesses(t, marker); len(pids) > 0 {
		t.Errorf("processes %v left running after Run returned", pids)
	}
	before, err := os.ReadFile(filepath.Join(output, "beat"))
	if err != nil {
		t.Fatalf("no heartbeat: %v", err)
	}
	time.Sleep(300 * time.Millisecond)
	if after, _ := os.ReadFile(filepath.Join(output, "beat")); !bytes.Equal(before, after) {
		t.Errorf("a process of the script still runs after Run returned")
	}
}

func TestLeftoverProcessesEndWithRun(t *testing.T) {
	t.Parallel()
	forEachRunner(t, func(t *testing.T, r runnerUnderTest) {
		marker := newMarker(t)
		spec, output := withOutput(t, Spec{})
		start := time.Now()
		runIn(t, r, context.Background(), leftover+fmt.Sprintf(`
leave_process(%q)
print("left a process")
`, marker), spec).mustSucceed(t)
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("Run took %s: it waited for the process", d)
		}
		leftoverEnded(t, output, marker)
		r.leftNothing(t)
	})
}

func TestTimeoutEndsRun(t *testing.T) {
	t.Parallel()
	forEachRunner(t, func(t *testing.T, r runnerUnderTest) {
		marker := newMarker(t)
		// The limit counts the sandbox's start (gVisor boots a kernel), so it
		// leaves room for a loaded machine.
		spec, output := withOutput(t, Spec{Timeout: 5 * time.Second})
		start := time.Now()
		out := runIn(t, r, context.Background(), leftover+fmt.Sprintf(`
leave_process(%q)
print("started", flush=True)
time.sleep(60)
print("never")
`, marker), spec)
		took := time.Since(start)
		if out.err != nil {
			t.Fatalf("Run: %v", out.err)
		}
		if !out.res.TimedOut || out.res.Signal != syscall.SIGKILL {
			t.Fatalf("result = %+v, want timed out\n%s", out.res, out.stderr)
		}
		if out.stdout != "started\n" {
			t.Errorf("stdout = %q, want the output from before the limit", out.stdout)
		}
		want := "script exceeded its time limit of 5s"
		if err := out.res.Err(); err == nil || err.Error() != want {
			t.Errorf("Err() = %v, want %q", err, want)
		}
		if took > 15*time.Second {
			t.Errorf("Run returned after %s for a 5s limit", took)
		}
		leftoverEnded(t, output, marker)
		r.leftNothing(t)
	})
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
	forEachRunner(t, func(t *testing.T, r runnerUnderTest) {
		marker := newMarker(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		out := &notifier{line: "ready\n", ready: make(chan struct{})}
		spec, output := withOutput(t, Spec{Stdout: out})
		done := make(chan run, 1)
		go func() {
			done <- runIn(t, r, ctx, leftover+fmt.Sprintf(`
leave_process(%q)
print("ready", flush=True)
time.sleep(60)
`, marker), spec)
		}()
		// gVisor boots a kernel of its own before the script starts.
		startWithin := 10 * time.Second
		if r.gvisor != nil {
			startWithin = 20 * time.Second
		}
		select {
		case <-out.ready:
		case res := <-done:
			t.Fatalf("run ended before it was canceled: %+v, %v\n%s", res.res, res.err, res.stderr)
		case <-time.After(startWithin):
			t.Fatal("script did not start")
		}
		// Only bubblewrap's sandboxed processes are host processes that
		// leftoverEnded can look for by marker.
		if r.gvisor == nil && len(hostProcesses(t, marker)) == 0 {
			t.Fatal("the leftover process is not visible on the host; the test cannot tell whether it ends")
		}
		canceled := time.Now()
		cancel()
		var res run
		select {
		case res = <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not return after cancel")
		}
		if d := time.Since(canceled); d > 8*time.Second { // a loaded machine starts runsc kill slowly
			t.Errorf("Run returned %s after cancel", d)
		}
		if !errors.Is(res.err, context.Canceled) {
			t.Errorf("Run error = %v, want context.Canceled", res.err)
		}
		if res.res.TimedOut || res.res.Signal != syscall.SIGKILL {
			t.Errorf("result = %+v, want killed, not timed out", res.res)
		}
		leftoverEnded(t, output, marker)
		r.leftNothing(t)
	})
}

func TestCanceledBeforeStart(t *testing.T) {
	t.Parallel()
	forEachRunner(t, func(t *testing.T, r runnerUnderTest) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := r.Run(ctx, withUser(Spec{Command: []string{python, "-c", "pass"}}))
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Run error = %v, want context.Canceled", err)
		}
		r.leftNothing(t)
	})
}

func TestSetupFailureIsRunError(t *testing.T) {
	t.Parallel()
	forEachRunner(t, func(t *testing.T, r runnerUnderTest) {
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
		r.leftNothing(t)
	})
}

// A runner whose binary is missing says what to install.
func TestMissingBinary(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name   string
		runner Runner
		err    error
		hint   string
	}{
		{"bubblewrap", &Bubblewrap{Path: "/no/such/bwrap"}, ErrNoBubblewrap, "install the bubblewrap package"},
		{"gvisor", &GVisor{Path: "/no/such/runsc"}, ErrNoGVisor, "install the runsc package (Debian: apt-get install runsc)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := tt.runner.Run(context.Background(), withUser(Spec{Command: []string{python, "-c", "pass"}}))
			if !errors.Is(err, tt.err) || !strings.Contains(err.Error(), tt.hint) {
				t.Errorf("Run error = %v, want %v with an install hint", err, tt.err)
			}
		})
	}
}

// A script runs as the Spec's unprivileged host user, never as the
// server's: what it writes belongs to that user on the host. As root, a
// Spec without a User is refused.
func TestRunsAsTheJobUser(t *testing.T) {
	t.Parallel()
	forEachRunner(t, func(t *testing.T, r runnerUnderTest) {
		spec, out := withOutput(t, Spec{})
		runIn(t, r, context.Background(), `open("/output/mine", "w").write("x")`, spec).mustSucceed(t)
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
			_, err := r.Run(context.Background(), Spec{Command: []string{python, "-c", "pass"}})
			if !errors.Is(err, ErrInvalidSpec) {
				t.Fatalf("as root without a User: %v, want refused", err)
			}
		}
	})
}
