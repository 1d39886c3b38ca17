package enclave

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/cleanroom-dev/cleanroom"
	"github.com/cleanroom-dev/cleanroom/sandbox"
)

// DefaultJobUID is the first host user jobs run as when the server runs as
// root: a high number that no account uses.
const DefaultJobUID = 2_000_000

// workspace is one job's scratch directory. When the server runs as root,
// the job runs as a user of its own, and the directory is laid out so that
// this user reads what the sandbox mounts and writes only its /output:
//
//	cleanroom-job-*/  root:job 0710  the job's user passes through, lists nothing
//	  data/           root     0700  decrypted datasets; reached only by their links in input/
//	  input/<node>/   root:job 0750  read-only files (0640), hard links to data/
//	  script/<node>/  root:job 0750  main.py (0640)
//	  output/<node>/  job:job  0700  a tmpfs of the output size limit, where the server runs as root
//
// Without root everything belongs to the server's user, which the job runs as.
type workspace struct {
	dir    string
	user   *sandbox.User // the job's user; nil: the server's
	mounts []string      // tmpfs mounted for /output, unmounted by remove
	warn   string        // for the server log
}

func (w *workspace) dataPath(node string) string   { return filepath.Join(w.dir, "data", node) }
func (w *workspace) inputPath(node string) string  { return filepath.Join(w.dir, "input", node) }
func (w *workspace) outputPath(node string) string { return filepath.Join(w.dir, "output", node) }
func (w *workspace) scriptPath(node string) string { return filepath.Join(w.dir, "script", node) }

// tablePath holds a table node's validated rows: dataset.csv and schema.json.
func (w *workspace) tablePath(node string) string { return filepath.Join(w.dir, "tables", node) }

// newWorkspace makes the scratch directory of a job running as user.
func (e *Enclave) newWorkspace(user *sandbox.User) (*workspace, error) {
	// The server's PID in the name lets the next server remove what a
	// crash left behind (reapScratch).
	dir, err := os.MkdirTemp(e.ScratchDir, fmt.Sprintf("%s%d-", scratchPrefix, os.Getpid()))
	if err != nil {
		return nil, err
	}
	w := &workspace{dir: dir, user: user}
	err = w.share(dir, 0o710)
	for _, sub := range []string{"input", "output", "script", "tables", "validate"} {
		if err == nil {
			err = w.mkdir(filepath.Join(dir, sub))
		}
	}
	if err == nil {
		err = os.Mkdir(filepath.Join(dir, "data"), 0o700)
	}
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return w, nil
}

// share gives the job's group read access to path with mode; the owner
// stays the server's user, so the job cannot change it. Without a job user
// the job runs as the server's user, and nothing is shared: the group bits
// would open decrypted data to every member of the server's group.
func (w *workspace) share(path string, mode os.FileMode) error {
	if w.user == nil {
		return os.Chmod(path, mode&0o700)
	}
	if err := os.Lchown(path, 0, w.user.GID); err != nil {
		return err
	}
	return os.Chmod(path, mode)
}

func (w *workspace) mkdir(path string) error {
	if err := os.Mkdir(path, 0o700); err != nil {
		return err
	}
	return w.share(path, 0o750)
}

func (w *workspace) writeFile(path, content string) error {
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		return err
	}
	return w.share(path, 0o640)
}

// linkTree makes dst a copy of src (a file or a directory tree) made of hard
// links readable by the job, so a large input is laid out for a
// computation without copying it.
func (w *workspace) linkTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		switch t := d.Type(); {
		case t.IsDir():
			return w.mkdir(target)
		case t.IsRegular():
			if err := os.Link(path, target); err != nil {
				return err
			}
			return w.share(target, 0o640)
		default:
			return nil
		}
	})
}

// makeWorkDir makes dir a plain directory the job writes to: on disk, not
// in memory, for outputs that are the enclave's own (validated tables)
// rather than the analyst's.
func (w *workspace) makeWorkDir(dir string) error {
	if err := os.Mkdir(dir, 0o700); err != nil {
		return err
	}
	if w.user == nil {
		return nil
	}
	return os.Chown(dir, w.user.UID, w.user.GID)
}

