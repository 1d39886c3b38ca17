package sandbox

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// cgroups is where the runs of this process get their cgroups: below the
// process's own cgroup, one per run, named cleanroom-PID-N.
type cgroups struct {
	version  int    // 1 or 2
	memory   string // directory the memory cgroups are made in
	pids     string // directory the pids cgroups are made in; the same as memory on version 2
	cpu      string // directory the cpu cgroups are made in, "" without the cpu controller; the same as memory on version 2
	noCPUwhy string // why there is no cpu controller
}

// findCgroups finds the cgroups of the calling process and checks that it
// may make cgroups below them with the memory and pids controllers. On a
// cgroup v2 machine whose cgroup holds the process itself, the process moves
// to a leaf, cleanroom-server, so that its cgroup may hand controllers down.
var findCgroups = sync.OnceValues(func() (*cgroups, error) {
	mounts, err := readMountinfo("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	own, err := readProcCgroup("/proc/self/cgroup")
	if err != nil {
		return nil, err
	}
	var errs []error
	cg, err := findV2(mounts, own)
	if err != nil {
		errs = append(errs, fmt.Errorf("cgroup v2: %w", err))
		if cg, err = findV1(mounts, own); err != nil {
			errs = append(errs, fmt.Errorf("cgroup v1: %w", err))
			return nil, errors.Join(errs...)
		}
	}
	cg.reapStale()
	return cg, nil
})

// reapStale kills what runs in the cgroups of runs whose process has ended,
// as one killed in the instant before its sandbox could take note, and
// removes them.
func (cg *cgroups) reapStale() {
	names := map[string]bool{}
	for _, dir := range []string{cg.memory, cg.pids, cg.cpu} {
		if dir == "" {
			continue
		}
		found, _ := filepath.Glob(filepath.Join(dir, "cleanroom-*-*"))
		for _, f := range found {
			names[filepath.Base(f)] = true
		}
	}
	for name := range names {
		var pid, n int
		if _, err := fmt.Sscanf(name, "cleanroom-%d-%d", &pid, &n); err != nil || pid == os.Getpid() {
			continue
		}
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
			continue // another server's, or its PID taken again: left alone
		}
		c := &cgroup{version: cg.version, memory: filepath.Join(cg.memory, name), pids: filepath.Join(cg.pids, name)}
		if cg.cpu != "" {
			if _, err := os.Stat(filepath.Join(cg.cpu, name)); err == nil {
				c.cpu = filepath.Join(cg.cpu, name)
			}
		}
		c.destroy(waitDelay)
	}
}

// mountinfo is one line of /proc/self/mountinfo.
type mountinfo struct {
	root, point, fstype string
	options             []string // super options
}

func readMountinfo(file string) ([]mountinfo, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var mounts []mountinfo
	for _, line := range strings.Split(string(b), "\n") {
		before, after, ok := strings.Cut(line, " - ")
		f, g := strings.Fields(before), strings.Fields(after)
		if !ok || len(f) < 5 || len(g) < 3 {
			continue
		}
		mounts = append(mounts, mountinfo{root: unescape(f[3]), point: unescape(f[4]), fstype: g[0], options: strings.Split(g[2], ",")})
	}
	return mounts, nil
}

// unescape undoes the octal escapes of mountinfo (\040 for a space).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// readProcCgroup maps each controller of /proc/self/cgroup ("" for the v2
// hierarchy) to the process's cgroup path in it.
func readProcCgroup(file string) (map[string]string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	own := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[1] == "" {
			own[""] = parts[2]
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			own[c] = parts[2]
		}
	}
	return own, nil
}

// cgroupDir returns the directory of cgroup path p in the hierarchy mounted
// as m, or "" when the mount does not show it.
func cgroupDir(m mountinfo, p string) string {
	rel, ok := strings.CutPrefix(p, m.root)
	if m.root == "/" {
		rel, ok = p, true
	}
	if !ok || (rel != "" && !strings.HasPrefix(rel, "/")) {
		return ""
	}
	return filepath.Join(m.point, rel)
}

