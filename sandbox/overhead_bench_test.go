//go:build linux

package sandbox

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// pandasScript is a data script heavy on pandas: merges and group-bys over
// 3 million rows, about a second and a half of work.
const pandasScript = `
import numpy as np, pandas as pd
rng = np.random.default_rng(1)
n = 3_000_000
left = pd.DataFrame({"key": rng.integers(0, 50_000, n), "group": rng.integers(0, 100, n), "value": rng.random(n)})
right = pd.DataFrame({"key": np.arange(50_000), "weight": rng.random(50_000)})
merged = left.merge(right, on="key")
merged["weighted"] = merged["value"] * merged["weight"]
summary = merged.groupby(["group", "key"]).agg(total=("weighted", "sum"), count=("value", "size"))
top = summary.sort_values("total", ascending=False).head(1000)
print(len(summary), round(float(top["total"].iloc[0]), 3))
`

// BenchmarkOverhead compares scripts in the sandbox with the same scripts
// in the same worker image entered with a plain chroot, no isolation at
// all, run in turns: the start-up overhead of python3 -c pass (target:
// under 30 ms) and the slowdown of a pandas-heavy script (target: under
// 5%), for bubblewrap (startup, pandas) and for gVisor on its default
// platform (gvisor-startup, gvisor-pandas). CLEANROOM_BENCH_IMAGE names the
// image's root file system; bench/sandbox.sh finds it.
func BenchmarkOverhead(b *testing.B) {
	root := os.Getenv("CLEANROOM_BENCH_IMAGE")
	if root == "" {
		b.Fatal("CLEANROOM_BENCH_IMAGE is not set: run bench/sandbox.sh, which builds the worker image and names its root file system")
	}
	if _, err := os.Stat(filepath.Join(root, "usr/bin/python3")); err != nil {
		b.Fatalf("CLEANROOM_BENCH_IMAGE=%s is no worker image root: %v", root, err)
	}
	if os.Geteuid() != 0 {
		b.Fatal("chroot needs root")
	}
	r := newRunner(b)
	r.Root = root
	g := newGVisor(b)
	g.Root = root
	user := &User{UID: 2_199_999, GID: 2_199_999}
	sandboxed := func(b *testing.B, r Runner, script string) time.Duration {
		var out bytes.Buffer
		start := time.Now()
		res, err := r.Run(context.Background(), Spec{
			Command: []string{"/usr/bin/python3", "-c", script},
			Stdout:  &out, Stderr: &out, User: user,
			Limits: Limits{Memory: DefaultMemory, Processes: DefaultProcesses},
		})
		d := time.Since(start)
		if err == nil {
			err = res.Err()
		}
		if err != nil {
			b.Fatalf("sandbox: %v\n%s", err, out.String())
		}
		return d
	}
	chrooted := func(b *testing.B, script string) time.Duration {
		cmd := exec.Command("/usr/bin/python3", "-c", script)
		cmd.Dir = "/"
		cmd.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/tmp", "LANG=C.UTF-8", "PYTHONDONTWRITEBYTECODE=1"}
		cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: root, Credential: &syscall.Credential{Uid: uint32(user.UID), Gid: uint32(user.GID), Groups: []uint32{}}}
		start := time.Now()
		out, err := cmd.CombinedOutput()
		d := time.Since(start)
		if err != nil {
			b.Fatalf("chroot: %v\n%s", err, out)
		}
		return d
	}
	for _, tt := range []struct {
		name   string
		r      Runner
		script string
	}{
		{"startup", r, "pass"},
		{"pandas", r, pandasScript},
		{"gvisor-startup", g, "pass"},
		{"gvisor-pandas", g, pandasScript},
	} {
		b.Run(tt.name, func(b *testing.B) {
			// Warm the page cache and the filter first.
			sandboxed(b, tt.r, tt.script)
			chrooted(b, tt.script)
			var inSandbox, inChroot time.Duration
			n := 0
			for b.Loop() {
				if n%2 == 0 {
					inSandbox += sandboxed(b, tt.r, tt.script)
					inChroot += chrooted(b, tt.script)
				} else {
					inChroot += chrooted(b, tt.script)
					inSandbox += sandboxed(b, tt.r, tt.script)
				}
				n++
			}
			ms := func(d time.Duration) float64 { return float64(d) / float64(n) / 1e6 }
			b.ReportMetric(ms(inSandbox), "sandbox-ms/op")
			b.ReportMetric(ms(inChroot), "chroot-ms/op")
			b.ReportMetric(ms(inSandbox-inChroot), "overhead-ms/op")
			b.ReportMetric(100*(float64(inSandbox)/float64(inChroot)-1), "slowdown-%")
		})
	}
}