// makeOutput makes dir, a computation's /output, writable by the job. Where
// the server runs as root it is a tmpfs of size bytes and files inodes,
// which holds the job to both limits as it writes; sized reports whether it
// is.
func (w *workspace) makeOutput(dir string, size int64, files int) (sized bool, err error) {
	if err := os.Mkdir(dir, 0o700); err != nil {
		return false, err
	}
	if w.user == nil {
		return false, nil
	}
	opts := fmt.Sprintf("mode=0700,uid=%d,gid=%d", w.user.UID, w.user.GID)
	if size > 0 {
		opts += ",size=" + strconv.FormatInt(size, 10)
	}
	if files > 0 {
		opts += ",nr_inodes=" + strconv.Itoa(files+1) // the root directory takes one
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV|syscall.MS_NOEXEC, opts); err != nil {
		// Root without CAP_SYS_ADMIN, in a container say: a plain
		// directory, limited as without root.
		tmpfsFailed.Do(func() {
			w.warn = fmt.Sprintf("cannot mount a tmpfs for /output (%v): output limits enforced with RLIMIT_FSIZE and while zipping", err)
		})
		return false, os.Chown(dir, w.user.UID, w.user.GID)
	}
	w.mounts = append(w.mounts, dir)
	return size > 0 || files > 0, nil
}

// tmpfsFailed makes the warning of a failed tmpfs mount come once.
var tmpfsFailed sync.Once

// remove unmounts the job's tmpfs and removes its scratch directory.
func (w *workspace) remove() error {
	var errs []error
	for _, m := range w.mounts {
		if err := syscall.Unmount(m, 0); err != nil {
			// Nothing of the job runs any more; a lazy unmount lets go
			// of whatever still holds it.
			if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil {
				errs = append(errs, fmt.Errorf("unmount %s: %w", m, err))
			}
		}
	}
	w.mounts = nil
	if len(errs) > 0 {
		// Removing below a mount still there would empty it, not remove it.
		return errors.Join(errs...)
	}
	return os.RemoveAll(w.dir)
}

// checkOutput returns a *sandbox.LimitError when a computation's /output
// reached its size or file limit. A tmpfs is full then; a plain directory
// is measured.
func (e *Enclave) checkOutput(w *workspace, node string) error {
	dir := w.outputPath(node)
	var size int64
	var files int
	var st syscall.Statfs_t
	if slices.Contains(w.mounts, dir) {
		if err := syscall.Statfs(dir, &st); err != nil {
			return err
		}
		if e.JobOutputFiles > 0 && st.Ffree == 0 {
			files = e.JobOutputFiles + 1
		}
		if e.JobOutputSize > 0 && st.Bavail == 0 {
			size = e.JobOutputSize + 1
		}
	} else {
		filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || path == dir {
				return nil
			}
			files++
			if fi, err := d.Info(); err == nil && fi.Mode().IsRegular() {
				size += fi.Size()
			}
			return nil
		})
	}
	switch {
	case e.JobOutputSize > 0 && size > e.JobOutputSize:
		return outputSizeError(e.JobOutputSize)
	case e.JobOutputFiles > 0 && files > e.JobOutputFiles:
		return outputFilesError(e.JobOutputFiles)
	}
	return nil
}

func outputSizeError(max int64) error {
	return &sandbox.LimitError{Limit: "output size", Max: cleanroom.FormatBytes(max)}
}

func outputFilesError(max int) error {
	return &sandbox.LimitError{Limit: "output file", Max: fmt.Sprintf("%d files", max)}
}

// scratchPrefix starts the name of every job's scratch directory.
const scratchPrefix = "cleanroom-job-"

var scratchRE = regexp.MustCompile(`^` + scratchPrefix + `(\d+)-`)

// reapScratch removes the scratch directories of servers that died
// without removing them (killed, or a crashed machine): they hold
// decrypted inputs, and maybe a mounted /output. A directory of a server
// still running is left alone.
func (e *Enclave) reapScratch() error {
	dir := cmp.Or(e.ScratchDir, os.TempDir())
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("scratch directory: %w", err)
	}
	for _, ent := range entries {
		m := scratchRE.FindStringSubmatch(ent.Name())
		if m == nil || !ent.IsDir() {
			continue
		}
		if pid, _ := strconv.Atoi(m[1]); pid == os.Getpid() || syscall.Kill(pid, 0) != syscall.ESRCH {
			continue
		}
		path := filepath.Join(dir, ent.Name())
		for _, mnt := range mountsUnder(path) {
			syscall.Unmount(mnt, syscall.MNT_DETACH)
		}
		if err := os.RemoveAll(path); err != nil {
			return fmt.Errorf("remove a dead server's scratch directory: %w", err)
		}
		e.Logger.Warn("removed the scratch directory of a server that stopped without cleaning up", "dir", path)
	}
	return nil
}

