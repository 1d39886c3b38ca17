//go:build linux

package sandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// What only gVisor does; the behaviour both runners share is tested over
// both (runner_test.go).

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
