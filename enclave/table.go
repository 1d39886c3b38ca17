package enclave

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/cleanroom-dev/cleanroom"
	"github.com/cleanroom-dev/cleanroom/crypt"
	"github.com/cleanroom-dev/cleanroom/sandbox"
	"github.com/cleanroom-dev/cleanroom/worker"
	"github.com/cleanroom-dev/cleanroom/worker/table"
)

// maxReportSize bounds the validation report read back from the sandbox.
const maxReportSize = 4 << 20

// validateTable checks the decrypted upload of a table node against its
// schema inside the sandbox, the only place its rows are read, and leaves
// the rows computations see (hashed columns hashed) with schema.json in
// w.tablePath. An invalid table leaves no rows there.
func (e *Enclave) validateTable(ctx context.Context, w *workspace, n *cleanroom.Node) (*table.Report, error) {
	base := filepath.Join(w.dir, "validate", n.Name)
	input, script, out := filepath.Join(base, "input"), filepath.Join(base, "script"), w.tablePath(n.Name)
	for _, dir := range []string{base, input, script} {
		if err := w.mkdir(dir); err != nil {
			return nil, err
		}
	}
	if err := w.linkTree(w.dataPath(n.Name), filepath.Join(input, "dataset.csv")); err != nil {
		return nil, err
	}
	schema, err := json.Marshal(n.Schema())
	if err != nil {
		return nil, err
	}
	if err := w.writeFile(filepath.Join(script, "schema.json"), string(schema)); err != nil {
		return nil, err
	}
	if err := w.makeWorkDir(out); err != nil {
		return nil, err
	}
	logs := newTailBuffer(64 << 10)
	res, err := e.Sandbox.Run(ctx, sandbox.Spec{
		Command: []string{worker.KitWorker, "validate-table", "--schema", scriptDir + "/schema.json", "--output", "/output", "/input/dataset.csv"},
		Mounts: append([]sandbox.Mount{
			{Host: input, Sandbox: "/input"},
			{Host: out, Sandbox: "/output", Writable: true},
			{Host: script, Sandbox: scriptDir},
		}, e.kitMount()...),
		Stdout:  logs,
		Stderr:  logs,
		Timeout: e.JobTimeout,
		Limits:  sandbox.Limits{Memory: e.JobMemory, Processes: e.JobProcesses, CPUs: e.JobCPUs},
		User:    w.user,
		Root:    e.Images[pythonImage],
	})
	if err != nil {
		return nil, err
	}
	if runErr := res.Err(); runErr != nil {
		// The validator prints no row of the table: its own errors only.
		return nil, failf("validating table %q failed: %s: %s", n.Name, jobError(runErr), logs.ErrorLine(n.Kind))
	}
	rep, err := readReport(filepath.Join(out, "report.json"))
	if err != nil {
		return nil, fmt.Errorf("table %s: %w", n.Name, err)
	}
	return rep, nil
}

// readReport reads and removes the validation report the validator wrote,
// so that it never reaches a computation.
func readReport(path string) (*table.Report, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|noFollow, 0)
	if err != nil {
		return nil, fmt.Errorf("validation report: %w", err)
	}
	defer os.Remove(path)
	defer f.Close()
	var rep table.Report
	if err := json.NewDecoder(io.LimitReader(f, maxReportSize)).Decode(&rep); err != nil {
		return nil, fmt.Errorf("validation report: %w", err)
	}
	return &rep, nil
}

// invalidTable is the error of a computation whose table input failed
// validation. It names lines and columns but never values: the analyst
// may not see the rows.
func invalidTable(node string, rep *table.Report) error {
	msg := fmt.Sprintf("table %q failed validation with %d problem(s)", node, rep.ErrorCount)
	if len(rep.Errors) > 0 {
		first := rep.Errors[0]
		msg += fmt.Sprintf(", the first at line %d", first.Line)
		if first.Column != "" {
			msg += fmt.Sprintf(", column %q", first.Column)
		}
		msg += ": " + first.Message
	}
	if rep.Hint != "" {
		msg += "; " + rep.Hint
	}
	return failf("%s; its data owner must publish a corrected file (the validation report has every problem)", msg)
}

