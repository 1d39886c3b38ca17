package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	osexec "os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cleanroom-dev/cleanroom"
	"github.com/cleanroom-dev/cleanroom/client"
	"github.com/cleanroom-dev/cleanroom/crypt"
)

// roles publishes a clean room with one user per role and returns them.
type roles struct {
	id                                                string
	owner, dataOwner, analyst, analyst2, viewer, none *client.Client
}

func setupRoles(t *testing.T, s *testServer, script string, logsOnError bool) roles {
	t.Helper()
	r := roles{
		owner:     s.addUser("owner@example.com"),
		dataOwner: s.addUser("data@example.com"),
		analyst:   s.addUser("analyst@example.com"),
		analyst2:  s.addUser("analyst2@example.com"),
		viewer:    s.addUser("viewer@example.com"),
		none:      s.addUser("stranger@example.com"),
	}
	r.id = publish(t, r.owner, &cleanroom.Definition{
		Name:  "roles",
		Owner: "owner@example.com",
		Nodes: []cleanroom.Node{
			{Name: "data", Kind: cleanroom.NodeRaw, IsRequired: true},
			{Name: "compute", Kind: cleanroom.NodePython, Dependencies: []string{"data"}, Script: script, EnableLogsOnError: logsOnError},
		},
		Participants: []cleanroom.Participant{
			{Email: "data@example.com", DataOwnerOf: []string{"data"}},
			{Email: "analyst@example.com", AnalystOf: []string{"compute"}},
			{Email: "analyst2@example.com", AnalystOf: []string{"compute"}},
			{Email: "viewer@example.com"},
		},
	})
	return r
}

func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if got := cleanroom.ErrorCode(err); got != code {
		t.Errorf("%s: code %q (%v), want %q", what, got, err, code)
	}
}

// A participant without the right gets 403 for each operation, a stranger
// 404, and the rightful user succeeds.
func TestPermissions(t *testing.T) {
	s := startServer(t, "")
	r := setupRoles(t, s, `open("/output/out.txt", "w").write(open("/input/data").read())`, false)
	ctx := context.Background()

	for _, c := range []*client.Client{r.owner, r.dataOwner, r.analyst, r.viewer} {
		if _, err := c.DCR(ctx, r.id); err != nil {
			t.Errorf("%s cannot read the clean room: %v", c.Email, err)
		}
	}
	_, err := r.none.DCR(ctx, r.id)
	wantCode(t, "stranger reads clean room", err, cleanroom.ENOTFOUND)
	if list, _ := r.none.DCRs(ctx); len(list) != 0 {
		t.Errorf("stranger's list shows %v", list)
	}
	if list, _ := r.viewer.DCRs(ctx); len(list) != 1 {
		t.Errorf("viewer's list = %v, want the one clean room", list)
	}

	upload := func(c *client.Client) error {
		_, err := c.UploadDataset(ctx, client.Upload{DCRID: r.id, Node: "data", Data: strings.NewReader("secret"), Size: 6})
		return err
	}
	wantCode(t, "analyst publishes dataset", upload(r.analyst), cleanroom.EFORBIDDEN)
	wantCode(t, "owner publishes dataset", upload(r.owner), cleanroom.EFORBIDDEN)
	wantCode(t, "stranger publishes dataset", upload(r.none), cleanroom.ENOTFOUND)
	if err := upload(r.dataOwner); err != nil {
		t.Fatalf("data owner cannot publish: %v", err)
	}
	wantCode(t, "analyst removes dataset", r.analyst.RemoveDataset(ctx, r.id, "data"), cleanroom.EFORBIDDEN)
	wantCode(t, "stranger removes dataset", r.none.RemoveDataset(ctx, r.id, "data"), cleanroom.ENOTFOUND)

	_, err = r.dataOwner.Run(ctx, r.id, "compute")
	wantCode(t, "data owner runs", err, cleanroom.EFORBIDDEN)
	_, err = r.viewer.Run(ctx, r.id, "compute")
	wantCode(t, "viewer runs", err, cleanroom.EFORBIDDEN)
	_, err = r.none.Run(ctx, r.id, "compute")
	wantCode(t, "stranger runs", err, cleanroom.ENOTFOUND)
	_, err = r.dataOwner.Jobs(ctx, r.id, "compute")
	wantCode(t, "data owner lists jobs", err, cleanroom.EFORBIDDEN)

	job := runJob(t, r.analyst, r.id, "compute")
	if files := resultFiles(t, r.analyst, job); files["out.txt"] != "secret" {
		t.Fatalf("analyst's result = %v", files)
	}
	// Another analyst of the node sees the job, not what it computed.
	if _, err := r.analyst2.Job(ctx, job.ID); err != nil {
		t.Errorf("second analyst cannot see the job: %v", err)
	}
	_, err = r.analyst2.Result(ctx, job.ID, &bytes.Buffer{})
	wantCode(t, "second analyst downloads another's result", err, cleanroom.EFORBIDDEN)
	_, err = r.analyst2.Logs(ctx, job.ID)
	wantCode(t, "second analyst reads another's logs", err, cleanroom.EFORBIDDEN)
	wantCode(t, "second analyst cancels another's job", r.analyst2.Cancel(ctx, job.ID), cleanroom.EFORBIDDEN)
	for _, c := range []struct {
		user *client.Client
		code string
	}{{r.dataOwner, cleanroom.EFORBIDDEN}, {r.viewer, cleanroom.EFORBIDDEN}, {r.owner, cleanroom.EFORBIDDEN}, {r.none, cleanroom.ENOTFOUND}} {
		_, err := c.user.Job(ctx, job.ID)
		wantCode(t, c.user.Email+" reads job", err, c.code)
		_, err = c.user.Logs(ctx, job.ID)
		wantCode(t, c.user.Email+" reads logs", err, c.code)
		_, err = c.user.Result(ctx, job.ID, &bytes.Buffer{})
		wantCode(t, c.user.Email+" downloads result", err, c.code)
		wantCode(t, c.user.Email+" cancels job", c.user.Cancel(ctx, job.ID), c.code)
	}
	if err := r.dataOwner.RemoveDataset(ctx, r.id, "data"); err != nil {
		t.Fatalf("data owner cannot remove: %v", err)
	}
	// Without its required dataset the computation fails at once, naming the node.
	_, err = r.analyst.Run(ctx, r.id, "compute")
	wantCode(t, "run without required dataset", err, cleanroom.ECONFLICT)
	if err == nil || !strings.Contains(err.Error(), `data node "data" is required but has no dataset`) {
		t.Errorf("run without dataset: %v", err)
	}
}

