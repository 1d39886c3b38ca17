//go:build linux

package sandbox

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/elastic/go-seccomp-bpf/arch"
)

// noCgroupsLeft fails the test if a cgroup of this process is left.
func noCgroupsLeft(t *testing.T, b *Bubblewrap) {
	t.Helper()
	cg, err := b.cgroups()
	if err != nil {
		return
	}
	for _, dir := range []string{cg.memory, cg.pids} {
		left, _ := filepath.Glob(filepath.Join(dir, fmt.Sprintf("cleanroom-%d-*", os.Getpid())))
		// Parallel tests may be running; only a leftover that stays is one.
		for _, d := range left {
			waitGone(t, d)
		}
	}
}

func waitGone(t *testing.T, path string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := os.Stat(path); os.IsNotExist(err) {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%s left behind", path)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestScriptRunsConfined(t *testing.T) {
	t.Parallel()
	spec := withUser(Spec{})
	r := runPython(t, context.Background(), `
import json, os, resource
status = dict(line.split(":\t", 1) for line in open("/proc/self/status").read().splitlines() if ":\t" in line)
print(json.dumps({
    "uid": os.getuid(), "gid": os.getgid(),
    "core": resource.getrlimit(resource.RLIMIT_CORE),
    "no_new_privs": status["NoNewPrivs"].strip(), "seccomp": status["Seccomp"].strip(),
    "cap_eff": status["CapEff"].strip(),
}))
`, spec).mustSucceed(t)
	var got struct {
		UID, GID   int
		Core       []int64
		NoNewPrivs string `json:"no_new_privs"`
		Seccomp    string
		CapEff     string `json:"cap_eff"`
	}
	r.decode(t, &got)
	if spec.User != nil && (got.UID != spec.User.UID || got.GID != spec.User.GID) {
		t.Errorf("script runs as %d:%d, want %d:%d", got.UID, got.GID, spec.User.UID, spec.User.GID)
	}
	if got.Core[0] != 0 || got.Core[1] != 0 {
		t.Errorf("RLIMIT_CORE = %v, want 0", got.Core)
	}
	if got.NoNewPrivs != "1" || got.Seccomp != "2" {
		t.Errorf("NoNewPrivs %s, Seccomp %s: want 1 and 2 (filter)", got.NoNewPrivs, got.Seccomp)
	}
	if got.CapEff != "0000000000000000" {
		t.Errorf("effective capabilities %s, want none", got.CapEff)
	}
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
		"personality":      "0x0040000,",
	}
	var lines []string
	for name, args := range calls {
		nr, ok := info.SyscallNames[name]
		if !ok {
			t.Fatalf("%s unknown on %s", name, info.Name)
		}
		lines = append(lines, fmt.Sprintf("    %q: (%d, (%s)),", name, nr, args))
	}
	nr3 := info.SyscallNames["clone3"]
	r := runPython(t, context.Background(), fmt.Sprintf(`
import ctypes, errno, json, os
libc = ctypes.CDLL(None, use_errno=True)
calls = {
%s
}
res = {}
for name, (nr, args) in calls.items():
    ctypes.set_errno(0)
    rc = libc.syscall(nr, *[ctypes.c_long(a) for a in args])
    res[name] = errno.errorcode.get(ctypes.get_errno(), "OK") if rc == -1 else "OK"
ctypes.set_errno(0)
rc = libc.syscall(%d, 0, 0)
res["clone3"] = errno.errorcode.get(ctypes.get_errno(), "OK") if rc == -1 else "OK"
res["personality_read"] = libc.personality(ctypes.c_ulong(0xffffffff))
print(json.dumps(res))
`, strings.Join(lines, "\n"), nr3), Spec{}).mustSucceed(t)
	var got map[string]any
	r.decode(t, &got)
	for name := range calls {
		if got[name] != "EPERM" {
			t.Errorf("%s: %v, want EPERM", name, got[name])
		}
	}
	if got["clone3"] != "ENOSYS" {
		t.Errorf("clone3: %v, want ENOSYS", got["clone3"])
	}
	if got["personality_read"] != float64(0) {
		t.Errorf("reading the personality returned %v, want 0", got["personality_read"])
	}
}

