package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"text/tabwriter"

	"github.com/cleanroom-dev/cleanroom"
	"github.com/cleanroom-dev/cleanroom/sqlite"
)

// runUsers manages users directly in the server's database, so it works
// on the server's machine whether or not the server runs.
func runUsers(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return hintError("users needs a command", "cleanroom users add EMAIL --data DIR | users list --data DIR | users revoke EMAIL --data DIR")
	}
	cmd, args := args[0], args[1:]
	if cmd != "add" && cmd != "list" && cmd != "revoke" {
		return usageError("unknown users command %q; use add, list or revoke", cmd)
	}
	flags := flag.NewFlagSet("users "+cmd, flag.ContinueOnError)
	flags.SetOutput(stderr)
	dataDir := flags.String("data", defaultDataDir(), "the server's data directory")
	email, err := parseWithArg(flags, args, cmd != "list")
	if err != nil {
		return err
	}
	path := filepath.Join(*dataDir, dbFile)
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		// A mistyped --data must not go unnoticed: say where the new database is.
		fmt.Fprintf(stderr, "no database in %s yet; creating one (the server uses it with --data %s)\n", *dataDir, *dataDir)
		if err := os.MkdirAll(*dataDir, 0o700); err != nil {
			return err
		}
	}
	db := sqlite.NewDB(path)
	if err := db.Open(); err != nil {
		return hintError(fmt.Sprintf("open the database in %s: %v", *dataDir, err), "pass the server's --data directory")
	}
	defer db.Close()

	switch cmd {
	case "add":
		if err := cleanroom.CheckEmail(email); err != nil {
			return err
		}
		err := db.CreateUser(ctx, email)
		if err != nil && cleanroom.ErrorCode(err) != cleanroom.ECONFLICT {
			return err
		}
		token, hash := cleanroom.NewToken()
		if err := db.AddToken(ctx, email, hash); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "API token for %s (shown once; the server keeps only its hash):\n", email)
		fmt.Fprintln(stdout, token)
		return nil
	case "list":
		users, err := db.ListUsers(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "EMAIL\tCREATED\tACTIVE TOKENS")
		for _, u := range users {
			fmt.Fprintf(tw, "%s\t%s\t%d\n", u.Email, u.CreatedAt.Format("2006-01-02 15:04"), u.ActiveTokens)
		}
		return tw.Flush()
	case "revoke":
		n, err := db.RevokeTokens(ctx, email)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "revoked %d token(s) of %s\n", n, email)
		return nil
	}
	return nil
}

// parseWithArg parses flags that may stand before or after one positional
// argument, as in `users add EMAIL --data DIR`.
func parseWithArg(fs *flag.FlagSet, args []string, wantArg bool) (string, error) {
	if err := fs.Parse(args); err != nil {
		return "", err
	}
	var pos []string
	for fs.NArg() > 0 {
		pos = append(pos, fs.Arg(0))
		if err := fs.Parse(fs.Args()[1:]); err != nil {
			return "", err
		}
	}
	switch {
	case wantArg && len(pos) != 1:
		return "", usageError("%s takes exactly one argument", fs.Name())
	case !wantArg && len(pos) != 0:
		return "", usageError("%s takes no argument", fs.Name())
	case wantArg:
		return pos[0], nil
	}
	return "", nil
}
