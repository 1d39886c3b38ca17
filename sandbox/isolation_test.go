//go:build linux

package sandbox

import (
	"context"
	"encoding/json"
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

// What a sandboxed script can and cannot see or do, under each runner.

func TestInputReadOnlyOutputWritable(t *testing.T) {
	t.Parallel()
	forEachRunner(t, func(t *testing.T, r runnerUnderTest) {
		user := withUser(Spec{}).User
		input, output := hostDir(t, user, false), hostDir(t, user, true)
		if err := os.WriteFile(filepath.Join(input, "data.csv"), []byte("1,2\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		// Even a directory its permissions let anyone write to.
		if err := os.Chmod(input, 0o777); err != nil {
			t.Fatal(err)
		}
		out := runIn(t, r, context.Background(), `
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
		out.decode(t, &got)
		if got["read"] != "1,2\n" {
			t.Errorf("read /input/data.csv = %q", got["read"])
		}
		// gVisor's kernel checks permissions before the mount's
		// read-only flag: writing to the file, which is root's, is
		// refused for them.
		wantWrite := []string{"Read-only file system"}
		if r.gvisor != nil {
			wantWrite = append(wantWrite, "Permission denied")
		}
		if !slices.Contains(wantWrite, got["write"]) {
			t.Errorf("write in /input: %s, want one of %q", got["write"], wantWrite)
		}
		for _, op := range []string{"create", "remove"} {
			if got[op] != "Read-only file system" {
				t.Errorf("%s in /input: %s, want Read-only file system", op, got[op])
			}
		}
		// The files are the job user's on the host.
		uid, gid := os.Geteuid(), os.Getegid()
		if user != nil {
			uid, gid = user.UID, user.GID
		}
		for file, want := range map[string]string{"result.txt": "42\n", "plots/a.txt": "a\n"} {
			p := filepath.Join(output, file)
			b, err := os.ReadFile(p)
			if err != nil || string(b) != want {
				t.Errorf("host output %s = %q, %v; want %q", file, b, err, want)
			}
			if fi, err := os.Stat(p); err == nil {
				if st := fi.Sys().(*syscall.Stat_t); int(st.Uid) != uid || int(st.Gid) != gid {
					t.Errorf("host output %s belongs to %d:%d, want %d:%d", file, st.Uid, st.Gid, uid, gid)
				}
			}
		}
		if _, err := os.Stat(filepath.Join(input, "new.csv")); err == nil {
			t.Error("a file appeared in the host's input directory")
		}
	})
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
before = os.listdir("/tmp") + os.listdir("/dev/shm")
with open("/tmp/scratch.txt", "w") as f:
    f.write("x" * 100000)
with open("/dev/shm/scratch.txt", "w") as f:
    f.write("x")
print(json.dumps({"before": before, "host_file": os.path.exists(%q), "cwd": os.getcwd(),
                  "home": os.path.expanduser("~")}))
`, filepath.Join("/tmp", filepath.Base(hostFile.Name())))
	forEachRunner(t, func(t *testing.T, r runnerUnderTest) {
		for i := range 2 {
			out := runIn(t, r, context.Background(), script, Spec{}).mustSucceed(t)
			var got struct {
				Before   []string
				HostFile bool `json:"host_file"`
				Cwd      string
				Home     string
			}
			out.decode(t, &got)
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
	})
}

func TestRootIsReadOnly(t *testing.T) {
	t.Parallel()
	forEachRunner(t, func(t *testing.T, r runnerUnderTest) {
		out := runIn(t, r, context.Background(), `
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
		out.decode(t, &got)
		for p, res := range got {
			if ok := strings.HasPrefix(p, "/tmp/") || strings.HasPrefix(p, "/dev/shm/"); ok != (res == "ok") {
				t.Errorf("writing %s: %s", p, res)
			}
		}
		// gVisor's kernel checks permissions before the read-only flag,
		// and the root's directories are root's: all its refusals are
		// Permission denied. Only bubblewrap's name the flag.
		if r.gvisor == nil {
			want := map[string]string{
				"/file":           "Read-only file system",
				"/usr/file":       "Read-only file system",
				"/cleanroom/file": "Read-only file system",
				"/sys/file":       "No such file or directory", // no /sys at all; see TestHostFilesHidden
				"/tmp/file":       "ok",
				"/dev/shm/file":   "ok", // multiprocessing needs it; private like /tmp
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("writes: got %v, want %v", got, want)
			}
		}
	})
}

func TestNoNetwork(t *testing.T) {
	t.Parallel()
	forEachRunner(t, func(t *testing.T, r runnerUnderTest) {
		// On every address, so that the host's own address is tried too.
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
		out := runIn(t, r, context.Background(), fmt.Sprintf(`
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
		out.decode(t, &got)
		if !reflect.DeepEqual(got.Interfaces, []string{"lo"}) {
			t.Errorf("interfaces = %v, want only lo", got.Interfaces)
		}
		if !strings.Contains(got.Loopback, "refused") {
			t.Errorf("connecting to the host's loopback port %d: %s", port, got.Loopback)
		}
		// The kernel says Network is unreachable where there is no
		// route; gVisor's network stack may say No route to host.
		unreachable := []string{"unreachable"}
		if r.gvisor != nil {
			unreachable = append(unreachable, "No route to host")
		}
		for what, res := range map[string]string{"host": got.Host, "internet": got.Internet} {
			if !slices.ContainsFunc(unreachable, func(s string) bool { return strings.Contains(res, s) }) {
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
	})
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
	// /sys shows in the listing of / where it exists.
	paths := []string{"/etc/shadow", "/etc/passwd", "/etc", "/root", "/home", "/var", "/run", repo, secret}
	for _, p := range []string{"/etc/shadow", repo, secret} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%s missing on the host; the test cannot tell whether it is hidden", p)
		}
	}
	list, _ := json.Marshal(paths)
	script := fmt.Sprintf(`
import json, os
in_sys = os.listdir("/sys") if os.path.isdir("/sys") else []
print(json.dumps(sorted(os.listdir("/")) + in_sys + [p for p in %s if os.path.lexists(p)]))
`, list)
	forEachRunner(t, func(t *testing.T, r runnerUnderTest) {
		out := runIn(t, r, context.Background(), script, Spec{}).mustSucceed(t)
		var got []string
		out.decode(t, &got)
		want := []string{"cleanroom", "dev", "proc", "tmp", "usr"}
		// gVisor's /sys is there, empty: runsc would mount a sysfs of its
		// own unless another file system is there.
		if r.gvisor != nil {
			want = append(want, "sys")
		}
		for _, dir := range []string{"bin", "sbin", "lib", "lib32", "lib64", "libx32"} {
			if _, err := os.Lstat("/" + dir); err == nil {
				want = append(want, dir)
			}
		}
		slices.Sort(want)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("sandbox /, /sys and visible host paths = %v, want only %v", got, want)
		}
	})
}

// The environment test sets a variable of the test process, so it runs
// alone, one runner after the other.
func TestEnvironmentIsAllowListOnly(t *testing.T) {
	t.Setenv("CLEANROOM_TEST_CANARY", "must-not-leak")
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
	for _, rt := range runners {
		t.Run(rt.name, func(t *testing.T) {
			r := rt.new(t)
			out := runIn(t, r, context.Background(), `
import json, os
print(json.dumps(dict(os.environ)))
`, Spec{}).mustSucceed(t)
			var got map[string]string
			out.decode(t, &got)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("environment = %v, want %v", got, want)
			}
		})
	}
}

func TestOnlyOwnProcessesVisible(t *testing.T) {
	t.Parallel()
	script := fmt.Sprintf(`
import json, os, socket
pids = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
print(json.dumps({"pids": pids, "host_pid_visible": os.path.exists("/proc/%d/cmdline"),
                  "init": open("/proc/1/cmdline").read().split("\0")[:4],
                  "hostname": socket.gethostname()}))
`, os.Getpid())
	forEachRunner(t, func(t *testing.T, r runnerUnderTest) {
		out := runIn(t, r, context.Background(), script, Spec{}).mustSucceed(t)
		var got struct {
			Pids           []int
			HostPidVisible bool `json:"host_pid_visible"`
			Init           []string
			Hostname       string
		}
		out.decode(t, &got)
		// With bubblewrap, PID 1 is bwrap's reaper, PID 2 the script.
		// PID 1's command line is readable; bwrap's options, which name
		// host paths, are not on it. With gVisor, the script is PID 1.
		wantPids := []int{1, 2}
		initOK := len(got.Init) == 4 && slices.Equal(got.Init[1:], []string{"--args", "3", "--"})
		if r.gvisor != nil {
			wantPids = []int{1}
			initOK = slices.Equal(got.Init, []string{python, "/cleanroom/script.py", ""})
		}
		if !reflect.DeepEqual(got.Pids, wantPids) {
			t.Errorf("sandbox sees PIDs %v, want %v", got.Pids, wantPids)
		}
		// A host PID that is one of the sandbox's own is there, and tells
		// nothing.
		if got.HostPidVisible && !slices.Contains(wantPids, os.Getpid()) {
			t.Errorf("the test process (PID %d) is visible", os.Getpid())
		}
		if !initOK {
			t.Errorf("PID 1 command line starts %q", got.Init)
		}
		if got.Hostname != "cleanroom" {
			t.Errorf("hostname = %q", got.Hostname)
		}
	})
}

func TestScriptRunsConfined(t *testing.T) {
	t.Parallel()
	forEachRunner(t, func(t *testing.T, r runnerUnderTest) {
		spec := withUser(Spec{})
		out := runIn(t, r, context.Background(), `
import ctypes, json, os, resource
libc = ctypes.CDLL(None, use_errno=True)
status = dict(line.split(":\t", 1) for line in open("/proc/self/status").read().splitlines() if ":\t" in line)
print(json.dumps({
    "uid": os.getuid(), "gid": os.getgid(), "groups": os.getgroups(),
    "core": resource.getrlimit(resource.RLIMIT_CORE),
    "no_new_privs": libc.prctl(39, 0, 0, 0, 0),  # PR_GET_NO_NEW_PRIVS
    "status_no_new_privs": status.get("NoNewPrivs", "").strip(),
    "seccomp": status["Seccomp"].strip(),
    "cap_eff": status["CapEff"].strip(), "cap_bnd": status["CapBnd"].strip(),
}))
`, spec).mustSucceed(t)
		var got struct {
			UID, GID         int
			Groups           []int
			Core             []int64
			NoNewPrivs       int    `json:"no_new_privs"`
			StatusNoNewPrivs string `json:"status_no_new_privs"`
			Seccomp          string
			CapEff           string `json:"cap_eff"`
			CapBnd           string `json:"cap_bnd"`
		}
		out.decode(t, &got)
		if spec.User != nil && (got.UID != spec.User.UID || got.GID != spec.User.GID) {
			t.Errorf("script runs as %d:%d, want %d:%d", got.UID, got.GID, spec.User.UID, spec.User.GID)
		}
		if len(got.Groups) != 0 {
			t.Errorf("script has groups %v, want none", got.Groups)
		}
		if got.Core[0] != 0 || got.Core[1] != 0 {
			t.Errorf("RLIMIT_CORE = %v, want 0", got.Core)
		}
		if got.NoNewPrivs != 1 || got.Seccomp != "2" {
			t.Errorf("NoNewPrivs %d, Seccomp %s: want 1 and 2 (filter)", got.NoNewPrivs, got.Seccomp)
		}
		// gVisor's /proc/self/status has no NoNewPrivs line; prctl tells.
		if r.gvisor == nil && got.StatusNoNewPrivs != "1" {
			t.Errorf("NoNewPrivs in /proc/self/status: %q, want 1", got.StatusNoNewPrivs)
		}
		if got.CapEff != "0000000000000000" || got.CapBnd != "0000000000000000" {
			t.Errorf("capabilities: effective %s, bounding %s; want none", got.CapEff, got.CapBnd)
		}
	})
}

func TestSeccompDeniesWithEPERM(t *testing.T) {
	t.Parallel()
	info, err := arch.GetInfo("")
	if err != nil {
		t.Skip(err)
	}
	calls := map[string]string{
		// name: Python arguments after the number
		"ptrace":           "0, 1, 0, 0",
		"mount":            "0, 0, 0, 0, 0",
		"umount2":          "0, 0",
		"unshare":          "0x10000000,",
		"setns":            "0, 0",
		"keyctl":           "0, 0, 0, 0, 0",
		"bpf":              "0, 0, 0",
		"userfaultfd":      "0,",
		"perf_event_open":  "0, 0, 0, 0, 0",
		"io_uring_setup":   "1, 0",
		"kexec_load":       "0, 0, 0, 0",
		"init_module":      "0, 0, 0",
		"process_vm_readv": "1, 0, 0, 0, 0, 0",
		"clone":            "0x10000000 | 17, 0, 0, 0, 0",
		"clone_newpid":     "0x20000000 | 17, 0, 0, 0, 0",
		"clone3":           "0, 0",
		"personality":      "0x0040000,",
	}
	var lines []string
	for name, args := range calls {
		nr, ok := info.SyscallNames[strings.TrimSuffix(name, "_newpid")]
		if !ok {
			t.Fatalf("%s unknown on %s", name, info.Name)
		}
		lines = append(lines, fmt.Sprintf("    %q: (%d, (%s)),", name, nr, args))
	}
	script := fmt.Sprintf(`
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
res["personality_read"] = libc.personality(ctypes.c_ulong(0xffffffff))
print(json.dumps(res))
`, strings.Join(lines, "\n"))
	forEachRunner(t, func(t *testing.T, r runnerUnderTest) {
		out := runIn(t, r, context.Background(), script, Spec{}).mustSucceed(t)
		var got map[string]any
		out.decode(t, &got)
		// clone3 fails with ENOSYS, so that the C library falls back to
		// clone, whose flags a filter can read.
		want := map[string]any{"clone3": "ENOSYS", "personality": "EPERM", "personality_read": float64(0)}
		if r.gvisor != nil {
			// runsc's filter leaves personality to gVisor's kernel,
			// which implements none.
			want = map[string]any{"clone3": "ENOSYS", "personality": "EINVAL"}
		}
		for name := range calls {
			if _, ok := want[name]; !ok {
				want[name] = "EPERM"
			}
		}
		for name, w := range want {
			if got[name] != w {
				t.Errorf("%s: %v, want %v", name, got[name], w)
			}
		}
	})
}

// What a data script does still works under the filter and the limits:
// threads, processes, multiprocessing's shared memory and semaphores.
func TestEverydayPythonWorks(t *testing.T) {
	t.Parallel()
	forEachRunner(t, func(t *testing.T, r runnerUnderTest) {
		out := runIn(t, r, context.Background(), `
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
		out.decode(t, &got)
		if got.Sum != 328350 || got.Threaded != 328350 || got.Arr != 1.5 || got.Child != "child\n" {
			t.Errorf("got %+v", got)
		}
	})
}
