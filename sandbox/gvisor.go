//go:build linux

package sandbox

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/elastic/go-seccomp-bpf/arch"
)

// ErrNoGVisor is wrapped by the error Run returns when the runsc binary
// cannot be found.
var ErrNoGVisor = errors.New("sandbox: gVisor (runsc) not found; install the runsc package (Debian: apt-get install runsc)")

// GVisor runs scripts with gVisor: each run is a sandbox of its own whose
// kernel, runsc's sentry, implements the system calls of the script in user
// space, so that the script never reaches the host's kernel directly. The
// worker image is the sandbox's read-only root, with the Spec's mounts, a
// private /tmp and /dev/shm, no network, no capabilities and the seccomp
// filter of seccomp.go applied inside the sandbox. Memory is limited by a
// cgroup of the run that the whole sandbox (its kernel included) runs in;
// processes by RLIMIT_NPROC inside the sandbox, where every task of the run
// is the script's. runsc runs sandboxes as root only: the server must be
// root.
type GVisor struct {
	Path string // runsc binary; default: looked up on PATH, then /usr/bin/runsc and /usr/sbin/runsc

	// Root is a worker image: a host directory that is the sandbox's
	// read-only /, unless a Spec names its own. It must hold the mount
	// points the Specs use: runsc would make a missing one in the image.
	// Empty means the host's /usr, on a root file system made for each
	// run.
	Root string

	// Platform is how the sandbox's kernel intercepts the script's system
	// calls (runsc --platform): "ptrace" (the default) works everywhere;
	// "kvm" and "systrap" are faster where runsc and the machine support
	// them.
	Platform string

	// WorkDir holds a directory per run (OCI bundle, runsc state, logs),
	// readable by root only and removed when the run ends; default
	// os.TempDir().
	WorkDir string

	// NoCgroups runs without a cgroup of the run: a Spec with a memory
	// limit is then refused, as nothing else can limit the memory of a
	// gVisor sandbox.
	NoCgroups bool
}

var _ Runner = (*GVisor)(nil)

// DefaultGVisorPlatform is the platform of a GVisor whose Platform is empty:
// the one every runsc build supports and that needs no /dev/kvm.
const DefaultGVisorPlatform = "ptrace"

// GVisorPlatforms are the platforms Platform may name.
var GVisorPlatforms = []string{"ptrace", "kvm", "systrap"}

// NewGVisor returns a GVisor using the runsc found on PATH or in /usr/bin
// or /usr/sbin, on the default platform.
func NewGVisor() *GVisor {
	path, _ := lookRunsc()
	return &GVisor{Path: path, Platform: DefaultGVisorPlatform}
}

func lookRunsc() (string, error) {
	if path, err := exec.LookPath("runsc"); err == nil {
		return path, nil
	}
	for _, path := range []string{"/usr/bin/runsc", "/usr/sbin/runsc"} {
		if _, err := os.Stat(path); err == nil {
			return path, nil
		}
	}
	return "", fmt.Errorf("%w (looked on PATH, in /usr/bin and /usr/sbin)", ErrNoGVisor)
}

func (g *GVisor) platform() string {
	if g.Platform == "" {
		return DefaultGVisorPlatform
	}
	return g.Platform
}

// gvisorIsolation are the runsc options that cut the sandbox off from the
// host, besides the OCI configuration of config.
var gvisorIsolation = []string{
	"--network=none",  // a network stack of its own with only lo
	"--overlay2=none", // the root is read-only; /tmp and /dev/shm are tmpfs of the sandbox
	"--oci-seccomp",   // the seccomp filter of the configuration applies inside the sandbox
	"--host-uds=none", // no host Unix sockets, neither opened nor made
}

// gvisorNPROCSyscalls are the system calls whose failures tell that a run
// reached its process limit: runsc's sentry logs them, and their errors,
// where the script cannot write.
const gvisorNPROCSyscalls = "clone,clone3,fork,vfork"

// globalFlags returns the runsc options of every runsc command of a run
// whose files are in dir: runsc reads none of them from its state.
func (g *GVisor) globalFlags(dir string, cgroups bool) []string {
	logs := filepath.Join(dir, "logs")
	flags := []string{
		"--root", filepath.Join(dir, "state"),
		"--platform=" + g.platform(),
		"--log", filepath.Join(logs, "runsc.log"),
		"--panic-log", filepath.Join(logs, "panic.log"),
		// The sentry's own log, with the process-making system calls
		// traced: how Run tells that the process limit stopped one.
		"--debug-log", logs + "/", "--debug-command", "boot",
		"--strace", "--strace-syscalls", gvisorNPROCSyscalls,
	}
	flags = append(flags, gvisorIsolation...)
	if !cgroups {
		flags = append(flags, "--ignore-cgroups")
	}
	return flags
}

