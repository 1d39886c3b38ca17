package worker

import (
	"bufio"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// defaultMirror is Debian's own redirector to a nearby mirror.
const defaultMirror = "http://deb.debian.org/debian"

// HostMirror returns the Debian mirror to build images from:
// $CLEANROOM_DEBIAN_MIRROR if set, else the first Debian archive (a URI
// ending in /debian) this machine's apt uses, else deb.debian.org.
func HostMirror() string {
	if m := os.Getenv("CLEANROOM_DEBIAN_MIRROR"); m != "" {
		return m
	}
	files := []string{"/etc/apt/sources.list"}
	for _, pattern := range []string{"*.sources", "*.list"} {
		matches, _ := filepath.Glob(filepath.Join("/etc/apt/sources.list.d", pattern))
		files = append(files, matches...)
	}
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			continue
		}
		uris := sourceURIs(f, strings.HasSuffix(name, ".sources"))
		f.Close()
		for _, u := range uris {
			if strings.HasSuffix(strings.TrimRight(u, "/"), "/debian") {
				return strings.TrimRight(u, "/")
			}
		}
	}
	return defaultMirror
}

// sourceURIs returns the archive URIs of an apt sources file: deb822
// ("URIs: ...") if deb822, else one-line ("deb [options] URI suite ...").
func sourceURIs(r io.Reader, deb822 bool) []string {
	var uris []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		switch {
		case deb822 && len(fields) > 1 && strings.EqualFold(fields[0], "URIs:"):
			uris = append(uris, fields[1:]...)
		case !deb822 && len(fields) > 2 && fields[0] == "deb":
			rest := fields[1:]
			if strings.HasPrefix(rest[0], "[") {
				for len(rest) > 0 && !strings.HasSuffix(rest[0], "]") {
					rest = rest[1:]
				}
				if len(rest) > 0 {
					rest = rest[1:]
				}
			}
			if len(rest) > 0 {
				uris = append(uris, rest[0])
			}
		}
	}
	return uris
}
