// Package worker builds and caches worker images: the Debian root file
// systems computations run on, read-only as the sandbox's / (DESIGN.md §4).
//
// An image is built by mmdebstrap from a package list kept in this
// directory (python.txt). Two hashes name it:
//
//   - Its cache key says which recipe built it: the SHA-256 of the
//     mmdebstrap command line (suite, variant, the package list, the hooks
//     that trim and prepare it) and of the probe run on it with the modules
//     it imports. It is known before the build, so it tells whether the
//     image a binary wants is in the cache or still has to be built. The
//     Debian mirror and the build mode are left out: they change where
//     packages come from, not what the image is.
//   - Its measurement says what the image is: the SHA-256 of its exact
//     installed packages with versions (its manifest, read from the image's
//     dpkg database after the build) and of the sandbox policy (see
//     Measurement). Package versions are known only once the mirror has
//     answered, so the same recipe built on another day or machine may have
//     other versions and so another measurement; clients pin measurements,
//     never cache keys.
//
// A Cache holds built images, one directory per image and cache key,
// shared by every server and test on a machine.
package worker

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"fmt"
	"io"
	"regexp"
	"strings"
)

// Image is the recipe of a worker image.
type Image struct {
	Name     string    // "python"; names the image in the cache and in specs
	Suite    string    // Debian suite: "trixie" is Debian 13
	Packages []Package // what is installed besides Debian's essential packages
}

// Package is one line of a package list.
type Package struct {
	Name   string `json:"name"`             // Debian package, e.g. python3-pandas
	Module string `json:"module,omitempty"` // Python module it provides, e.g. pandas; empty for none
}

var (
	//go:embed python.txt
	pythonList string
	//go:embed r.txt
	rList string
)

// mustParse parses an embedded package list; the tests parse every one.
func mustParse(name, list string) []Package {
	pkgs, err := ParseList(strings.NewReader(list))
	if err != nil {
		panic(fmt.Sprintf("worker/%s: %v", name, err))
	}
	return pkgs
}

// Python returns the Python worker image: Debian 13 with the packages of
// python.txt.
func Python() *Image {
	return &Image{Name: "python", Suite: "trixie", Packages: mustParse("python.txt", pythonList)}
}

// R returns the R worker image: the Python image and the packages of r.txt.
func R() *Image {
	return &Image{Name: "r", Suite: "trixie", Packages: append(Python().Packages, mustParse("r.txt", rList)...)}
}

// hasR reports whether the image runs R computations.
func (img *Image) hasR() bool {
	for _, p := range img.Packages {
		if p.Name == "r-base-core" {
			return true
		}
	}
	return false
}

// Images returns every image a server runs computations on.
func Images() []*Image { return []*Image{Python(), R()} }

var (
	packageRE = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]+$`)
	moduleRE  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$`)
)