// Enforcement says how Run enforces Limits on this machine, for the server
// log.
func (g *GVisor) Enforcement() string {
	how := fmt.Sprintf("gVisor (runsc, platform %s): processes limited with RLIMIT_NPROC inside the sandbox", g.platform())
	cg, err := g.cgroups()
	if err != nil {
		return fmt.Sprintf("%s; memory and CPU cannot be limited, runs with a memory or CPU limit fail: cgroups are not usable: %v", how, err)
	}
	if cg.version == 2 {
		return fmt.Sprintf("%s, memory and CPU of the whole sandbox with cgroup v2 in %s", how, cg.memory) + cg.noCPU()
	}
	return fmt.Sprintf("%s, memory and CPU of the whole sandbox with cgroup v1 in %s", how, cg.memory) + cg.noCPU()
}

// CheckLimits reports whether runs with limits l can be set up here.
func (g *GVisor) CheckLimits(l Limits) error {
	cgs, err := g.cgroups()
	if err != nil && l.Memory > 0 {
		return fmt.Errorf("gVisor limits memory with cgroups only, which are not usable: %v", err)
	}
	return checkLimits(cgs, err, Limits{Memory: l.Memory, CPUs: l.CPUs})
}

func (g *GVisor) cgroups() (*cgroups, error) {
	if g.NoCgroups {
		return nil, errors.New("turned off")
	}
	return findCgroups()
}

// runscFailure is runsc's exit status when it could not run the command.
const runscFailure = 128

// gvisorKillGrace is how long Run waits for runsc to end the sandbox it was
// told to kill before it kills runsc itself, which takes the sandbox along.
const gvisorKillGrace = 3 * time.Second

var gvisorSeq atomic.Int64

