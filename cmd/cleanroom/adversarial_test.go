package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/cleanroom-dev/cleanroom"
	"github.com/cleanroom-dev/cleanroom/sandbox"
)

// The adversarial suite: scripts that try to break out of the sandbox or
// to exhaust the server, run through the real server with small limits.
// Each case checks what the script got, then that the job left nothing
// behind and that the next normal job succeeds.

// adversarialLimits are the server's limits in this suite.
var adversarialLimits = []string{
	"--job-memory", "256MiB", "--job-timeout", "8s", "--job-processes", "64",
	"--job-output-size", "10MiB", "--job-output-files", "100", "--jobs", "1",
}

// probeScript runs checks and writes their outcomes to /output/probe.json:
// each is "ok: ..." when it got through, else the error it met.
const probeScript = `
import json, os, socket

results = {}

def check(name, f):
    try:
        results[name] = "ok: " + str(f())[:200]
    except Exception as e:
        results[name] = type(e).__name__ + ": " + str(e)

def connect(addr):
    s = socket.create_connection(addr, timeout=2)
    s.close()
    return "connected"

def read(path):
    if os.path.isdir(path):
        return os.listdir(path)
    with open(path, "rb") as f:
        return f.read(100)

def write(path):
    with open(path, "w") as f:
        f.write("x")
    return "written"

def environ_of_all():
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                env = open("/proc/%s/environ" % pid, "rb").read()
            except OSError:
                continue
            if b"CLEANROOM_SERVER_CANARY" in env:
                found.append(pid)
    if "CLEANROOM_SERVER_CANARY" in os.environ:
        found.append("own")
    if found:
        return found
    raise LookupError("no process with the canary")

def other_processes():
    pids = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
    if pids == [1, 2]:  # bubblewrap's init and this script
        raise LookupError("only PIDs 1 and 2")
    if pids == [1]:  # in gVisor, this script alone
        raise LookupError("only PID 1")
    return pids

CHECKS
with open("/output/probe.json", "w") as f:
    json.dump(results, f)
`

// adversarialCase is one attack: its script, the checks to put into
// probeScript, and what the job must show.
type adversarialCase struct {
	name   string
	script string
	// wantError is in the job's error; "" wants the job to succeed.
	wantError string
	check     func(t *testing.T, job *cleanroom.Job, files map[string]string)
}

// TestAdversarial runs the suite against a server of each sandbox.
func TestAdversarial(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the suite checks the job users and tmpfs of a server running as root")
	}
	for _, kind := range []string{sandboxBubblewrap, sandboxGVisor} {
		t.Run(kind, func(t *testing.T) {
			if kind == sandboxGVisor && sandbox.NewGVisor().Path == "" {
				t.Fatal("gVisor (runsc) is not installed: `make test` installs it (Debian: apt-get install runsc)")
			}
			testAdversarial(t, kind)
		})
	}
}

