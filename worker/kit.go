package worker

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
)

// KitMount is where the kit appears in every sandbox; images hold the
// mount point.
const KitMount = "/opt/cleanroom"

// KitWorker is the in-sandbox worker binary's path inside the sandbox.
const KitWorker = KitMount + "/bin/cleanroom-worker"

// KitPython is the directory of the Python helper modules inside the
// sandbox; scripts find them on PYTHONPATH.
const KitPython = KitMount + "/python"

//go:embed python/cleanroom_util/*.py python/decentriq_util/*.py
var pythonHelpers embed.FS

// Kit is what the enclave mounts read-only into every sandbox besides the
// image: the cleanroom-worker binary (table validation, SQL) and the
// Python helper modules (cleanroom_util, decentriq_util). Its digest is
// part of every worker's measurement: it runs next to the data.
type Kit struct {
	Dir    string // host directory, mounted at KitMount
	Digest string // hex SHA-256 over its files' paths and contents
}

// ErrNoWorkerBinary is returned when the cleanroom-worker binary is missing.
var ErrNoWorkerBinary = errors.New("cleanroom-worker binary not found; build it with `make build` (go build -o bin/cleanroom-worker ./cmd/cleanroom-worker)")

// PrepareKit lays out the kit of workerBin under dir, once per content:
// dir/kit-<digest>/{bin/cleanroom-worker, python/...}, readable by every
// user, written beside and renamed into place so no one sees half a kit.
func PrepareKit(dir, workerBin string) (*Kit, error) {
	files, err := kitFiles(workerBin)
	if err != nil {
		return nil, err
	}
	digest := kitDigest(files)
	final := filepath.Join(dir, "kit-"+digest[:16])
	if _, err := os.Stat(final); err == nil {
		return &Kit{Dir: final, Digest: digest}, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(dir, ".kit-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o755); err != nil {
		return nil, err
	}
	for _, f := range files {
		p := filepath.Join(tmp, filepath.FromSlash(f.path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(p, f.data, f.mode); err != nil {
			return nil, err
		}
	}
	if err := os.Rename(tmp, final); err != nil && !errors.Is(err, fs.ErrExist) {
		if _, statErr := os.Stat(final); statErr != nil { // another process may have won the race
			return nil, err
		}
	}
	return &Kit{Dir: final, Digest: digest}, nil
}

type kitFile struct {
	path string // slash-separated, relative to the kit
	data []byte
	mode os.FileMode
}

func kitFiles(workerBin string) ([]kitFile, error) {
	bin, err := os.ReadFile(workerBin)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w (looked at %s)", ErrNoWorkerBinary, workerBin)
	} else if err != nil {
		return nil, err
	}
	files := []kitFile{{path: "bin/cleanroom-worker", data: bin, mode: 0o755}}
	err = fs.WalkDir(pythonHelpers, "python", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := pythonHelpers.ReadFile(p)
		files = append(files, kitFile{path: p, data: data, mode: 0o644})
		return err
	})
	sort.Slice(files, func(i, j int) bool { return files[i].path < files[j].path })
	return files, err
}

// kitDigest hashes every file's path, mode and content, length-prefixed.
func kitDigest(files []kitFile) string {
	h := sha256.New()
	for _, f := range files {
		writeField(h, path.Clean(f.path))
		writeField(h, f.mode.String())
		fmt.Fprintf(h, "%d:", len(f.data))
		h.Write(f.data)
		h.Write([]byte("\n"))
	}
	return hex.EncodeToString(h.Sum(nil))
}