func TestAuthentication(t *testing.T) {
	s := startServer(t, "")
	alice := s.addUser("alice@example.com")
	ctx := context.Background()
	if email, err := alice.Me(ctx); err != nil || email != "alice@example.com" {
		t.Fatalf("me = %q, %v", email, err)
	}
	for name, c := range map[string]*client.Client{
		"no token":             client.New(s.URL, alice.Email, ""),
		"wrong token":          client.New(s.URL, alice.Email, "crt_"+strings.Repeat("A", 43)),
		"someone else's email": client.New(s.URL, "bob@example.com", alice.Token),
		"no email":             client.New(s.URL, "", alice.Token),
	} {
		_, err := c.Me(ctx)
		wantCode(t, name, err, cleanroom.EUNAUTHORIZED)
	}
	// Revoking works while the server runs, and takes effect at once.
	if out, err := runCmd(binPath, "users", "revoke", "alice@example.com", "--data", s.DataDir); err != nil || !strings.Contains(out, "revoked 1 token") {
		t.Fatalf("revoke: %q %v", out, err)
	}
	_, err := alice.Me(ctx)
	wantCode(t, "revoked token", err, cleanroom.EUNAUTHORIZED)
	if out, err := runCmd(binPath, "users", "list", "--data", s.DataDir); err != nil || !strings.Contains(out, "alice@example.com") {
		t.Fatalf("list: %q %v", out, err)
	}
	// Tokens are stored only as hashes.
	noPlaintextUnder(t, s.DataDir, strings.TrimPrefix(alice.Token, "crt_"))
}

