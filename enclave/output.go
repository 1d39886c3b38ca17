package enclave

import (
	"archive/zip"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// writeZip streams the regular files and directories under dir into a zip
// written to w, entries named relative to dir. Anything else (symlinks,
// devices, FIFOs, sockets) is never followed: it is skipped and named in
// the returned warnings. It returns the zip's size.
func writeZip(w io.Writer, dir string) (int64, []string, error) {
	cw := &countingWriter{w: w}
	zw := zip.NewWriter(cw)
	var warnings []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil || rel == "." {
			return err
		}
		name := filepath.ToSlash(rel)
		switch t := d.Type(); {
		case t.IsDir():
			_, err := zw.CreateHeader(&zip.FileHeader{Name: name + "/", Method: zip.Store})
			return err
		case t.IsRegular():
			return addFile(zw, path, name)
		default:
			warnings = append(warnings, fmt.Sprintf("skipped /output/%s: not a regular file or directory (%s)", name, t.Type()))
			return nil
		}
	})
	if err != nil {
		return 0, nil, err
	}
	if err := zw.Close(); err != nil {
		return 0, nil, err
	}
	return cw.n, warnings, nil
}

func addFile(zw *zip.Writer, path, name string) error {
	// O_NOFOLLOW: a script may swap the file for a symlink after the walk saw it.
	f, err := os.OpenFile(path, os.O_RDONLY|noFollow, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	hdr, err := zip.FileInfoHeader(fi)
	if err != nil {
		return err
	}
	hdr.Name, hdr.Method = name, zip.Deflate
	zf, err := zw.CreateHeader(hdr)
	if err != nil {
		return err
	}
	_, err = io.Copy(zf, f)
	return err
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

// linkTree makes dst a copy of src (a file or a directory tree) made of hard
// links, so a large input is laid out for a computation without copying it.
func linkTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		switch t := d.Type(); {
		case t.IsDir():
			return os.MkdirAll(target, 0o700)
		case t.IsRegular():
			return os.Link(path, target)
		default:
			return nil // upstream output that is not a regular file is not passed on
		}
	})
}
