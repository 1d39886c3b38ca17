//go:build linux

package sandbox

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// noCgroupsLeft fails the test if a cgroup of this process is left where
// cgroups finds them.
func noCgroupsLeft(t *testing.T, cgroups func() (*cgroups, error)) {
	t.Helper()
	cg, err := cgroups()
	if err != nil {
		return
	}
	for _, dir := range []string{cg.memory, cg.pids, cg.cpu} {
		if dir == "" {
			continue
		}
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

func TestMemoryLimit(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, script string
	}{
		{"heap", "x = []\nwhile True:\n    x.append(bytearray(16 << 20))\n"},
		{"tmp", "chunk = b'x' * (1 << 20)\nwith open('/tmp/fill', 'wb') as f:\n    while True:\n        f.write(chunk)\n"},
		{"shm", "chunk = b'x' * (1 << 20)\nwith open('/dev/shm/fill', 'wb') as f:\n    while True:\n        f.write(chunk)\n"},
		{"child", "import subprocess\nsubprocess.run(['/usr/bin/python3', '-c', 'x = bytearray(1 << 30)'])\nimport time\ntime.sleep(1)\n"},
	}
	forEachRunner(t, func(t *testing.T, r runnerUnderTest) {
		_, cgErr := r.cgroups()
		if cgErr != nil && r.gvisor != nil {
			// Nothing else can limit the memory of a gVisor sandbox, its
			// kernel included: Run refuses a memory limit.
			t.Fatalf("gVisor limits memory with cgroups only, and they are not usable here: %v", cgErr)
		}
		t.Cleanup(func() { r.leftNothing(t) }) // once the cases, which share r, have run
		for _, tt := range cases {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				out := runIn(t, r, context.Background(), tt.script, Spec{Timeout: 30 * time.Second, Limits: Limits{Memory: 128 << 20}})
				if out.err != nil {
					t.Fatalf("Run: %v", out.err)
				}
				if cgErr != nil {
					// Without cgroups bubblewrap limits each process with
					// RLIMIT_AS, and the process over the limit fails on
					// its own: the script fails unless that was a child it
					// ignores.
					if out.res.Err() == nil && tt.name != "child" {
						t.Fatalf("script succeeded with 128 MiB of memory")
					}
					return
				}
				want := "script exceeded its memory limit of 128 MiB"
				if err := out.res.Err(); err == nil || err.Error() != want {
					t.Errorf("Err() = %v, want %q; result %+v\n%s", err, want, out.res, out.stderr)
				}
				noCgroupsLeft(t, r.cgroups)
			})
		}
	})
}

func TestProcessLimit(t *testing.T) {
	t.Parallel()
	cases := []struct {
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
	}
	forEachRunner(t, func(t *testing.T, r runnerUnderTest) {
		// Without cgroups bubblewrap limits processes with RLIMIT_NPROC,
		// which says nothing when it stops one: the script fails on its
		// own. gVisor reads the failures from its kernel's log, with or
		// without cgroups.
		_, cgErr := r.cgroups()
		reported := cgErr == nil || r.gvisor != nil
		t.Cleanup(func() { r.leftNothing(t) }) // once the cases, which share r, have run
		for _, tt := range cases {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				out := runIn(t, r, context.Background(), tt.script, Spec{Timeout: 10 * time.Second, Limits: Limits{Processes: 32}})
				if out.err != nil {
					t.Fatalf("Run: %v", out.err)
				}
				err := out.res.Err()
				if !reported {
					if tt.want == "" && err != nil {
						t.Errorf("Err() = %v, want nil; result %+v", err, out.res)
					}
					if tt.want != "" && (err == nil || out.res.TimedOut) {
						t.Errorf("result %+v, want a script failing on its own", out.res)
					}
					return
				}
				if got := fmt.Sprint(err); (tt.want == "" && err != nil) || (tt.want != "" && got != tt.want) {
					t.Errorf("Err() = %v, want %q; result %+v\n%s", err, tt.want, out.res, lastLines(out.stderr, 5))
				}
				noCgroupsLeft(t, r.cgroups)
			})
		}
	})
}