// Run runs spec in a new gVisor sandbox; see Runner. It returns an error
// wrapping ErrNoGVisor when runsc is missing. Like Bubblewrap, it reports a
// script exiting with status 128+N as killed by signal N.
func (g *GVisor) Run(ctx context.Context, spec Spec) (_ Result, retErr error) {
	spec, err := spec.validate()
	if err != nil {
		return Result{}, err
	}
	if err := spec.checkHostPaths(); err != nil {
		return Result{}, err
	}
	runsc := g.Path
	if runsc == "" {
		if runsc, err = lookRunsc(); err != nil {
			return Result{}, err
		}
	} else if _, err := os.Stat(runsc); err != nil {
		return Result{}, fmt.Errorf("%w (%v)", ErrNoGVisor, err)
	}
	if os.Geteuid() != 0 {
		return Result{}, errors.New("sandbox: gVisor runs sandboxes as root only: run the server as root, or use bubblewrap")
	}
	if spec.User == nil {
		return Result{}, fmt.Errorf("%w: running as root, a Spec must name the User to run the script as", ErrInvalidSpec)
	}
	if ctx.Err() != nil {
		return Result{}, fmt.Errorf("sandbox: run canceled: %w", context.Cause(ctx))
	}
	var cg *cgroup
	cgPath := ""
	if cgs, cgErr := g.cgroups(); cgErr == nil {
		if cgs.version == 1 {
			reapStaleSiblingCgroups()
		}
		// The host pids limit is a backstop only: the sandbox's kernel
		// has threads of its own, and each process of the script costs
		// host tasks too (up to about 9 on ptrace). Reaching it would
		// crash the sandbox's kernel; RLIMIT_NPROC inside is the limit.
		l := Limits{Memory: spec.Limits.Memory, CPUs: spec.Limits.CPUs}
		if n := spec.Limits.Processes; n > 0 {
			l.Processes = gvisorPidsBackstop(n) - bwrapProcesses
		}
		if cg, err = cgs.newCgroup(l); err != nil {
			return Result{}, err
		}
		name := filepath.Base(cg.memory)
		defer func() {
			// Normally empty by now: the sandbox has ended. A failed
			// cleanup is told even after another error (a canceled
			// run, say).
			if err := cg.destroy(waitDelay); err != nil {
				retErr = errors.Join(retErr, err)
			}
			// runsc makes a cgroup of the same name in the other
			// controllers and normally removes it itself.
			if err := removeSiblingCgroups(name); err != nil {
				retErr = errors.Join(retErr, err)
			}
		}()
		if cgPath, err = runscCgroupPath(cg); err != nil {
			return Result{}, err
		}
	} else if spec.Limits.Memory > 0 || spec.Limits.CPUs > 0 {
		return Result{}, fmt.Errorf("sandbox: gVisor limits memory and CPU with cgroups only, and cgroups are not usable: %v", cgErr)
	}

	workDir := g.WorkDir
	if workDir == "" {
		workDir = os.TempDir()
	}
	reapStaleRuns(workDir)
	dir, err := os.MkdirTemp(workDir, fmt.Sprintf("cleanroom-gvisor-%d-", os.Getpid()))
	if err != nil {
		return Result{}, fmt.Errorf("sandbox: %w", err)
	}
	defer func() {
		if err := removeRunDir(dir); err != nil {
			retErr = errors.Join(retErr, err)
		}
	}()
	// runsc and its gofer are root; the sandbox's kernel gets what it
	// needs as open files.
	if err := os.Chmod(dir, 0o711); err != nil {
		return Result{}, fmt.Errorf("sandbox: %w", err)
	}
	for _, sub := range []string{"bundle", "state", "logs"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o700); err != nil {
			return Result{}, fmt.Errorf("sandbox: %w", err)
		}
	}
	root := cmp.Or(spec.Root, g.Root)
	var rootMounts []ociMount
	if root == "" {
		root = filepath.Join(dir, "root")
		if rootMounts, err = hostUsrRoot(root, spec.Mounts); err != nil {
			return Result{}, err
		}
	}
	if err := checkSandboxPaths(root, spec); err != nil {
		return Result{}, err
	}
	config, err := json.MarshalIndent(gvisorConfig(spec, root, rootMounts, cgPath), "", "  ")
	if err != nil {
		return Result{}, fmt.Errorf("sandbox: %w", err)
	}
	bundle := filepath.Join(dir, "bundle")
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), config, 0o600); err != nil {
		return Result{}, fmt.Errorf("sandbox: %w", err)
	}

	global := g.globalFlags(dir, cg != nil)
	runscCmd := func(ctx context.Context, args ...string) *exec.Cmd {
		cmd := exec.CommandContext(ctx, runsc, append(append([]string(nil), global...), args...)...)
		cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
		cmd.Dir = "/"
		return cmd
	}
	id := fmt.Sprintf("cleanroom-%d-%d", os.Getpid(), gvisorSeq.Add(1))
	cmd := runscCmd(context.Background(), "run", "--bundle", bundle, id)
	// runsc leads a process group with its gofer; the sandbox, in a
	// session of its own, and the gofer die with runsc, and runsc with
	// the server.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	stdout, stderr := outputs(spec.Stdout, spec.Stderr)
	// The sandbox's kernel writes to a regular file as to its own,
	// ignoring the file's offset: output goes through pipes.
	pipes, err := newOutputPipes(cmd, stdout, stderr)
	if err != nil {
		return Result{}, err
	}
	defer pipes.close()

	runCtx, cancel := ctx, context.CancelFunc(func() {})
	if spec.Timeout > 0 {
		runCtx, cancel = context.WithTimeout(ctx, spec.Timeout)
	}
	defer cancel()

	start := time.Now()
	if err := cmd.Start(); err != nil {
		return Result{}, fmt.Errorf("sandbox: starting runsc: %w", err)
	}
	pipes.started()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var waitErr error
	killed := false
	select {
	case waitErr = <-done:
	case <-runCtx.Done():
		killed = true
		killCtx, cancelKill := context.WithTimeout(context.Background(), gvisorKillGrace)
		runscCmd(killCtx, "kill", "--all", id, "KILL").Run()
		cancelKill()
		select {
		case waitErr = <-done:
		case <-time.After(gvisorKillGrace):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			waitErr = <-done
		}
	}
	res := Result{Duration: time.Since(start), limit: spec.Timeout, limits: spec.Limits}

	// Whatever is left of the sandbox ends now, before anyone reads
	// /output: runsc's process group, then the container's state, then
	// any process still naming this run's files.
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	deleteCtx, cancelDelete := context.WithTimeout(context.Background(), waitDelay)
	runscCmd(deleteCtx, "delete", "--force", id).Run()
	cancelDelete()
	if err := killRunProcesses(dir, waitDelay); err != nil {
		return res, fmt.Errorf("sandbox: ending the sandbox's processes: %w", err)
	}
	pipes.wait(waitDelay)

	logs := filepath.Join(dir, "logs")
	if cg != nil {
		res.MemoryExceeded, res.ProcessesExceeded = cg.exceeded()
		res.CPUThrottled = cg.throttled()
	}
	if spec.Limits.Processes > 0 && !res.ProcessesExceeded {
		res.ProcessesExceeded = cloneFailedEAGAIN(logs)
	}
	code := -1
	if ee, ok := waitErr.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if waitErr == nil {
		code = 0
	}
	switch {
	case killed:
		res.ExitCode, res.Signal = -1, syscall.SIGKILL
		if ctx.Err() != nil {
			return res, fmt.Errorf("sandbox: run canceled: %w", context.Cause(ctx))
		}
		res.TimedOut = true
	case res.MemoryExceeded:
		// The host killed the sandbox, its kernel included.
		res.ExitCode, res.Signal = -1, syscall.SIGKILL
	case code == runscFailure && len(runscErrors(logs)) > 0:
		return res, fmt.Errorf("sandbox: could not start the script: %s", runscMessage(runscErrors(logs), stderr.head))
	case sentryPanicked(logs):
		return res, fmt.Errorf("sandbox: the gVisor kernel of the sandbox crashed (runsc ended with %v)", waitErr)
	case code > 128 && code <= 128+64:
		// runsc reports death by signal N as status 128+N.
		res.ExitCode, res.Signal = -1, syscall.Signal(code-128)
	case code >= 0:
		res.ExitCode = code
	default:
		return res, fmt.Errorf("sandbox: runsc ended with %v", waitErr)
	}
	for _, out := range []*output{stdout, stderr} {
		if out != nil && out.err != nil {
			return res, fmt.Errorf("sandbox: copying the script's output: %w", out.err)
		}
	}
	return res, nil
}

