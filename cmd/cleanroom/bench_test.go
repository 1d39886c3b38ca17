package main

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cleanroom-dev/cleanroom"
)

// BenchmarkTrivialRun measures a whole run of a script that does nothing
// (queue, sandbox, zip, encrypt, download) against bare python3 running
// the same script, in the same process. The difference is cleanroom's
// end-to-end overhead.
func BenchmarkTrivialRun(b *testing.B) {
	s := startServer(b, "")
	owner := s.addUser("owner@example.com")
	id := publish(b, owner, &cleanroom.Definition{
		Name: "trivial", Owner: "owner@example.com",
		Nodes:        []cleanroom.Node{{Name: "noop", Kind: cleanroom.NodePython, Script: "pass\n"}},
		Participants: []cleanroom.Participant{{Email: "owner@example.com", AnalystOf: []string{"noop"}}},
	})
	script := filepath.Join(b.TempDir(), "noop.py")
	os.WriteFile(script, []byte("pass\n"), 0o600)
	ctx := context.Background()

	b.Run("bare-python3", func(b *testing.B) {
		for range b.N {
			if err := exec.Command("/usr/bin/python3", script).Run(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cleanroom", func(b *testing.B) {
		for range b.N {
			job, err := owner.Run(ctx, id, "noop")
			if err == nil {
				job, err = owner.Wait(ctx, job.ID)
			}
			if err != nil || job.State != cleanroom.JobSucceeded {
				b.Fatalf("run: %v %v", job, err)
			}
			if _, err := owner.Result(ctx, job.ID, io.Discard); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkUpload uploads the same file to the same server as a plain HTTP
// upload (the baseline: no encryption, the kernel sends the file) and
// through `cleanroom upload` (encrypt, hash, upload, seal and publish),
// alternating the two in every iteration so both see the same machine. It
// reports both throughputs, their ratio, and the peak memory of the CLI
// and the server, which must stay flat whatever the file size.
// CLEANROOM_BENCH_MIB sets the file size (default 256).
func BenchmarkUpload(b *testing.B) {
	mib := 256
	if v, err := strconv.Atoi(os.Getenv("CLEANROOM_BENCH_MIB")); err == nil {
		mib = v
	}
	size := int64(mib) << 20
	path := filepath.Join(b.TempDir(), "data.bin")
	f, _ := os.Create(path)
	io.Copy(f, io.LimitReader(rand.NewChaCha8([32]byte{}), size))
	f.Close()

	s := startServer(b, "")
	owner := s.addUser("owner@example.com")
	id := publish(b, owner, &cleanroom.Definition{
		Name: "upload", Owner: "owner@example.com",
		Nodes:        []cleanroom.Node{{Name: "data", Kind: cleanroom.NodeRaw}},
		Participants: []cleanroom.Participant{{Email: "owner@example.com", DataOwnerOf: []string{"data"}}},
	})

	uploadPlain := func() {
		f, _ := os.Open(path)
		defer f.Close()
		req, _ := http.NewRequest("POST", s.URL+"/api/v1/blobs", f)
		req.ContentLength = size
		req.Header.Set("Authorization", "Bearer "+owner.Token)
		req.Header.Set("X-Cleanroom-Email", owner.Email)
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != http.StatusCreated {
			b.Fatalf("plain upload: %v %v", resp, err)
		}
		resp.Body.Close()
	}
	var cliRSS int64
	uploadCLI := func() {
		cmd := exec.Command(binPath, "upload", "--dcr", id, "--node", "data", path)
		cmd.Env = append(os.Environ(), "CLEANROOM_URL="+s.URL, "CLEANROOM_EMAIL="+owner.Email, "CLEANROOM_TOKEN="+owner.Token)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			b.Fatalf("cli upload: %v\n%s", err, stderr.String())
		}
		cliRSS = max(cliRSS, cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss)
	}
	// Each upload starts from an empty blob directory, so neither pays for
	// replacing or piling up the other's files.
	blobs := filepath.Join(s.DataDir, "blobs", "datasets")
	timed := func(f func()) time.Duration {
		start := time.Now()
		f()
		d := time.Since(start)
		os.RemoveAll(blobs)
		return d
	}
	var plain, cli time.Duration
	b.SetBytes(2 * size)
	for i := range b.N {
		// Alternate the order: an upload pays for the disk flush of the one before.
		if i%2 == 0 {
			plain += timed(uploadPlain)
			cli += timed(uploadCLI)
		} else {
			cli += timed(uploadCLI)
			plain += timed(uploadPlain)
		}
	}
	mbps := func(d time.Duration) float64 { return float64(size) * float64(b.N) / d.Seconds() / 1e6 }
	b.ReportMetric(mbps(plain), "plain-MB/s")
	b.ReportMetric(mbps(cli), "cli-MB/s")
	b.ReportMetric(mbps(cli)/mbps(plain), "cli/plain")
	b.ReportMetric(float64(cliRSS)/1024, "cli-peak-MiB")
	b.ReportMetric(float64(s.peakRSS())/1024, "server-peak-MiB")
}

// peakRSS returns the server's peak resident memory in KiB.
func (s *testServer) peakRSS() int64 {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(s.cmd.Process.Pid) + "/status")
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

// cpuTime returns the CPU time the server has spent so far, user and
// system, all its threads.
func (s *testServer) cpuTime(tb testing.TB) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(s.cmd.Process.Pid) + "/stat")
	if err != nil {
		tb.Fatal(err)
	}
	// The fields after the command name, which is in parentheses and may hold spaces.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		tb.Fatalf("server /proc stat: %q", b)
	}
	const clockTicks = 100 // USER_HZ, the unit of utime and stime
	return time.Duration(utime+stime) * time.Second / clockTicks
}
