package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"text/tabwriter"

	"github.com/cleanroom-dev/cleanroom"
	"github.com/cleanroom-dev/cleanroom/worker"
)

// runImages builds and lists the worker images of this machine's image
// cache, which every server and test on the machine shares.
func runImages(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return hintError("images needs a command", "cleanroom images build [--images DIR] | images list [--images DIR]")
	}
	cmd, args := args[0], args[1:]
	fs := flag.NewFlagSet("images "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := imagesFlag(fs)
	if err := fs.Parse(args); err != nil {
		return err
	} else if fs.NArg() > 0 {
		return usageError("images %s takes no arguments", cmd)
	} else if err := needImagesDir(*dir); err != nil {
		return err
	}
	cache := worker.NewCache(*dir)
	switch cmd {
	case "build":
		cache.Log = stderr
		for _, img := range worker.Images() {
			b, err := cache.Ensure(ctx, img)
			if err != nil {
				return imageError(err, *dir)
			}
			fmt.Fprintf(stdout, "worker image %s ready in %s\n", img.Name, b.Dir)
		}
		return nil
	case "list":
		list, err := cache.List()
		if err != nil {
			return imageError(err, *dir)
		}
		current := map[string]bool{}
		for _, img := range worker.Images() {
			current[img.Key()] = true
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "IMAGE\tSTATUS\tBUILT\tSIZE\tDIRECTORY")
		for _, b := range list {
			status := "current"
			if !current[b.Key] {
				status = "old (built from another package list; may be removed)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", b.Name, status, b.BuiltAt.Local().Format("2006-01-02 15:04"), cleanroom.FormatBytes(b.Size), b.Dir)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		if len(list) == 0 {
			fmt.Fprintf(stderr, "no worker images in %s; build them with `cleanroom images build`\n", *dir)
		}
		return nil
	}
	return usageError("unknown images command %q; use build or list", cmd)
}

// imagesUsage describes the --images flag.
const imagesUsage = "worker image cache, shared by every server and test on this machine (env CLEANROOM_IMAGES)"

// defaultImagesDir returns the machine's image cache, or "" if it has none.
func defaultImagesDir() string {
	dir, _ := worker.DefaultDir()
	return dir
}

// imagesFlag adds --images, the image cache directory, to fs.
func imagesFlag(fs *flag.FlagSet) *string {
	return fs.String("images", defaultImagesDir(), imagesUsage)
}

// ensureImages returns the worker images from the cache in dir, Python
// first, building them first on a machine that does not have them yet.
// The builds' progress goes to progress.
func ensureImages(ctx context.Context, dir string, logger *slog.Logger, progress io.Writer) ([]*worker.Built, error) {
	if err := needImagesDir(dir); err != nil {
		return nil, err
	}
	cache := worker.NewCache(dir)
	cache.Log = progress
	var built []*worker.Built
	for _, img := range worker.Images() {
		if _, err := cache.Lookup(img); errors.Is(err, worker.ErrNotBuilt) {
			logger.Info("building worker image "+img.Name+" (first start on this machine, about a minute); jobs wait until it is ready", "images", dir)
		}
		b, err := cache.Ensure(ctx, img)
		if err != nil {
			return nil, imageError(err, dir)
		}
		logger.Info("worker image ready", "image", b.Name, "debian", b.Debian, "python", b.Python, "r", b.R, "dir", b.Dir)
		built = append(built, b)
	}
	return built, nil
}

// needImagesDir fails when there is no image cache to use.
func needImagesDir(dir string) error {
	if dir == "" {
		return hintError("no directory for worker images", "pass --images DIR or set CLEANROOM_IMAGES")
	}
	return nil
}

// imageError adds what to do to an error of the image cache.
func imageError(err error, dir string) error {
	switch {
	case errors.Is(err, worker.ErrNoMmdebstrap):
		return hintError(err.Error(), "`make deps` installs it, or: apt-get install mmdebstrap")
	case errors.Is(err, context.Canceled):
		return err
	}
	return hintError(err.Error(),
		"images are built with mmdebstrap from a Debian mirror (CLEANROOM_DEBIAN_MIRROR to choose one); `cleanroom images build` shows its output",
		fmt.Sprintf("a broken image can be removed from %s and built again", dir))
}

// workerBinFlag adds --worker-bin, the cleanroom-worker binary that runs
// table validation and SQL inside the sandbox.
func workerBinFlag(fs *flag.FlagSet) *string {
	return fs.String("worker-bin", defaultWorkerBin(), "the cleanroom-worker binary mounted into sandboxes for table validation and SQL (default: beside this binary)")
}

// defaultWorkerBin is cleanroom-worker beside the running binary, where
// `make build` puts it.
func defaultWorkerBin() string {
	exe, err := os.Executable()
	if err != nil {
		return "cleanroom-worker"
	}
	return filepath.Join(filepath.Dir(exe), "cleanroom-worker")
}

// prepareKit lays out the kit mounted into every sandbox, in the image
// cache, where job users can read it.
func prepareKit(imagesDir, workerBin string) (*worker.Kit, error) {
	kit, err := worker.PrepareKit(filepath.Join(imagesDir, "kits"), workerBin)
	if errors.Is(err, worker.ErrNoWorkerBinary) {
		return nil, hintError(err.Error(), "pass --worker-bin PATH, or run `make build`, which builds it beside cleanroom")
	}
	return kit, err
}