// gvisorPidsBackstop is the host pids limit of a sandbox whose script may
// have n processes and threads: the sandbox's kernel has about 40 host
// threads of its own, and each process of the script costs about 2 host
// tasks on systrap and up to 9 on ptrace.
func gvisorPidsBackstop(n int) int { return n*10 + 256 }

// runscCgroupPath is the OCI linux.cgroupsPath that makes runsc join cg,
// which exists with its limits set. On cgroup v1, runsc takes a relative
// path below its own cgroup in each controller, which is the server's; on
// v2, an absolute one below /sys/fs/cgroup, where it expects the unified
// hierarchy.
func runscCgroupPath(cg *cgroup) (string, error) {
	if cg.version == 1 {
		return filepath.Base(cg.memory), nil
	}
	rel, err := filepath.Rel("/sys/fs/cgroup", cg.memory)
	if err != nil || strings.HasPrefix(rel, "..") {
		return "", fmt.Errorf("sandbox: gVisor needs the cgroup v2 hierarchy at /sys/fs/cgroup; the run's cgroup is %s", cg.memory)
	}
	return "/" + rel, nil
}

// removeSiblingCgroups removes the cgroups named name that runsc made next
// to the server's own in the cgroup v1 hierarchies besides memory and pids,
// killing what they still hold.
func removeSiblingCgroups(name string) error {
	var errs []error
	for _, base := range v1CgroupDirs() {
		dir := filepath.Join(base, name)
		if _, err := os.Stat(dir); err != nil {
			continue
		}
		if err := (&cgroup{version: 1, memory: dir, pids: dir}).destroy(waitDelay); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// v1CgroupDirs returns the server's own cgroup in each cgroup v1 hierarchy.
func v1CgroupDirs() []string {
	mounts, err := readMountinfo("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	own, err := readProcCgroup("/proc/self/cgroup")
	if err != nil {
		return nil
	}
	var dirs []string
	for _, m := range mounts {
		if m.fstype != "cgroup" {
			continue
		}
		for _, c := range m.options {
			if p, ok := own[c]; ok {
				if dir := cgroupDir(m, p); dir != "" && !slices.Contains(dirs, dir) {
					dirs = append(dirs, dir)
				}
			}
		}
	}
	return dirs
}

// reapStaleSiblingCgroups removes, once, the cgroups that runsc made for
// the runs of servers that have ended, as one killed in the middle of a
// run, in the hierarchies besides memory and pids (findCgroups reaps
// those).
var reapStaleSiblingCgroups = sync.OnceFunc(func() {
	for _, base := range v1CgroupDirs() {
		found, _ := filepath.Glob(filepath.Join(base, "cleanroom-*-*"))
		for _, dir := range found {
			var pid, n int
			if _, err := fmt.Sscanf(filepath.Base(dir), "cleanroom-%d-%d", &pid, &n); err != nil || pid == os.Getpid() {
				continue
			}
			if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
				continue // another server's, or its PID taken again: left alone
			}
			(&cgroup{version: 1, memory: dir, pids: dir}).destroy(waitDelay)
		}
	}
})

// Run directories are named cleanroom-gvisor-PID-*, after the server.
var runDirRE = regexp.MustCompile(`^cleanroom-gvisor-([0-9]+)-`)

// reapedWorkDirs are the work directories whose stale runs are removed.
var reapedWorkDirs sync.Map

// reapStaleRuns removes, once per work directory, the run directories of
// servers that have ended, as one killed before it could remove them; their
// sandboxes ended with them.
func reapStaleRuns(workDir string) {
	if _, done := reapedWorkDirs.LoadOrStore(workDir, true); done {
		return
	}
	ents, _ := os.ReadDir(workDir)
	for _, ent := range ents {
		m := runDirRE.FindStringSubmatch(ent.Name())
		if m == nil || !ent.IsDir() {
			continue
		}
		if pid, _ := strconv.Atoi(m[1]); pid == os.Getpid() {
			continue
		} else if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
			continue // another server's, or its PID taken again: left alone
		}
		dir := filepath.Join(workDir, ent.Name())
		killRunProcesses(dir, waitDelay)
		removeRunDir(dir)
	}
}

// removeRunDir removes a run's directory and what runsc may have mounted in
// its state directory.
func removeRunDir(dir string) error {
	// Newer runsc versions bind an empty network namespace there.
	syscall.Unmount(filepath.Join(dir, "state", "null-netns"), syscall.MNT_DETACH)
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("sandbox: removing the run's directory: %w", err)
	}
	return nil
}

