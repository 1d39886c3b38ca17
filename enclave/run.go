package enclave

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/cleanroom-dev/cleanroom"
	"github.com/cleanroom-dev/cleanroom/crypt"
	"github.com/cleanroom-dev/cleanroom/sandbox"
	"github.com/cleanroom-dev/cleanroom/worker"
)

// scriptDir holds a computation's main script in the sandbox, beside (not
// inside) /input so that /input holds only what the contract says.
const scriptDir = "/cleanroom"

// jobFailure is a failure to report to the analyst as the job's error.
type jobFailure struct{ msg string }

func (f *jobFailure) Error() string { return f.msg }

func failf(format string, args ...any) error { return &jobFailure{fmt.Sprintf(format, args...)} }

// runJob runs one claimed job to its end and records the outcome. Every
// plaintext byte it makes lives under one scratch directory that is removed
// before it returns, whatever happened.
func (e *Enclave) runJob(parent context.Context, job *cleanroom.Job) {
	ctx, stop := context.WithCancelCause(parent)
	defer stop(nil)
	e.mu.Lock()
	e.running[job.ID] = stop
	e.mu.Unlock()

	update := e.execute(ctx, job)
	// From here a cancel finds the job no longer running and waits for
	// its outcome instead of turning a result already stored into "cancelled".
	e.mu.Lock()
	delete(e.running, job.ID)
	e.mu.Unlock()
	if cause := context.Cause(ctx); errors.Is(cause, errCancelled) {
		update = cleanroom.JobUpdate{State: cleanroom.JobCancelled, Error: "cancelled while running"}
	} else if parent.Err() != nil {
		update = cleanroom.JobUpdate{State: cleanroom.JobFailed, Error: "the server stopped while the job was running; run it again"}
	}
	// Record the outcome even when the server is shutting down.
	if err := e.Store.FinishJob(context.WithoutCancel(ctx), job.ID, update, e.Now()); err != nil {
		e.Logger.Error("record job outcome", "job", job.ID, "err", err)
	}
	e.announceJobEnded()
	e.Logger.Info("job ended", "job", job.ID, "dcr", job.DCRID, "node", job.Node, "state", update.State)
}

// jobError is err as the job's error: a limit the job went over is named
// as the job's.
func jobError(err error) string {
	var le *sandbox.LimitError
	if errors.As(err, &le) {
		return fmt.Sprintf("job exceeded its %s limit of %s", le.Limit, le.Max)
	}
	return err.Error()
}

// failed is the outcome of a job that err ended: a jobFailure is the
// analyst's to read; anything else is the server's fault and stays in its log.
func (e *Enclave) failed(job *cleanroom.Job, err error) cleanroom.JobUpdate {
	var f *jobFailure
	if errors.As(err, &f) {
		return cleanroom.JobUpdate{State: cleanroom.JobFailed, Error: f.msg}
	}
	e.Logger.Error("job failed inside the enclave", "job", job.ID, "err", err)
	return cleanroom.JobUpdate{State: cleanroom.JobFailed, Error: "internal error in the enclave; the server log has the details"}
}

