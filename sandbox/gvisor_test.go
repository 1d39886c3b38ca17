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
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/elastic/go-seccomp-bpf/arch"
)

// newGVisor returns the GVisor under test, failing the test when the
// machine lacks runsc. Its runs keep their files in a directory of the
// test's, which gvisorLeftNothing checks.
func newGVisor(t testing.TB) *GVisor {
	t.Helper()
	g := NewGVisor()
	if g.Path == "" {
		t.Fatal("gVisor (runsc) is not installed: `make test` installs it (Debian: apt-get install runsc)")
	}
	if _, err := os.Stat(python); err != nil {
		t.Fatalf("%s is missing: `make test` installs it (Debian: apt-get install python3)", python)
	}
	if os.Geteuid() != 0 {
		t.Skip("runsc runs sandboxes as root only")
	}
	g.WorkDir = t.TempDir()
	return g
}

// gvisorLeftNothing fails the test if a process of g's runs still runs, a
// run's directory is left in g.WorkDir, or a cgroup of this process is left
// in any controller.
func gvisorLeftNothing(t *testing.T, g *GVisor) {
	t.Helper()
	if pids := hostProcesses(t, g.WorkDir+"/"); len(pids) > 0 {
		t.Errorf("processes %v of the run left running after Run returned", pids)
	}
	if left, _ := os.ReadDir(g.WorkDir); len(left) > 0 {
		t.Errorf("%s holds %v after the run", g.WorkDir, left)
	}
	own, err := readProcCgroup("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	mounts, _ := readMountinfo("/proc/self/mountinfo")
	for _, m := range mounts {
		if m.fstype != "cgroup" && m.fstype != "cgroup2" {
			continue
		}
		for c, p := range own {
			if (c == "") != (m.fstype == "cgroup2") || (c != "" && !slices.Contains(m.options, c)) {
				continue
			}
			if dir := cgroupDir(m, p); dir != "" {
				left, _ := filepath.Glob(filepath.Join(dir, fmt.Sprintf("cleanroom-%d-*", os.Getpid())))
				// Parallel tests may be running; only a leftover that stays is one.
				for _, d := range left {
					waitGone(t, d)
				}
			}
		}
	}
}

func TestGVisorOutputReachesWriters(t *testing.T) {
	t.Parallel()
	g := newGVisor(t)
	r := runIn(t, g, context.Background(), `
import sys
print("hello from the sandbox")
print("a warning", file=sys.stderr)
`, Spec{}).mustSucceed(t)
	if r.stdout != "hello from the sandbox\n" || r.stderr != "a warning\n" {
		t.Errorf("stdout = %q, stderr = %q", r.stdout, r.stderr)
	}
	if r.res.ExitCode != 0 || r.res.Signal != 0 || r.res.TimedOut || r.res.Duration <= 0 {
		t.Errorf("result = %+v", r.res)
	}
	gvisorLeftNothing(t, g)
}

// An *os.File goes through a pipe: the sandbox's kernel would write to a
// file from its start.
func TestGVisorOneWriterForBothStreams(t *testing.T) {
	t.Parallel()
	log, err := os.CreateTemp(t.TempDir(), "log")
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	log.WriteString("before\n")
	res, err := newGVisor(t).Run(context.Background(), withUser(Spec{
		Command: []string{python, "-c", `
import sys
for i in range(200):
    print("out", i)
    print("err", i, file=sys.stderr)
`},
		Stdout: log, Stderr: log,
	}))
	if err != nil || res.Err() != nil {
		t.Fatalf("Run: %v, %v", err, res.Err())
	}
	b, _ := os.ReadFile(log.Name())
	if n := strings.Count(string(b), "\n"); n != 401 || !strings.HasPrefix(string(b), "before\nout 0\n") {
		t.Errorf("got %d lines, want 401:\n%s", n, b)
	}
}

func TestGVisorExitStatusAndSignals(t *testing.T) {
	t.Parallel()
	g := newGVisor(t)
	for _, tt := range []struct {
		script string
		want   string
	}{
		{"import sys; sys.exit(3)", "script exited with status 3"},
		{"raise ValueError('bad row')", "script exited with status 1"},
		{"import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)", "script was killed by signal SIGSEGV (segmentation fault)"},
	} {
		r := runIn(t, g, context.Background(), tt.script, Spec{})
		if r.err != nil {
			t.Fatalf("Run: %v", r.err)
		}
		if err := r.res.Err(); err == nil || err.Error() != tt.want {
			t.Errorf("%s: Err() = %v, want %q", tt.script, err, tt.want)
		}
		if strings.Contains(tt.script, "ValueError") && !strings.Contains(r.stderr, "ValueError: bad row") {
			t.Errorf("stderr lacks the traceback:\n%s", r.stderr)
		}
	}
	gvisorLeftNothing(t, g)
}

// heartbeat is Python that leaves a process behind, as hard to end as a
// script can make it: double-forked, in its own session, ignoring SIGTERM
// and SIGHUP, writing the time to /output/beat every 20 ms. The sandbox's
// processes are not the host's: whether it still runs shows in the file.
const heartbeat = `
import os, signal, sys, time

def leave_heartbeat():
    pid = os.fork()
    if pid == 0:
        os.setsid()
        if os.fork() == 0:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            signal.signal(signal.SIGHUP, signal.SIG_IGN)
            while True:
                with open("/output/beat.tmp", "w") as f:
                    f.write(repr(time.time()))
                os.rename("/output/beat.tmp", "/output/beat")
                time.sleep(0.02)
        os._exit(0)
    os.waitpid(pid, 0)
    while not os.path.exists("/output/beat"):
        time.sleep(0.01)
`

// beatStopped fails the test if the heartbeat in output still beats.
func beatStopped(t *testing.T, output string) {
	t.Helper()
	before, err := os.ReadFile(filepath.Join(output, "beat"))
	if err != nil {
		t.Fatalf("no heartbeat: %v", err)
	}
	time.Sleep(300 * time.Millisecond)
	if after, _ := os.ReadFile(filepath.Join(output, "beat")); !bytes.Equal(before, after) {
		t.Errorf("a process of the script still runs after Run returned")
	}
}

func TestGVisorLeftoverProcessesEndWithRun(t *testing.T) {
	t.Parallel()
	g := newGVisor(t)
	spec := withUser(Spec{})
	output := hostDir(t, spec.User, true)
	spec.Mounts = []Mount{{Host: output, Sandbox: "/output", Writable: true}}
	start := time.Now()
	runIn(t, g, context.Background(), heartbeat+`
leave_heartbeat()
print("left a process")
`, spec).mustSucceed(t)
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Run took %s: it waited for the process", d)
	}
	beatStopped(t, output)
	gvisorLeftNothing(t, g)
}

