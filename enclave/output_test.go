package enclave

import (
	"archive/zip"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/cleanroom-dev/cleanroom/sandbox"
)

// unzip returns the entries of a zip: file contents, and "/" for a directory.
func unzip(t *testing.T, b []byte) map[string]string {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	for _, f := range zr.File {
		if strings.HasSuffix(f.Name, "/") {
			files[f.Name] = "/"
			continue
		}
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		content, _ := io.ReadAll(rc)
		rc.Close()
		files[f.Name] = string(content)
	}
	return files
}

// A symlink, FIFO, socket or hard link in /output is skipped and named; a
// host file behind a symlink never reaches the zip.
func TestZipSkipsAllButRegularFilesAndDirectories(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(secret, []byte("host secret"), 0o644)
	os.Mkdir(filepath.Join(dir, "sub"), 0o755)
	os.WriteFile(filepath.Join(dir, "sub", "result.csv"), []byte("a,b\n"), 0o644)
	os.Symlink(secret, filepath.Join(dir, "link"))
	os.Symlink(filepath.Dir(secret), filepath.Join(dir, "dirlink"))
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "linked"), []byte("twice"), 0o644)
	os.Link(filepath.Join(dir, "linked"), filepath.Join(dir, "linked2"))

	var buf bytes.Buffer
	size, warnings, err := writeZip(&buf, dir, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if size != int64(buf.Len()) {
		t.Errorf("size %d, zip has %d bytes", size, buf.Len())
	}
	got := unzip(t, buf.Bytes())
	want := map[string]string{"sub/": "/", "sub/result.csv": "a,b\n"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("zip holds %v, want %v", got, want)
	}
	sort.Strings(warnings)
	wantWarnings := []string{
		"skipped /output/dirlink: a symbolic link, not a regular file or directory, never followed",
		"skipped /output/fifo: a FIFO, not a regular file or directory, never followed",
		"skipped /output/link: a symbolic link, not a regular file or directory, never followed",
		"skipped /output/linked2: a hard link, never followed",
		"skipped /output/linked: a hard link, never followed",
	}
	if !reflect.DeepEqual(warnings, wantWarnings) {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(warnings, "\n"), strings.Join(wantWarnings, "\n"))
	}
}

func TestZipLimits(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a"), bytes.Repeat([]byte("a"), 600), 0o644)
	os.WriteFile(filepath.Join(dir, "b"), bytes.Repeat([]byte("b"), 400), 0o644)
	for _, tt := range []struct {
		maxBytes int64
		maxFiles int
		want     string // error; "" for none
	}{
		{1000, 2, ""},
		{999, 0, "script exceeded its output size limit of 999 B"},
		{500, 0, "script exceeded its output size limit of 500 B"},
		{0, 1, "script exceeded its output file limit of 1 files"},
		{0, 0, ""},
	} {
		_, _, err := writeZip(io.Discard, dir, tt.maxBytes, tt.maxFiles)
		var le *sandbox.LimitError
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("limits %d bytes, %d files: %v", tt.maxBytes, tt.maxFiles, err)
		case tt.want != "" && (!errors.As(err, &le) || err.Error() != tt.want):
			t.Errorf("limits %d bytes, %d files: %v, want %q", tt.maxBytes, tt.maxFiles, err, tt.want)
		}
	}
}

func TestJobError(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want string
	}{
		{&sandbox.LimitError{Limit: "memory", Max: "512 MiB"}, "job exceeded its memory limit of 512 MiB"},
		{outputSizeError(100 << 20), "job exceeded its output size limit of 100 MiB"},
		{outputFilesError(10000), "job exceeded its output file limit of 10000 files"},
		{errors.New("script exited with status 1"), "script exited with status 1"},
	} {
		if got := jobError(tt.err); got != tt.want {
			t.Errorf("jobError(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}