func (e *Enclave) execute(ctx context.Context, job *cleanroom.Job) cleanroom.JobUpdate {
	dcr, err := e.Store.FindDCR(ctx, job.DCRID)
	if err != nil {
		return e.failed(job, err)
	}
	target := dcr.Definition.Node(job.Node)
	if target == nil {
		return e.failed(job, failf("node %q does not exist in this clean room", job.Node))
	}

	user, err := e.takeSlot(ctx)
	if err != nil {
		return e.failed(job, err)
	}
	defer func() { e.slots <- user }()
	w, err := e.newWorkspace(user)
	if err != nil {
		return e.failed(job, err)
	}
	defer func() {
		if err := w.remove(); err != nil {
			e.Logger.Error("remove job scratch directory", "job", job.ID, "err", err)
		}
	}()

	if target.Kind == cleanroom.NodeTable {
		return e.runValidation(ctx, job, dcr.ID, target, w)
	}
	compute, data, err := dcr.Definition.Plan(job.Node)
	if err != nil {
		return e.failed(job, failf("%s", cleanroom.ErrorMessage(err)))
	}
	for _, n := range data {
		var err error
		if n.Kind == cleanroom.NodeTable {
			// Only checked rows of a table, hashed columns hashed: never the upload itself.
			err = e.loadTable(ctx, w, dcr.ID, n)
		} else {
			err = e.decryptDataset(ctx, dcr.ID, n, w.dataPath(n.Name))
		}
		if err != nil {
			return e.failed(job, err)
		}
	}

	var logs *tailBuffer
	var res sandbox.Result
	for _, n := range compute {
		logs = newTailBuffer(e.MaxLogSize)
		var err error
		res, err = e.runNode(ctx, w, dcr.Definition, n, logs)
		if w.warn != "" {
			e.Logger.Warn(w.warn)
			w.warn = ""
		}
		if err != nil {
			return e.failed(job, err)
		}
		if ctx.Err() != nil {
			return e.failed(job, ctx.Err())
		}
		runErr := res.Err()
		if n.Kind == cleanroom.NodeSQL && res.ExitCode == exitTooFewRows {
			// The privacy floor is reported whatever the log policy: it
			// says nothing of the rows.
			return e.failed(job, failf("the result of %q has fewer rows than its minimum_rows_count of %d; nothing is released", n.Name, *n.MinimumRowsCount))
		}
		if runErr == nil || !isLimit(runErr) {
			// A full /output fails the script's writes, whatever it
			// then does: the limit is the cause.
			if err := e.checkOutput(w, n.Name); err != nil {
				runErr = err
			}
		}
		if runErr != nil && n.Name != job.Node {
			// Upstream logs belong to that node's analysts, not this one's.
			return e.failed(job, failf("computation %q, which %q depends on, failed: %s", n.Name, job.Node, jobError(runErr)))
		}
		if runErr != nil {
			return e.seal(ctx, job, target, w, runErr, logs, e.cpuNote(res))
		}
	}
	return e.seal(ctx, job, target, w, nil, logs, e.cpuNote(res))
}

// cpuNote says, for a run the CPU limit held back for a second or more
// and a tenth of its time or more, that it did: 0.5 CPUs slow a script
// that wants two fourfold, and the analyst should know why.
func (e *Enclave) cpuNote(res sandbox.Result) string {
	if res.CPUThrottled < time.Second || res.CPUThrottled < res.Duration/10 {
		return ""
	}
	return fmt.Sprintf("the CPU limit of %g CPUs held it back for %s, summed over the CPUs, in %s (the server's operator sets the limit with `cleanroom serve --job-cpus`)",
		e.JobCPUs, res.CPUThrottled.Round(time.Millisecond), res.Duration.Round(time.Millisecond))
}

func isLimit(err error) bool {
	var le *sandbox.LimitError
	return errors.As(err, &le)
}

// decryptDataset writes the plaintext of a data node's dataset to dst; a
// data node without a dataset is an empty file unless it is required.
func (e *Enclave) decryptDataset(ctx context.Context, dcrID string, n *cleanroom.Node, dst string) error {
	ds, err := e.Store.FindDataset(ctx, dcrID, n.Name)
	if cleanroom.ErrorCode(err) == cleanroom.ENOTFOUND {
		if n.IsRequired {
			return failf("data node %q is required but has no dataset; its data owner must publish one first", n.Name)
		}
		return writeFile(dst, strings.NewReader(""))
	} else if err != nil {
		return err
	}
	key, err := e.key.OpenDatasetKey(dcrID, n.Name, ds.ManifestHash, ds.SealedKey)
	if err != nil {
		return failf("the dataset key of node %q does not open for this clean room, node and file; its data owner must publish the dataset again", n.Name)
	}
	err = e.decryptBlob(ctx, cleanroom.BlobKey(ds.ManifestHash), key, crypt.DatasetAD, dst)
	if cleanroom.ErrorCode(err) == cleanroom.ENOTFOUND {
		return failf("the dataset of node %q is missing from storage; its data owner must upload it again", n.Name)
	} else if errors.Is(err, crypt.ErrIntegrity) {
		return failf("integrity check failed for the dataset of node %q: the stored ciphertext was modified or truncated; its data owner must upload it again", n.Name)
	}
	return err
}

