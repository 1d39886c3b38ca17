package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cleanroom-dev/cleanroom"
	"github.com/cleanroom-dev/cleanroom/client"
	"go.yaml.in/yaml/v3"
)

// runClient runs one of the client subcommands against a server.
func runClient(ctx context.Context, cmd string, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", os.Getenv("CLEANROOM_URL"), "server URL (env CLEANROOM_URL; default "+client.DefaultURL+")")
	email := fs.String("email", os.Getenv("CLEANROOM_EMAIL"), "your email (env CLEANROOM_EMAIL)")
	token := fs.String("token", os.Getenv("CLEANROOM_TOKEN"), "your API token (env CLEANROOM_TOKEN)")
	dcrID := fs.String("dcr", "", "clean room id")
	draftID := fs.String("draft", "", "draft id")
	node := fs.String("node", "", "node name")
	out := fs.String("o", "", "file to write the result zip to (default NODE.zip)")
	trusted := fs.String("trusted-workers", os.Getenv("CLEANROOM_TRUSTED_WORKERS"), "upload only to a server whose workers are all in this `file`, as `cleanroom specs --json` writes it (env CLEANROOM_TRUSTED_WORKERS)")
	wantArg := map[string]bool{"publish": true, "dcr": true, "audit": true, "upload": true, "job": true, "logs": true, "cancel": true, "result": true, "remove-result": true,
		"draft create": true, "draft update": true, "draft show": true, "draft test": true, "draft publish": true, "draft delete": true, "draft test-data": true}[cmd]
	arg, err := parseWithArg(fs, args, wantArg)
	if err != nil {
		return err
	}
	if *email == "" || *token == "" {
		return hintError("no credentials", "set CLEANROOM_EMAIL and CLEANROOM_TOKEN (or pass --email and --token); the server operator creates a token with `cleanroom users add EMAIL`")
	}
	c := client.New(*url, *email, *token)
	c.Warn = func(message string) { fmt.Fprintln(stderr, "warning: "+message) }
	needNode := func() error {
		if *dcrID == "" || *node == "" {
			return usageError("%s needs --dcr ID and --node NODE", cmd)
		}
		return nil
	}

	switch cmd {
	case "report":
		if err := needNode(); err != nil {
			return err
		}
		rep, err := c.ValidationReport(ctx, *dcrID, *node)
		if err != nil {
			return err
		}
		if err := printJSON(stdout, rep); err != nil {
			return err
		}
		if !rep.Valid {
			return hintError(fmt.Sprintf("the dataset of table %s is not valid: %d problem(s)", *node, rep.ErrorCount), "fix the file and upload it again")
		}
		return nil
	case "drafts", "draft create", "draft update", "draft show", "draft test", "draft publish", "draft delete", "draft test-data":
		return runDraft(ctx, c, cmd, arg, *draftID, *node, stdout, stderr)
	case "publish":
		def, err := readDefinition(arg, true)
		if err != nil {
			return err
		}
		res, err := c.PublishDCR(ctx, def)
		if err != nil {
			return err
		}
		if !res.Created {
			fmt.Fprintln(stderr, "this definition was already published; its id:")
		}
		fmt.Fprintln(stdout, res.ID)
		return nil
	case "dcrs":
		list, err := c.DCRs(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tOWNER\tPUBLISHED")
		for _, d := range list {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", d.ID, d.Name, d.Owner, d.PublishedAt.Local().Format(time.DateTime))
		}
		return tw.Flush()
	case "dcr":
		v, err := c.DCR(ctx, arg)
		if err != nil {
			return err
		}
		return printJSON(stdout, v)
	case "upload":
		if err := needNode(); err != nil {
			return err
		}
		if *trusted != "" {
			if c.TrustedWorkers, err = readTrustedWorkers(*trusted); err != nil {
				return err
			}
		}
		return upload(ctx, c, *dcrID, *node, arg, stdout, stderr)
	case "remove-dataset":
		if err := needNode(); err != nil {
			return err
		}
		if err := c.RemoveDataset(ctx, *dcrID, *node); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "removed the dataset of node %s\n", *node)
		return nil
	case "run":
		if err := needNode(); err != nil {
			return err
		}
		return runAndDownload(ctx, c, *dcrID, *node, *out, stdout, stderr)
	case "jobs":
		if err := needNode(); err != nil {
			return err
		}
		jobs, err := c.Jobs(ctx, *dcrID, *node)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "JOB\tSTATE\tCREATED\tBY\tERROR")
		for _, j := range jobs {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", j.ID, j.State, j.CreatedAt.Local().Format(time.DateTime), j.CreatedBy, j.Error)
		}
		return tw.Flush()
	case "audit":
		return auditLog(ctx, c, arg, stdout)
	case "job":
		j, err := c.Job(ctx, arg)
		if err != nil {
			return err
		}
		return printJSON(stdout, j)
	case "logs":
		logs, err := c.Logs(ctx, arg)
		if err != nil {
			return err
		}
		_, err = io.WriteString(stdout, logs)
		return err
	case "cancel":
		return c.Cancel(ctx, arg)
	case "remove-result":
		if err := c.DeleteResult(ctx, arg); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "deleted the result and logs of job %s\n", arg)
		return nil
	case "result":
		if *out == "" {
			return usageError("result needs -o OUT.zip")
		}
		return download(ctx, c, arg, *out, stdout)
	}
	return usageError("unknown command %q", cmd)
}

