//go:build linux

package sandbox

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ErrNoBubblewrap is wrapped by the error Run returns when the bwrap binary
// cannot be found.
var ErrNoBubblewrap = errors.New("sandbox: bubblewrap (bwrap) not found; install the bubblewrap package (Debian: apt-get install bubblewrap)")

// Bubblewrap runs scripts with bubblewrap: every namespace unshared, no
// capabilities, no new user namespaces, the seccomp filter of seccomp.go,
// and a file system built from the runtime, the Spec's mounts and a private
// /tmp. Each run gets a cgroup of its own where the machine allows; see
// Limits. Needs bubblewrap 0.8 or later.
type Bubblewrap struct {
	Path string // bwrap binary; default: looked up on PATH, then /usr/bin/bwrap

	// Root is a worker image: a host directory bound read-only as the
	// sandbox's /. It must hold the mount points the Specs use, and be
	// readable by the Spec's User. Empty means the host's /usr (hostUsr).
	Root string

	// NoCgroups limits runs with rlimits alone, as on a machine without
	// usable cgroups.
	NoCgroups bool
}

var _ Runner = (*Bubblewrap)(nil)

// NewBubblewrap returns a Bubblewrap using the bwrap found on PATH, else
// /usr/bin/bwrap.
func NewBubblewrap() *Bubblewrap {
	path, _ := lookBwrap()
	return &Bubblewrap{Path: path}
}

func lookBwrap() (string, error) {
	if path, err := exec.LookPath("bwrap"); err == nil {
		return path, nil
	}
	if _, err := os.Stat("/usr/bin/bwrap"); err == nil {
		return "/usr/bin/bwrap", nil
	}
	return "", fmt.Errorf("%w (looked on PATH and at /usr/bin/bwrap)", ErrNoBubblewrap)
}

// isolation are the bwrap options that cut the script off from the host.
var isolation = []string{
	// User, IPC, PID, network, UTS and cgroup namespaces. --unshare-all
	// only tries the user and cgroup namespaces; asking for them again
	// makes a host without them fail instead of running less isolated.
	"--unshare-all", "--unshare-user", "--unshare-cgroup",
	"--disable-userns",  // nor can a script make a user namespace of its own
	"--die-with-parent", // the sandbox dies with the server
	"--new-session",     // no controlling terminal to inject input into
	"--cap-drop", "ALL",
	"--hostname", "cleanroom",
}

// bwrapProcesses is how many processes bwrap itself keeps in a run: itself
// and the sandbox's PID 1. Limits.Processes comes on top of them.
const bwrapProcesses = 2

// environment is the whole environment of a script; nothing of the server's
// passes through. bwrap adds PWD, the working directory.
var environment = [][2]string{
	{"PATH", "/usr/local/bin:/usr/bin:/bin"},
	{"HOME", "/tmp"},
	{"LANG", "C.UTF-8"},
	{"MPLBACKEND", "Agg"}, // matplotlib draws to files; there is no display
	{"PYTHONDONTWRITEBYTECODE", "1"},
	{"PYTHONUNBUFFERED", "1"},                           // logs keep their order and survive a kill
	{"PYTHONPATH", "/input/code:/opt/cleanroom/python"}, // a computation's static files, then cleanroom_util and decentriq_util from the kit
}

// rootfs is the read-only runtime a script runs on: interpreter and
// libraries, nothing else of the host. The /proc, /dev, /tmp and Spec mounts
// go on top of it.
type rootfs struct {
	args []string // bwrap options that build it
}

// hostUsr is the runtime until worker images exist: the host's /usr,
// read-only, with /bin, /sbin and the /lib directories as the host has them
// (symlinks into /usr on a merged-/usr Debian). Nothing of /etc is bound:
// Debian's python3 needs none of it.
func hostUsr() rootfs {
	args := []string{"--ro-bind", "/usr", "/usr"}
	for _, dir := range []string{"/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"} {
		fi, err := os.Lstat(dir)
		switch {
		case err != nil:
			// Not on this host.
		case fi.Mode()&os.ModeSymlink != 0:
			if target, err := os.Readlink(dir); err == nil {
				args = append(args, "--symlink", target, dir)
			}
		case fi.IsDir():
			args = append(args, "--ro-bind", dir, dir)
		}
	}
	return rootfs{args: args}
}