// mountsUnder returns the mount points below dir, deepest first.
func mountsUnder(dir string) []string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		// Field 5 is the mount point, with spaces and such escaped as octal.
		if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			out = append(out, f[4])
		}
	}
	slices.SortFunc(out, func(a, b string) int { return len(b) - len(a) })
	return out
}

// prepareScratch checks that the users jobs run as can reach ScratchDir,
// making ScratchDir itself searchable (not readable) by them when it is
// not. Without root, jobs run as the server's user and need nothing.
func (e *Enclave) prepareScratch() error {
	if os.Geteuid() != 0 {
		return nil
	}
	dir := e.ScratchDir
	if dir == "" {
		dir = os.TempDir()
	}
	dir, err := filepath.Abs(dir)
	if err == nil {
		dir, err = filepath.EvalSymlinks(dir)
	}
	if err != nil {
		return fmt.Errorf("scratch directory: %w", err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("scratch directory: %w", err)
	}
	if fi.Mode().Perm()&0o001 == 0 {
		if err := os.Chmod(dir, fi.Mode().Perm()|0o001); err != nil {
			return fmt.Errorf("scratch directory: %w", err)
		}
		e.Logger.Info("made the scratch directory searchable by the users jobs run as", "dir", dir)
	}
	for p := filepath.Dir(dir); ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("scratch directory: %w", err)
		}
		if fi.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("jobs cannot reach the scratch directory %s: %s is not searchable by other users (mode %v); choose a scratch directory they can reach, such as one under /var/tmp", dir, p, fi.Mode().Perm())
		}
		if p == "/" {
			return nil
		}
	}
}

// OutputEnforcement says how the output limits are enforced, for the
// server log.
func (e *Enclave) OutputEnforcement() string {
	if os.Geteuid() == 0 {
		return "output limits enforced with a tmpfs per computation (size, nr_inodes), checked again while zipping"
	}
	return "output limits enforced with RLIMIT_FSIZE per file and checked while zipping (no tmpfs without root)"
}

// leaseDir holds a lock file per job user that a server on this machine
// holds; the lock ends with the server's process.
var leaseDir = filepath.Join(os.TempDir(), "cleanroom-job-users")

// leaseUsers fills e.slots with n job users: without root, n nil ones, as
// jobs run as the server's user; with root, the first n users from JobUID
// up whose lock no other server holds, so that no two jobs on the machine
// share a user, its process count or its files.
func (e *Enclave) leaseUsers(n int) error {
	e.slots = make(chan *sandbox.User, n)
	if os.Geteuid() != 0 {
		for range n {
			e.slots <- nil
		}
		return nil
	}
	if err := os.Mkdir(leaseDir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("job users: %w", err)
	}
	fi, err := os.Lstat(leaseDir)
	if err != nil {
		return fmt.Errorf("job users: %w", err)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); !fi.IsDir() || !ok || st.Uid != 0 || fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("job users: %s must be a directory of root's that only root can write to; remove it", leaseDir)
	}
	var ids []int
	for id := e.JobUID; len(ids) < n; id++ {
		if id >= e.JobUID+n+1000 {
			e.releaseUsers()
			return fmt.Errorf("job users: no free user among %d to %d; other servers hold the rest (locks in %s)", e.JobUID, id-1, leaseDir)
		}
		f, err := os.OpenFile(filepath.Join(leaseDir, strconv.Itoa(id)), os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
		if err != nil {
			continue
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close()
			continue
		}
		e.leases = append(e.leases, f)
		ids = append(ids, id)
		e.slots <- &sandbox.User{UID: id, GID: id}
	}
	e.Logger.Info("jobs run as users of their own", "uids", fmt.Sprint(ids))
	return nil
}

// releaseUsers lets other servers have the job users.
func (e *Enclave) releaseUsers() {
	for _, f := range e.leases {
		f.Close()
	}
	e.leases = nil
}
