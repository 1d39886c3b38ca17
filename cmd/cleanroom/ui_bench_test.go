package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkBrowserUpload uploads the same file through the web UI in
// headless Chromium (encrypted in the page, ui/e2e/bench.mjs) and through
// `cleanroom upload`, to the same server, and reports both throughputs,
// their ratio (target: at least 0.5) and the page's JavaScript heap before,
// at its peak during, and after the upload (it must stay flat), with the
// resident memory of all the browser's processes beside it, and the CPU
// time each client and the server spent per upload.
// CLEANROOM_BENCH_MIB sets the file size (default 1024).
func BenchmarkBrowserUpload(b *testing.B) {
	needBrowser(b)
	mib := 1024
	if v, err := strconv.Atoi(os.Getenv("CLEANROOM_BENCH_MIB")); err == nil {
		mib = v
	}
	size := int64(mib) << 20
	path := filepath.Join(b.TempDir(), "data.bin")
	f, _ := os.Create(path)
	io.Copy(f, io.LimitReader(rand.NewChaCha8([32]byte{}), size))
	f.Close()

	s := startServer(b, "")
	needUI(b, s.URL)
	owner, id := rawNodeRoom(b, s, "upload")
	blobs := filepath.Join(s.DataDir, "blobs", "datasets")

	// Each upload returns its time and the CPU time its client spent.
	uploadCLI := func() (took, cpu time.Duration) {
		cmd := exec.Command(binPath, "upload", "--dcr", id, "--node", "data", path)
		cmd.Env = append(os.Environ(), "CLEANROOM_URL="+s.URL, "CLEANROOM_EMAIL="+owner.Email, "CLEANROOM_TOKEN="+owner.Token)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		start := time.Now()
		if err := cmd.Run(); err != nil {
			b.Fatalf("cli upload: %v\n%s", err, stderr.String())
		}
		return time.Since(start), cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	type browserRun struct {
		Seconds    float64 `json:"seconds"`
		CPUSeconds float64 `json:"cpu_seconds"`
		ServerCPU  float64 `json:"server_cpu_seconds"`
		HeapBefore int64   `json:"heap_before"`
		HeapPeak   int64   `json:"heap_peak"`
		HeapAfter  int64   `json:"heap_after"`
		RSSBefore  int64   `json:"rss_before"`
		RSSPeak    int64   `json:"rss_peak"`
		RSSAfter   int64   `json:"rss_after"`
	}
	uploadBrowser := func() browserRun {
		owner.RemoveDataset(context.Background(), id, "data")
		cmd := exec.Command("node", "e2e/bench.mjs")
		cmd.Dir = uiDir
		cmd.Env = append(os.Environ(), "CHROMIUM="+chromiumPath(), "CLEANROOM_URL="+s.URL, "EMAIL="+owner.Email, "TOKEN="+owner.Token, "DCR="+id, "NODE=data", "FILE="+path, "SERVER_PID="+strconv.Itoa(s.cmd.Process.Pid))
		var out, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &stderr
		if err := cmd.Run(); err != nil {
			b.Fatalf("browser upload: %v\n%s%s", err, out.String(), stderr.String())
		}
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		b.Logf("browser upload: %s", lines[len(lines)-1])
		var r browserRun
		if err := json.Unmarshal([]byte(lines[len(lines)-1]), &r); err != nil {
			b.Fatalf("browser upload printed %q: %v", out.String(), err)
		}
		return r
	}

	// CPU time, client and server, tells where the difference comes from:
	// on a machine with few cores the two share them.
	var cli, web, cliCPU, webCPU, cliServerCPU, webServerCPU time.Duration
	var last browserRun
	runCLI := func() {
		server := s.cpuTime(b)
		took, cpu := uploadCLI()
		cli, cliCPU, cliServerCPU = cli+took, cliCPU+cpu, cliServerCPU+s.cpuTime(b)-server
	}
	runBrowser := func() {
		last = uploadBrowser()
		web += time.Duration(last.Seconds * float64(time.Second))
		webCPU += time.Duration(last.CPUSeconds * float64(time.Second))
		webServerCPU += time.Duration(last.ServerCPU * float64(time.Second))
	}
	for i := range b.N {
		// Alternate the order: an upload pays for the disk flush of the one before.
		if i%2 == 0 {
			runCLI()
			os.RemoveAll(blobs)
			runBrowser()
		} else {
			runBrowser()
			os.RemoveAll(blobs)
			runCLI()
		}
		os.RemoveAll(blobs)
	}
	mbps := func(d time.Duration) float64 { return float64(size) * float64(b.N) / d.Seconds() / 1e6 }
	b.ReportMetric(mbps(cli), "cli-MB/s")
	b.ReportMetric(mbps(web), "browser-MB/s")
	b.ReportMetric(mbps(web)/mbps(cli), "browser/cli")
	perUpload := func(d time.Duration) float64 { return d.Seconds() / float64(b.N) }
	b.ReportMetric(perUpload(cliCPU), "cli-cpu-s")
	b.ReportMetric(perUpload(cliServerCPU), "cli-server-cpu-s")
	b.ReportMetric(perUpload(webCPU), "browser-cpu-s")
	b.ReportMetric(perUpload(webServerCPU), "browser-server-cpu-s")
	b.ReportMetric(float64(last.HeapBefore)/(1<<20), "heap-before-MiB")
	b.ReportMetric(float64(last.HeapPeak)/(1<<20), "heap-peak-MiB")
	b.ReportMetric(float64(last.HeapAfter)/(1<<20), "heap-after-MiB")
	b.ReportMetric(float64(last.RSSBefore)/(1<<20), "browser-rss-before-MiB")
	b.ReportMetric(float64(last.RSSPeak)/(1<<20), "browser-rss-peak-MiB")
	b.ReportMetric(float64(last.RSSAfter)/(1<<20), "browser-rss-after-MiB")
}