func findV1(mounts []mountinfo, own map[string]string) (*cgroups, error) {
	dirs := map[string]string{}
	for _, c := range []string{"memory", "pids"} {
		p, ok := own[c]
		if !ok {
			return nil, fmt.Errorf("no %s controller", c)
		}
		for _, m := range mounts {
			if m.fstype == "cgroup" && slices.Contains(m.options, c) {
				dirs[c] = cgroupDir(m, p)
			}
		}
		if dirs[c] == "" {
			return nil, fmt.Errorf("the %s hierarchy is not mounted", c)
		}
		if err := probe(dirs[c]); err != nil {
			return nil, err
		}
	}
	cg := &cgroups{version: 1, memory: dirs["memory"], pids: dirs["pids"], noCPUwhy: "the cpu hierarchy is not mounted or not writable"}
	// The cpu controller is optional: only runs with a CPU limit need it.
	if p, ok := own["cpu"]; ok {
		for _, m := range mounts {
			if m.fstype == "cgroup" && slices.Contains(m.options, "cpu") {
				if dir := cgroupDir(m, p); dir != "" && probe(dir) == nil {
					cg.cpu = dir
				}
			}
		}
	}
	return cg, nil
}

func findV2(mounts []mountinfo, own map[string]string) (*cgroups, error) {
	p, ok := own[""]
	if !ok {
		return nil, errors.New("not mounted")
	}
	var dir string
	for _, m := range mounts {
		if m.fstype == "cgroup2" {
			if d := cgroupDir(m, p); d != "" {
				dir = d
			}
		}
	}
	if dir == "" {
		return nil, errors.New("not mounted")
	}
	controllers, err := os.ReadFile(filepath.Join(dir, "cgroup.controllers"))
	if err != nil {
		return nil, err
	}
	for _, c := range []string{"memory", "pids"} {
		if !slices.Contains(strings.Fields(string(controllers)), c) {
			return nil, fmt.Errorf("the %s controller is not available in %s", c, dir)
		}
	}
	// The cpu controller is optional: only runs with a CPU limit need it,
	// and the kernel refuses it to a hierarchy with realtime threads.
	cg := &cgroups{version: 2, memory: dir, pids: dir, cpu: dir}
	if !slices.Contains(strings.Fields(string(controllers)), "cpu") {
		cg.cpu, cg.noCPUwhy = "", "not available in "+dir
	} else if err := enableV2(dir, true); err != nil {
		cg.cpu, cg.noCPUwhy = "", err.Error()
	}
	if cg.cpu == "" {
		if err := enableV2(dir, false); err != nil {
			return nil, err
		}
	}
	if err := probe(dir); err != nil {
		return nil, err
	}
	return cg, nil
}

// enableV2 hands the memory and pids controllers, and cpu when withCPU,
// down from dir. A cgroup that holds processes cannot (except the root):
// when dir holds only this process, it moves to dir/cleanroom-server first.
func enableV2(dir string, withCPU bool) error {
	control := filepath.Join(dir, "cgroup.subtree_control")
	enabled, err := os.ReadFile(control)
	if err != nil {
		return err
	}
	want := []string{"memory", "pids"}
	if withCPU {
		want = append(want, "cpu")
	}
	if f := strings.Fields(string(enabled)); !slices.ContainsFunc(want, func(c string) bool { return !slices.Contains(f, c) }) {
		return nil
	}
	enable := []byte("+" + strings.Join(want, " +"))
	if err := os.WriteFile(control, enable, 0); err == nil {
		return nil
	} else if !errors.Is(err, syscall.EBUSY) {
		return fmt.Errorf("enabling the %s controllers in %s: %w", strings.Join(want, ", "), dir, err)
	}
	procs, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return err
	}
	if strings.TrimSpace(string(procs)) != strconv.Itoa(os.Getpid()) {
		return fmt.Errorf("%s holds other processes than this one, so it cannot hand down controllers; run the server in a cgroup of its own (systemd: Delegate=yes)", dir)
	}
	leaf := filepath.Join(dir, "cleanroom-server")
	if err := os.Mkdir(leaf, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	if err := os.WriteFile(filepath.Join(leaf, "cgroup.procs"), []byte(strconv.Itoa(os.Getpid())), 0); err != nil {
		return fmt.Errorf("moving the server to %s: %w", leaf, err)
	}
	if err := os.WriteFile(control, enable, 0); err != nil {
		return fmt.Errorf("enabling the %s controllers in %s: %w", strings.Join(want, ", "), dir, err)
	}
	return nil
}