// ParseList reads a package list: one Debian package per line, optionally
// followed by the Python module it provides; '#' starts a comment; blank
// lines are skipped. A package listed twice is an error.
func ParseList(r io.Reader) ([]Package, error) {
	var pkgs []Package
	seen := map[string]int{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if len(fields) > 2 {
			return nil, fmt.Errorf("line %d: want a package and at most one module, got %q", n, strings.TrimSpace(line))
		}
		p := Package{Name: fields[0]}
		if !packageRE.MatchString(p.Name) {
			return nil, fmt.Errorf("line %d: %q is not a Debian package name", n, p.Name)
		}
		if first, ok := seen[p.Name]; ok {
			return nil, fmt.Errorf("line %d: package %s is already listed on line %d", n, p.Name, first)
		}
		seen[p.Name] = n
		if len(fields) == 2 {
			p.Module = fields[1]
			if !moduleRE.MatchString(p.Module) {
				return nil, fmt.Errorf("line %d: %q is not a Python module name", n, p.Module)
			}
		}
		pkgs = append(pkgs, p)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(pkgs) == 0 {
		return nil, fmt.Errorf("the list names no package")
	}
	return pkgs, nil
}

// Modules returns the Python modules of the image's packages, in list order.
func (img *Image) Modules() []string {
	var mods []string
	for _, p := range img.Packages {
		if p.Module != "" {
			mods = append(mods, p.Module)
		}
	}
	return mods
}

// customizeHook prepares the built tree as a read-only sandbox root: the
// mount points the sandbox binds onto it, and nothing of the machine that
// built it (mmdebstrap copies the host's resolv.conf and hostname in). It
// runs as `sh -c HOOK exec ROOT`.
var customizeHook = strings.Join([]string{
	`cd "$1"`,
	`mkdir -p input output cleanroom tmp proc dev opt/cleanroom`,
	`rm -rf etc/resolv.conf etc/apt/sources.list etc/apt/sources.list.d/* var/log/*`,
	`echo cleanroom > etc/hostname`,
}, " && ")

// Placeholders stand for what the cache key leaves out.
const (
	modePlaceholder   = "MODE"
	targetPlaceholder = "TARGET"
	mirrorPlaceholder = "MIRROR"
)

// mmdebstrapArgs returns the mmdebstrap command line that builds img into
// target from mirror.
func (img *Image) mmdebstrapArgs(mode, target, mirror string) []string {
	names := make([]string, len(img.Packages))
	for i, p := range img.Packages {
		names[i] = p.Name
	}
	return []string{
		"--mode=" + mode,
		// Debian's essential packages and the list, nothing else: no apt,
		// no init system. Nothing is ever installed into a built image.
		"--variant=essential",
		"--format=directory",
		"--include=" + strings.Join(names, ","),
		`--aptopt=Acquire::Languages "none"`,
		// No manuals, documentation or translations; licences stay.
		"--dpkgopt=path-exclude=/usr/share/man/*",
		"--dpkgopt=path-exclude=/usr/share/info/*",
		"--dpkgopt=path-exclude=/usr/share/locale/*",
		"--dpkgopt=path-exclude=/usr/share/doc/*",
		"--dpkgopt=path-include=/usr/share/doc/*/copyright",
		"--customize-hook=" + customizeHook,
		img.Suite, target,
		fmt.Sprintf("deb %s %s main", mirror, img.Suite),
	}
}

// recipeVersion changes when the way images are built or laid out in the
// cache changes in a way the command line does not show.
const recipeVersion = "cleanroom worker image recipe 1"

// Key returns the image's cache key: the hex SHA-256 of everything that
// decides what the build makes (see the package documentation).
func (img *Image) Key() string {
	h := sha256.New()
	writeField(h, recipeVersion)
	writeField(h, img.Name)
	for _, arg := range img.mmdebstrapArgs(modePlaceholder, targetPlaceholder, mirrorPlaceholder) {
		writeField(h, arg)
	}
	writeField(h, probeScript)
	for _, m := range img.Modules() {
		writeField(h, m)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// writeField writes s length-prefixed, so that no two sequences of fields
// hash alike.
func writeField(w io.Writer, s string) {
	fmt.Fprintf(w, "%d:%s\n", len(s), s)
}

// Measurement returns the hex SHA-256 that identifies a worker: over the
// image's manifest (its installed packages, as Manifest formats them), the
// sandbox policy the server runs it under, the digest of the kit mounted
// beside it (see Kit), and the digest of the server's own binary, whose
// enclave decrypts the inputs and seals the outputs. Anyone holding the
// four can recompute it: SHA-256 of
//
//	"cleanroom worker measurement 3\n"
//	"manifest <len>\n" <manifest>
//	"policy <len>\n" <policy>
//	"kit <len>\n" <kit digest>
//	"server <len>\n" <server digest>
//
// with lengths in decimal bytes.
func Measurement(manifest, policy []byte, kitDigest, serverDigest string) string {
	var b bytes.Buffer
	b.WriteString("cleanroom worker measurement 3\n")
	fmt.Fprintf(&b, "manifest %d\n", len(manifest))
	b.Write(manifest)
	fmt.Fprintf(&b, "policy %d\n", len(policy))
	b.Write(policy)
	fmt.Fprintf(&b, "kit %d\n", len(kitDigest))
	b.WriteString(kitDigest)
	fmt.Fprintf(&b, "server %d\n", len(serverDigest))
	b.WriteString(serverDigest)
	sum := sha256.Sum256(b.Bytes())
	return hex.EncodeToString(sum[:])
}