// A flipped byte in a stored ciphertext makes the job fail with an integrity error.
func TestTamperedBlobFailsJob(t *testing.T) {
	s := startServer(t, "")
	r := setupRoles(t, s, `open("/output/out.txt", "w").write(open("/input/data").read())`, false)
	ds := uploadString(t, r.dataOwner, r.id, "data", strings.Repeat("sensitive row\n", 1000))
	path := filepath.Join(s.DataDir, "blobs", "datasets", ds.ManifestHash)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("stored ciphertext not where expected: %v", err)
	}
	b[len(b)/2] ^= 0x01
	os.WriteFile(path, b, 0o600)
	job := runJob(t, r.analyst, r.id, "compute")
	if job.State != cleanroom.JobFailed || !strings.Contains(job.Error, "integrity check failed for the dataset of node \"data\"") {
		t.Fatalf("job %s: %q", job.State, job.Error)
	}
}

// A server killed during a run restarts with that job failed, not stuck,
// and the killed job's sandbox does not outlive the server.
func TestRestartFailsRunningJob(t *testing.T) {
	s := startServer(t, "")
	marker := cleanroom.NewID()
	r := setupRoles(t, s, sleeperScript(marker), false)
	uploadString(t, r.dataOwner, r.id, "data", "x")
	ctx := context.Background()
	job, err := r.analyst.Run(ctx, r.id, "compute")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "job to run", func() bool {
		j, err := r.analyst.Job(ctx, job.ID)
		return err == nil && j.State == cleanroom.JobRunning
	})
	waitFor(t, "the sleeper to run", func() bool { return processRunning(marker) })
	s.kill()
	waitFor(t, "the killed server's sandbox to end", func() bool { return !processRunning(marker) })

	// The killed server left the job's decrypted inputs in its scratch
	// directory; the next server on it removes them, mounts included.
	if left, _ := os.ReadDir(s.Scratch); len(left) == 0 {
		t.Fatal("the killed server left no scratch directory: the check below would prove nothing")
	}
	s2 := startServer(t, s.DataDir, "--scratch", s.Scratch)
	if left, _ := os.ReadDir(s.Scratch); len(left) != 0 {
		t.Errorf("scratch directory after restart: %v, want it empty", left)
	}
	if mounts, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(mounts), s.Scratch) {
		t.Errorf("a mount under the scratch directory outlived the killed server")
	}
	analyst := client.New(s2.URL, r.analyst.Email, r.analyst.Token)
	j, err := analyst.Job(ctx, job.ID)
	if err != nil {
		t.Fatal(err)
	}
	if j.State != cleanroom.JobFailed || !strings.Contains(j.Error, "server stopped while the job was running") {
		t.Fatalf("after restart the job is %s: %q", j.State, j.Error)
	}
}