// probe checks that cgroups can be made in dir.
func probe(dir string) error {
	p := filepath.Join(dir, fmt.Sprintf("cleanroom-%d-probe", os.Getpid()))
	if err := os.Mkdir(p, 0o755); err != nil {
		return fmt.Errorf("cannot make cgroups in %s: %w", dir, err)
	}
	return os.Remove(p)
}

// noCPU is what the server log says when runs cannot have a CPU limit.
func (cg *cgroups) noCPU() string {
	if cg.cpu != "" {
		return ""
	}
	return "; runs with a CPU limit fail: no cgroup cpu controller (" + cg.noCPUwhy + ")"
}

// checkLimits makes, and removes, a cgroup with the cgroup limits of l,
// so that limits the machine refuses (a CPU quota above the one the
// server itself runs under, say) are found before any job runs.
func checkLimits(cgs *cgroups, cgErr error, l Limits) error {
	if err := l.check(); err != nil {
		return err
	}
	if cgErr != nil {
		if l.CPUs > 0 {
			return fmt.Errorf("a CPU limit needs cgroups, which are not usable: %v", cgErr)
		}
		return nil
	}
	c, err := cgs.newCgroup(l)
	if err != nil {
		return err
	}
	return c.destroy(waitDelay)
}

var cgroupSeq atomic.Int64

// cgroup is the cgroup of one run: one directory on version 2, one per
// controller on version 1.
type cgroup struct {
	version int
	memory  string
	pids    string
	cpu     string // "" when the run has no CPU limit (on version 1)
}

// cpuPeriod is the period of a CPU quota: a run limited to n CPUs gets
// n times this much CPU time in each period.
const cpuPeriod = 100 * time.Millisecond

// newCgroup makes a cgroup for one run with limits l.
func (cg *cgroups) newCgroup(l Limits) (*cgroup, error) {
	name := fmt.Sprintf("cleanroom-%d-%d", os.Getpid(), cgroupSeq.Add(1))
	c := &cgroup{version: cg.version, memory: filepath.Join(cg.memory, name), pids: filepath.Join(cg.pids, name)}
	if l.CPUs > 0 {
		if cg.cpu == "" {
			return nil, fmt.Errorf("sandbox: the job's CPU limit needs the cgroup cpu controller, which this machine does not offer the server (%s); enable it, or run without a CPU limit (serve --job-cpus 0)", cg.noCPUwhy)
		}
		c.cpu = filepath.Join(cg.cpu, name)
	}
	for _, dir := range c.dirs() {
		if err := os.Mkdir(dir, 0o755); err != nil {
			c.remove()
			return nil, fmt.Errorf("sandbox: making cgroup: %w", err)
		}
	}
	var settings [][2]string
	if c.version == 2 {
		settings = append(settings, [2]string{"memory.oom.group", "1"})
		if l.Memory > 0 {
			settings = append(settings, [2]string{"memory.max", fmt.Sprint(l.Memory)}, [2]string{"memory.swap.max", "0"})
		}
	} else if l.Memory > 0 {
		settings = append(settings, [2]string{"memory.limit_in_bytes", fmt.Sprint(l.Memory)}, [2]string{"memory.memsw.limit_in_bytes", fmt.Sprint(l.Memory)})
	}
	if l.Processes > 0 {
		settings = append(settings, [2]string{"pids.max", fmt.Sprint(l.Processes + bwrapProcesses)})
	}
	if l.CPUs > 0 {
		period := cpuPeriod.Microseconds()
		quota := max(int64(l.CPUs*float64(period)), 1000) // the kernel's least quota is 1 ms
		if c.version == 2 {
			settings = append(settings, [2]string{"cpu.max", fmt.Sprintf("%d %d", quota, period)})
		} else {
			settings = append(settings, [2]string{"cpu.cfs_period_us", fmt.Sprint(period)}, [2]string{"cpu.cfs_quota_us", fmt.Sprint(quota)})
		}
	}
	for _, s := range settings {
		file := filepath.Join(c.memory, s[0])
		switch {
		case strings.HasPrefix(s[0], "pids."):
			file = filepath.Join(c.pids, s[0])
		case strings.HasPrefix(s[0], "cpu."):
			file = filepath.Join(c.cpu, s[0])
		}
		if err := os.WriteFile(file, []byte(s[1]), 0); err != nil {
			if errors.Is(err, os.ErrNotExist) && (s[0] == "memory.memsw.limit_in_bytes" || s[0] == "memory.swap.max") {
				continue // no swap accounting: then there is no swap to limit either
			}
			c.remove()
			return nil, fmt.Errorf("sandbox: setting %s: %w", file, err)
		}
	}
	return c, nil
}