// killRunProcesses kills every process whose command line names dir, the
// directory of a run: runsc, its gofer and its sandbox all do. It waits up
// to timeout for them to end.
func killRunProcesses(dir string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	needle := []byte(dir + "/")
	for {
		cmdlines, _ := filepath.Glob("/proc/[0-9]*/cmdline")
		var left []string
		for _, file := range cmdlines {
			b, err := os.ReadFile(file)
			if err != nil || !bytes.Contains(b, needle) {
				continue
			}
			pidDir := filepath.Dir(file)
			if isZombie(pidDir) {
				continue
			}
			pid, _ := strconv.Atoi(filepath.Base(pidDir))
			syscall.Kill(pid, syscall.SIGKILL)
			left = append(left, filepath.Base(pidDir))
		}
		if len(left) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("processes %v still running after SIGKILL", left)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func isZombie(pidDir string) bool {
	b, err := os.ReadFile(filepath.Join(pidDir, "stat"))
	if err != nil {
		return true // gone
	}
	// The state follows the command name, in parentheses.
	i := bytes.LastIndexByte(b, ')')
	return i >= 0 && i+2 < len(b) && (b[i+2] == 'Z' || b[i+2] == 'X')
}

// hostUsrRoot makes dir the root of a sandbox on the host's /usr, as
// hostUsr is for Bubblewrap: the mount points of the sandbox and of mounts,
// /bin, /sbin and the /lib directories as the host has them (symlinks on a
// merged-/usr Debian). It returns the mounts that bind the host's
// directories onto it.
func hostUsrRoot(dir string, mounts []Mount) ([]ociMount, error) {
	fail := func(err error) ([]ociMount, error) {
		return nil, fmt.Errorf("sandbox: making the sandbox's root: %w", err)
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		return fail(err)
	}
	for _, sub := range []string{"usr", "proc", "dev", "sys", "tmp"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o755); err != nil {
			return fail(err)
		}
	}
	binds := []ociMount{roBind("/usr", "/usr")}
	for _, sub := range []string{"/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"} {
		fi, err := os.Lstat(sub)
		switch {
		case err != nil:
			// Not on this host.
		case fi.Mode()&os.ModeSymlink != 0:
			target, err := os.Readlink(sub)
			if err == nil {
				err = os.Symlink(target, filepath.Join(dir, sub))
			}
			if err != nil {
				return fail(err)
			}
		case fi.IsDir():
			if err := os.Mkdir(filepath.Join(dir, sub), 0o755); err != nil {
				return fail(err)
			}
			binds = append(binds, roBind(sub, sub))
		}
	}
	// Mount points of the Spec that no earlier mount holds.
	for i, m := range mounts {
		if j, _ := mountHolding(mounts[:i], m.Sandbox); j >= 0 {
			continue
		}
		p := filepath.Join(dir, m.Sandbox)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return fail(err)
		}
		fi, err := os.Stat(m.Host)
		if err != nil {
			return fail(err)
		}
		if fi.IsDir() {
			err = os.Mkdir(p, 0o755)
		} else {
			err = os.WriteFile(p, nil, 0o644)
		}
		if err != nil && !errors.Is(err, os.ErrExist) {
			return fail(err)
		}
	}
	return binds, nil
}

// mountHolding returns the index of the last of mounts that p is below, and
// p's path relative to it, or -1.
func mountHolding(mounts []Mount, p string) (int, string) {
	for i := len(mounts) - 1; i >= 0; i-- {
		if rel, ok := strings.CutPrefix(p, mounts[i].Sandbox+"/"); ok {
			return i, rel
		}
	}
	return -1, ""
}

// gvisorFileSystems are the file systems of the sandbox's own on the root,
// whose mount points the root must hold.
var gvisorFileSystems = []string{"/proc", "/dev", "/sys", "/tmp"}