// A job still queued when the server is killed runs once it is back: a
// restart loses no run an analyst asked for.
func TestRestartRunsQueuedJob(t *testing.T) {
	s := startServer(t, "", "--jobs", "1")
	marker := cleanroom.NewID()
	analyst := s.addUser("analyst@example.com")
	id := publish(t, analyst, &cleanroom.Definition{
		Name: "queue", Owner: analyst.Email,
		Nodes: []cleanroom.Node{
			{Name: "sleeper", Kind: cleanroom.NodePython, Script: sleeperScript(marker)},
			{Name: "quick", Kind: cleanroom.NodePython, Script: `open("/output/done.txt", "w").write("done")`},
		},
		Participants: []cleanroom.Participant{{Email: analyst.Email, AnalystOf: []string{"sleeper", "quick"}}},
	})
	ctx := context.Background()
	if _, err := analyst.Run(ctx, id, "sleeper"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the sleeper to run", func() bool { return processRunning(marker) })
	queued, err := analyst.Run(ctx, id, "quick")
	if err != nil {
		t.Fatal(err)
	}
	if j, err := analyst.Job(ctx, queued.ID); err != nil || j.State != cleanroom.JobQueued {
		t.Fatalf("the second job behind a one-job runner: %+v %v, want it queued", j, err)
	}
	s.kill()
	waitFor(t, "the killed server's sandbox to end", func() bool { return !processRunning(marker) })

	s2 := startServer(t, s.DataDir, "--scratch", s.Scratch, "--jobs", "1")
	again := client.New(s2.URL, analyst.Email, analyst.Token)
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	j, err := again.Wait(wctx, queued.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got := resultFiles(t, again, j)["done.txt"]; got != "done" {
		t.Errorf("the queued job's result after the restart: %q, want done", got)
	}
}

// sleeperScript sleeps for five minutes in a process whose command line
// carries marker, so a test can find exactly its own sandboxed process
// among those of other tests running at the same time.
func sleeperScript(marker string) string {
	return fmt.Sprintf("import os, sys\nos.execv(sys.executable, [sys.executable, '-c', 'import time; time.sleep(300)', %q])\n", marker)
}

// processRunning reports whether any process's command line contains s.
func processRunning(s string) bool {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && bytes.Contains(bytes.ReplaceAll(b, []byte{0}, []byte{' '}), []byte(s)) {
			return true
		}
	}
	return false
}

func TestCancelRunningJob(t *testing.T) {
	s := startServer(t, "")
	marker := cleanroom.NewID()
	r := setupRoles(t, s, sleeperScript(marker), false)
	uploadString(t, r.dataOwner, r.id, "data", "x")
	ctx := context.Background()
	job, err := r.analyst.Run(ctx, r.id, "compute")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "job to run", func() bool {
		j, err := r.analyst.Job(ctx, job.ID)
		return err == nil && j.State == cleanroom.JobRunning
	})
	waitFor(t, "the sleeper to run", func() bool { return processRunning(marker) })
	if err := r.analyst.Cancel(ctx, job.ID); err != nil {
		t.Fatal(err)
	}
	j, err := r.analyst.Wait(ctx, job.ID)
	if err != nil || j.State != cleanroom.JobCancelled {
		t.Fatalf("after cancel: %v %v", j, err)
	}
	wantCode(t, "cancel an ended job", r.analyst.Cancel(ctx, job.ID), cleanroom.ECONFLICT)
	waitFor(t, "the cancelled sandbox to end", func() bool { return !processRunning(marker) })
	// The audit log has the cancel that took, and not the refused one.
	if cancels := audited(t, r.viewer, r.id, cleanroom.AuditJobCancelled); !slices.Equal(cancels, []string{"analyst@example.com compute " + job.ID}) {
		t.Errorf("cancels in the audit log: %q, want the analyst's one", cancels)
	}
}

// With logs off a failed job says how it ended and that logs are disabled;
// with logs on error it carries the exception and the logs are readable.
func TestLogPolicy(t *testing.T) {
	// The secret comes from the dataset, never from the (public) script.
	script := "print('row:', open('/input/data').read())\nraise ValueError('boom')\n"
	ctx := context.Background()
	t.Run("off", func(t *testing.T) {
		s := startServer(t, "")
		r := setupRoles(t, s, script, false)
		uploadString(t, r.dataOwner, r.id, "data", "secret-value")
		job := runJob(t, r.analyst, r.id, "compute")
		if job.State != cleanroom.JobFailed || !strings.Contains(job.Error, "exited with status 1") || !strings.Contains(job.Error, `logs are disabled for node "compute"`) || strings.Contains(job.Error, "boom") {
			t.Fatalf("job error %q", job.Error)
		}
		_, err := r.analyst.Logs(ctx, job.ID)
		wantCode(t, "logs with policy off", err, cleanroom.EFORBIDDEN)
		noPlaintextUnder(t, s.DataDir, "secret-value")
	})
	t.Run("on error", func(t *testing.T) {
		s := startServer(t, "")
		r := setupRoles(t, s, script, true)
		uploadString(t, r.dataOwner, r.id, "data", "secret-value")
		job := runJob(t, r.analyst, r.id, "compute")
		if job.State != cleanroom.JobFailed || !strings.Contains(job.Error, "ValueError: boom") {
			t.Fatalf("job error %q", job.Error)
		}
		logs, err := r.analyst.Logs(ctx, job.ID)
		if err != nil || !strings.Contains(logs, "Traceback") || !strings.Contains(logs, "row: secret-value") {
			t.Fatalf("logs %q, %v", logs, err)
		}
		noPlaintextUnder(t, s.DataDir, "secret-value") // stored encrypted
	})
}