// readTrustedWorkers reads the workers a user trusts from a file that
// `cleanroom specs --json` (or GET /api/v1/enclave/specs) wrote.
func readTrustedWorkers(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, hintError(fmt.Sprintf("trusted workers: %v", err), "write the file with `cleanroom specs --json` on the server's machine, and check what it lists")
	}
	var specs struct {
		Workers []client.WorkerSpec `json:"workers"`
	}
	if err := json.Unmarshal(b, &specs); err != nil || len(specs.Workers) == 0 {
		return nil, hintError(fmt.Sprintf("trusted workers: %s is not a list of workers (%v)", path, err), "write the file with `cleanroom specs --json` on the server's machine")
	}
	trusted := map[string]string{}
	for _, w := range specs.Workers {
		if w.Name == "" || len(w.Measurement) != 64 {
			return nil, hintError(fmt.Sprintf("trusted workers: %s lists a worker without a name or a 64-hex measurement", path), "write the file with `cleanroom specs --json` on the server's machine")
		}
		trusted[w.Name] = w.Measurement
	}
	return trusted, nil
}

// readDefinition reads a clean room definition from a JSON or YAML file;
// complete checks every rule, as publishing does, where drafts need not.
func readDefinition(path string, complete bool) (*cleanroom.Definition, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if ext := strings.ToLower(filepath.Ext(path)); ext == ".yaml" || ext == ".yml" {
		var v any
		if err := yaml.Unmarshal(b, &v); err != nil {
			return nil, hintError(fmt.Sprintf("%s is not valid YAML: %v", path, err))
		}
		if b, err = json.Marshal(v); err != nil {
			return nil, hintError(fmt.Sprintf("%s cannot be a definition: %v", path, err), "use string keys only")
		}
	}
	parse := cleanroom.ParseDraftDefinition
	if complete {
		parse = cleanroom.ParseDefinition
	}
	def, err := parse(b)
	if err != nil {
		return nil, hintError(fmt.Sprintf("%s: %s", path, cleanroom.ErrorMessage(err)))
	}
	return def, nil
}

func upload(ctx context.Context, c *client.Client, dcrID, node, path string, stdout, stderr io.Writer) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	bar := newProgress(stderr, "encrypting and uploading "+filepath.Base(path))
	ds, err := c.UploadDataset(ctx, client.Upload{DCRID: dcrID, Node: node, Data: f, Size: fi.Size(), Progress: bar.Update})
	bar.Done()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "published %s to node %s (manifest hash %s)\n", cleanroom.FormatBytes(fi.Size()), ds.Node, ds.ManifestHash)
	return nil
}

func runAndDownload(ctx context.Context, c *client.Client, dcrID, node, out string, stdout, stderr io.Writer) error {
	job, err := c.Run(ctx, dcrID, node)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "job %s queued; waiting for it to end\n", job.ID)
	if job, err = c.Wait(ctx, job.ID); err != nil {
		return err
	}
	switch job.State {
	case cleanroom.JobSucceeded:
	case cleanroom.JobFailed:
		return hintError(fmt.Sprintf("job %s failed: %s", job.ID, job.Error), "`cleanroom logs "+job.ID+"` shows its logs where the node's log policy allows")
	default:
		return fmt.Errorf("job %s was %s: %s", job.ID, job.State, job.Error)
	}
	for _, w := range job.Warnings {
		fmt.Fprintf(stderr, "warning: %s\n", w)
	}
	if out == "" {
		out = node + ".zip"
	}
	return download(ctx, c, job.ID, out, stdout)
}

// download writes a job's result to path, whole or not at all.
func download(ctx context.Context, c *client.Client, jobID, path string, stdout io.Writer) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".cleanroom-download-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	n, err := c.Result(ctx, jobID, tmp)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s (%s)\n", path, cleanroom.FormatBytes(n))
	return nil
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}
