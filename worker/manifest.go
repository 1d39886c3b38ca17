package worker

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// dpkgStatus is the dpkg database of an image, relative to its root.
const dpkgStatus = "var/lib/dpkg/status"

// Installed is one installed package of an image.
type Installed struct {
	Name, Version, Arch string
}

// ReadManifest returns the packages installed in the image rooted at root,
// as dpkg's database records them, sorted as their manifest lines sort.
func ReadManifest(root string) ([]Installed, error) {
	f, err := os.Open(filepath.Join(root, dpkgStatus))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	pkgs, err := parseStatus(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(root, dpkgStatus), err)
	}
	return pkgs, nil
}

// parseStatus reads a dpkg status file: paragraphs of "Field: value" lines
// separated by blank lines, continuation lines starting with a space.
// Only packages whose Status ends in "installed" count.
func parseStatus(r io.Reader) ([]Installed, error) {
	var pkgs []Installed
	var cur Installed
	var status string
	flush := func() error {
		if cur.Name == "" && status == "" {
			return nil
		}
		if cur.Name == "" || cur.Version == "" || cur.Arch == "" || status == "" {
			return fmt.Errorf("incomplete entry for package %q", cur.Name)
		}
		if strings.HasSuffix(status, " installed") {
			pkgs = append(pkgs, cur)
		}
		cur, status = Installed{}, ""
		return nil
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			if err := flush(); err != nil {
				return nil, err
			}
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			continue
		}
		field, value, ok := strings.Cut(line, ":")
		if !ok {
			return nil, fmt.Errorf("malformed line %q", line)
		}
		value = strings.TrimSpace(value)
		switch field {
		case "Package":
			cur.Name = value
		case "Version":
			cur.Version = value
		case "Architecture":
			cur.Arch = value
		case "Status":
			status = value
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if err := flush(); err != nil {
		return nil, err
	}
	sort.Slice(pkgs, func(i, j int) bool { return pkgs[i].line() < pkgs[j].line() })
	return pkgs, nil
}

// Manifest formats installed packages as the measurement hashes them: one
// "name\tversion\tarchitecture\n" line each, in the order given (sorted by
// ReadManifest). It equals the output of
//
//	dpkg-query --admindir=ROOT/var/lib/dpkg -W -f '${Package}\t${Version}\t${Architecture}\n' | LC_ALL=C sort
//
// for an image whose packages are all installed.
func Manifest(pkgs []Installed) []byte {
	var b bytes.Buffer
	for _, p := range pkgs {
		b.WriteString(p.line())
	}
	return b.Bytes()
}

func (p Installed) line() string { return p.Name + "\t" + p.Version + "\t" + p.Arch + "\n" }