// An upload cut short leaves nothing that can be published.
func TestInterruptedUploadLeavesNothing(t *testing.T) {
	s := startServer(t, "")
	alice := s.addUser("alice@example.com")
	conn, err := net.Dial("tcp", strings.TrimPrefix(s.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "POST /api/v1/blobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nX-Cleanroom-Email: %s\r\nContent-Length: 1000000\r\n\r\n", alice.Token, alice.Email)
	conn.Write(bytes.Repeat([]byte("c"), 5000))
	time.Sleep(200 * time.Millisecond)
	conn.Close()
	waitFor(t, "the interrupted upload to leave no file under blobs/", func() bool {
		left := 0
		filepath.WalkDir(filepath.Join(s.DataDir, "blobs"), func(path string, d os.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				left++
			}
			return nil
		})
		return left == 0
	})
}

func TestDefinitionErrorsOverHTTP(t *testing.T) {
	s := startServer(t, "")
	alice := s.addUser("alice@example.com")
	post := func(body string) (int, string) {
		req, _ := http.NewRequest("POST", s.URL+"/api/v1/dcrs", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+alice.Token)
		req.Header.Set("X-Cleanroom-Email", alice.Email)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var buf bytes.Buffer
		buf.ReadFrom(resp.Body)
		return resp.StatusCode, buf.String()
	}
	status, body := post(`{"name":"x","owner":"alice@example.com","nodes":[{"name":"c","kind":"python","script":"x","dependencies":["ghost"]}],"participants":[]}`)
	if status != 400 || !strings.Contains(body, `"code":"invalid"`) || !strings.Contains(body, `node \"c\": unknown dependency \"ghost\"`) {
		t.Fatalf("%d %s", status, body)
	}
	status, body = post(`{"name":"x","owner":"bob@example.com","nodes":[{"name":"d","kind":"raw"}],"participants":[]}`)
	if status != 403 || !strings.Contains(body, `"code":"forbidden"`) {
		t.Fatalf("%d %s", status, body)
	}
	status, body = post(`{"name":"x","owner":"alice@example.com","nodes":[{"name":"c","kind":"python","script":"` + strings.Repeat("x", 5<<20) + `"}],"participants":[]}`)
	if status != 413 || !strings.Contains(body, `"code":"too_large"`) {
		t.Fatalf("%d %.200s", status, body)
	}
}

// runCmd runs a command and returns its stdout.
func runCmd(name string, args ...string) (string, error) {
	out, err := osexec.Command(name, args...).Output()
	return string(out), err
}

