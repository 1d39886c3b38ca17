package enclave

import (
	"archive/zip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// writeZip streams the regular files and directories under dir into a zip
// written to w, entries named relative to dir, and returns the zip's size
// and its warnings. Anything else (symlinks, devices, FIFOs, sockets) and
// hard links are never followed: they are skipped and named in the
// warnings. The limits hold while the files are read: past maxBytes of
// content or maxFiles entries (0: no limit) it stops with a
// *sandbox.LimitError.
func writeZip(w io.Writer, dir string, maxBytes int64, maxFiles int) (int64, []string, error) {
	cw := &countingWriter{w: w}
	zw := zip.NewWriter(cw)
	var warnings []string
	skip := func(name, why string) {
		warnings = append(warnings, fmt.Sprintf("skipped /output/%s: %s", name, why))
	}
	budget := &budget{left: maxBytes, max: maxBytes}
	entries := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil || rel == "." {
			return err
		}
		name := filepath.ToSlash(rel)
		t := d.Type()
		if !t.IsDir() && !t.IsRegular() {
			skip(name, fmt.Sprintf("%s, not a regular file or directory, never followed", typeName(t)))
			return nil
		}
		if entries++; maxFiles > 0 && entries > maxFiles {
			return outputFilesError(maxFiles)
		}
		if t.IsDir() {
			_, err := zw.CreateHeader(&zip.FileHeader{Name: name + "/", Method: zip.Store})
			return err
		}
		why, err := addFile(zw, path, name, budget)
		if why != "" {
			skip(name, why)
		}
		return err
	})
	if err != nil {
		return 0, nil, err
	}
	if err := zw.Close(); err != nil {
		return 0, nil, err
	}
	return cw.n, warnings, nil
}

// addFile adds the regular file at path to zw as name, or says why it
// skipped it.
func addFile(zw *zip.Writer, path, name string, b *budget) (skipped string, err error) {
	// O_NOFOLLOW: the file must still be the regular file the walk saw,
	// not a symlink; O_NONBLOCK: nor a FIFO to wait on.
	f, err := os.OpenFile(path, os.O_RDONLY|noFollow|syscall.O_NONBLOCK, 0)
	if errors.Is(err, syscall.ELOOP) {
		return "a symbolic link, never followed", nil
	} else if err != nil {
		return "", err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Sprintf("%s, not a regular file or directory, never followed", typeName(fi.Mode().Type())), nil
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Nlink > 1 {
		return "a hard link, never followed", nil
	}
	hdr, err := zip.FileInfoHeader(fi)
	if err != nil {
		return "", err
	}
	hdr.Name, hdr.Method = name, zip.Deflate
	zf, err := zw.CreateHeader(hdr)
	if err != nil {
		return "", err
	}
	_, err = io.Copy(zf, b.reader(f))
	return "", err
}

// budget counts the bytes read from the output against its size limit.
type budget struct {
	left, max int64 // max 0: no limit
}

func (b *budget) reader(r io.Reader) io.Reader {
	if b.max <= 0 {
		return r
	}
	return &budgetReader{r: r, b: b}
}

type budgetReader struct {
	r io.Reader
	b *budget
}

func (br *budgetReader) Read(p []byte) (int, error) {
	// One byte beyond what is left tells a file that fits exactly from one
	// that does not.
	if int64(len(p)) > br.b.left+1 {
		p = p[:br.b.left+1]
	}
	n, err := br.r.Read(p)
	br.b.left -= int64(n)
	if br.b.left < 0 {
		return n, outputSizeError(br.b.max)
	}
	return n, err
}

func typeName(t fs.FileMode) string {
	switch {
	case t&fs.ModeSymlink != 0:
		return "a symbolic link"
	case t&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case t&fs.ModeSocket != 0:
		return "a socket"
	case t&fs.ModeCharDevice != 0:
		return "a character device"
	case t&fs.ModeDevice != 0:
		return "a device"
	}
	return "an irregular file"
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