// File descriptors bwrap gets besides stdin, stdout and stderr, in
// exec.Cmd.ExtraFiles order.
const (
	argsFD    = 3 // bwrap's options, NUL-separated: kept out of its argv, which the script can read as /proc/1/cmdline, as they name host paths
	statusFD  = 4 // bwrap reports the sandbox's PID 1 and the script's exit status here
	seccompFD = 5 // the seccomp filter, as struct sock_filter[]
)

// args returns bwrap's options for spec, a validated Spec. The command
// follows them on bwrap's command line: bwrap takes it only from there.
func (b *Bubblewrap) args(spec Spec) []string {
	root := hostUsr()
	if dir := cmp.Or(spec.Root, b.Root); dir != "" {
		root = rootfs{args: []string{"--ro-bind", dir, "/"}}
	}
	args := append([]string(nil), isolation...)
	args = append(args, "--clearenv")
	for _, kv := range environment {
		args = append(args, "--setenv", kv[0], kv[1])
	}
	args = append(args, root.args...)
	// /tmp and /dev/shm hold at most the memory limit; with cgroups their
	// files count towards it as well.
	size := func() []string {
		if spec.Limits.Memory > 0 {
			return []string{"--size", fmt.Sprint(spec.Limits.Memory)}
		}
		return nil
	}
	args = append(args, "--proc", "/proc", "--dev", "/dev")
	args = append(append(args, size()...), "--tmpfs", "/dev/shm")
	args = append(append(args, size()...), "--tmpfs", "/tmp")
	for _, m := range spec.Mounts {
		bind := "--ro-bind"
		if m.Writable {
			bind = "--bind"
		}
		args = append(args, bind, m.Host, m.Sandbox)
	}
	// Mount points are made; nothing else may be written outside the
	// mounts and /tmp.
	args = append(args, "--remount-ro", "/")
	args = append(args, "--chdir", spec.Dir)
	args = append(args, "--seccomp", fmt.Sprint(seccompFD))
	return append(args, "--json-status-fd", fmt.Sprint(statusFD))
}

// Enforcement says how Run enforces Limits on this machine, for the server
// log.
func (b *Bubblewrap) Enforcement() string {
	cg, err := b.cgroups()
	if err == nil {
		if cg.version == 2 {
			controllers := "memory, pids"
			if cg.cpu != "" {
				controllers += ", cpu"
			}
			return fmt.Sprintf("limits enforced with cgroup v2 (%s) in %s", controllers, cg.memory) + cg.noCPU()
		}
		cpu := ""
		if cg.cpu != "" {
			cpu = ", cpu in " + cg.cpu
		}
		return fmt.Sprintf("limits enforced with cgroup v1 (memory in %s, pids in %s%s)", cg.memory, cg.pids, cpu) + cg.noCPU()
	}
	how := "limits enforced with rlimits: memory per process (RLIMIT_AS), /tmp and /dev/shm sized to the memory limit"
	if os.Geteuid() == 0 {
		how += ", processes per job user (RLIMIT_NPROC)"
	} else {
		how += ", processes approximately (RLIMIT_NPROC of the server's user, which jobs share without root)"
	}
	return fmt.Sprintf("%s; runs with a CPU limit fail; cgroups are not usable: %v", how, err)
}

// CheckLimits reports whether runs with limits l can be set up here.
func (b *Bubblewrap) CheckLimits(l Limits) error {
	cgs, err := b.cgroups()
	return checkLimits(cgs, err, l)
}

func (b *Bubblewrap) cgroups() (*cgroups, error) {
	if b.NoCgroups {
		return nil, errors.New("turned off")
	}
	return findCgroups()
}

// waitDelay bounds how long Run waits for the script's output pipes to
// close once bwrap has ended.
const waitDelay = 5 * time.Second