// A relative --scratch works: job directories are mounted by absolute path.
func TestRelativeScratch(t *testing.T) {
	// Job users pass through every parent on their way to the scratch
	// directory: not a t.TempDir, whose parent only root enters.
	dir, err := os.MkdirTemp("", "cleanroom-relative-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	wd, _ := os.Getwd()
	if err := os.Chdir(dir); err != nil {
		t.Fatal(err)
	}
	defer os.Chdir(wd)
	os.Mkdir("scratch", 0o755)
	s := startServer(t, "", "--scratch", "scratch")
	r := setupRoles(t, s, `open("/output/out.txt", "w").write(open("/input/data").read())`, false)
	uploadString(t, r.dataOwner, r.id, "data", "relative")
	if files := resultFiles(t, r.analyst, runJob(t, r.analyst, r.id, "compute")); files["out.txt"] != "relative" {
		t.Fatalf("result %v", files)
	}
}

// At most --jobs computations run at once; the others wait, queued.
func TestBoundedConcurrency(t *testing.T) {
	s := startServer(t, "", "--jobs", "1")
	marker := cleanroom.NewID()
	r := setupRoles(t, s, sleeperScript(marker), false)
	uploadString(t, r.dataOwner, r.id, "data", "x")
	ctx := context.Background()
	first, err := r.analyst.Run(ctx, r.id, "compute")
	if err != nil {
		t.Fatal(err)
	}
	second, err := r.analyst.Run(ctx, r.id, "compute")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a sleeper to run", func() bool { return processRunning(marker) })
	time.Sleep(300 * time.Millisecond) // time for a second worker, were there one
	states := map[cleanroom.JobState]int{}
	for _, id := range []string{first.ID, second.ID} {
		j, err := r.analyst.Job(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		states[j.State]++
	}
	if states[cleanroom.JobRunning] != 1 || states[cleanroom.JobQueued] != 1 {
		t.Fatalf("with --jobs 1: %v, want one running and one queued", states)
	}
	for _, id := range []string{first.ID, second.ID} {
		r.analyst.Cancel(ctx, id)
	}
}

// TestSealedDownloads: a result and logs are sent as the stored
// ciphertext, with the job's key sealed to the key the client sent; the
// plaintext is in no response body, only the client that made the key
// opens it, and a request without a key, or with a malformed one, is
// refused with the fix.
func TestSealedDownloads(t *testing.T) {
	s := startServer(t, "")
	script := "import os\ntext = open('/input/data').read()\nprint('log:', text)\nopen('/output/out.txt', 'w').write(text.upper())\n"
	r := setupRoles(t, s, script, false)
	// Logs on success are on for this node: republish with them.
	def, err := r.owner.DCR(context.Background(), r.id)
	if err != nil {
		t.Fatal(err)
	}
	d := *def.Definition
	d.Name = "sealed"
	for i := range d.Nodes {
		if d.Nodes[i].Name == "compute" {
			d.Nodes[i].EnableLogsOnSuccess = true
		}
	}
	id := publish(t, r.owner, &d)
	uploadString(t, r.dataOwner, id, "data", "secret-value")
	job := runJob(t, r.analyst, id, "compute")
	if job.State != cleanroom.JobSucceeded {
		t.Fatalf("job %s: %s", job.State, job.Error)
	}

	get := func(path string, recipient []byte) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest("GET", s.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+r.analyst.Token)
		req.Header.Set("X-Cleanroom-Email", r.analyst.Email)
		if recipient != nil {
			req.Header.Set("X-Cleanroom-Recipient", base64.StdEncoding.EncodeToString(recipient))
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, body
	}
	mine, _ := crypt.GeneratePrivateKey()
	other, _ := crypt.GeneratePrivateKey()
	bodies := map[string][]byte{}
	fileKeys := map[string][]byte{}
	for _, tc := range []struct {
		name, path, plaintext string
		ad                    []byte
	}{
		{"result", "/api/v1/jobs/" + job.ID + "/result", "SECRET-VALUE", crypt.ResultAD(job.ID)},
		{"logs", "/api/v1/jobs/" + job.ID + "/logs", "log: secret-value", crypt.LogsAD(job.ID)},
	} {
		resp, body := get(tc.path, mine.PublicKey())
		if resp.StatusCode != 200 || bytes.Contains(body, []byte("secret-value")) || bytes.Contains(body, []byte("SECRET-VALUE")) || bytes.HasPrefix(body, []byte("PK\x03\x04")) {
			t.Fatalf("sealed %s: %d, plaintext in the body: %v", tc.name, resp.StatusCode, bytes.Contains(bytes.ToLower(body), []byte("secret-value")))
		}
		sealed, _ := base64.StdEncoding.DecodeString(resp.Header.Get("X-Cleanroom-Sealed-Key"))
		if _, err := other.Open(crypt.DownloadKeyInfo(tc.ad), sealed); err == nil {
			t.Errorf("%s: another key opens the sealed key", tc.name)
		}
		fileKey, err := mine.Open(crypt.DownloadKeyInfo(tc.ad), sealed)
		if err != nil {
			t.Fatalf("%s: the client's key does not open the sealed key: %v", tc.name, err)
		}
		plain, err := crypt.NewFileKeyDecryptReader(bytes.NewReader(body), fileKey)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(plain)
		if err != nil {
			t.Fatalf("%s: decrypting: %v", tc.name, err)
		}
		if tc.name == "logs" && !bytes.Contains(got, []byte(tc.plaintext)) {
			t.Errorf("the logs decrypt to %q", got)
		}
		if tc.name == "result" && unzip(t, got)["out.txt"] != tc.plaintext {
			t.Errorf("the result does not decrypt to a zip holding out.txt = %q", tc.plaintext)
		}
		bodies[tc.name], fileKeys[tc.name] = body, fileKey
	}
	// What is released opens that one ciphertext only: the result's key
	// does not open the logs.
	if r, err := crypt.NewFileKeyDecryptReader(bytes.NewReader(bodies["logs"]), fileKeys["result"]); err == nil {
		if _, err := io.ReadAll(r); err == nil {
			t.Error("the key sent with the result opens the logs")
		}
	}

	// Without a key, or with a malformed one, nothing is sent (there is no
	// plaintext way) and nothing is read, so the audit log has no entry.
	entries, _ := r.analyst.AuditLog(context.Background(), id)
	if resp, body := get("/api/v1/jobs/"+job.ID+"/result", []byte("short")); resp.StatusCode != 400 || !bytes.Contains(body, []byte("32-byte X25519 public key")) {
		t.Errorf("a malformed recipient key: %d %s, want 400 saying what it must be", resp.StatusCode, body)
	}
	for _, path := range []string{"/api/v1/jobs/" + job.ID + "/result", "/api/v1/jobs/" + job.ID + "/logs"} {
		if resp, body := get(path, nil); resp.StatusCode != 400 || !bytes.Contains(body, []byte("X-Cleanroom-Recipient")) {
			t.Errorf("%s without a recipient key: %d %s, want 400 saying to send one", path, resp.StatusCode, body)
		}
	}
	// A download that fails on the way sends no key.
	if err := os.Remove(filepath.Join(s.DataDir, "blobs", cleanroom.JobLogsKey(job.ID))); err != nil {
		t.Fatal(err)
	}
	if resp, body := get("/api/v1/jobs/"+job.ID+"/logs", mine.PublicKey()); resp.StatusCode == 200 || resp.Header.Get("X-Cleanroom-Sealed-Key") != "" {
		t.Errorf("a download whose blob is gone: %d %s, key %q; want an error and no key", resp.StatusCode, body, resp.Header.Get("X-Cleanroom-Sealed-Key"))
	}
	if after, _ := r.analyst.AuditLog(context.Background(), id); len(after) != len(entries) || len(entries) == 0 {
		t.Errorf("refused downloads were audited: %d entries, then %d", len(entries), len(after))
	}
	// The Go client takes this path, and gets the plaintext.
	var zipped bytes.Buffer
	if _, err := r.analyst.Result(context.Background(), job.ID, &zipped); err != nil || unzip(t, zipped.Bytes())["out.txt"] != "SECRET-VALUE" {
		t.Errorf("the Go client's result: %v", err)
	}
}

// TestDeleteResult: the analyst who ran a job deletes its result and logs
// for good (`cleanroom remove-result`): their blobs are gone, downloads say
// so, the audit log has it, and the job stays in the history. No one else
// may, and a table's validation report goes only with its dataset.
func TestDeleteResult(t *testing.T) {
	s := startServer(t, "")
	owner, analyst, other, data := s.addUser("owner@example.com"), s.addUser("analyst@example.com"), s.addUser("other@example.com"), s.addUser("data@example.com")
	id := publish(t, owner, &cleanroom.Definition{
		Name: "delete", Owner: owner.Email,
		Nodes: []cleanroom.Node{
			{Name: "people", Kind: cleanroom.NodeTable, Columns: []cleanroom.Column{{Name: "age", FormatType: cleanroom.FormatInteger}}},
			{Name: "count", Kind: cleanroom.NodePython, Dependencies: []string{"people"}, EnableLogsOnSuccess: true,
				Script: "rows = open('/input/people/dataset.csv').read().split()\nprint('counted', len(rows))\nopen('/output/n.txt', 'w').write(str(len(rows)))\n"},
		},
		Participants: []cleanroom.Participant{
			{Email: data.Email, DataOwnerOf: []string{"people"}},
			{Email: analyst.Email, AnalystOf: []string{"count"}},
			{Email: other.Email, AnalystOf: []string{"count"}},
		},
	})
	ds := uploadString(t, data, id, "people", "34\n17\n")
	ctx := context.Background()
	job := runJob(t, analyst, id, "count")
	if got := resultFiles(t, analyst, job)["n.txt"]; got != "2" {
		t.Fatalf("the result before the deletion: %q", got)
	}
	stored := func(key string) bool {
		_, err := os.Stat(filepath.Join(s.DataDir, "blobs", key))
		return err == nil
	}
	if !stored(cleanroom.JobResultKey(job.ID)) || !stored(cleanroom.JobLogsKey(job.ID)) {
		t.Fatal("the job's result and logs are not where the test looks: it would prove nothing")
	}

	wantCode(t, "another analyst deletes the result", other.DeleteResult(ctx, job.ID), cleanroom.EFORBIDDEN)
	wantCode(t, "the data owner deletes the result", data.DeleteResult(ctx, job.ID), cleanroom.EFORBIDDEN)
	wantCode(t, "the clean room's owner deletes the result", owner.DeleteResult(ctx, job.ID), cleanroom.EFORBIDDEN)
	wantCode(t, "a stranger deletes the result", s.addUser("stranger@example.com").DeleteResult(ctx, job.ID), cleanroom.ENOTFOUND)
	wantCode(t, "the data owner deletes a validation report", data.DeleteResult(ctx, ds.ValidationJob), cleanroom.ECONFLICT)
	if !stored(cleanroom.JobResultKey(job.ID)) {
		t.Fatal("a refused deletion deleted the result")
	}

	out, stderr, err := s.cli(analyst, "remove-result", job.ID)
	if err != nil || !strings.Contains(out, "deleted the result and logs of job "+job.ID) {
		t.Fatalf("cleanroom remove-result: %v\n%s%s", err, out, stderr)
	}
	if stored(cleanroom.JobResultKey(job.ID)) || stored(cleanroom.JobLogsKey(job.ID)) {
		t.Error("the deleted result's or logs' blob is still stored")
	}
	_, err = analyst.Result(ctx, job.ID, io.Discard)
	if cleanroom.ErrorCode(err) != cleanroom.ENOTFOUND || !strings.Contains(err.Error(), "were deleted by analyst@example.com") {
		t.Errorf("downloading a deleted result: %v, want not found, saying it was deleted", err)
	}
	_, err = analyst.Logs(ctx, job.ID)
	wantCode(t, "the logs of a deleted result", err, cleanroom.ENOTFOUND)
	wantCode(t, "deleting it again", analyst.DeleteResult(ctx, job.ID), cleanroom.ECONFLICT)
	jobs, err := analyst.Jobs(ctx, id, "count")
	if err != nil || len(jobs) != 1 || jobs[0].ResultDeletedAt == nil || jobs[0].State != cleanroom.JobSucceeded || jobs[0].ResultSize != 0 {
		t.Errorf("the job history after the deletion: %+v %v; want the job, succeeded, marked deleted", jobs, err)
	}
	if deletions, want := auditEntries(t, owner, id, cleanroom.AuditResultDeleted), []string{analyst.Email + " count " + job.ID}; !slices.Equal(deletions, want) {
		t.Errorf("deletions in the audit log: %q, want %q", deletions, want)
	}
	// The computation runs again, for a new result.
	if got := resultFiles(t, analyst, runJob(t, analyst, id, "count"))["n.txt"]; got != "2" {
		t.Errorf("a new run after the deletion: %q", got)
	}
}

// TestErrorLogIsTheAnalysts: the line of a failed job's logs its error
// quotes is, like the logs, the job's analyst's alone: another analyst of
// the node sees how the job ended, not that line; and it goes with the
// logs when they are deleted.
func TestErrorLogIsTheAnalysts(t *testing.T) {
	s := startServer(t, "")
	r := setupRoles(t, s, "raise ValueError('secret 42')\n", true)
	uploadString(t, r.dataOwner, r.id, "data", "x")
	ctx := context.Background()
	job := runJob(t, r.analyst, r.id, "compute")
	seen := func(c *client.Client) (one, listed string) {
		t.Helper()
		j, err := c.Job(ctx, job.ID)
		if err != nil {
			t.Fatal(err)
		}
		jobs, err := c.Jobs(ctx, r.id, "compute")
		if err != nil || len(jobs) != 1 {
			t.Fatalf("jobs: %v %v", jobs, err)
		}
		return j.Error, jobs[0].Error
	}
	if one, listed := seen(r.analyst); !strings.Contains(one, "ValueError: secret 42") || one != listed {
		t.Errorf("the job's analyst sees %q and %q, want the error with its log line", one, listed)
	}
	one, listed := seen(r.analyst2)
	for _, msg := range []string{one, listed} {
		if strings.Contains(msg, "secret") || !strings.Contains(msg, "script exited with status 1") {
			t.Errorf("another analyst sees %q: want how the job ended, not its log line", msg)
		}
	}
	if err := r.analyst.DeleteResult(ctx, job.ID); err != nil {
		t.Fatal(err)
	}
	if one, _ := seen(r.analyst); strings.Contains(one, "secret") || !strings.Contains(one, "script exited with status 1") {
		t.Errorf("after the logs were deleted the analyst sees %q: want no log line", one)
	}
}