// Python ignores SIGXFSZ: a write past the limit fails with EFBIG. Other
// programs are killed by the signal.
func TestFileSizeLimit(t *testing.T) {
	t.Parallel()
	forEachRunner(t, func(t *testing.T, r runnerUnderTest) {
		out := runIn(t, r, context.Background(), `
with open("/tmp/big", "wb") as f:
    f.write(b"x" * (2 << 20))
`, Spec{Limits: Limits{FileSize: 1 << 20}})
		if out.err != nil {
			t.Fatalf("Run: %v", out.err)
		}
		if out.res.ExitCode != 1 || !strings.Contains(out.stderr, "File too large") {
			t.Errorf("result %+v, want a failed write\n%s", out.res, out.stderr)
		}
		out = runIn(t, r, context.Background(), `
import signal
signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
with open("/tmp/big", "wb") as f:
    f.write(b"x" * (2 << 20))
`, Spec{Limits: Limits{FileSize: 1 << 20}})
		want := "script exceeded its file size limit of 1 MiB"
		if err := out.res.Err(); err == nil || err.Error() != want {
			t.Errorf("Err() = %v, want %q; result %+v", err, want, out.res)
		}
	})
}

func TestTmpHoldsAtMostTheMemoryLimit(t *testing.T) {
	t.Parallel()
	forEachRunner(t, func(t *testing.T, r runnerUnderTest) {
		out := runIn(t, r, context.Background(), `
import os
st = os.statvfs("/tmp")
print(st.f_blocks * st.f_frsize)
`, Spec{Limits: Limits{Memory: 256 << 20}}).mustSucceed(t)
		if got := strings.TrimSpace(out.stdout); got != fmt.Sprint(256<<20) {
			t.Errorf("/tmp holds %s bytes, want %d", got, 256<<20)
		}
	})
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

// cpuSpinner forks two processes that each spin for 2 s of wall time and
// prints the CPU seconds they got together: 4 on two idle CPUs unlimited.
const cpuSpinner = `
import os, time
pids = []
for _ in range(2):
    pid = os.fork()
    if pid == 0:
        end = time.monotonic() + 2
        while time.monotonic() < end:
            pass
        os._exit(0)
    pids.append(pid)
for pid in pids:
    os.waitpid(pid, 0)
t = os.times()
print(round(t.children_user + t.children_system, 2))
`

// A run limited to half a CPU gets about half a CPU-second per second, how
// ever many processes it spins.
func TestCPULimit(t *testing.T) {
	t.Parallel()
	forEachRunner(t, func(t *testing.T, r runnerUnderTest) {
		if cg, err := r.cgroups(); err != nil || cg.cpu == "" {
			t.Fatalf("this machine offers no cgroup cpu controller (%v): the test cannot check the limit", err)
		}
		spin := func(l Limits) (cpuSeconds float64, throttled time.Duration) {
			out := runIn(t, r, context.Background(), cpuSpinner, Spec{Timeout: time.Minute, Limits: l}).mustSucceed(t)
			f, err := strconv.ParseFloat(strings.TrimSpace(out.stdout), 64)
			if err != nil {
				t.Fatalf("the spinner printed %q", out.stdout)
			}
			return f, out.res.CPUThrottled
		}
		unlimited, _ := spin(Limits{})
		limited, held := spin(Limits{CPUs: 0.5})
		t.Logf("2 s of two spinning processes: %.2f CPU-s unlimited, %.2f CPU-s at 0.5 CPUs (held back %s)", unlimited, limited, held)
		// Two spinners want 2 CPUs; at 0.5 they are held back for most
		// of each 100 ms period, whatever else the machine does.
		if held < 500*time.Millisecond {
			t.Errorf("held back %s at 0.5 CPUs, want over 500ms", held)
		}
		// gVisor's kernel counts its tasks' time itself; the host's count
		// is exact.
		if r.gvisor == nil && limited > 1.4 {
			t.Errorf("at a limit of 0.5 CPUs two spinners got %.2f CPU-s in 2 s, want about 1", limited)
		}
		r.leftNothing(t)
		noCgroupsLeft(t, r.cgroups)
	})
}

// A CPU limit above the one the server itself runs under is found by
// CheckLimits, before any job: on cgroup v1 the kernel refuses the quota.
func TestCPULimitAboveTheServers(t *testing.T) {
	cgs, err := findCgroups()
	if err != nil || cgs.cpu == "" {
		t.Fatalf("no cgroup cpu controller (%v): the test cannot check the limit", err)
	}
	if cgs.version != 1 {
		t.Skip("on cgroup v2 the parent's lower quota applies without an error; only v1 refuses")
	}
	parent := filepath.Join(cgs.cpu, fmt.Sprintf("cleanroom-%d-parent", os.Getpid()))
	if err := os.Mkdir(parent, 0o755); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(parent)
	if err := os.WriteFile(filepath.Join(parent, "cpu.cfs_quota_us"), []byte("50000"), 0); err != nil {
		t.Fatal(err)
	}
	under := *cgs
	under.cpu = parent
	if err := checkLimits(&under, nil, Limits{CPUs: 2}); err == nil || !strings.Contains(err.Error(), "cpu.cfs_quota_us") {
		t.Errorf("2 CPUs under a parent of 0.5: %v, want the kernel's refusal", err)
	}
	if err := checkLimits(&under, nil, Limits{CPUs: 0.25}); err != nil {
		t.Errorf("0.25 CPUs under a parent of 0.5: %v", err)
	}
}

// The values written for a CPU limit, on both cgroup versions: this
// machine may have only one of them.
func TestCPULimitFiles(t *testing.T) {
	for _, tc := range []struct {
		version int
		want    map[string]string
	}{
		{2, map[string]string{"cpu.max": "150000 100000"}},
		{1, map[string]string{"cpu.cfs_period_us": "100000", "cpu.cfs_quota_us": "150000"}},
	} {
		dir := t.TempDir() // plain files standing in for the cgroup's
		cgs := &cgroups{version: tc.version, memory: dir, pids: dir, cpu: dir}
		name := fmt.Sprintf("cleanroom-%d-%d", os.Getpid(), cgroupSeq.Load()+1)
		if _, err := cgs.newCgroup(Limits{CPUs: 1.5}); err != nil {
			t.Fatal(err)
		}
		for file, want := range tc.want {
			if got, _ := os.ReadFile(filepath.Join(dir, name, file)); string(got) != want {
				t.Errorf("cgroup v%d %s = %q, want %q", tc.version, file, got, want)
			}
		}
	}
}

// A run with a CPU limit on a machine without the cgroup cpu controller
// fails, rather than run unlimited.
func TestCPULimitWithoutController(t *testing.T) {
	cgs, err := findCgroups()
	if err != nil {
		t.Fatalf("cgroups: %v", err)
	}
	without := *cgs
	without.cpu = ""
	if _, err := without.newCgroup(Limits{CPUs: 1}); err == nil || !strings.Contains(err.Error(), "cpu controller") {
		t.Errorf("newCgroup with a CPU limit and no cpu controller: %v, want it refused", err)
	}
	c, err := without.newCgroup(Limits{Memory: 64 << 20})
	if err != nil {
		t.Fatalf("without a CPU limit: %v", err)
	}
	c.destroy(time.Second)
	g := newGVisor(t)
	g.NoCgroups = true
	for _, runner := range []Runner{&Bubblewrap{NoCgroups: true}, g} {
		_, err = runner.Run(context.Background(), withUser(Spec{Command: []string{"/bin/true"}, Limits: Limits{CPUs: 1}}))
		if err == nil || !strings.Contains(err.Error(), "CPU") || !strings.Contains(err.Error(), "cgroups") {
			t.Errorf("%T without cgroups and a CPU limit: %v, want it refused", runner, err)
		}
	}
}