// runValidation is a validation job: it checks the dataset just published
// to a table node and stores the full report, encrypted, for the node's
// data owners. The job succeeds when the table is valid.
func (e *Enclave) runValidation(ctx context.Context, job *cleanroom.Job, dcrID string, n *cleanroom.Node, ws *workspace) cleanroom.JobUpdate {
	ds, err := e.Store.FindDataset(ctx, dcrID, n.Name)
	if cleanroom.ErrorCode(err) == cleanroom.ENOTFOUND || (err == nil && ds.ValidationJob != job.ID) {
		return cleanroom.JobUpdate{State: cleanroom.JobCancelled, Error: "the dataset this job was to check was replaced or removed"}
	} else if err != nil {
		return e.failed(job, err)
	}
	if err := e.decryptDataset(ctx, dcrID, n, ws.dataPath(n.Name)); err != nil {
		return e.failed(job, err)
	}
	rep, err := e.validateTable(ctx, ws, n)
	if err != nil {
		return e.failed(job, err)
	}
	u := cleanroom.JobUpdate{State: cleanroom.JobSucceeded}
	if !rep.Valid {
		u.State = cleanroom.JobFailed
		u.Error = invalidTable(n.Name, rep).Error()
	}
	report, err := json.Marshal(rep)
	if err != nil {
		return e.failed(job, err)
	}
	key, err := e.newResultKey(job, &u)
	if err == nil {
		err = e.storeEncrypted(ctx, cleanroom.JobResultKey(job.ID), key, crypt.ResultAD(job.ID), func(w io.Writer) error {
			_, err := w.Write(report)
			return err
		})
	}
	if err == nil && rep.Valid {
		// The checked rows, kept so that runs read them without checking
		// the upload again.
		err = e.storeEncrypted(ctx, cleanroom.ValidatedTableKey(job.ID), key, crypt.TableAD(job.ID), func(w io.Writer) error {
			return copyFile(w, filepath.Join(ws.tablePath(n.Name), "dataset.csv"))
		})
	}
	if err != nil {
		return e.failed(job, err)
	}
	u.ResultSize = int64(len(report))
	return u
}

// loadTable lays out a table input of a computation in w.tablePath: the
// rows its validation job stored when the dataset was published, or, while
// that job has not finished, rows validated here and now. A table that
// failed validation fails the computation.
func (e *Enclave) loadTable(ctx context.Context, w *workspace, dcrID string, n *cleanroom.Node) error {
	ds, err := e.Store.FindDataset(ctx, dcrID, n.Name)
	if cleanroom.ErrorCode(err) == cleanroom.ENOTFOUND {
		ds = nil // validated below as an empty table; decryptDataset refuses it if required
	} else if err != nil {
		return err
	}
	var v *cleanroom.Job
	if ds != nil && ds.ValidationJob != "" {
		if v, err = e.Store.FindJob(ctx, ds.ValidationJob); cleanroom.ErrorCode(err) == cleanroom.ENOTFOUND {
			v = nil // not queued yet: checked below
		} else if err != nil {
			return err
		}
	}
	if v == nil || v.State != cleanroom.JobSucceeded {
		if err := e.decryptDataset(ctx, dcrID, n, w.dataPath(n.Name)); err != nil {
			return err
		}
		rep, err := e.validateTable(ctx, w, n)
		if err == nil && !rep.Valid {
			err = invalidTable(n.Name, rep)
		}
		return err
	}
	key, err := e.key.Open(crypt.ResultKeyInfo(v.ID), v.SealedKey)
	if err != nil {
		return fmt.Errorf("unseal the key of validation job %s: %w", v.ID, err)
	}
	dir := w.tablePath(n.Name)
	schema, err := json.Marshal(n.Schema().AsComputed())
	if err == nil {
		err = w.mkdir(dir)
	}
	if err == nil {
		err = w.writeFile(filepath.Join(dir, "schema.json"), string(schema))
	}
	if err == nil {
		err = e.decryptBlob(ctx, cleanroom.ValidatedTableKey(v.ID), key, crypt.TableAD(v.ID), filepath.Join(dir, "dataset.csv"))
	}
	if errors.Is(err, crypt.ErrIntegrity) {
		return failf("integrity check failed for the validated rows of table %q: the stored ciphertext was modified or truncated; its data owner must publish the dataset again", n.Name)
	} else if err != nil {
		return err
	}
	return w.share(filepath.Join(dir, "dataset.csv"), 0o640)
}

func copyFile(w io.Writer, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(w, f)
	return err
}