func testAdversarial(t *testing.T, sandboxKind string) {
	s := startServer(t, "", append(adversarialLimits, "--sandbox", sandboxKind)...)
	owner := s.addUser("owner@example.com")
	port := s.URL[strings.LastIndex(s.URL, ":")+1:]
	repo, _ := filepath.Abs("../..")
	var hostIPs []string
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil && !ipn.IP.IsLoopback() {
			hostIPs = append(hostIPs, ipn.IP.String())
		}
	}
	// A listener on every interface of the host: no address of it is
	// reachable from a job.
	ln, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Errorf("a job connected to the host's listener from %s", c.RemoteAddr())
			c.Close()
		}
	}()
	anyPort := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)

	var network []string
	network = append(network, `check("interfaces", lambda: [n for _, n in socket.if_nameindex()])`)
	for _, target := range []string{"127.0.0.1:" + port, "127.0.0.1:" + anyPort, "[::1]:" + port, "192.0.2.1:80"} {
		host, p, _ := net.SplitHostPort(target)
		network = append(network, fmt.Sprintf(`check("connect %s", lambda: connect((%q, %s)))`, target, host, p))
	}
	// vsock ports belong to the machine and its hypervisor, not to a
	// network namespace: no socket of that family may even be made.
	network = append(network, `check("vsock socket", lambda: socket.socket(40, socket.SOCK_STREAM))`,
		`check("vsock to the host", lambda: socket.socket(40, socket.SOCK_STREAM).connect((2, 1024)))`)
	for _, ip := range hostIPs {
		for _, p := range []string{port, anyPort} {
			network = append(network, fmt.Sprintf(`check("connect %s:%s", lambda: connect((%q, %s)))`, ip, p, ip, p))
		}
	}
	files := []string{
		s.DataDir, filepath.Join(s.DataDir, "enclave.key"), filepath.Join(s.DataDir, "cleanroom.db"),
		repo, filepath.Join(repo, "go.mod"), "/root", "/etc/shadow", s.Scratch, "/proc/1/root/etc/shadow",
	}
	var reads []string
	for _, f := range files {
		reads = append(reads, fmt.Sprintf(`check("read %s", lambda: read(%q))`, f, f))
	}

	probe := func(checks ...string) string {
		return strings.Replace(probeScript, "CHECKS", strings.Join(checks, "\n"), 1)
	}
	// allFailed checks that every check of the probe failed.
	allFailed := func(t *testing.T, _ *cleanroom.Job, files map[string]string) {
		t.Helper()
		for name, got := range probeResults(t, files) {
			t.Logf("%s: %s", name, got)
			kind, _, _ := strings.Cut(got, ":")
			switch kind {
			case "ok":
				t.Errorf("%s got through: %s", name, got)
			case "NameError", "TypeError", "AttributeError", "SyntaxError", "ValueError":
				t.Errorf("%s: the probe itself is broken: %s", name, got)
			}
		}
	}

	cases := []adversarialCase{
		{name: "network", script: probe(network[1:]...), check: allFailed},
		{name: "interfaces", script: probe(network[0]), check: func(t *testing.T, _ *cleanroom.Job, files map[string]string) {
			if got := probeResults(t, files)["interfaces"]; got != "ok: ['lo']" {
				t.Errorf("interfaces: %s, want only lo", got)
			}
		}},
		{name: "host_files", script: probe(reads...), check: allFailed},
		{name: "write_input", script: probe(
			`check("write", lambda: write("/input/data"))`,
			`check("create", lambda: write("/input/new"))`,
			`check("remove", lambda: os.remove("/input/data"))`,
			`check("chmod", lambda: os.chmod("/input/data", 0o666))`,
			`check("rename", lambda: os.rename("/input/data", "/input/moved"))`,
		), check: allFailed},
		{name: "server_process", script: probe(
			`check("canary", environ_of_all)`,
			fmt.Sprintf(`check("server pid", lambda: read("/proc/%d/environ"))`, s.cmd.Process.Pid),
			`check("other processes", other_processes)`,
		), check: allFailed},
		{name: "tmp_persists", script: probe(
			`check("tmp", lambda: read("/tmp/persist"))`,
			`check("shm", lambda: read("/dev/shm/persist"))`,
			`write("/tmp/persist")`, `write("/dev/shm/persist")`,
		), check: allFailed},
		{name: "smuggle", script: `
import os
os.symlink("/etc/passwd", "/output/passwd")
os.symlink("/input/data", "/output/data")
os.symlink("/", "/output/root")
os.symlink(` + strconv.Quote(filepath.Join(s.DataDir, "enclave.key")) + `, "/output/key")
os.mkfifo("/output/fifo")
try:
    os.link("/input/data", "/output/hardlink")
except OSError as e:
    print("link:", e)
open("/output/real.txt", "w").write("fine")
open("/output/twice.txt", "w").write("twice")
os.link("/output/twice.txt", "/output/twice2.txt")
`, check: func(t *testing.T, job *cleanroom.Job, files map[string]string) {
			if len(files) != 1 || files["real.txt"] != "fine" {
				t.Errorf("zip holds %v, want only real.txt", files)
			}
			warnings := strings.Join(job.Warnings, "\n")
			skipped := []string{"passwd", "data", "root", "key", "fifo", "twice.txt", "twice2.txt"}
			if sandboxKind == sandboxGVisor {
				// gVisor keeps a named pipe in its own kernel: none
				// reaches the host's /output to be skipped.
				skipped = slices.DeleteFunc(skipped, func(name string) bool { return name == "fifo" })
			}
			for _, name := range skipped {
				if !strings.Contains(warnings, "skipped /output/"+name+":") {
					t.Errorf("warnings do not name /output/%s:\n%s", name, warnings)
				}
			}
		}},
		{name: "fork_bomb", script: "import os\nwhile True:\n    os.fork()\n",
			wantError: "job exceeded its process limit of 64"},
		{name: "thread_bomb", script: "import threading, time\nwhile True:\n    threading.Thread(target=time.sleep, args=(60,)).start()\n",
			wantError: "job exceeded its process limit of 64"},
		{name: "memory_bomb", script: "x = []\nwhile True:\n    x.append(bytearray(8 << 20))\n",
			wantError: "job exceeded its memory limit of 256 MiB"},
		{name: "tmp_bomb", script: "chunk = b'x' * (1 << 20)\nwith open('/tmp/fill', 'wb') as f:\n    while True:\n        f.write(chunk)\n",
			wantError: "job exceeded its memory limit of 256 MiB"},
		{name: "endless_loop", script: "while True:\n    pass\n",
			wantError: "job exceeded its time limit of 8s"},
		{name: "output_flood", script: "chunk = b'x' * (1 << 20)\nwith open('/output/flood', 'wb') as f:\n    while True:\n        f.write(chunk)\n",
			wantError: "job exceeded its output size limit of 10 MiB"},
		{name: "output_flood_caught", script: "chunk = b'x' * (1 << 20)\ntry:\n    with open('/output/flood', 'wb') as f:\n        while True:\n            f.write(chunk)\nexcept OSError:\n    pass\n",
			wantError: "job exceeded its output size limit of 10 MiB"},
		{name: "output_files", script: "import os\nfor i in range(1000):\n    open('/output/f%d' % i, 'w').close()\n",
			wantError: "job exceeded its output file limit of 100 files"},
	}

	nodes := []cleanroom.Node{
		{Name: "data", Kind: cleanroom.NodeRaw, IsRequired: true},
		{Name: "normal", Kind: cleanroom.NodePython, Dependencies: []string{"data"}, Script: `
import os
open("/output/out.txt", "w").write(open("/input/data").read().upper())
`},
	}
	var analystOf []string
	for _, c := range cases {
		nodes = append(nodes, cleanroom.Node{Name: c.name, Kind: cleanroom.NodePython, Dependencies: []string{"data"}, Script: c.script, EnableLogsOnError: true})
		analystOf = append(analystOf, c.name)
	}
	id := publish(t, owner, &cleanroom.Definition{
		Name: "adversarial", Owner: owner.Email, Nodes: nodes,
		Participants: []cleanroom.Participant{{Email: owner.Email, DataOwnerOf: []string{"data"}, AnalystOf: append(analystOf, "normal")}},
	})
	uploadString(t, owner, id, "data", "sensitive rows")

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			runs := 1
			if c.name == "tmp_persists" {
				runs = 2 // the second run looks for what the first left
			}
			for range runs {
				job := runJob(t, owner, id, c.name)
				if c.wantError != "" {
					if job.State != cleanroom.JobFailed || !strings.HasPrefix(job.Error, c.wantError) {
						t.Errorf("job %s: %q, want an error starting %q", job.State, job.Error, c.wantError)
					}
				} else if c.check != nil {
					c.check(t, job, resultFiles(t, owner, job))
				}
				noJobLeftovers(t, s)
			}
			normal := runJob(t, owner, id, "normal")
			if got := resultFiles(t, owner, normal)["out.txt"]; got != "SENSITIVE ROWS" {
				t.Errorf("the next normal job wrote %q", got)
			}
		})
	}
	if s.cmd.ProcessState != nil || syscall.Kill(s.cmd.Process.Pid, 0) != nil {
		t.Error("the server is no longer running")
	}
}

