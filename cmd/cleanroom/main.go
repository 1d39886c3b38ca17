// Command cleanroom is the cleanroom server (`cleanroom serve`) and its
// command-line client (every other subcommand).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/cleanroom-dev/cleanroom"
)

const usage = `cleanroom: a self-hostable data clean room

Server:
  cleanroom serve [--addr HOST:PORT] [--data DIR]   run the server
  cleanroom users add|list|revoke --data DIR         manage users and API tokens
  cleanroom images build|list [--images DIR]         build and list the worker images scripts run on
  cleanroom specs [--images DIR] [--json]            show each worker: measurement, Python and library versions

Client (connection from --url/--email/--token or CLEANROOM_URL, CLEANROOM_EMAIL, CLEANROOM_TOKEN):
  cleanroom publish FILE                 publish a clean room definition (JSON or YAML)
  cleanroom dcrs                         list your clean rooms
  cleanroom dcr ID                       show a clean room
  cleanroom audit ID                     show a clean room's audit log, once its hash chain is verified
  cleanroom upload --dcr ID --node NODE FILE
                                         encrypt a file here, upload and publish it to a data node
  cleanroom remove-dataset --dcr ID --node NODE
  cleanroom report --dcr ID --node NODE  show the validation report of a table's dataset (its data owners)
  cleanroom run --dcr ID --node NODE [-o OUT.zip]
                                         run a computation, wait, and write its result zip
  cleanroom job ID | logs ID | cancel ID | result ID -o OUT.zip
  cleanroom remove-result ID             delete a job's result and logs for good (the job's analyst)
  cleanroom jobs --dcr ID --node NODE    list a computation's jobs

Drafts (editable until published; visible to you only):
  cleanroom drafts                       list your drafts
  cleanroom draft create FILE            save a definition, complete or not, as a new draft
  cleanroom draft update --draft ID FILE replace a draft's definition
  cleanroom draft show ID
  cleanroom draft test-data --draft ID --node NODE FILE
                                         attach test data (not real data) to a data node
  cleanroom draft test ID                test all computations; exits 1 if one fails
  cleanroom draft publish ID             publish it; the draft is then read-only
  cleanroom draft delete ID

Run 'cleanroom COMMAND -h' for a command's flags.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			printError(os.Stderr, err)
		}
		os.Exit(1)
	}
}

// run executes one subcommand; it is main without the process around it, so
// tests can call it.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return flag.ErrHelp
	}
	cmd, args := args[0], args[1:]
	switch cmd {
	case "serve":
		return runServe(ctx, args, stdout, stderr)
	case "users":
		return runUsers(ctx, args, stdout, stderr)
	case "images":
		return runImages(ctx, args, stdout, stderr)
	case "specs":
		return runSpecs(ctx, args, stdout, stderr)
	case "publish", "dcrs", "dcr", "audit", "upload", "remove-dataset", "report", "run", "job", "jobs", "logs", "cancel", "result", "remove-result", "drafts":
		return runClient(ctx, cmd, args, stdout, stderr)
	case "draft":
		if len(args) == 0 {
			return hintError("draft needs a command", "cleanroom draft create|update|show|test|publish|delete|test-data ...")
		}
		return runClient(ctx, "draft "+args[0], args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return usageError("unknown command %q", cmd)
}

// cliError is an error with hints for the person at the terminal.
type cliError struct {
	msg   string
	hints []string
}

func (e *cliError) Error() string { return e.msg }

func usageError(format string, args ...any) error {
	return &cliError{msg: fmt.Sprintf(format, args...)}
}

func hintError(msg string, hints ...string) error { return &cliError{msg: msg, hints: hints} }

// printError prints "cleanroom: message" and any hints, as users of the
// command line expect from a Unix tool.
func printError(w io.Writer, err error) {
	var ce *cliError
	var ae *cleanroom.Error
	switch {
	case errors.As(err, &ce):
		fmt.Fprintf(w, "cleanroom: %s\n", ce.msg)
		for _, h := range ce.hints {
			fmt.Fprintf(w, "hint: %s\n", h)
		}
	case errors.As(err, &ae):
		fmt.Fprintf(w, "cleanroom: %s (%s)\n", ae.Message, ae.Code)
		if ae.Code == cleanroom.EUNAUTHORIZED {
			fmt.Fprintf(w, "hint: check --email/--token or CLEANROOM_EMAIL/CLEANROOM_TOKEN; the server operator creates tokens with `cleanroom users add EMAIL`\n")
		}
	default:
		fmt.Fprintf(w, "cleanroom: %v\n", err)
	}
}