// Run runs spec in a new sandbox; see Runner. It returns an error wrapping
// ErrNoBubblewrap when bwrap is missing. A script ending by signal N is
// told from one exiting with status 128+N only by that status: bwrap
// reports both alike, so both come back as signal N.
func (b *Bubblewrap) Run(ctx context.Context, spec Spec) (_ Result, retErr error) {
	spec, err := spec.validate()
	if err != nil {
		return Result{}, err
	}
	if err := spec.checkHostPaths(); err != nil {
		return Result{}, err
	}
	bwrap := b.Path
	if bwrap == "" {
		if bwrap, err = lookBwrap(); err != nil {
			return Result{}, err
		}
	} else if _, err := os.Stat(bwrap); err != nil {
		return Result{}, fmt.Errorf("%w (%v)", ErrNoBubblewrap, err)
	}

	if spec.User == nil && os.Geteuid() == 0 {
		return Result{}, fmt.Errorf("%w: running as root, a Spec must name the User to run the script as", ErrInvalidSpec)
	}
	filter, err := seccompOnce()
	if err != nil {
		return Result{}, err
	}
	var cg *cgroup
	if cgs, err := b.cgroups(); err != nil && spec.Limits.CPUs > 0 {
		return Result{}, fmt.Errorf("sandbox: the job's CPU limit needs cgroups, and they are not usable: %v", err)
	} else if err == nil {
		if cg, err = cgs.newCgroup(spec.Limits); err != nil {
			return Result{}, err
		}
		defer func() {
			// Normally empty by now: the processes ended with the
			// sandbox's PID 1. A failed cleanup is told even after
			// another error (a canceled run, say).
			if err := cg.destroy(waitDelay); err != nil {
				retErr = errors.Join(retErr, err)
			}
		}()
	}

	argsR, argsW, err := os.Pipe()
	if err != nil {
		return Result{}, fmt.Errorf("sandbox: %w", err)
	}
	defer argsR.Close()
	statusR, statusW, err := os.Pipe()
	if err != nil {
		argsW.Close()
		return Result{}, fmt.Errorf("sandbox: %w", err)
	}
	defer statusR.Close()
	defer statusW.Close()
	seccompR, err := filterPipe(filter)
	if err != nil {
		argsW.Close()
		return Result{}, err
	}
	defer seccompR.Close()

	runCtx, cancel := ctx, context.CancelFunc(func() {})
	if spec.Timeout > 0 {
		runCtx, cancel = context.WithTimeout(ctx, spec.Timeout)
	}
	defer cancel()

	cmd := exec.CommandContext(runCtx, bwrap, append([]string{"--args", fmt.Sprint(argsFD), "--"}, spec.Command...)...)
	cmd.Env = []string{}
	cmd.Dir = "/"
	cmd.ExtraFiles = []*os.File{argsR, statusW, seccompR}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if u := spec.User; u != nil {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(u.UID), Gid: uint32(u.GID), Groups: []uint32{}}
	}
	var killed atomic.Bool
	cmd.Cancel = func() error {
		// bwrap leads its own process group; its PID 1 in the sandbox
		// dies with it and takes every process of the sandbox along.
		killed.Store(true)
		if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); err != nil && err != syscall.ESRCH {
			return err
		}
		return os.ErrProcessDone
	}
	cmd.WaitDelay = waitDelay
	stdout, stderr := outputs(spec.Stdout, spec.Stderr)
	if stdout != nil {
		cmd.Stdout = stdout
	}
	cmd.Stderr = stderr

	start := time.Now()
	if err := cmd.Start(); err != nil {
		argsW.Close()
		if ctx.Err() != nil {
			return Result{}, fmt.Errorf("sandbox: run canceled: %w", context.Cause(ctx))
		}
		return Result{}, fmt.Errorf("sandbox: starting bubblewrap: %w", err)
	}
	argsR.Close()
	statusW.Close()
	seccompR.Close()

	// bwrap waits for its options: it has started nothing yet. Limit it
	// now, and all it starts is limited too.
	if err := limit(cmd.Process.Pid, spec, cg); err != nil {
		argsW.Close()
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
		if ctx.Err() != nil {
			// Killed for it before it could be limited.
			return Result{}, fmt.Errorf("sandbox: run canceled: %w", context.Cause(ctx))
		}
		return Result{}, err
	}

	go func() {
		// bwrap reads all options before it starts; if it dies first, the
		// write fails and there is nothing left to tell it.
		argsW.Write([]byte(strings.Join(b.args(spec), "\x00") + "\x00"))
		argsW.Close()
	}()
	status := make(chan bwrapStatus, 1)
	go func() { status <- readStatus(statusR) }()

	waitErr := cmd.Wait()
	res := Result{Duration: time.Since(start), limit: spec.Timeout, limits: spec.Limits}
	st := <-status
	if st.init >= 0 {
		// The script's main process has ended; whatever it left running
		// ends now, before anyone reads /output.
		err := killAndWait(st.init, waitDelay)
		syscall.Close(st.init)
		if err != nil {
			return res, fmt.Errorf("sandbox: ending the sandbox's processes: %w", err)
		}
	}

	if cg != nil {
		res.MemoryExceeded, res.ProcessesExceeded = cg.exceeded()
		res.CPUThrottled = cg.throttled()
	}

	switch {
	case st.exitCode != nil:
		// The script ran and ended on its own. bwrap reports death by
		// signal N as status 128+N, like a shell; a script exiting with
		// such a status itself is reported as that signal.
		code := *st.exitCode
		if code > 128 && code <= 128+64 {
			res.ExitCode, res.Signal = -1, syscall.Signal(code-128)
		} else {
			res.ExitCode = code
		}
	case killed.Load():
		res.ExitCode, res.Signal = -1, syscall.SIGKILL
		if ctx.Err() != nil {
			return res, fmt.Errorf("sandbox: run canceled: %w", context.Cause(ctx))
		}
		res.TimedOut = true
	default:
		// bwrap ended without running the script: it failed to set up
		// the sandbox or to execute the command, and said why on stderr.
		return res, fmt.Errorf("sandbox: could not start the script: %s", bwrapMessage(stderr.head, waitErr))
	}
	for _, out := range []*output{stdout, stderr} {
		if out != nil && out.err != nil {
			return res, fmt.Errorf("sandbox: copying the script's output: %w", out.err)
		}
	}
	return res, nil
}