// What a data script does still works under the filter and the limits:
// threads, processes, multiprocessing's shared memory and semaphores.
func TestEverydayPythonWorks(t *testing.T) {
	t.Parallel()
	r := runPython(t, context.Background(), `
import concurrent.futures, multiprocessing, subprocess, threading, json, platform

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
print(json.dumps({"sum": sum(squares), "threaded": sum(threaded), "arr": arr[0], "child": out, "machine": platform.machine()}))
`, Spec{Limits: Limits{Memory: 512 << 20, Processes: 64}}).mustSucceed(t)
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

func TestMemoryLimit(t *testing.T) {
	t.Parallel()
	b := newRunner(t)
	for _, tt := range []struct {
		name, script string
	}{
		{"heap", "x = []\nwhile True:\n    x.append(bytearray(16 << 20))\n"},
		{"tmp", "import os\nchunk = b'x' * (1 << 20)\nwith open('/tmp/fill', 'wb') as f:\n    while True:\n        f.write(chunk)\n"},
		{"child", "import subprocess\nsubprocess.run(['/usr/bin/python3', '-c', 'x = bytearray(1 << 30)'])\nimport time\ntime.sleep(1)\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := runPython(t, context.Background(), tt.script, Spec{Timeout: 30 * time.Second, Limits: Limits{Memory: 128 << 20}})
			if r.err != nil {
				t.Fatalf("Run: %v", r.err)
			}
			if _, err := b.cgroups(); err != nil {
				// Without cgroups the process over the limit fails on its
				// own: the script fails unless that was a child it ignores.
				if r.res.Err() == nil && tt.name != "child" {
					t.Fatalf("script succeeded with 128 MiB of memory")
				}
				return
			}
			want := "script exceeded its memory limit of 128 MiB"
			if err := r.res.Err(); err == nil || err.Error() != want {
				t.Errorf("Err() = %v, want %q; result %+v\n%s", err, want, r.res, r.stderr)
			}
			noCgroupsLeft(t, b)
		})
	}
}

func TestProcessLimit(t *testing.T) {
	t.Parallel()
	marker := newMarker(t)
	r := runPython(t, context.Background(), fmt.Sprintf(`
import os, sys, time
sys.argv[0] = %q
while True:
    os.fork()
`, marker), Spec{Timeout: 20 * time.Second, Limits: Limits{Processes: 32}})
	if r.err != nil {
		t.Fatalf("Run: %v", r.err)
	}
	if _, err := newRunner(t).cgroups(); err != nil {
		// RLIMIT_NPROC stopped it, and says nothing.
		if r.res.Err() == nil || r.res.TimedOut {
			t.Errorf("result %+v, want a script failing on its own", r.res)
		}
		return
	}
	want := "script exceeded its process limit of 32"
	if err := r.res.Err(); err == nil || err.Error() != want {
		t.Errorf("Err() = %v, want %q; result %+v", err, want, r.res)
	}
	noCgroupsLeft(t, newRunner(t))
}

// Python ignores SIGXFSZ: a write past the limit fails with EFBIG. Other
// programs are killed by the signal.
func TestFileSizeLimit(t *testing.T) {
	t.Parallel()
	r := runPython(t, context.Background(), `
with open("/tmp/big", "wb") as f:
    f.write(b"x" * (2 << 20))
`, Spec{Limits: Limits{FileSize: 1 << 20}})
	if r.err != nil {
		t.Fatalf("Run: %v", r.err)
	}
	if r.res.ExitCode != 1 || !strings.Contains(r.stderr, "File too large") {
		t.Errorf("result %+v, want a failed write\n%s", r.res, r.stderr)
	}
	r = runPython(t, context.Background(), `
import signal, os
signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
with open("/tmp/big", "wb") as f:
    f.write(b"x" * (2 << 20))
`, Spec{Limits: Limits{FileSize: 1 << 20}})
	want := "script exceeded its file size limit of 1 MiB"
	if err := r.res.Err(); err == nil || err.Error() != want {
		t.Errorf("Err() = %v, want %q; result %+v", err, want, r.res)
	}
}

