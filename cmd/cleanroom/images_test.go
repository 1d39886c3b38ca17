package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"testing"

	"github.com/cleanroom-dev/cleanroom"
	cleanhttp "github.com/cleanroom-dev/cleanroom/http"
)

// versionScript writes what a computation sees of its worker.
const versionScript = `import json, sys, pandas, sklearn
json.dump({"python": "%d.%d.%d" % sys.version_info[:3], "pandas": pandas.__version__, "sklearn": sklearn.__version__},
          open("/output/versions.json", "w"))
`

// The server lists the workers its jobs run on, as `cleanroom specs` reads
// it from the machine's image cache, and jobs do run on it.
func TestSpecs(t *testing.T) {
	s := startServer(t, "")
	owner := s.addUser("owner@example.com")

	get := func(token string) (*http.Response, error) {
		req, _ := http.NewRequest("GET", s.URL+"/api/v1/enclave/specs", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
			req.Header.Set(cleanhttp.EmailHeader, owner.Email)
		}
		return http.DefaultClient.Do(req)
	}
	if resp, err := get(""); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("specs without a token: %v %v, want 401", resp.Status, err)
	}
	resp, err := get(owner.Token)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var served cleanhttp.SpecsResponse
	if err := json.NewDecoder(resp.Body).Decode(&served); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("specs: %s, %v", resp.Status, err)
	}
	if len(served.Workers) != 2 || served.Workers[0].Name != "python" || served.Workers[1].Name != "r" {
		t.Fatalf("specs = %+v, want the python and r workers", served)
	}
	w := served.Workers[0]
	if r := served.Workers[1]; !strings.HasPrefix(r.R, "4.") || r.Packages["r-base-core"] == "" || r.Measurement == w.Measurement {
		t.Errorf("r worker = %+v", r)
	}
	if len(w.Measurement) != 64 || !strings.HasPrefix(w.Python, "3.13.") || !strings.HasPrefix(w.Libraries["pandas"], "2.2.") || w.Packages["python3-pandas"] == "" {
		t.Errorf("python worker = %+v", w)
	}
	// The measurement covers the binary serving it, which the spec names.
	bin, err := os.ReadFile(binPath)
	if err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256(bin); w.Server != hex.EncodeToString(sum[:]) || len(w.KitDigest) != 64 {
		t.Errorf("python worker's server digest %s and kit digest %q; want the binary's %x and the kit's", w.Server, w.KitDigest, sum)
	}

	out, err := exec.Command(binPath, "specs", "--json").Output()
	if err != nil {
		t.Fatalf("specs --json: %v", err)
	}
	var local cleanhttp.SpecsResponse
	if err := json.Unmarshal(out, &local); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(local, served) {
		t.Errorf("`cleanroom specs --json` = %+v\nthe server says %+v", local, served)
	}
	table, err := exec.Command(binPath, "specs").Output()
	if err != nil {
		t.Fatalf("specs: %v", err)
	}
	for _, want := range []string{w.Measurement, "server       " + w.Server, "python       " + w.Python, "pandas       " + w.Libraries["pandas"], "python3-xgboost " + w.Packages["python3-xgboost"]} {
		if !strings.Contains(string(table), want) {
			t.Errorf("`cleanroom specs` lacks %q:\n%s", want, table)
		}
	}

	id := publish(t, owner, &cleanroom.Definition{
		Name:         "versions",
		Owner:        owner.Email,
		Nodes:        []cleanroom.Node{{Name: "versions", Kind: cleanroom.NodePython, Script: versionScript}},
		Participants: []cleanroom.Participant{{Email: owner.Email, AnalystOf: []string{"versions"}}},
	})
	files := resultFiles(t, owner, runJob(t, owner, id, "versions"))
	var got map[string]string
	if err := json.Unmarshal([]byte(files["versions.json"]), &got); err != nil {
		t.Fatalf("versions.json = %q: %v", files["versions.json"], err)
	}
	want := map[string]string{"python": w.Python, "pandas": w.Libraries["pandas"], "sklearn": w.Libraries["sklearn"]}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("the job ran on %v, the spec says %v", got, want)
	}
}
