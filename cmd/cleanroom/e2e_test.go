package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cleanroom-dev/cleanroom"
	"github.com/cleanroom-dev/cleanroom/client"
)

// seedDefinition is the seed document's "Secure Uppercase" clean room, as
// the CLI user writes it.
const seedDefinition = `name: Secure Uppercase
owner: owner@example.com
nodes:
  - name: input_data_node
    kind: raw
    is_required: true
  - name: uppercase_text_node
    kind: python
    dependencies: [input_data_node]
    script: |
      with open("/input/input_data_node", "r") as input_file:
          input_data = input_file.read()
      with open("/output/uppercase.txt", "w") as output_file:
          output_file.write(input_data.upper())
participants:
  - email: owner@example.com
    data_owner_of: [input_data_node]
    analyst_of: [uppercase_text_node]
`

// The seed's example through the CLI: publish, encrypted upload, run, zip.
func TestSecureUppercaseCLI(t *testing.T) {
	s := startServer(t, "")
	owner := s.addUser("owner@example.com")
	dir := t.TempDir()
	defPath := filepath.Join(dir, "uppercase.yaml")
	dataPath := filepath.Join(dir, "my-data.txt")
	os.WriteFile(defPath, []byte(seedDefinition), 0o600)
	os.WriteFile(dataPath, []byte("hello world"), 0o600)

	out, errOut, err := s.cli(owner, "publish", defPath)
	if err != nil {
		t.Fatalf("publish: %v\n%s", err, errOut)
	}
	id := strings.TrimSpace(out)
	if len(id) != 64 {
		t.Fatalf("publish printed %q, want a 64-hex id", out)
	}
	again, errOut, err := s.cli(owner, "publish", defPath)
	if err != nil || strings.TrimSpace(again) != id || !strings.Contains(errOut, "already published") {
		t.Fatalf("publishing the same definition again: id %q (want %q), stderr %q, err %v", again, id, errOut, err)
	}

	if _, errOut, err := s.cli(owner, "upload", "--dcr", id, "--node", "input_data_node", dataPath); err != nil {
		t.Fatalf("upload: %v\n%s", err, errOut)
	} else if strings.Count(errOut, "runs in software mode") != 1 {
		t.Errorf("upload to a software enclave: stderr %q; want one warning that it runs in software mode", errOut)
	}
	zipPath := filepath.Join(dir, "result.zip")
	if _, errOut, err := s.cli(owner, "run", "--dcr", id, "--node", "uppercase_text_node", "-o", zipPath); err != nil {
		t.Fatalf("run: %v\n%s", err, errOut)
	}
	b, err := os.ReadFile(zipPath)
	if err != nil {
		t.Fatal(err)
	}
	if got := unzip(t, b)["uppercase.txt"]; got != "HELLO WORLD" {
		t.Fatalf("uppercase.txt = %q, want HELLO WORLD", got)
	}

	// Storage holds ciphertext only, and the run left no plaintext behind.
	noPlaintextUnder(t, s.DataDir, "hello world", "HELLO WORLD")
	if left, _ := os.ReadDir(s.Scratch); len(left) != 0 {
		t.Fatalf("scratch directory not cleaned after the run: %v", left)
	}
}

// A second computation reads what the first wrote under /input/<first>/,
// and static files appear under /input/code/, where Python imports from.
func TestChainedComputations(t *testing.T) {
	s := startServer(t, "")
	owner := s.addUser("owner@example.com")
	def := &cleanroom.Definition{
		Name:  "chain",
		Owner: "owner@example.com",
		Nodes: []cleanroom.Node{
			{Name: "words", Kind: cleanroom.NodeRaw, IsRequired: true},
			{Name: "first", Kind: cleanroom.NodePython, Dependencies: []string{"words"}, Script: `
import os
os.makedirs("/output/sub")
words = open("/input/words").read().split()
open("/output/sub/count.txt", "w").write(str(len(words)))
`},
			{Name: "second", Kind: cleanroom.NodePython, Dependencies: []string{"first"},
				Files: []cleanroom.File{{Name: "factor.txt", Content: "10"}, {Name: "scale.py", Content: "def scale(n, f):\n    return n * f\n"}},
				Script: `
from scale import scale  # a static file is a module the script imports
n = int(open("/input/first/sub/count.txt").read())
factor = int(open("/input/code/factor.txt").read())
open("/output/result.txt", "w").write(str(scale(n, factor)))
`},
		},
		Participants: []cleanroom.Participant{{Email: "owner@example.com", DataOwnerOf: []string{"words"}, AnalystOf: []string{"second"}}},
	}
	id := publish(t, owner, def)
	uploadString(t, owner, id, "words", "one two three")
	files := resultFiles(t, owner, runJob(t, owner, id, "second"))
	if files["result.txt"] != "30" {
		t.Fatalf("result.txt = %q, want 30 (3 words x factor 10); files %v", files["result.txt"], files)
	}
	if _, ok := files["sub/count.txt"]; ok {
		t.Fatal("the upstream computation's output leaked into the downstream zip")
	}
}

// TestUnusedUploadsDeleted: the ciphertext of a replaced dataset is deleted
// by the server (here the next one to start, told to keep unused uploads
// for no time at all), and the dataset that replaced it still runs.
func TestUnusedUploadsDeleted(t *testing.T) {
	s := startServer(t, "")
	r := setupRoles(t, s, "import shutil\nshutil.copy('/input/data', '/output/data.txt')\n", false)
	first := uploadString(t, r.dataOwner, r.id, "data", "first version")
	second := uploadString(t, r.dataOwner, r.id, "data", "second version")
	stored := func(ds *cleanroom.Dataset) bool {
		_, err := os.Stat(filepath.Join(s.DataDir, "blobs", cleanroom.BlobKey(ds.ManifestHash)))
		return err == nil
	}
	if !stored(first) || !stored(second) {
		t.Fatal("the uploads are not where the test looks: it would prove nothing")
	}
	s.kill()

	s2 := startServer(t, s.DataDir, "--keep-unused-uploads", "1ns")
	waitFor(t, "the replaced upload to be deleted", func() bool { return !stored(first) })
	if !stored(second) {
		t.Fatal("the published upload was deleted")
	}
	analyst := client.New(s2.URL, r.analyst.Email, r.analyst.Token)
	job := runJob(t, analyst, r.id, "compute")
	if job.State != cleanroom.JobSucceeded {
		t.Fatalf("job after pruning: %s %s", job.State, job.Error)
	}
	if got := resultFiles(t, analyst, job)["data.txt"]; got != "second version" {
		t.Errorf("the job read %q, want the published dataset", got)
	}
}