// checkSandboxPaths checks that the mount points of the sandbox's file
// systems and of spec's mounts, and spec's working directory, exist where
// they go: in root, or in the host directory of a mount they are below.
// runsc would otherwise make them there, as root: in a worker image, or in
// a read-only input. The paths to them may hold no symbolic link.
func checkSandboxPaths(root string, spec Spec) error {
	for _, p := range gvisorFileSystems {
		if _, err := lookBelow(root, strings.TrimPrefix(p, "/")); err != nil {
			return fmt.Errorf("sandbox: the root %s has no mount point %s: %v", root, p, err)
		}
	}
	where := func(mounts []Mount, p string) (string, string) {
		if i, rel := mountHolding(mounts, p); i >= 0 {
			return mounts[i].Host, rel
		}
		return root, strings.TrimPrefix(p, "/")
	}
	for i, m := range spec.Mounts {
		if _, err := lookBelow(where(spec.Mounts[:i], m.Sandbox)); err != nil {
			return fmt.Errorf("sandbox: mount %d: the sandbox has no mount point %s: %v", i+1, m.Sandbox, err)
		}
	}
	for _, fs := range gvisorFileSystems {
		if within(spec.Dir, fs) {
			return nil // the sandbox's own: nothing of the host
		}
	}
	dir := spec.Dir
	for _, m := range spec.Mounts {
		if m.Sandbox == dir {
			return nil
		}
	}
	fi, err := lookBelow(where(spec.Mounts, dir))
	if err == nil && !fi.IsDir() {
		err = errors.New("not a directory")
	}
	if err != nil {
		return fmt.Errorf("sandbox: could not start the script: working directory %s: %v", dir, err)
	}
	return nil
}

// lookBelow returns what rel, a slash-separated relative path, names below
// base, without following a symbolic link. Its errors name no host path.
func lookBelow(base, rel string) (os.FileInfo, error) {
	p := base
	fi, err := os.Lstat(p)
	for _, part := range strings.Split(rel, "/") {
		if err != nil {
			break
		}
		p = filepath.Join(p, part)
		if fi, err = os.Lstat(p); err == nil && fi.Mode()&os.ModeSymlink != 0 {
			return nil, errors.New("the path goes through a symbolic link")
		}
	}
	if pe, ok := err.(*os.PathError); ok {
		return nil, pe.Err
	}
	return fi, err
}

// The subset of the OCI runtime configuration that Run writes.
type ociConfig struct {
	OCIVersion string     `json:"ociVersion"`
	Process    ociProcess `json:"process"`
	Root       ociRoot    `json:"root"`
	Hostname   string     `json:"hostname"`
	Mounts     []ociMount `json:"mounts"`
	Linux      ociLinux   `json:"linux"`
}

type ociProcess struct {
	User            ociUser             `json:"user"`
	Args            []string            `json:"args"`
	Env             []string            `json:"env"`
	Cwd             string              `json:"cwd"`
	Capabilities    map[string][]string `json:"capabilities"`
	NoNewPrivileges bool                `json:"noNewPrivileges"`
	Rlimits         []ociRlimit         `json:"rlimits"`
}

type ociUser struct {
	UID            uint32   `json:"uid"`
	GID            uint32   `json:"gid"`
	AdditionalGids []uint32 `json:"additionalGids"`
}

type ociRlimit struct {
	Type string `json:"type"`
	Hard uint64 `json:"hard"`
	Soft uint64 `json:"soft"`
}

type ociRoot struct {
	Path     string `json:"path"`
	Readonly bool   `json:"readonly"`
}

type ociMount struct {
	Destination string   `json:"destination"`
	Type        string   `json:"type"`
	Source      string   `json:"source"`
	Options     []string `json:"options,omitempty"`
}

type ociLinux struct {
	Namespaces  []ociNamespace `json:"namespaces"`
	CgroupsPath string         `json:"cgroupsPath,omitempty"`
	Seccomp     *ociSeccomp    `json:"seccomp,omitempty"`
}

type ociNamespace struct {
	Type string `json:"type"`
}

type ociSeccomp struct {
	DefaultAction string              `json:"defaultAction"`
	Syscalls      []ociSeccompSyscall `json:"syscalls"`
}

type ociSeccompSyscall struct {
	Names    []string `json:"names"`
	Action   string   `json:"action"`
	ErrnoRet *uint    `json:"errnoRet,omitempty"`
	Args     []ociArg `json:"args,omitempty"`
}

type ociArg struct {
	Index    uint   `json:"index"`
	Value    uint64 `json:"value"`
	ValueTwo uint64 `json:"valueTwo"`
	Op       string `json:"op"`
}