// decryptBlob writes the plaintext of a stored ciphertext to a new file
// dst. A tampered or truncated ciphertext gives an error wrapping
// crypt.ErrIntegrity; a missing one ENOTFOUND.
func (e *Enclave) decryptBlob(ctx context.Context, blobKey string, key, ad []byte, dst string) error {
	rc, err := e.Blobs.Open(ctx, blobKey)
	if err != nil {
		return err
	}
	defer rc.Close()
	pr, err := crypt.NewDecryptReader(rc, key, ad)
	if err != nil {
		return err
	}
	return writeFile(dst, pr)
}

func writeFile(dst string, r io.Reader) error {
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// exitTooFewRows is cleanroom-worker's exit status for a SQL result below
// its minimum rows count.
const exitTooFewRows = 3

// pythonImage and rImage name the worker images in Enclave.Images.
const (
	pythonImage = "python"
	rImage      = "r"
)

// kitMount mounts the kit, where the enclave has one.
func (e *Enclave) kitMount() []sandbox.Mount {
	if e.Kit == "" {
		return nil
	}
	return []sandbox.Mount{{Host: e.Kit, Sandbox: worker.KitMount}}
}

// runNode lays out /input for one computation and runs it. A raw
// dependency is hard-linked into /input; a table (validated) and the
// /output of a computation it depends on are mounted there read-only.
func (e *Enclave) runNode(ctx context.Context, w *workspace, d *cleanroom.Definition, n *cleanroom.Node, logs io.Writer) (sandbox.Result, error) {
	input := w.inputPath(n.Name)
	if err := w.mkdir(input); err != nil {
		return sandbox.Result{}, err
	}
	if err := w.mkdir(filepath.Join(input, "code")); err != nil {
		return sandbox.Result{}, err
	}
	mounts := []sandbox.Mount{{Host: input, Sandbox: "/input"}}
	for _, dep := range n.Dependencies {
		switch kind := d.Node(dep).Kind; {
		case kind == cleanroom.NodeRaw:
			if err := w.linkTree(w.dataPath(dep), filepath.Join(input, dep)); err != nil {
				return sandbox.Result{}, err
			}
		default:
			src := w.outputPath(dep)
			if kind == cleanroom.NodeTable {
				src = w.tablePath(dep)
			}
			if err := w.mkdir(filepath.Join(input, dep)); err != nil {
				return sandbox.Result{}, err
			}
			mounts = append(mounts, sandbox.Mount{Host: src, Sandbox: "/input/" + dep})
		}
	}
	for _, f := range n.Files {
		if err := w.writeFile(filepath.Join(input, "code", f.Name), f.Content); err != nil {
			return sandbox.Result{}, err
		}
	}
	script := w.scriptPath(n.Name)
	if err := w.mkdir(script); err != nil {
		return sandbox.Result{}, err
	}
	command, image := e.command(n)
	if err := w.writeFile(filepath.Join(script, scriptFile[n.Kind]), n.Script); err != nil {
		return sandbox.Result{}, err
	}
	output := w.outputPath(n.Name)
	limits := sandbox.Limits{Memory: e.JobMemory, Processes: e.JobProcesses, CPUs: e.JobCPUs}
	sized, err := w.makeOutput(output, e.JobOutputSize, e.JobOutputFiles)
	if err != nil {
		return sandbox.Result{}, err
	}
	if !sized {
		limits.FileSize = e.JobOutputSize
	}
	mounts = append(mounts,
		sandbox.Mount{Host: output, Sandbox: "/output", Writable: true},
		sandbox.Mount{Host: script, Sandbox: scriptDir})
	return e.Sandbox.Run(ctx, sandbox.Spec{
		Command: command,
		Mounts:  append(mounts, e.kitMount()...),
		Stdout:  logs,
		Stderr:  logs,
		Timeout: e.JobTimeout,
		Limits:  limits,
		User:    w.user,
		Root:    e.Images[image],
	})
}

// scriptFile is the name of a computation's script in scriptDir.
var scriptFile = map[cleanroom.NodeKind]string{
	cleanroom.NodePython: "main.py",
	cleanroom.NodeSQL:    "main.sql",
	cleanroom.NodeR:      "main.R",
}

// command returns what runs computation n and the worker image it runs on.
func (e *Enclave) command(n *cleanroom.Node) ([]string, string) {
	switch n.Kind {
	case cleanroom.NodeSQL:
		cmd := []string{worker.KitWorker, "sql", "--query", scriptDir + "/main.sql", "--output", "/output"}
		if n.MinimumRowsCount != nil {
			cmd = append(cmd, "--min-rows", strconv.FormatInt(*n.MinimumRowsCount, 10))
		}
		for _, dep := range n.Dependencies {
			cmd = append(cmd, dep+"=/input/"+dep)
		}
		return cmd, pythonImage
	case cleanroom.NodeR:
		// source() with the script's source kept, rather than Rscript
		// main.R, so that an error names its line; print.eval prints what
		// a top-level expression shows, as Rscript would.
		return []string{"/usr/bin/Rscript", "-e", `options(show.error.locations = TRUE); source("` + scriptDir + `/main.R", keep.source = TRUE, print.eval = TRUE)`}, rImage
	}
	return []string{e.Python, scriptDir + "/main.py"}, pythonImage
}

// seal stores the outcome of the target computation: its zip and, as the
// node's log policy allows, its logs, both encrypted under a fresh key
// sealed to the enclave. cpuNote, if not empty, says the CPU limit slowed
// it: a warning of a successful run, part of the error of one that ran
// out of time.
func (e *Enclave) seal(ctx context.Context, job *cleanroom.Job, n *cleanroom.Node, w *workspace, runErr error, logs *tailBuffer, cpuNote string) cleanroom.JobUpdate {
	keepLogs := (runErr == nil && n.EnableLogsOnSuccess) || (runErr != nil && n.EnableLogsOnError)
	u := cleanroom.JobUpdate{State: cleanroom.JobSucceeded}
	var warnings []string
	if runErr != nil {
		u.State = cleanroom.JobFailed
		u.Error = jobError(runErr)
		var le *sandbox.LimitError
		if cpuNote != "" && errors.As(runErr, &le) && le.Limit == "time" {
			u.Error += "; " + cpuNote
		}
		if keepLogs {
			u.ErrorLog = logs.ErrorLine(n.Kind)
		} else {
			u.Error += fmt.Sprintf("; logs are disabled for node %q (enable_logs_on_error is off)", n.Name)
		}
	} else if cpuNote != "" {
		warnings = append(warnings, fmt.Sprintf("computation %q ran slower than it could: %s", n.Name, cpuNote))
	}

	fail := func(err error) cleanroom.JobUpdate {
		e.Logger.Error("store job outcome", "job", job.ID, "err", err)
		return cleanroom.JobUpdate{State: cleanroom.JobFailed, Error: "internal error while storing the result; the server log has the details"}
	}
	if runErr != nil && !keepLogs {
		return u
	}
	key, err := e.newResultKey(job, &u)
	if err != nil {
		return fail(err)
	}
	if keepLogs {
		if err := e.storeEncrypted(ctx, cleanroom.JobLogsKey(job.ID), key, crypt.LogsAD(job.ID), func(w io.Writer) error {
			_, err := w.Write(logs.Bytes())
			return err
		}); err != nil {
			return fail(err)
		}
		u.HasLogs = true
	}
	if runErr != nil {
		return u
	}
	var size int64
	err = e.storeEncrypted(ctx, cleanroom.JobResultKey(job.ID), key, crypt.ResultAD(job.ID), func(dst io.Writer) error {
		var err error
		var skipped []string
		size, skipped, err = writeZip(dst, w.outputPath(n.Name), e.JobOutputSize, e.JobOutputFiles)
		u.Warnings = append(warnings, skipped...)
		return err
	})
	if isLimit(err) {
		return cleanroom.JobUpdate{State: cleanroom.JobFailed, Error: jobError(err)}
	} else if err != nil {
		return fail(err)
	}
	u.ResultSize = size
	return u
}

// newResultKey makes the key a job's result and logs are stored under and
// records it in u, sealed to the enclave for this job only.
func (e *Enclave) newResultKey(job *cleanroom.Job, u *cleanroom.JobUpdate) ([]byte, error) {
	key, err := crypt.NewKey()
	if err != nil {
		return nil, err
	}
	u.SealedKey, err = crypt.Seal(e.key.PublicKey(), crypt.ResultKeyInfo(job.ID), key)
	return key, err
}

func (e *Enclave) storeEncrypted(ctx context.Context, blobKey string, key, ad []byte, write func(io.Writer) error) error {
	bw, err := e.Blobs.Create(ctx)
	if err != nil {
		return err
	}
	defer bw.Abort()
	ew, err := crypt.NewEncryptWriter(bw, key, ad)
	if err != nil {
		return err
	}
	if err := write(ew); err != nil {
		return err
	}
	if err := ew.Close(); err != nil {
		return err
	}
	return bw.Commit(blobKey)
}

// tailBuffer keeps the last max bytes written to it: a traceback is at the end.
type tailBuffer struct {
	max       int
	buf       []byte
	truncated bool
}

func newTailBuffer(max int) *tailBuffer { return &tailBuffer{max: max} }

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	// Trim only when twice over, so a flood of small writes costs amortized O(1) each.
	if len(t.buf) > 2*t.max {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.max:]...)
		t.truncated = true
	}
	return len(p), nil
}

