package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cleanroom-dev/cleanroom"
	"github.com/cleanroom-dev/cleanroom/client"
)

// The end-to-end tests run the real binary: built once here, started on a
// free port with a temporary data directory, with the real sandbox.
var binPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "cleanroom-bin-")
	if err != nil {
		panic(err)
	}
	binPath = filepath.Join(dir, "cleanroom")
	// What the CLI keeps for its user (audit.go) goes to a directory of the tests'.
	os.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, "config"))
	// cleanroom-worker goes beside cleanroom, where serve looks for it.
	for _, b := range [][2]string{{binPath, "."}, {filepath.Join(dir, "cleanroom-worker"), "../cleanroom-worker"}} {
		if out, err := exec.Command("go", "build", "-o", b[0], b[1]).CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build %s: %v\n%s", b[0], err, out)
			os.Exit(1)
		}
	}
	// Servers run jobs on the machine's shared worker image; building it
	// here, once, keeps the build out of every test's time.
	build := exec.Command(binPath, "images", "build")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "cleanroom images build: %v (the worker image needs mmdebstrap and a Debian mirror: `make deps` installs mmdebstrap)\n", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type testServer struct {
	t       testing.TB
	DataDir string
	Scratch string
	URL     string
	cmd     *exec.Cmd
	log     *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var listeningRE = regexp.MustCompile(`listening on (https?://\S+)`)

// startServer starts `cleanroom serve` on dataDir ("" makes a new one).
func startServer(t testing.TB, dataDir string, args ...string) *testServer {
	t.Helper()
	return startServerOf(t, binPath, dataDir, args...)
}

// startServerOf is startServer for the cleanroom binary bin.
func startServerOf(t testing.TB, bin, dataDir string, args ...string) *testServer {
	t.Helper()
	if dataDir == "" {
		dataDir = t.TempDir()
	}
	s := &testServer{t: t, DataDir: dataDir, Scratch: scratchDir(t), log: &syncBuffer{}}
	s.cmd = exec.Command(bin, append([]string{"serve", "--addr", "127.0.0.1:0", "--data", dataDir, "--scratch", s.Scratch}, args...)...)
	s.cmd.Env = append(os.Environ(), "CLEANROOM_SERVER_CANARY=server-secret-canary")
	s.cmd.Stderr = s.log
	stdout, err := s.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := listeningRE.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
			}
		}
	}()
	select {
	case s.URL = <-found:
	case <-time.After(15 * time.Second):
		s.cmd.Process.Kill()
		t.Fatalf("server did not start; its log:\n%s", s.log.String())
	}
	t.Cleanup(func() {
		if s.cmd.ProcessState == nil {
			s.cmd.Process.Signal(syscall.SIGTERM)
			s.cmd.Wait()
		}
		if t.Failed() {
			t.Logf("server log:\n%s", s.log.String())
		}
	})
	return s
}

// scratchDir returns a new scratch directory for a server. Unlike
// t.TempDir(), whose parent only root can enter, the users jobs run as can
// reach it.
func scratchDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "cleanroom-scratch-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// kill ends the server as a crash would: no chance to clean up.
func (s *testServer) kill() {
	s.cmd.Process.Kill()
	s.cmd.Wait()
}

// addUser creates a user with `cleanroom users add` and returns a client for them.
func (s *testServer) addUser(email string) *client.Client {
	s.t.Helper()
	out, err := exec.Command(binPath, "users", "add", email, "--data", s.DataDir).Output()
	if err != nil {
		s.t.Fatalf("users add %s: %v", email, err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return client.New(s.URL, email, lines[len(lines)-1])
}

// cli runs a client subcommand as c's user and returns stdout and stderr.
func (s *testServer) cli(c *client.Client, args ...string) (string, string, error) {
	cmd := exec.Command(binPath, args...)
	cmd.Env = append(os.Environ(), "CLEANROOM_URL="+s.URL, "CLEANROOM_EMAIL="+c.Email, "CLEANROOM_TOKEN="+c.Token)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

// publish publishes def as c and returns its id.
func publish(t testing.TB, c *client.Client, def *cleanroom.Definition) string {
	t.Helper()
	res, err := c.PublishDCR(context.Background(), def)
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	return res.ID
}

func uploadString(t testing.TB, c *client.Client, dcrID, node, data string) *cleanroom.Dataset {
	t.Helper()
	ds, err := c.UploadDataset(context.Background(), client.Upload{DCRID: dcrID, Node: node, Data: strings.NewReader(data), Size: int64(len(data))})
	if err != nil {
		t.Fatalf("upload to %s: %v", node, err)
	}
	return ds
}

// runJob runs node and waits for the job to end.
func runJob(t testing.TB, c *client.Client, dcrID, node string) *cleanroom.Job {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	job, err := c.Run(ctx, dcrID, node)
	if err != nil {
		t.Fatalf("run %s: %v", node, err)
	}
	if job, err = c.Wait(ctx, job.ID); err != nil {
		t.Fatalf("wait for %s: %v", node, err)
	}
	return job
}

// resultFiles downloads a succeeded job's zip and returns its files.
func resultFiles(t testing.TB, c *client.Client, job *cleanroom.Job) map[string]string {
	t.Helper()
	if job.State != cleanroom.JobSucceeded {
		t.Fatalf("job %s is %s: %s", job.ID, job.State, job.Error)
	}
	var buf bytes.Buffer
	if _, err := c.Result(context.Background(), job.ID, &buf); err != nil {
		t.Fatal(err)
	}
	return unzip(t, buf.Bytes())
}

// noPlaintextUnder fails if any file under dir contains one of secrets.
func noPlaintextUnder(t testing.TB, dir string, secrets ...string) {
	t.Helper()
	files := 0
	filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		files++
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range secrets {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("plaintext %q found in %s", s, path)
			}
		}
		return nil
	})
	if files == 0 {
		t.Fatalf("no files under %s: the check would prove nothing", dir)
	}
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