// limit puts bwrap, process pid, into cg and sets its rlimits, which every
// process it starts inherits: no core dumps (a crash must not hand the
// script's memory to the host's core handler), and the limits cg does not
// enforce.
func limit(pid int, spec Spec, cg *cgroup) error {
	if cg != nil {
		if err := cg.add(pid); err != nil {
			return err
		}
	}
	l := spec.Limits
	rlimits := map[int]int64{unix.RLIMIT_CORE: 0}
	if cg == nil && l.Memory > 0 {
		rlimits[unix.RLIMIT_AS] = l.Memory
	}
	if cg == nil && l.Processes > 0 {
		// RLIMIT_NPROC counts all the processes and threads of a user.
		// A User of the run's own runs nothing else, and so the limit
		// holds this run alone. Without one, the run shares the
		// caller's user: it may start Limits.Processes beyond what that
		// user runs now, an approximate limit that still stops a fork
		// bomb. The cgroup, where there is one, counts exactly.
		n := int64(l.Processes + bwrapProcesses)
		if spec.User == nil {
			n += int64(userTasks(os.Getuid()))
		}
		rlimits[unix.RLIMIT_NPROC] = n
	}
	if l.FileSize > 0 {
		rlimits[unix.RLIMIT_FSIZE] = l.FileSize
	}
	return prlimit(pid, spec.User, rlimits)
}

// prlimit lowers the rlimits of process pid, which runs as user (nil: as
// the caller). Changing the rlimits of another user's process takes
// CAP_SYS_RESOURCE, which root may lack (in a container, say), or the
// same real user and group: a thread takes them for the call and then
// takes back its own. It must not end instead: a thread's end kills the
// bwrap it may have started (--die-with-parent).
func prlimit(pid int, user *User, rlimits map[int]int64) error {
	set := func() error {
		for resource, n := range rlimits {
			rl := unix.Rlimit{Cur: uint64(n), Max: uint64(n)}
			if err := unix.Prlimit(pid, resource, &rl, nil); err != nil {
				return fmt.Errorf("sandbox: setting rlimit %d of bubblewrap: %w", resource, err)
			}
		}
		return nil
	}
	if user == nil {
		return set()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// Raw calls change this thread alone, and only its real IDs,
		// which are all the check compares; its effective IDs stay root.
		setReal := func(uid, gid int) error {
			if _, _, e := unix.RawSyscall(unix.SYS_SETRESGID, uintptr(gid), ^uintptr(0), ^uintptr(0)); e != 0 {
				return fmt.Errorf("sandbox: setresgid: %w", e)
			}
			if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, uintptr(uid), ^uintptr(0), ^uintptr(0)); e != 0 {
				return fmt.Errorf("sandbox: setresuid: %w", e)
			}
			return nil
		}
		uid, gid := os.Getuid(), os.Getgid()
		err := setReal(user.UID, user.GID)
		if err == nil {
			err = set()
		}
		if rerr := setReal(uid, gid); rerr != nil {
			// Left locked, the thread ends with the goroutine rather
			// than run Go code as another user.
			errc <- rerr
			return
		}
		runtime.UnlockOSThread()
		errc <- err
	}()
	return <-errc
}