func TestGVisorTimeoutEndsRun(t *testing.T) {
	t.Parallel()
	g := newGVisor(t)
	spec := withUser(Spec{Timeout: 1500 * time.Millisecond})
	output := hostDir(t, spec.User, true)
	spec.Mounts = []Mount{{Host: output, Sandbox: "/output", Writable: true}}
	start := time.Now()
	r := runIn(t, g, context.Background(), heartbeat+`
leave_heartbeat()
print("started", flush=True)
time.sleep(60)
print("never")
`, spec)
	took := time.Since(start)
	if r.err != nil {
		t.Fatalf("Run: %v", r.err)
	}
	if !r.res.TimedOut || r.res.Signal != syscall.SIGKILL {
		t.Fatalf("result = %+v, want timed out\n%s", r.res, r.stderr)
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
	beatStopped(t, output)
	gvisorLeftNothing(t, g)
}

func TestGVisorCancelKillsRun(t *testing.T) {
	t.Parallel()
	g := newGVisor(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	spec := withUser(Spec{})
	output := hostDir(t, spec.User, true)
	out := &notifier{line: "ready\n", ready: make(chan struct{})}
	spec.Stdout = out
	spec.Mounts = []Mount{{Host: output, Sandbox: "/output", Writable: true}}
	done := make(chan run, 1)
	go func() {
		done <- runIn(t, g, ctx, heartbeat+`
leave_heartbeat()
print("ready", flush=True)
time.sleep(60)
`, spec)
	}()
	select {
	case <-out.ready:
	case r := <-done:
		t.Fatalf("run ended before it was canceled: %+v, %v\n%s", r.res, r.err, r.stderr)
	case <-time.After(20 * time.Second):
		t.Fatal("script did not start")
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
	beatStopped(t, output)
	gvisorLeftNothing(t, g)
}

func TestGVisorInputReadOnlyOutputWritable(t *testing.T) {
	t.Parallel()
	g := newGVisor(t)
	user := withUser(Spec{}).User
	input, output := hostDir(t, user, false), hostDir(t, user, true)
	if err := os.WriteFile(filepath.Join(input, "data.csv"), []byte("1,2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Even a directory its permissions let anyone write to.
	if err := os.Chmod(input, 0o777); err != nil {
		t.Fatal(err)
	}
	r := runIn(t, g, context.Background(), `
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
	// The sandbox's kernel checks permissions first: writing to the
	// file, which is root's, is refused for them.
	if got["write"] != "Permission denied" && got["write"] != "Read-only file system" {
		t.Errorf("write in /input: %s, want Permission denied or Read-only file system", got["write"])
	}
	for _, op := range []string{"create", "remove"} {
		if got[op] != "Read-only file system" {
			t.Errorf("%s in /input: %s, want Read-only file system", op, got[op])
		}
	}
	for file, want := range map[string]string{"result.txt": "42\n", "plots/a.txt": "a\n"} {
		p := filepath.Join(output, file)
		b, err := os.ReadFile(p)
		if err != nil || string(b) != want {
			t.Errorf("host output %s = %q, %v; want %q", file, b, err, want)
		}
		// The files are the job user's on the host, as with bubblewrap.
		if fi, err := os.Stat(p); err == nil {
			if st := fi.Sys().(*syscall.Stat_t); int(st.Uid) != user.UID || int(st.Gid) != user.GID {
				t.Errorf("host output %s belongs to %d:%d, want %d:%d", file, st.Uid, st.Gid, user.UID, user.GID)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(input, "new.csv")); err == nil {
		t.Error("a file appeared in the host's input directory")
	}
}

func TestGVisorTmpIsPrivateAndFresh(t *testing.T) {
	t.Parallel()
	g := newGVisor(t)
	hostFile, err := os.CreateTemp("", "cleanroom-host-tmp-*")
	if err != nil {
		t.Fatal(err)
	}
	hostFile.Close()
	t.Cleanup(func() { os.Remove(hostFile.Name()) })
	script := fmt.Sprintf(`
import json, os
before = os.listdir("/tmp") + os.listdir("/dev/shm")
with open("/tmp/scratch.txt", "w") as f:
    f.write("x" * 100000)
with open("/dev/shm/scratch.txt", "w") as f:
    f.write("x")
print(json.dumps({"before": before, "host_file": os.path.exists(%q), "cwd": os.getcwd(),
                  "home": os.path.expanduser("~")}))
`, filepath.Join("/tmp", filepath.Base(hostFile.Name())))
	for i := range 2 {
		r := runIn(t, g, context.Background(), script, Spec{}).mustSucceed(t)
		var got struct {
			Before   []string
			HostFile bool `json:"host_file"`
			Cwd      string
			Home     string
		}
		r.decode(t, &got)
		if len(got.Before) != 0 {
			t.Errorf("run %d: /tmp and /dev/shm held %v at the start", i+1, got.Before)
		}
		if got.HostFile {
			t.Errorf("run %d: the host's /tmp is visible", i+1)
		}
		if got.Cwd != "/tmp" || got.Home != "/tmp" {
			t.Errorf("run %d: cwd %q, home %q; want /tmp", i+1, got.Cwd, got.Home)
		}
	}
}

func TestGVisorTmpHoldsAtMostTheMemoryLimit(t *testing.T) {
	t.Parallel()
	r := runIn(t, newGVisor(t), context.Background(), `
import os
st = os.statvfs("/tmp")
print(st.f_blocks * st.f_frsize)
`, Spec{Limits: Limits{Memory: 256 << 20}}).mustSucceed(t)
	if got := strings.TrimSpace(r.stdout); got != fmt.Sprint(256<<20) {
		t.Errorf("/tmp holds %s bytes, want %d", got, 256<<20)
	}
}

func TestGVisorRootIsReadOnly(t *testing.T) {
	t.Parallel()
	r := runIn(t, newGVisor(t), context.Background(), `
import json
res = {}
for p in ["/file", "/usr/file", "/cleanroom/file", "/sys/file", "/tmp/file", "/dev/shm/file"]:
    try:
        open(p, "w").close()
        res[p] = "ok"
    except OSError as e:
        res[p] = e.strerror
print(json.dumps(res))
`, Spec{}).mustSucceed(t)
	var got map[string]string
	r.decode(t, &got)
	for p, res := range got {
		if ok := strings.HasPrefix(p, "/tmp/") || strings.HasPrefix(p, "/dev/shm/"); ok != (res == "ok") {
			t.Errorf("writing %s: %s", p, res)
		}
	}
}

func TestGVisorNoNetwork(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "0.0.0.0:0")
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
	hostIP := "192.0.2.1"
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.IsLoopback() && ipn.IP.To4() != nil {
			hostIP = ipn.IP.String()
		}
	}
	r := runIn(t, newGVisor(t), context.Background(), fmt.Sprintf(`
import json, socket
res = {"interfaces": [name for _, name in socket.if_nameindex()]}
for name, addr in [("loopback", ("127.0.0.1", %d)), ("host", (%q, %d)), ("internet", ("192.0.2.1", 80))]:
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
`, port, hostIP, port), Spec{}).mustSucceed(t)
	var got struct {
		Interfaces                    []string
		Loopback, Host, Internet, DNS string
	}
	r.decode(t, &got)
	if !reflect.DeepEqual(got.Interfaces, []string{"lo"}) {
		t.Errorf("interfaces = %v, want only lo", got.Interfaces)
	}
	if !strings.Contains(got.Loopback, "refused") {
		t.Errorf("connecting to the host's loopback port %d: %s", port, got.Loopback)
	}
	for what, res := range map[string]string{"host": got.Host, "internet": got.Internet} {
		if !strings.Contains(res, "unreachable") && !strings.Contains(res, "No route to host") {
			t.Errorf("connecting to the %s: %s", what, res)
		}
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

func TestGVisorHostFilesHidden(t *testing.T) {
	t.Parallel()
	repo, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(t.TempDir(), "secret.txt")
	if err := os.WriteFile(secret, []byte("secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	paths := []string{"/etc/shadow", "/etc/passwd", "/etc", "/root", "/home", "/var", "/run", repo, secret}
	list, _ := json.Marshal(paths)
	r := runIn(t, newGVisor(t), context.Background(), fmt.Sprintf(`
import json, os
print(json.dumps(sorted(os.listdir("/")) + os.listdir("/sys") + [p for p in %s if os.path.lexists(p)]))
`, list), Spec{}).mustSucceed(t)
	var got []string
	r.decode(t, &got)
	// /sys is there, empty: runsc would mount a sysfs of its own.
	want := []string{"cleanroom", "dev", "proc", "sys", "tmp", "usr"}
	for _, dir := range []string{"bin", "sbin", "lib", "lib32", "lib64", "libx32"} {
		if _, err := os.Lstat("/" + dir); err == nil {
			want = append(want, dir)
		}
	}
	slices.Sort(want)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("sandbox /, /sys and visible host paths = %v, want only %v", got, want)
	}
}

func TestGVisorEnvironmentIsAllowListOnly(t *testing.T) {
	t.Setenv("CLEANROOM_TEST_CANARY", "must-not-leak")
	r := runIn(t, newGVisor(t), context.Background(), `
import json, os
print(json.dumps(dict(os.environ)))
`, Spec{}).mustSucceed(t)
	var got map[string]string
	r.decode(t, &got)
	want := map[string]string{"PWD": "/tmp"}
	for _, kv := range environment {
		want[kv[0]] = kv[1]
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("environment = %v, want %v", got, want)
	}
}

func TestGVisorOnlyOwnProcessesVisible(t *testing.T) {
	t.Parallel()
	r := runIn(t, newGVisor(t), context.Background(), fmt.Sprintf(`
import json, os, socket
pids = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
print(json.dumps({"pids": pids, "host_pid_visible": os.path.exists("/proc/%d/cmdline"),
                  "hostname": socket.gethostname()}))
`, os.Getpid()), Spec{}).mustSucceed(t)
	var got struct {
		Pids           []int
		HostPidVisible bool `json:"host_pid_visible"`
		Hostname       string
	}
	r.decode(t, &got)
	// The script is the sandbox's PID 1.
	if !reflect.DeepEqual(got.Pids, []int{1}) {
		t.Errorf("sandbox sees PIDs %v, want [1]", got.Pids)
	}
	if got.HostPidVisible && os.Getpid() != 1 {
		t.Errorf("the test process (PID %d) is visible", os.Getpid())
	}
	if got.Hostname != "cleanroom" {
		t.Errorf("hostname = %q", got.Hostname)
	}
}

func TestGVisorScriptRunsConfined(t *testing.T) {
	t.Parallel()
	spec := withUser(Spec{})
	r := runIn(t, newGVisor(t), context.Background(), `
import ctypes, json, os, resource
libc = ctypes.CDLL(None, use_errno=True)
status = dict(line.split(":\t", 1) for line in open("/proc/self/status").read().splitlines() if ":\t" in line)
print(json.dumps({
    "uid": os.getuid(), "gid": os.getgid(), "groups": os.getgroups(),
    "core": resource.getrlimit(resource.RLIMIT_CORE),
    "no_new_privs": libc.prctl(39, 0, 0, 0, 0),  # PR_GET_NO_NEW_PRIVS
    "seccomp": status["Seccomp"].strip(),
    "cap_eff": status["CapEff"].strip(), "cap_bnd": status["CapBnd"].strip(),
}))
`, spec).mustSucceed(t)
	var got struct {
		UID, GID   int
		Groups     []int
		Core       []int64
		NoNewPrivs int `json:"no_new_privs"`
		Seccomp    string
		CapEff     string `json:"cap_eff"`
		CapBnd     string `json:"cap_bnd"`
	}
	r.decode(t, &got)
	if got.UID != spec.User.UID || got.GID != spec.User.GID || len(got.Groups) != 0 {
		t.Errorf("script runs as %d:%d %v, want %d:%d and no groups", got.UID, got.GID, got.Groups, spec.User.UID, spec.User.GID)
	}
	if got.Core[0] != 0 || got.Core[1] != 0 {
		t.Errorf("RLIMIT_CORE = %v, want 0", got.Core)
	}
	if got.NoNewPrivs != 1 || got.Seccomp != "2" {
		t.Errorf("NoNewPrivs %d, Seccomp %s: want 1 and 2 (filter)", got.NoNewPrivs, got.Seccomp)
	}
	if got.CapEff != "0000000000000000" || got.CapBnd != "0000000000000000" {
		t.Errorf("capabilities: effective %s, bounding %s; want none", got.CapEff, got.CapBnd)
	}
}

func TestGVisorSeccompDeniesWithEPERM(t *testing.T) {
	t.Parallel()
	info, err := arch.GetInfo("")
	if err != nil {
		t.Skip(err)
	}
	calls := map[string]string{
		"ptrace":           "0, 1, 0, 0",
		"mount":            "0, 0, 0, 0, 0",
		"umount2":          "0, 0",
		"unshare":          "0x10000000,",
		"setns":            "0, 0",
		"bpf":              "0, 0, 0",
		"userfaultfd":      "0,",
		"perf_event_open":  "0, 0, 0, 0, 0",
		"io_uring_setup":   "1, 0",
		"process_vm_readv": "1, 0, 0, 0, 0, 0",
		"clone":            "0x10000000 | 17, 0, 0, 0, 0",
		"clone_newpid":     "0x20000000 | 17, 0, 0, 0, 0",
	}
	var lines []string
	for name, args := range calls {
		nr, ok := info.SyscallNames[strings.TrimSuffix(name, "_newpid")]
		if !ok {
			t.Fatalf("%s unknown on %s", name, info.Name)
		}
		lines = append(lines, fmt.Sprintf("    %q: (%d, (%s)),", name, nr, args))
	}
	r := runIn(t, newGVisor(t), context.Background(), fmt.Sprintf(`
import ctypes, errno, json, os
libc = ctypes.CDLL(None, use_errno=True)
calls = {
%s
}
res = {}
for name, (nr, args) in calls.items():
    ctypes.set_errno(0)
    rc = libc.syscall(nr, *[ctypes.c_long(a) for a in args])
    if rc == 0 and name.startswith("clone"):
        os._exit(0)  # the child, had it been made
    res[name] = errno.errorcode.get(ctypes.get_errno(), "OK") if rc == -1 else "OK"
print(json.dumps(res))
`, strings.Join(lines, "\n")), Spec{}).mustSucceed(t)
	var got map[string]any
	r.decode(t, &got)
	for name := range calls {
		if got[name] != "EPERM" {
			t.Errorf("%s: %v, want EPERM", name, got[name])
		}
	}
}

// What a data script does still works: threads, processes,
// multiprocessing's shared memory and semaphores.
func TestGVisorEverydayPythonWorks(t *testing.T) {
	t.Parallel()
	r := runIn(t, newGVisor(t), context.Background(), `
import concurrent.futures, multiprocessing, subprocess, json

def square(x):
    return x * x

with multiprocessing.Pool(4) as pool:
    squares = pool.map(square, range(100))
with concurrent.futures.ThreadPoolExecutor(8) as ex:
    threaded = list(ex.map(square, range(100)))
arr = multiprocessing.Array("d", 10)
lock = multiprocessing.Lock()
with lock:
    arr[0] = 1.5
out = subprocess.run(["/usr/bin/python3", "-c", "print('child')"], capture_output=True, text=True).stdout
print(json.dumps({"sum": sum(squares), "threaded": sum(threaded), "arr": arr[0], "child": out}))
`, Spec{Timeout: time.Minute, Limits: Limits{Memory: 512 << 20, Processes: 64}}).mustSucceed(t)
	var got struct {
		Sum, Threaded int
		Arr           float64
		Child         string
	}
	r.decode(t, &got)
	if got.Sum != 328350 || got.Threaded != 328350 || got.Arr != 1.5 || got.Child != "child\n" {
		t.Errorf("got %+v", got)
	}
}

func TestGVisorMemoryLimit(t *testing.T) {
	t.Parallel()
	g := newGVisor(t)
	if _, err := g.cgroups(); err != nil {
		t.Fatalf("gVisor limits memory with cgroups only, and they are not usable here: %v", err)
	}
	for _, tt := range []struct {
		name, script string
	}{
		{"heap", "x = []\nwhile True:\n    x.append(bytearray(16 << 20))\n"},
		{"tmp", "chunk = b'x' * (1 << 20)\nwith open('/tmp/fill', 'wb') as f:\n    while True:\n        f.write(chunk)\n"},
		{"shm", "chunk = b'x' * (1 << 20)\nwith open('/dev/shm/fill', 'wb') as f:\n    while True:\n        f.write(chunk)\n"},
		{"child", "import subprocess\nsubprocess.run(['/usr/bin/python3', '-c', 'x = bytearray(1 << 30)'])\nimport time\ntime.sleep(1)\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := runIn(t, g, context.Background(), tt.script, Spec{Timeout: 30 * time.Second, Limits: Limits{Memory: 256 << 20}})
			if r.err != nil {
				t.Fatalf("Run: %v", r.err)
			}
			want := "script exceeded its memory limit of 256 MiB"
			if err := r.res.Err(); err == nil || err.Error() != want {
				t.Errorf("Err() = %v, want %q; result %+v\n%s", err, want, r.res, r.stderr)
			}
		})
	}
	gvisorLeftNothing(t, g)
}

func TestGVisorProcessLimit(t *testing.T) {
	t.Parallel()
	g := newGVisor(t)
	for _, tt := range []struct {
		name, script, want string
	}{
		{"fork_bomb", "import os\nwhile True:\n    os.fork()\n", "script exceeded its process limit of 32"},
		{"thread_bomb", "import threading, time\nwhile True:\n    threading.Thread(target=time.sleep, args=(60,), daemon=True).start()\n", "script exceeded its process limit of 32"},
		// 15 processes, then 30 threads at once: within the limit.
		{"within", `
import os, threading
pids = [os.fork() or os._exit(0) for i in range(15)]
for pid in pids:
    os.waitpid(pid, 0)
threads = [threading.Thread(target=lambda: None) for i in range(30)]
for th in threads: th.start()
for th in threads: th.join()
`, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := runIn(t, g, context.Background(), tt.script, Spec{Timeout: 10 * time.Second, Limits: Limits{Processes: 32}})
			if r.err != nil {
				t.Fatalf("Run: %v", r.err)
			}
			err := r.res.Err()
			if got := fmt.Sprint(err); (tt.want == "" && err != nil) || (tt.want != "" && got != tt.want) {
				t.Errorf("Err() = %v, want %q; result %+v\n%s", err, tt.want, r.res, lastLines(r.stderr, 5))
			}
		})
	}
	gvisorLeftNothing(t, g)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// Python ignores SIGXFSZ: a write past the limit fails with EFBIG. Other
// programs are killed by the signal.
func TestGVisorFileSizeLimit(t *testing.T) {
	t.Parallel()
	g := newGVisor(t)
	r := runIn(t, g, context.Background(), `
with open("/tmp/big", "wb") as f:
    f.write(b"x" * (2 << 20))
`, Spec{Limits: Limits{FileSize: 1 << 20}})
	if r.err != nil {
		t.Fatalf("Run: %v", r.err)
	}
	if r.res.ExitCode != 1 || !strings.Contains(r.stderr, "File too large") {
		t.Errorf("result %+v, want a failed write\n%s", r.res, r.stderr)
	}
	r = runIn(t, g, context.Background(), `
import signal
signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
with open("/tmp/big", "wb") as f:
    f.write(b"x" * (2 << 20))
`, Spec{Limits: Limits{FileSize: 1 << 20}})
	want := "script exceeded its file size limit of 1 MiB"
	if err := r.res.Err(); err == nil || err.Error() != want {
		t.Errorf("Err() = %v, want %q; result %+v", err, want, r.res)
	}
}

func TestGVisorSetupFailureIsRunError(t *testing.T) {
	t.Parallel()
	g := newGVisor(t)
	var stderr bytes.Buffer
	_, err := g.Run(context.Background(), withUser(Spec{Command: []string{"/usr/bin/no-such-interpreter"}, Stderr: &stderr}))
	if err == nil || !strings.Contains(err.Error(), "/usr/bin/no-such-interpreter") {
		t.Errorf("Run error = %v, want one naming the missing command", err)
	}
	_, err = g.Run(context.Background(), withUser(Spec{Command: []string{python, "-c", "pass"}, Dir: "/nowhere"}))
	if err == nil || !strings.Contains(err.Error(), "/nowhere") {
		t.Errorf("Run error = %v, want one naming the missing directory", err)
	}
	_, err = g.Run(context.Background(), withUser(Spec{
		Command: []string{python, "-c", "pass"},
		Mounts:  []Mount{{Host: "/no/such/dir", Sandbox: "/input"}},
	}))
	if !errors.Is(err, ErrInvalidSpec) || !strings.Contains(err.Error(), "/no/such/dir") {
		t.Errorf("Run error = %v, want an invalid spec naming the missing host path", err)
	}
	gvisorLeftNothing(t, g)
}

// runsc would make a missing mount point or working directory itself, as
// root, in the worker image or in a read-only mount: Run refuses instead.
func TestGVisorMakesNothingInImageOrMounts(t *testing.T) {
	t.Parallel()
	g := newGVisor(t)
	image := hostDir(t, nil, false)
	for _, dir := range []string{"proc", "dev", "sys", "tmp", "input"} {
		os.Mkdir(filepath.Join(image, dir), 0o755)
	}
	os.Symlink("/etc", filepath.Join(image, "link"))
	input := hostDir(t, nil, false)
	output := hostDir(t, nil, false)
	for _, tt := range []struct {
		spec Spec
		want string
	}{
		{Spec{Mounts: []Mount{{Host: input, Sandbox: "/output"}}}, "no mount point /output"},
		{Spec{Mounts: []Mount{{Host: input, Sandbox: "/input"}, {Host: output, Sandbox: "/input/dep"}}}, "no mount point /input/dep"},
		{Spec{Mounts: []Mount{{Host: input, Sandbox: "/link/x"}}}, "symbolic link"},
		{Spec{Dir: "/work"}, "working directory /work"},
		{Spec{Mounts: []Mount{{Host: input, Sandbox: "/input"}}, Dir: "/input/sub"}, "working directory /input/sub"},
		{Spec{Root: input}, "no mount point /proc"},
	} {
		spec := withUser(tt.spec)
		spec.Command = []string{python, "-c", "pass"}
		if spec.Root == "" {
			spec.Root = image
		}
		_, err := g.Run(context.Background(), spec)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: Run error = %v, want one with %q", tt.spec, err, tt.want)
		}
	}
	for _, dir := range []string{image, input, output} {
		if ents, _ := os.ReadDir(dir); dir != image && len(ents) > 0 {
			t.Errorf("%s holds %v", dir, ents)
		}
	}
	if ents, _ := os.ReadDir(image); len(ents) != 6 {
		t.Errorf("the image holds %v", ents)
	}
	gvisorLeftNothing(t, g)
}

func TestMissingGVisor(t *testing.T) {
	t.Parallel()
	g := &GVisor{Path: "/no/such/runsc"}
	_, err := g.Run(context.Background(), withUser(Spec{Command: []string{python, "-c", "pass"}}))
	if !errors.Is(err, ErrNoGVisor) || !strings.Contains(err.Error(), "install the runsc package (Debian: apt-get install runsc)") {
		t.Errorf("Run error = %v, want ErrNoGVisor with an install hint", err)
	}
}

func TestGVisorCanceledBeforeStart(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	g := newGVisor(t)
	_, err := g.Run(ctx, withUser(Spec{Command: []string{python, "-c", "pass"}}))
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Run error = %v, want context.Canceled", err)
	}
	gvisorLeftNothing(t, g)
}

// A run of a job's shape, on a worker image's layout: /input with a
// computation's output mounted below it, /output, the script's directory.
func TestGVisorConfig(t *testing.T) {
	spec, err := Spec{
		Command: []string{python, "/cleanroom/main.py"},
		Mounts: []Mount{
			{Host: "/w/input/n", Sandbox: "/input"},
			{Host: "/w/output/dep", Sandbox: "/input/dep"},
			{Host: "/w/output/n", Sandbox: "/output", Writable: true},
			{Host: "/w/script/n", Sandbox: "/cleanroom"},
		},
		User:   &User{UID: 2000001, GID: 2000001},
		Limits: Limits{Memory: 256 << 20, Processes: 64, FileSize: 10 << 20},
	}.validate()
	if err != nil {
		t.Fatal(err)
	}
	c := gvisorConfig(spec, "/images/python/root", nil, "cleanroom-1-1")
	if c.Process.User.UID != 2000001 || c.Process.User.GID != 2000001 || len(c.Process.User.AdditionalGids) != 0 {
		t.Errorf("user %+v", c.Process.User)
	}
	if !c.Process.NoNewPrivileges || len(c.Process.Capabilities) != 5 {
		t.Errorf("noNewPrivileges %v, capabilities %v", c.Process.NoNewPrivileges, c.Process.Capabilities)
	}
	for _, caps := range c.Process.Capabilities {
		if caps == nil || len(caps) != 0 {
			t.Errorf("capabilities %v, want every set empty", c.Process.Capabilities)
		}
	}
	wantRlimits := []ociRlimit{{"RLIMIT_CORE", 0, 0}, {"RLIMIT_NPROC", 64, 64}, {"RLIMIT_FSIZE", 10 << 20, 10 << 20}}
	if !reflect.DeepEqual(c.Process.Rlimits, wantRlimits) {
		t.Errorf("rlimits %v", c.Process.Rlimits)
	}
	if c.Root != (ociRoot{"/images/python/root", true}) || c.Linux.CgroupsPath != "cleanroom-1-1" {
		t.Errorf("root %+v, cgroupsPath %q", c.Root, c.Linux.CgroupsPath)
	}
	var mounts []string
	for _, m := range c.Mounts {
		mounts = append(mounts, fmt.Sprintf("%s %s %s %s", m.Destination, m.Type, m.Source, strings.Join(m.Options, ",")))
	}
	want := []string{
		"/proc proc proc ",
		"/dev tmpfs tmpfs nosuid,mode=755",
		"/sys tmpfs tmpfs ro,nosuid,nodev,noexec,mode=555,size=4096",
		"/dev/shm tmpfs tmpfs nosuid,nodev,mode=1777,size=268435456",
		"/tmp tmpfs tmpfs nosuid,nodev,mode=1777,size=268435456",
		"/input bind /w/input/n rbind,ro,nosuid,nodev",
		"/input/dep bind /w/output/dep rbind,ro,nosuid,nodev",
		"/output bind /w/output/n rbind,rw,nosuid,nodev",
		"/cleanroom bind /w/script/n rbind,ro,nosuid,nodev",
	}
	if !reflect.DeepEqual(mounts, want) {
		t.Errorf("mounts:\n%s\nwant:\n%s", strings.Join(mounts, "\n"), strings.Join(want, "\n"))
	}
	if sc := c.Linux.Seccomp; sc == nil || sc.DefaultAction != "SCMP_ACT_ALLOW" || len(sc.Syscalls) != 8 ||
		!slices.Contains(sc.Syscalls[0].Names, "ptrace") || *sc.Syscalls[0].ErrnoRet != 1 {
		t.Errorf("seccomp %+v", sc)
	}
}

func TestGVisorPolicy(t *testing.T) {
	g := &GVisor{}
	a, b := g.Policy(), (&GVisor{Platform: "ptrace"}).Policy()
	if !bytes.Equal(a, b) || !json.Valid(a) {
		t.Errorf("policy of the default platform differs from ptrace's, or is no JSON:\n%s\n%s", a, b)
	}
	if bytes.Equal(a, (&GVisor{Platform: "kvm"}).Policy()) {
		t.Error("the platform is not part of the policy")
	}
	if bytes.Equal(a, Policy()) || !bytes.Equal((&Bubblewrap{}).Policy(), Policy()) {
		t.Error("gVisor's policy is bubblewrap's, or Bubblewrap.Policy is not Policy")
	}
	if !bytes.Contains(a, []byte(`"runner":"gvisor"`)) {
		t.Errorf("policy does not name gVisor: %s", a)
	}
}

func BenchmarkGVisorStartup(b *testing.B) {
	g := newGVisor(b)
	for b.Loop() {
		res, err := g.Run(context.Background(), withUser(Spec{Command: []string{python, "-c", "pass"}}))
		if err != nil || res.Err() != nil {
			b.Fatal(err, res.Err())
		}
	}
}