func roBind(host, sandbox string) ociMount {
	return ociMount{sandbox, "bind", host, []string{"rbind", "ro", "nosuid", "nodev"}}
}

// gvisorConfig returns the OCI configuration of a run of spec, a validated
// Spec with a User, on root, with rootMounts bound onto it first.
func gvisorConfig(spec Spec, root string, rootMounts []ociMount, cgroupsPath string) ociConfig {
	none := []string{}
	env := make([]string, 0, len(environment)+1)
	for _, kv := range environment {
		env = append(env, kv[0]+"="+kv[1])
	}
	// As bwrap sets it.
	env = append(env, "PWD="+spec.Dir)
	c := ociConfig{
		OCIVersion: "1.0.2",
		Process: ociProcess{
			User:         ociUser{UID: uint32(spec.User.UID), GID: uint32(spec.User.GID), AdditionalGids: []uint32{}},
			Args:         spec.Command,
			Env:          env,
			Cwd:          spec.Dir,
			Capabilities: map[string][]string{"bounding": none, "effective": none, "inheritable": none, "permitted": none, "ambient": none},
			// No set-user-ID program gains anything either.
			NoNewPrivileges: true,
			Rlimits:         []ociRlimit{{"RLIMIT_CORE", 0, 0}},
		},
		Root:     ociRoot{Path: root, Readonly: true},
		Hostname: "cleanroom",
		Linux: ociLinux{
			Namespaces:  []ociNamespace{{"pid"}, {"network"}, {"ipc"}, {"uts"}, {"mount"}},
			CgroupsPath: cgroupsPath,
			Seccomp:     gvisorSeccomp(),
		},
	}
	if n := spec.Limits.Processes; n > 0 {
		// Inside the sandbox every task is the script's user's: the
		// limit counts the processes and threads of this run alone.
		c.Process.Rlimits = append(c.Process.Rlimits, ociRlimit{"RLIMIT_NPROC", uint64(n), uint64(n)})
	}
	if n := spec.Limits.FileSize; n > 0 {
		c.Process.Rlimits = append(c.Process.Rlimits, ociRlimit{"RLIMIT_FSIZE", uint64(n), uint64(n)})
	}
	// /tmp and /dev/shm hold at most the memory limit, and their files
	// are memory of the sandbox, which the cgroup limits.
	tmpfs := func(dst string) ociMount {
		opts := []string{"nosuid", "nodev", "mode=1777"}
		if spec.Limits.Memory > 0 {
			opts = append(opts, "size="+strconv.FormatInt(spec.Limits.Memory, 10))
		}
		return ociMount{dst, "tmpfs", "tmpfs", opts}
	}
	c.Mounts = append(c.Mounts, rootMounts...)
	c.Mounts = append(c.Mounts,
		ociMount{"/proc", "proc", "proc", nil},
		ociMount{"/dev", "tmpfs", "tmpfs", []string{"nosuid", "mode=755"}},
		// runsc mounts its sysfs unless another file system is there:
		// an empty one, as a script has no /sys with bubblewrap.
		ociMount{"/sys", "tmpfs", "tmpfs", []string{"ro", "nosuid", "nodev", "noexec", "mode=555", "size=4096"}},
		tmpfs("/dev/shm"),
		tmpfs("/tmp"),
	)
	for _, m := range spec.Mounts {
		mode := "ro"
		if m.Writable {
			mode = "rw"
		}
		c.Mounts = append(c.Mounts, ociMount{m.Sandbox, "bind", m.Host, []string{"rbind", mode, "nosuid", "nodev"}})
	}
	return c
}

// gvisorSeccomp is the seccomp filter of seccomp.go as OCI configuration,
// which runsc --oci-seccomp applies inside the sandbox: DeniedSyscalls and
// clone with a namespace flag fail with EPERM. clone3 and personality are
// left to the sandbox's kernel, which implements neither (ENOSYS, EINVAL),
// and so are socket families: its network stack has no vsock (runsc's OCI
// seccomp cannot express "none of these families" either). The adversarial
// suite checks that a vsock socket fails under both sandboxes.
func gvisorSeccomp() *ociSeccomp {
	eperm := uint(syscall.EPERM)
	s := &ociSeccomp{
		DefaultAction: "SCMP_ACT_ALLOW",
		Syscalls:      []ociSeccompSyscall{{Names: gvisorDeniedSyscalls(), Action: "SCMP_ACT_ERRNO", ErrnoRet: &eperm}},
	}
	for bit := uint64(1); bit != 0; bit <<= 1 {
		if cloneNewNamespaces&bit != 0 {
			s.Syscalls = append(s.Syscalls, ociSeccompSyscall{
				Names: []string{"clone"}, Action: "SCMP_ACT_ERRNO", ErrnoRet: &eperm,
				Args: []ociArg{{Index: 0, Value: bit, ValueTwo: bit, Op: "SCMP_CMP_MASKED_EQ"}},
			})
		}
	}
	return s
}

