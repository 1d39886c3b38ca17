//go:build linux

package sandbox

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
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
