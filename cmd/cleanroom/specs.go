package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"sync"
	"text/tabwriter"

	cleanhttp "github.com/cleanroom-dev/cleanroom/http"
	"github.com/cleanroom-dev/cleanroom/worker"
)

// runSpecs shows the workers a server on this machine offers, read from
// the image cache: no server needs to run.
func runSpecs(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("specs", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := imagesFlag(fs)
	workerBin := workerBinFlag(fs)
	var sb sandboxConfig
	addSandboxFlags(fs, &sb)
	asJSON := fs.Bool("json", false, "print JSON, as GET /api/v1/enclave/specs returns it")
	if err := fs.Parse(args); err != nil {
		return err
	} else if fs.NArg() > 0 {
		return usageError("specs takes no arguments")
	}
	// The measurement covers the sandbox policy: say which server's specs.
	specs, err := workerSpecs(*dir, *workerBin, sb.newRunner("", "").Policy())
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(cleanhttp.SpecsResponse{Workers: specs})
	}
	for i, s := range specs {
		if i > 0 {
			fmt.Fprintln(stdout)
		}
		fmt.Fprintf(stdout, "worker %s\n", s.Name)
		fmt.Fprintf(stdout, "  measurement  %s\n", s.Measurement)
		fmt.Fprintf(stdout, "  server       %s (SHA-256 of the cleanroom binary)\n", s.Server)
		fmt.Fprintf(stdout, "  debian       %s (%s)\n", s.Debian, s.Suite)
		fmt.Fprintf(stdout, "  python       %s\n", s.Python)
		if s.R != "" {
			fmt.Fprintf(stdout, "  r            %s\n", s.R)
		}
		fmt.Fprintln(stdout)
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  LIBRARY\tVERSION\tDEBIAN PACKAGE")
		img := imageNamed(s.Name)
		for _, p := range img.Packages {
			if p.Module != "" {
				fmt.Fprintf(tw, "  %s\t%s\t%s %s\n", p.Module, s.Libraries[p.Module], p.Name, s.Packages[p.Name])
			}
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}

// serverDigest returns the hex SHA-256 of the binary this process runs,
// which every worker's measurement covers. It reads /proc/self/exe, so it
// is the binary running even once the file on disk has been replaced.
var serverDigest = sync.OnceValues(func() (string, error) {
	f, err := os.Open("/proc/self/exe")
	if err != nil {
		return "", fmt.Errorf("reading this binary to measure it: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("reading this binary to measure it: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
})

// workerSpecs returns the spec of every worker image in the cache in dir,
// as a server running this binary, workerBin and the sandbox policy offers them.
func workerSpecs(dir, workerBin string, policy []byte) ([]worker.Spec, error) {
	if err := needImagesDir(dir); err != nil {
		return nil, err
	}
	kit, err := prepareKit(dir, workerBin)
	if err != nil {
		return nil, err
	}
	server, err := serverDigest()
	if err != nil {
		return nil, err
	}
	cache := worker.NewCache(dir)
	var specs []worker.Spec
	for _, img := range worker.Images() {
		b, err := cache.Lookup(img)
		if errors.Is(err, worker.ErrNotBuilt) {
			return nil, hintError(fmt.Sprintf("worker image %s is not built yet in %s", img.Name, dir),
				"build it with `cleanroom images build` (a server builds it when it starts)")
		} else if err != nil {
			return nil, imageError(err, dir)
		}
		specs = append(specs, b.Spec(policy, kit, server))
	}
	sort.Slice(specs, func(i, j int) bool { return specs[i].Name < specs[j].Name })
	return specs, nil
}

// imageNamed returns the image of that name.
func imageNamed(name string) *worker.Image {
	for _, img := range worker.Images() {
		if img.Name == name {
			return img
		}
	}
	return &worker.Image{Name: name}
}
