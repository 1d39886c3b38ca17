package enclave

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/cleanroom-dev/cleanroom"
	"github.com/cleanroom-dev/cleanroom/crypt"
)

// testLogSize is how much of each computation's output a draft test keeps.
const testLogSize = 64 << 10

// testDatasetKeyInfo binds a sealed test dataset key to one data node of one draft.
func testDatasetKeyInfo(draftID, node string) []byte {
	return []byte("cleanroom test dataset key v1\x00" + draftID + "\x00" + node)
}

// StoreTestDataset encrypts test data for a draft's data node as it
// arrives and stores it under a key sealed to the enclave. Test data is
// not real data, but storage holds ciphertext only, whatever it is.
func (e *Enclave) StoreTestDataset(ctx context.Context, draftID, node string, r io.Reader) (*cleanroom.TestDataset, error) {
	key, err := crypt.NewKey()
	if err != nil {
		return nil, err
	}
	sealed, err := crypt.Seal(e.key.PublicKey(), testDatasetKeyInfo(draftID, node), key)
	if err != nil {
		return nil, err
	}
	var size int64
	err = e.storeEncrypted(ctx, cleanroom.TestDatasetKey(draftID, node), key, crypt.DatasetAD, func(w io.Writer) error {
		var err error
		size, err = io.Copy(w, r)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &cleanroom.TestDataset{DraftID: draftID, Node: node, Size: size, SealedKey: sealed}, nil
}

// MaxDraftTestsPerUser bounds the draft tests one user has running or
// waiting: tests take the job slots real jobs need.
const MaxDraftTestsPerUser = 2

// StartDraftTest tests every computation of def in the background, on
// empty inputs or the given test datasets, and records the outcome as
// test. It runs when a job slot is free, like a job. Returns ECONFLICT
// when owner already has MaxDraftTestsPerUser tests under way.
func (e *Enclave) StartDraftTest(owner string, test *cleanroom.DraftTest, def *cleanroom.Definition, data []*cleanroom.TestDataset) error {
	e.mu.Lock()
	if e.testsOf[owner] >= MaxDraftTestsPerUser {
		e.mu.Unlock()
		return cleanroom.Errorf(cleanroom.ECONFLICT, "you have %d draft tests under way, the most at once; wait for one to end", MaxDraftTestsPerUser)
	}
	e.testsOf[owner]++
	e.mu.Unlock()
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		defer func() {
			e.mu.Lock()
			e.testsOf[owner]--
			e.mu.Unlock()
		}()
		nodes, errMsg := e.testDraft(e.ctx, test.DraftID, def, data)
		if e.ctx.Err() != nil {
			errMsg = "the server stopped during the test; run it again"
		}
		if err := e.Store.FinishDraftTest(context.WithoutCancel(e.ctx), test.ID, nodes, errMsg, e.Now()); err != nil {
			e.Logger.Error("record draft test", "test", test.ID, "err", err)
		}
		e.announceJobEnded()
	}()
	return nil
}

func (e *Enclave) testDraft(ctx context.Context, draftID string, def *cleanroom.Definition, data []*cleanroom.TestDataset) ([]cleanroom.NodeTest, string) {
	slot, err := e.takeSlot(ctx)
	if err != nil {
		return nil, "the server stopped before the test could run; run it again"
	}
	defer func() { e.slots <- slot }()
	w, err := e.newWorkspace(slot)
	if err != nil {
		e.Logger.Error("draft test workspace", "draft", draftID, "err", err)
		return nil, "internal error in the enclave; the server log has the details"
	}
	defer func() {
		if err := w.remove(); err != nil {
			e.Logger.Error("remove draft test scratch directory", "draft", draftID, "err", err)
		}
	}()
	testData := map[string]*cleanroom.TestDataset{}
	for _, ds := range data {
		testData[ds.Node] = ds
	}

	failed := map[string]bool{}
	var out []cleanroom.NodeTest
	for i := range def.Nodes {
		n := &def.Nodes[i]
		if !n.Kind.IsData() {
			continue
		}
		nt := cleanroom.NodeTest{Node: n.Name, Kind: n.Kind, Status: cleanroom.NodeTestOK}
		if err := e.testInput(ctx, w, draftID, n, testData[n.Name]); err != nil {
			nt.Status, nt.Error = cleanroom.NodeTestFailed, e.testError(draftID, err)
			failed[n.Name] = true
		}
		out = append(out, nt)
	}
	for _, n := range def.ComputeOrder() {
		nt := cleanroom.NodeTest{Node: n.Name, Kind: n.Kind}
		for _, dep := range n.Dependencies {
			if failed[dep] {
				nt.Status, nt.Error = cleanroom.NodeTestSkipped, fmt.Sprintf("not run: it depends on %q, which failed", dep)
				break
			}
		}
		if nt.Status == "" {
			e.testNode(ctx, w, draftID, def, n, &nt)
		}
		failed[n.Name] = nt.Status != cleanroom.NodeTestOK
		out = append(out, nt)
		if ctx.Err() != nil {
			break
		}
	}
	return out, ""
}

// testInput lays out a data node's test data, or an empty file, and
// validates a table's.
func (e *Enclave) testInput(ctx context.Context, w *workspace, draftID string, n *cleanroom.Node, ds *cleanroom.TestDataset) error {
	dst := w.dataPath(n.Name)
	if ds == nil {
		if err := writeFile(dst, strings.NewReader("")); err != nil {
			return err
		}
	} else {
		key, err := e.key.Open(testDatasetKeyInfo(draftID, n.Name), ds.SealedKey)
		if err != nil {
			return fmt.Errorf("test dataset key: %w", err)
		}
		if err := e.decryptBlob(ctx, cleanroom.TestDatasetKey(draftID, n.Name), key, crypt.DatasetAD, dst); err != nil {
			return err
		}
	}
	if n.Kind != cleanroom.NodeTable {
		return nil
	}
	rep, err := e.validateTable(ctx, w, n)
	if err != nil {
		return err
	}
	if !rep.Valid {
		// Test data is no one's secret: the problems are shown with their values.
		b, _ := json.MarshalIndent(rep, "", "  ")
		return failf("the test data of table %q failed validation with %d problem(s):\n%s", n.Name, rep.ErrorCount, b)
	}
	return nil
}

// testNode runs one computation of a draft test and records how it went,
// with its logs whatever the node's log policy: no real data is involved.
func (e *Enclave) testNode(ctx context.Context, w *workspace, draftID string, def *cleanroom.Definition, n *cleanroom.Node, nt *cleanroom.NodeTest) {
	logs := newTailBuffer(testLogSize)
	res, err := e.runNode(ctx, w, def, n, logs)
	nt.Logs = string(logs.Bytes())
	if err != nil {
		nt.Status, nt.Error = cleanroom.NodeTestFailed, e.testError(draftID, err)
		return
	}
	runErr := res.Err()
	if runErr == nil || !isLimit(runErr) {
		if err := e.checkOutput(w, n.Name); err != nil {
			runErr = err
		}
	}
	nt.Outputs = listOutputs(w.outputPath(n.Name))
	if runErr == nil {
		nt.Status = cleanroom.NodeTestOK
		return
	}
	nt.Status, nt.Error = cleanroom.NodeTestFailed, jobError(runErr)
	if n.Kind == cleanroom.NodeSQL && res.ExitCode == exitTooFewRows {
		nt.Error = fmt.Sprintf("the result has fewer rows than its minimum_rows_count of %d; nothing would be released", *n.MinimumRowsCount)
	} else if last := logs.ErrorLine(n.Kind); last != "" {
		nt.Error += ": " + last
	}
	nt.Line = errorLine(n.Kind, nt.Logs)
}

// testError is the message of a failure outside the script: a jobFailure
// says what happened; anything else stays in the server log.
func (e *Enclave) testError(draftID string, err error) string {
	var f *jobFailure
	if errors.As(err, &f) {
		return f.msg
	}
	e.Logger.Error("draft test failed inside the enclave", "draft", draftID, "err", err)
	return "internal error in the enclave; the server log has the details"
}

// errorLineRE finds, per kind, where the logs blame a line of the main
// script; the last match is the one that counts, and its first non-empty
// group is the line.
var errorLineRE = map[cleanroom.NodeKind]*regexp.Regexp{
	// Python: `  File "/cleanroom/main.py", line 12, in <module>`: the
	// last such line is where the error was raised in the script.
	cleanroom.NodePython: regexp.MustCompile(`File "/cleanroom/main\.py", line (\d+)`),
	// DuckDB: `LINE 3: SELEC ...`.
	cleanroom.NodeSQL: regexp.MustCompile(`LINE (\d+):`),
	// R, run by source() with show.error.locations: `Error in f(x) (from
	// main.R#4) : ...`, or for a parse error `/cleanroom/main.R:4:0: ...`.
	cleanroom.NodeR: regexp.MustCompile(`\(from main\.R#(\d+)\)|/cleanroom/main\.R:(\d+):\d+:`),
}

// errorLine returns the line of the main script that logs blame, or 0.
func errorLine(kind cleanroom.NodeKind, logs string) int {
	re := errorLineRE[kind]
	if re == nil {
		return 0
	}
	m := re.FindAllStringSubmatch(logs, -1)
	if len(m) == 0 {
		return 0
	}
	for _, g := range m[len(m)-1][1:] {
		if n, err := strconv.Atoi(g); err == nil {
			return n
		}
	}
	return 0
}

// listOutputs returns the regular files under dir, relative to it.
func listOutputs(dir string) []cleanroom.OutputFile {
	var out []cleanroom.OutputFile
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		rel, _ := filepath.Rel(dir, path)
		if fi, err := d.Info(); err == nil {
			out = append(out, cleanroom.OutputFile{Path: filepath.ToSlash(rel), Size: fi.Size()})
		}
		return nil
	})
	return out
}