func (c *cgroup) dirs() []string {
	dirs := []string{c.memory}
	for _, d := range []string{c.pids, c.cpu} {
		if d != "" && !slices.Contains(dirs, d) {
			dirs = append(dirs, d)
		}
	}
	return dirs
}

// add moves process pid into the cgroup.
func (c *cgroup) add(pid int) error {
	for _, dir := range c.dirs() {
		if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0); err != nil {
			return fmt.Errorf("sandbox: moving bubblewrap into %s: %w", dir, err)
		}
	}
	return nil
}

// exceeded reports whether a process was killed for memory and whether a
// process or thread failed to start at the process limit.
func (c *cgroup) exceeded() (memory, processes bool) {
	if c.version == 2 {
		memory = counter(filepath.Join(c.memory, "memory.events"), "oom_kill") > 0
	} else {
		memory = counter(filepath.Join(c.memory, "memory.oom_control"), "oom_kill") > 0
	}
	processes = counter(filepath.Join(c.pids, "pids.events"), "max") > 0
	return memory, processes
}

// throttled returns how long the CPU quota held the cgroup back.
func (c *cgroup) throttled() time.Duration {
	if c.cpu == "" {
		return 0
	}
	stat := filepath.Join(c.cpu, "cpu.stat")
	if c.version == 2 {
		return time.Duration(counter(stat, "throttled_usec")) * time.Microsecond
	}
	return time.Duration(counter(stat, "throttled_time")) // nanoseconds
}

// counter returns the value of key in a flat-keyed cgroup file, 0 if absent.
func counter(file, key string) int64 {
	f, err := os.Open(file)
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), " ")
		if k == key {
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return 0
}

// destroy kills whatever still runs in the cgroup and removes it.
func (c *cgroup) destroy(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	if c.version == 2 {
		os.WriteFile(filepath.Join(c.memory, "cgroup.kill"), []byte("1"), 0)
	}
	for {
		left := 0
		for _, dir := range c.dirs() {
			b, _ := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
			for _, f := range strings.Fields(string(b)) {
				if pid, err := strconv.Atoi(f); err == nil {
					syscall.Kill(pid, syscall.SIGKILL)
					left++
				}
			}
		}
		if left == 0 && c.remove() == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("sandbox: cgroup %s still holds %d processes after SIGKILL", c.memory, left)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// remove removes the cgroup's directories, which must hold no process.
func (c *cgroup) remove() error {
	var errs []error
	for _, dir := range c.dirs() {
		if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
