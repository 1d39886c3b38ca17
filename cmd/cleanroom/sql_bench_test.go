package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/cleanroom-dev/cleanroom"
	"github.com/cleanroom-dev/cleanroom/client"
)

// BenchmarkSQLvsPandas runs one aggregation over the same table as a SQL
// computation (DuckDB) and as a Python computation (pandas through
// cleanroom_util), alternating the two, and reports each job's time and
// their ratio, plus the throughput of validating the table when it was
// published. CLEANROOM_BENCH_ROWS sets the rows (default 10 million).
func BenchmarkSQLvsPandas(b *testing.B) {
	rows := 10_000_000
	if v, err := strconv.Atoi(os.Getenv("CLEANROOM_BENCH_ROWS")); err == nil {
		rows = v
	}
	path := filepath.Join(b.TempDir(), "sales.csv")
	f, _ := os.Create(path)
	w := bufio.NewWriterSize(f, 1<<20)
	for i := range rows {
		fmt.Fprintf(w, "%d,%d,%d.%02d\n", i, i%50, i%997, i%100)
	}
	w.Flush()
	f.Close()
	fi, _ := os.Stat(path)

	s := startServer(b, "", "--job-memory", "8GiB")
	owner := s.addUser("owner@example.com")
	id := publish(b, owner, &cleanroom.Definition{
		Name: "sales", Owner: "owner@example.com",
		Nodes: []cleanroom.Node{
			{Name: "sales", Kind: cleanroom.NodeTable, IsRequired: true, Columns: []cleanroom.Column{
				{Name: "id", FormatType: cleanroom.FormatInteger},
				{Name: "region", FormatType: cleanroom.FormatInteger},
				{Name: "amount", FormatType: cleanroom.FormatFloat},
			}},
			{Name: "by_region_sql", Kind: cleanroom.NodeSQL, Dependencies: []string{"sales"}, Script: `
				SELECT region, count(*) AS n, sum(amount) AS total, avg(amount) AS mean
				FROM sales GROUP BY region ORDER BY region`},
			{Name: "by_region_pandas", Kind: cleanroom.NodePython, Dependencies: []string{"sales"}, EnableLogsOnError: true, Script: `
import cleanroom_util
df = cleanroom_util.sql.read_sql_data_from_dir("/input/sales")
out = df.groupby("region")["amount"].agg(n="count", total="sum", mean="mean").reset_index()
cleanroom_util.sql.write_sql_data_to_dir(out, "/output")
`},
		},
		Participants: []cleanroom.Participant{{Email: "owner@example.com", DataOwnerOf: []string{"sales"}, AnalystOf: []string{"by_region_sql", "by_region_pandas"}}},
	})
	ctx := context.Background()
	data, _ := os.Open(path)
	ds, err := owner.UploadDataset(ctx, client.Upload{DCRID: id, Node: "sales", Data: data, Size: fi.Size()})
	data.Close()
	if err != nil {
		b.Fatal(err)
	}
	v, err := owner.Wait(ctx, ds.ValidationJob)
	if err != nil || v.State != cleanroom.JobSucceeded {
		b.Fatalf("validation: %+v %v", v, err)
	}
	validation := v.FinishedAt.Sub(*v.StartedAt)

	jobTime := func(node string) time.Duration {
		job := runJob(b, owner, id, node)
		if job.State != cleanroom.JobSucceeded {
			b.Fatalf("%s: %s", node, job.Error)
		}
		return job.FinishedAt.Sub(*job.StartedAt)
	}
	var sql, pandas time.Duration
	b.ResetTimer()
	for i := range b.N {
		if i%2 == 0 {
			sql += jobTime("by_region_sql")
			pandas += jobTime("by_region_pandas")
		} else {
			pandas += jobTime("by_region_pandas")
			sql += jobTime("by_region_sql")
		}
	}
	b.ReportMetric(sql.Seconds()/float64(b.N), "sql-s/run")
	b.ReportMetric(pandas.Seconds()/float64(b.N), "pandas-s/run")
	b.ReportMetric(pandas.Seconds()/sql.Seconds(), "pandas/sql")
	b.ReportMetric(float64(fi.Size())/1e6/validation.Seconds(), "validation-MB/s")
	b.ReportMetric(float64(fi.Size())/1e6, "table-MB")
}