// gvisorDeniedSyscalls are the DeniedSyscalls of the machine's architecture.
func gvisorDeniedSyscalls() []string {
	info, err := arch.GetInfo("")
	if err != nil {
		return DeniedSyscalls
	}
	var names []string
	for _, name := range DeniedSyscalls {
		if _, ok := info.SyscallNames[name]; ok {
			names = append(names, name)
		}
	}
	return names
}

// outputPipes carry the script's output from the sandbox to the Spec's
// writers.
type outputPipes struct {
	readers []*os.File
	writers []*os.File // the sandbox's ends, closed once runsc has them
	done    chan struct{}
	n       int
}

// newOutputPipes makes cmd write its stdout and stderr through pipes to
// stdout (nil: discarded) and stderr; one output for both gets one pipe.
func newOutputPipes(cmd *exec.Cmd, stdout, stderr *output) (*outputPipes, error) {
	p := &outputPipes{done: make(chan struct{}, 2)}
	pipe := func(out *output) (*os.File, error) {
		r, w, err := os.Pipe()
		if err != nil {
			p.close()
			return nil, fmt.Errorf("sandbox: %w", err)
		}
		p.readers = append(p.readers, r)
		p.writers = append(p.writers, w)
		p.n++
		go func() {
			// The pipe is copied to its end; output never fails a write.
			io.Copy(out, r)
			p.done <- struct{}{}
		}()
		return w, nil
	}
	errW, err := pipe(stderr)
	if err != nil {
		return nil, err
	}
	cmd.Stderr = errW
	switch {
	case stdout == nil:
		cmd.Stdout = nil
	case stdout == stderr:
		cmd.Stdout = errW
	default:
		if cmd.Stdout, err = pipe(stdout); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// started closes the sandbox's ends of the pipes, which runsc holds now.
func (p *outputPipes) started() {
	for _, w := range p.writers {
		w.Close()
	}
	p.writers = nil
}

// wait waits up to timeout for the output to be copied to its end.
func (p *outputPipes) wait(timeout time.Duration) {
	deadline := time.After(timeout)
	for ; p.n > 0; p.n-- {
		select {
		case <-p.done:
		case <-deadline:
			// Something outside the sandbox holds a pipe; what has
			// not come by now is lost.
			for _, r := range p.readers {
				r.Close()
			}
			return
		}
	}
}

func (p *outputPipes) close() {
	for _, f := range append(p.writers, p.readers...) {
		f.Close()
	}
}

// runscErrors returns the errors runsc logged: why it failed to set up the
// sandbox or to start the command. Its log is a stream of JSON objects.
func runscErrors(logs string) []string {
	f, err := os.Open(filepath.Join(logs, "runsc.log"))
	if err != nil {
		return nil
	}
	defer f.Close()
	var msgs []string
	dec := json.NewDecoder(io.LimitReader(f, 1<<20))
	for {
		var entry struct{ Msg, Level string }
		if err := dec.Decode(&entry); err != nil {
			return msgs
		}
		if entry.Level == "error" || entry.Level == "fatal" {
			msgs = append(msgs, entry.Msg)
		}
	}
}

// runscMessage is what runsc said when it failed: the last error in its
// log, else the start of its stderr.
func runscMessage(errs []string, head []byte) string {
	if len(errs) > 0 {
		return errs[len(errs)-1]
	}
	if s := strings.TrimSpace(string(head)); s != "" {
		return s
	}
	return "runsc ended without running it"
}

// sentryPanicked reports whether the sandbox's kernel crashed.
func sentryPanicked(logs string) bool {
	b, _ := os.ReadFile(filepath.Join(logs, "panic.log"))
	return bytes.Contains(b, []byte("panic: "))
}

// cloneRE matches the sentry's trace of a process-making system call that
// failed with EAGAIN: RLIMIT_NPROC reached. runsc 20221219 logs
// "= 0 (0x0) errno=11", later versions "= -1 errno=11".
var cloneRE = regexp.MustCompile(`X (clone|clone3|fork|vfork)\(.*errno=11\b`)

// cloneFailedEAGAIN reports whether the sentry's log of the run shows a
// process or thread failing to start at the process limit.
func cloneFailedEAGAIN(logs string) bool {
	files, _ := filepath.Glob(filepath.Join(logs, "*boot*"))
	for _, file := range files {
		f, err := os.Open(file)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			if cloneRE.Match(sc.Bytes()) {
				f.Close()
				return true
			}
		}
		f.Close()
	}
	return false
}