// Without cgroups, rlimits hold memory and, for a run with a user of its
// own, processes.
func TestRlimitFallback(t *testing.T) {
	t.Parallel()
	b := &Bubblewrap{Path: newRunner(t).Path, NoCgroups: true}
	if !strings.Contains(b.Enforcement(), "rlimits") {
		t.Errorf("Enforcement() = %q", b.Enforcement())
	}
	run := func(script string, l Limits) (Result, string) {
		dir := hostDir(t, nil, false)
		file := filepath.Join(dir, "main.py")
		os.WriteFile(file, []byte(script), 0o644)
		var stderr bytes.Buffer
		res, err := b.Run(context.Background(), withUser(Spec{
			Command: []string{python, "/cleanroom/main.py"},
			Mounts:  []Mount{{Host: dir, Sandbox: "/cleanroom"}},
			Stderr:  &stderr, Timeout: 20 * time.Second, Limits: l,
		}))
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		return res, stderr.String()
	}
	res, stderr := run("x = bytearray(1 << 30)\n", Limits{Memory: 256 << 20})
	if res.ExitCode != 1 || !strings.Contains(stderr, "MemoryError") {
		t.Errorf("memory: %+v\n%s", res, stderr)
	}
	{
		res, stderr = run(`
import os
pids = []
try:
    for i in range(100):
        pid = os.fork()
        if pid == 0:
            import time; time.sleep(10); os._exit(0)
        pids.append(pid)
except BlockingIOError:
    print("stopped at", len(pids))
    raise
`, Limits{Processes: 16})
		if res.ExitCode != 1 || !strings.Contains(stderr, "BlockingIOError") {
			t.Errorf("processes: %+v\n%s", res, stderr)
		}
	}
}

func TestSeccompFilterAssembles(t *testing.T) {
	for _, info := range []*arch.Info{arch.X86_64, arch.AARCH64} {
		if _, err := seccompFilter(info); err != nil {
			t.Errorf("%s: %v", info.Name, err)
		}
	}
	// Every name is a system call: a misspelt one would be left out.
	for _, name := range DeniedSyscalls {
		if _, ok := arch.X86_64.SyscallNames[name]; !ok {
			t.Errorf("%s is no x86-64 system call", name)
		}
	}
	a, _ := seccompFilter(arch.X86_64)
	b, _ := seccompFilter(arch.X86_64)
	if !bytes.Equal(a, b) {
		t.Error("the filter differs between two builds")
	}
}

func TestParseCgroupFiles(t *testing.T) {
	dir := t.TempDir()
	mountinfo := filepath.Join(dir, "mountinfo")
	os.WriteFile(mountinfo, []byte(`25 30 0:22 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755
31 25 0:27 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
32 25 0:28 /outer /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
33 25 0:29 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
34 25 0:30 / /mnt/with\040space rw - ext4 /dev/sda1 rw
`), 0o644)
	mounts, err := readMountinfo(mountinfo)
	if err != nil || len(mounts) != 5 {
		t.Fatalf("mounts %v, %v", mounts, err)
	}
	if mounts[4].point != "/mnt/with space" {
		t.Errorf("escaped mount point read as %q", mounts[4].point)
	}
	procCgroup := filepath.Join(dir, "cgroup")
	os.WriteFile(procCgroup, []byte("9:name=systemd:/\n8:pids:/outer/job\n4:memory:/a/b\n1:cpu,cpuacct:/\n0::/\n"), 0o644)
	own, err := readProcCgroup(procCgroup)
	if err != nil {
		t.Fatal(err)
	}
	if own["memory"] != "/a/b" || own["pids"] != "/outer/job" || own["cpuacct"] != "/" || own[""] != "/" {
		t.Errorf("own cgroups %v", own)
	}
	if d := cgroupDir(mounts[1], own["memory"]); d != "/sys/fs/cgroup/memory/a/b" {
		t.Errorf("memory dir %q", d)
	}
	if d := cgroupDir(mounts[2], own["pids"]); d != "/sys/fs/cgroup/pids/job" {
		t.Errorf("pids dir %q", d)
	}
	if d := cgroupDir(mounts[2], "/elsewhere"); d != "" {
		t.Errorf("a cgroup outside the mount's root got dir %q", d)
	}
	counters := filepath.Join(dir, "memory.events")
	os.WriteFile(counters, []byte("low 0\nhigh 0\nmax 12\noom 1\noom_kill 3\n"), 0o644)
	if n := counter(counters, "oom_kill"); n != 3 {
		t.Errorf("oom_kill = %d", n)
	}
	if n := counter(counters, "oom_group_kill"); n != 0 {
		t.Errorf("absent counter = %d", n)
	}
}
