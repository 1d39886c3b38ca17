//go:build linux

package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// ErrNoBubblewrap is wrapped by the error Run returns when the bwrap binary
// cannot be found.
var ErrNoBubblewrap = errors.New("sandbox: bubblewrap (bwrap) not found; install the bubblewrap package (Debian: apt-get install bubblewrap)")

// Bubblewrap runs scripts with bubblewrap: every namespace unshared, no
// capabilities, and a file system built from the runtime, the Spec's mounts
// and a private /tmp. Needs bubblewrap 0.5 or later.
type Bubblewrap struct {
	Path string // bwrap binary; default: looked up on PATH, then /usr/bin/bwrap

	// Root is a worker image: a host directory bound read-only as the
	// sandbox's /. It must hold the mount points the Specs use. Empty
	// means the host's /usr (hostUsr).
	Root string
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
	"--die-with-parent", // the sandbox dies with the server
	"--new-session",     // no controlling terminal to inject input into
	"--cap-drop", "ALL",
	"--hostname", "cleanroom",
}

// environment is the whole environment of a script; nothing of the server's
// passes through. bwrap adds PWD, the working directory.
var environment = [][2]string{
	{"PATH", "/usr/local/bin:/usr/bin:/bin"},
	{"HOME", "/tmp"},
	{"LANG", "C.UTF-8"},
	{"MPLBACKEND", "Agg"}, // matplotlib draws to files; there is no display
	{"PYTHONDONTWRITEBYTECODE", "1"},
	{"PYTHONUNBUFFERED", "1"}, // logs keep their order and survive a kill
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
	argsFD   = 3 // bwrap's options, NUL-separated: kept out of its argv, which the script can read as /proc/1/cmdline, as they name host paths
	statusFD = 4 // bwrap reports the sandbox's PID 1 and the script's exit status here
)

// args returns bwrap's options for spec, a validated Spec. The command
// follows them on bwrap's command line: bwrap takes it only from there.
func (b *Bubblewrap) args(spec Spec) []string {
	root := hostUsr()
	if b.Root != "" {
		root = rootfs{args: []string{"--ro-bind", b.Root, "/"}}
	}
	args := append([]string(nil), isolation...)
	args = append(args, "--clearenv")
	for _, kv := range environment {
		args = append(args, "--setenv", kv[0], kv[1])
	}
	args = append(args, root.args...)
	args = append(args, "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp")
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
	return append(args, "--json-status-fd", fmt.Sprint(statusFD))
}

// waitDelay bounds how long Run waits for the script's output pipes to
// close once bwrap has ended.
const waitDelay = 5 * time.Second

// Run runs spec in a new sandbox; see Runner. It returns an error wrapping
// ErrNoBubblewrap when bwrap is missing. A script ending by signal N is
// told from one exiting with status 128+N only by that status: bwrap
// reports both alike, so both come back as signal N.
func (b *Bubblewrap) Run(ctx context.Context, spec Spec) (Result, error) {
	spec, err := spec.validate()
	if err != nil {
		return Result{}, err
	}
	for i, m := range spec.Mounts {
		if _, err := os.Stat(m.Host); err != nil {
			if pe, ok := err.(*os.PathError); ok {
				err = pe.Err
			}
			return Result{}, fmt.Errorf("%w: mount %d: host path %s: %v", ErrInvalidSpec, i+1, m.Host, err)
		}
	}
	bwrap := b.Path
	if bwrap == "" {
		if bwrap, err = lookBwrap(); err != nil {
			return Result{}, err
		}
	} else if _, err := os.Stat(bwrap); err != nil {
		return Result{}, fmt.Errorf("%w (%v)", ErrNoBubblewrap, err)
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

	runCtx, cancel := ctx, context.CancelFunc(func() {})
	if spec.Timeout > 0 {
		runCtx, cancel = context.WithTimeout(ctx, spec.Timeout)
	}
	defer cancel()

	cmd := exec.CommandContext(runCtx, bwrap, append([]string{"--args", fmt.Sprint(argsFD), "--"}, spec.Command...)...)
	cmd.Env = []string{}
	cmd.Dir = "/"
	cmd.ExtraFiles = []*os.File{argsR, statusW}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
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

	go func() {
		// bwrap reads all options before it starts; if it dies first, the
		// write fails and there is nothing left to tell it.
		argsW.Write([]byte(strings.Join(b.args(spec), "\x00") + "\x00"))
		argsW.Close()
	}()
	status := make(chan bwrapStatus, 1)
	go func() { status <- readStatus(statusR) }()

	waitErr := cmd.Wait()
	res := Result{Duration: time.Since(start), limit: spec.Timeout}
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