// Bytes returns the kept logs, marked when their beginning was cut.
func (t *tailBuffer) Bytes() []byte {
	b := t.buf
	if len(b) > t.max {
		b, t.truncated = b[len(b)-t.max:], true
	}
	if t.truncated {
		return append([]byte(fmt.Sprintf("[logs truncated: only the last %s are kept]\n", cleanroom.FormatBytes(int64(t.max)))), b...)
	}
	return b
}

// workerErrorPrefix starts the line cmd/cleanroom-worker reports an error on.
const workerErrorPrefix = "cleanroom-worker: "

// sourceWrapper is how R names our source() call in a parse error:
// `Error in source("/cleanroom/main.R", ...) : /cleanroom/main.R:4:0: ...`.
var sourceWrapper = regexp.MustCompile(`^Error in source\(.*\) :\s*`)

// ErrorLine returns the line of the logs that says what went wrong in a
// computation of kind: for R, when it halted on an error, that error (with
// the next line when R wrapped the message there, and without our
// source() call); for SQL the worker's error, above DuckDB's picture of
// where in the query; else the last non-empty line, where Python puts the
// exception.
func (t *tailBuffer) ErrorLine(kind cleanroom.NodeKind) string {
	lines := strings.Split(strings.TrimSpace(string(t.buf)), "\n")
	last := strings.TrimSpace(lines[len(lines)-1])
	switch {
	case kind == cleanroom.NodeSQL:
		for i := len(lines) - 1; i >= 0; i-- {
			if strings.HasPrefix(lines[i], workerErrorPrefix) {
				last = strings.TrimPrefix(strings.TrimSpace(lines[i]), workerErrorPrefix)
				break
			}
		}
	case kind == cleanroom.NodeR && last == "Execution halted":
		// Only the error R halted on: one a script caught with try(), or
		// its own "Error rate: 0.1", comes before other lines.
		for i := len(lines) - 2; i >= 0; i-- {
			if strings.HasPrefix(lines[i], "Error") {
				last = strings.TrimSpace(lines[i])
				if strings.HasSuffix(last, ":") && i+1 < len(lines)-1 {
					last += " " + strings.TrimSpace(lines[i+1])
				}
				last = sourceWrapper.ReplaceAllString(last, "Error: ")
				break
			}
		}
	}
	if len(last) > 500 {
		last = last[:500] + "..."
	}
	return last
}
