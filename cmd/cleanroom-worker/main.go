// Command cleanroom-worker runs inside the sandbox, next to the data: it
// validates table uploads and runs SQL computations with DuckDB. The
// enclave mounts it read-only into every sandbox that needs it; it is kept
// apart from the cleanroom binary so the server needs no C toolchain.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/cleanroom-dev/cleanroom"
	"github.com/cleanroom-dev/cleanroom/worker/duckdb"
	"github.com/cleanroom-dev/cleanroom/worker/table"
)

const usage = `cleanroom-worker: runs inside the cleanroom sandbox

  cleanroom-worker validate-table --schema FILE --output DIR INPUT.csv
      check a header-less CSV against its schema; write DIR/report.json and,
      hashing the columns that ask for it, DIR/dataset.csv and DIR/schema.json
  cleanroom-worker sql --query FILE --output DIR [--min-rows N] NAME=DIR...
      run a query over tables and SQL results (each DIR holds dataset.csv and
      schema.json); write DIR/dataset.csv and DIR/schema.json
`

// ExitTooFewRows is the exit status of a SQL run whose result is below its
// minimum rows count; the enclave reports it whatever the log policy.
const ExitTooFewRows = 3

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "cleanroom-worker: %v\n", err)
		if errors.Is(err, duckdb.ErrTooFewRows) {
			os.Exit(ExitTooFewRows)
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New("no command\n" + usage)
	}
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	output := fs.String("output", "", "output directory")
	switch args[0] {
	case "validate-table":
		schemaPath := fs.String("schema", "", "schema.json of the table")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if fs.NArg() != 1 || *schemaPath == "" || *output == "" {
			return errors.New("validate-table needs --schema, --output and one input file\n" + usage)
		}
		return validateTable(*schemaPath, fs.Arg(0), *output, stdout)
	case "sql":
		queryPath := fs.String("query", "", "file holding the query")
		minRows := fs.Int64("min-rows", -1, "minimum rows count of the result; -1 for none")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if *queryPath == "" || *output == "" {
			return errors.New("sql needs --query and --output\n" + usage)
		}
		return runSQL(ctx, *queryPath, *output, *minRows, fs.Args(), stdout)
	}
	return fmt.Errorf("unknown command %q\n%s", args[0], usage)
}

func validateTable(schemaPath, input, outDir string, stdout io.Writer) error {
	b, err := os.ReadFile(schemaPath)
	if err != nil {
		return err
	}
	var schema cleanroom.Schema
	if err := json.Unmarshal(b, &schema); err != nil {
		return fmt.Errorf("schema %s: %w", schemaPath, err)
	}
	in, err := os.Open(input)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(filepath.Join(outDir, "dataset.csv"))
	if err != nil {
		return err
	}
	defer out.Close()
	rep, err := table.Validate(in, out, schema)
	if err != nil {
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	if !rep.Valid {
		// An invalid table is never handed on, not even in part.
		os.Remove(out.Name())
	} else if err := writeJSON(filepath.Join(outDir, "schema.json"), schema.AsComputed()); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "validated %d rows: %d problems\n", rep.Rows, rep.ErrorCount)
	return writeJSON(filepath.Join(outDir, "report.json"), rep)
}

func runSQL(ctx context.Context, queryPath, outDir string, minRows int64, inputArgs []string, stdout io.Writer) error {
	query, err := os.ReadFile(queryPath)
	if err != nil {
		return err
	}
	var inputs []duckdb.Input
	for _, a := range inputArgs {
		name, dir, ok := strings.Cut(a, "=")
		if !ok {
			return fmt.Errorf("input %q: want NAME=DIR", a)
		}
		inputs = append(inputs, duckdb.Input{Name: name, Dir: dir})
	}
	opt := duckdb.Options{TempDir: os.TempDir()}
	if minRows >= 0 {
		opt.MinimumRowsCount = &minRows
	}
	n, err := duckdb.Run(ctx, inputs, string(query), outDir, opt)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "query returned %d rows\n", n)
	return nil
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
