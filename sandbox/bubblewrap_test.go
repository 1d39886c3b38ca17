//go:build linux

package sandbox

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/elastic/go-seccomp-bpf/arch"
)

// What only bubblewrap does; the behaviour both runners share is tested
// over both (runner_test.go).

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
