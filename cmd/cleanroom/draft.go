package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cleanroom-dev/cleanroom"
	"github.com/cleanroom-dev/cleanroom/client"
)

// runDraft runs the draft commands: cmd is "drafts" or "draft <verb>";
// arg is the positional argument, a file or a draft id.
func runDraft(ctx context.Context, c *client.Client, cmd, arg, draftID, node string, stdout, stderr io.Writer) error {
	switch cmd {
	case "drafts":
		list, err := c.Drafts(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "DRAFT\tNAME\tUPDATED\tPUBLISHED AS")
		for _, d := range list {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", d.ID, d.Definition.Name, d.UpdatedAt.Local().Format(time.DateTime), d.PublishedID)
		}
		return tw.Flush()
	case "draft create":
		def, err := readDefinition(arg, false)
		if err != nil {
			return err
		}
		d, err := c.CreateDraft(ctx, def)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, d.ID)
		return nil
	case "draft update":
		if draftID == "" {
			return usageError("draft update needs --draft ID and a definition file")
		}
		def, err := readDefinition(arg, false)
		if err != nil {
			return err
		}
		_, err = c.UpdateDraft(ctx, draftID, def)
		return err
	case "draft show":
		d, err := c.Draft(ctx, arg)
		if err != nil {
			return err
		}
		return printJSON(stdout, d)
	case "draft test-data":
		if draftID == "" || node == "" {
			return usageError("draft test-data needs --draft ID, --node NODE and a file")
		}
		f, err := os.Open(arg)
		if err != nil {
			return err
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		return c.PutTestDataset(ctx, draftID, node, f, fi.Size())
	case "draft test":
		fmt.Fprintln(stderr, "testing every computation on empty inputs or test data")
		t, err := c.TestDraft(ctx, arg)
		if err != nil {
			return err
		}
		return printDraftTest(t, stdout)
	case "draft publish":
		res, err := c.PublishDraft(ctx, arg)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, res.ID)
		return nil
	case "draft delete":
		return c.DeleteDraft(ctx, arg)
	}
	return usageError("unknown command %q", cmd)
}

// printDraftTest shows a draft test node by node, with the logs of each
// failure; it returns an error when a node did not pass.
func printDraftTest(t *cleanroom.DraftTest, w io.Writer) error {
	if t.Error != "" {
		return fmt.Errorf("the test did not run: %s", t.Error)
	}
	var failed []string
	for _, n := range t.Nodes {
		line := ""
		if n.Line > 0 {
			line = fmt.Sprintf(" (line %d)", n.Line)
		}
		fmt.Fprintf(w, "%-8s %s %s%s\n", n.Status, n.Kind, n.Node, line)
		if n.Status == cleanroom.NodeTestOK {
			continue
		}
		failed = append(failed, n.Node)
		fmt.Fprintf(w, "         %s\n", n.Error)
		if n.Status == cleanroom.NodeTestFailed && n.Logs != "" {
			for _, l := range strings.Split(strings.TrimRight(n.Logs, "\n"), "\n") {
				fmt.Fprintf(w, "         | %s\n", l)
			}
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d node(s) did not pass: %s", len(failed), strings.Join(failed, ", "))
	}
	return nil
}