// probeResults decodes probe.json from a job's files.
func probeResults(t *testing.T, files map[string]string) map[string]string {
	t.Helper()
	var res map[string]string
	if err := json.Unmarshal([]byte(files["probe.json"]), &res); err != nil || len(res) == 0 {
		t.Fatalf("probe.json: %v\n%v", err, files)
	}
	return res
}

var jobUsersRE = regexp.MustCompile(`jobs run as users of their own" uids="?\[([0-9 ]+)\]`)

// jobUsers returns the uids that s runs jobs as, from its log.
func (s *testServer) jobUsers(t *testing.T) []string {
	t.Helper()
	// The log reaches the test through a pipe of its own: wait for the line.
	waitFor(t, "the server log to name the job users", func() bool { return jobUsersRE.MatchString(s.log.String()) })
	return strings.Fields(jobUsersRE.FindStringSubmatch(s.log.String())[1])
}

// noJobLeftovers checks that no job of s left a process, a file in the
// scratch directory, a mount or a cgroup. A process that has ended and
// waits to be reaped is no process left.
func noJobLeftovers(t *testing.T, s *testServer) {
	t.Helper()
	uids := s.jobUsers(t)
	statuses, _ := filepath.Glob("/proc/[0-9]*/status")
	for _, f := range statuses {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		var uid, state string
		for _, line := range strings.Split(string(b), "\n") {
			fields := strings.Fields(line)
			if len(fields) > 1 && fields[0] == "Uid:" {
				uid = fields[1]
			}
			if len(fields) > 1 && fields[0] == "State:" {
				state = fields[1]
			}
		}
		if slices.Contains(uids, uid) && state != "Z" {
			cmdline, _ := os.ReadFile(filepath.Join(filepath.Dir(f), "cmdline"))
			t.Errorf("process %s of the job user %s left: %s", filepath.Base(filepath.Dir(f)), uid, bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '}))
		}
	}
	// gVisor's runsc, gofer and sandbox run as other users; they all name
	// their run's directory in the scratch directory.
	cmdlines, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, f := range cmdlines {
		b, err := os.ReadFile(f)
		if err == nil && bytes.Contains(b, []byte(s.Scratch+"/")) && !processEnded(filepath.Dir(f)) {
			t.Errorf("process %s of a run left: %s", filepath.Base(filepath.Dir(f)), bytes.ReplaceAll(b, []byte{0}, []byte{' '}))
		}
	}
	if left, _ := os.ReadDir(s.Scratch); len(left) != 0 {
		t.Errorf("scratch directory holds %v", left)
	}
	mountinfo, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mountinfo), s.Scratch) {
		t.Errorf("a mount below the scratch directory is left:\n%s", mountinfo)
	}
	pid := s.cmd.Process.Pid
	cgroups, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	for _, line := range strings.Split(strings.TrimSpace(string(cgroups)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		for _, pattern := range []string{
			filepath.Join("/sys/fs/cgroup", "*", parts[2], fmt.Sprintf("cleanroom-%d-*", pid)),
			filepath.Join("/sys/fs/cgroup", parts[2], fmt.Sprintf("cleanroom-%d-*", pid)),
		} {
			if left, _ := filepath.Glob(pattern); len(left) > 0 {
				t.Errorf("cgroups left: %v", left)
			}
		}
	}
}

// processEnded reports whether the process of /proc/PID directory dir has
// ended, even if it waits to be reaped.
func processEnded(dir string) bool {
	b, err := os.ReadFile(filepath.Join(dir, "stat"))
	if err != nil {
		return true
	}
	i := bytes.LastIndexByte(b, ')')
	return i >= 0 && i+2 < len(b) && (b[i+2] == 'Z' || b[i+2] == 'X')
}