// userTasks counts the processes and threads whose real user is uid.
func userTasks(uid int) int {
	statuses, _ := filepath.Glob("/proc/[0-9]*/status")
	n := 0
	for _, f := range statuses {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		var real, threads int
		var isUser bool
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "Uid:"); ok {
				fmt.Sscan(v, &real)
				isUser = real == uid
			} else if v, ok := strings.CutPrefix(line, "Threads:"); ok {
				fmt.Sscan(v, &threads)
			}
		}
		if isUser {
			n += threads
		}
	}
	return n
}

// filterPipe returns a pipe from which filter can be read to its end.
func filterPipe(filter []byte) (*os.File, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	// The filter is far smaller than a pipe's buffer.
	_, err = w.Write(filter)
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	return r, nil
}

// bwrapStatus is what bwrap reported on statusFD.
type bwrapStatus struct {
	init     int  // pidfd of the sandbox's PID 1, or -1
	exitCode *int // the script's exit status; nil if it never ran or bwrap was killed
}

// readStatus reads bwrap's JSON status stream until bwrap exits, taking a
// pidfd on the sandbox's PID 1 as soon as bwrap names it.
func readStatus(r io.Reader) bwrapStatus {
	st := bwrapStatus{init: -1}
	dec := json.NewDecoder(r)
	for {
		var msg struct {
			ChildPID     *int   `json:"child-pid"`
			PIDNamespace uint64 `json:"pid-namespace"`
			ExitCode     *int   `json:"exit-code"`
		}
		if err := dec.Decode(&msg); err != nil {
			io.Copy(io.Discard, r)
			return st
		}
		if msg.ChildPID != nil && st.init < 0 {
			st.init = openInit(*msg.ChildPID, msg.PIDNamespace)
		}
		if msg.ExitCode != nil {
			st.exitCode = msg.ExitCode
		}
	}
}

// openInit returns a pidfd on the sandbox's PID 1, host PID pid, or -1 when
// it has already ended. Should it have ended and its PID gone to another
// process, that process is in another PID namespace than pidNS: it is left
// alone.
func openInit(pid int, pidNS uint64) int {
	fd, err := pidfdOpen(pid)
	if err != nil {
		return -1
	}
	ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid))
	if err != nil || ns != fmt.Sprintf("pid:[%d]", pidNS) {
		syscall.Close(fd)
		return -1
	}
	return fd
}

// bwrapMessage extracts bwrap's own complaint from the start of stderr.
func bwrapMessage(head []byte, waitErr error) string {
	var lines []string
	for _, line := range strings.Split(string(head), "\n") {
		if strings.HasPrefix(line, "bwrap: ") {
			lines = append(lines, line)
		}
	}
	if len(lines) == 0 {
		if waitErr != nil {
			return fmt.Sprintf("bwrap ended with %v", waitErr)
		}
		return "bwrap ended without running it"
	}
	return strings.Join(lines, "; ")
}

// headSize is how much of stderr Run keeps to explain a failed start.
const headSize = 4096

// output passes the script's output to w. After w fails it keeps reading and
// discarding, so a broken writer cannot stall the script on a full pipe.
type output struct {
	w    io.Writer
	err  error
	head []byte // the first headSize bytes, if keep
	keep bool
}

func (o *output) Write(p []byte) (int, error) {
	if o.keep && len(o.head) < headSize {
		o.head = append(o.head, p[:min(len(p), headSize-len(o.head))]...)
	}
	if o.err == nil {
		_, o.err = o.w.Write(p)
	}
	return len(p), nil
}

// outputs wraps the Spec's writers. stdout is nil when the script's output
// is discarded; stderr is never nil, as it carries bwrap's own errors. One
// writer given for both gets one output, so writes to it never overlap.
func outputs(stdout, stderr io.Writer) (*output, *output) {
	if stderr == nil {
		stderr = io.Discard
	}
	errOut := &output{w: stderr, keep: true}
	switch {
	case stdout == nil:
		return nil, errOut
	case sameWriter(stdout, stderr):
		return errOut, errOut
	}
	return &output{w: stdout}, errOut
}

// sameWriter reports whether a and b are the same writer; writers of
// incomparable types are never the same.
func sameWriter(a, b io.Writer) (same bool) {
	defer func() {
		if recover() != nil {
			same = false
		}
	}()
	return a == b
}
