package main

import (
	"testing"

	"github.com/cleanroom-dev/cleanroom"
)

// An R script reads a raw node and a table and writes output, on the R
// worker image with the same mounts as Python.
func TestRComputation(t *testing.T) {
	s := startServer(t, "")
	owner := s.addUser("owner@example.com")
	def := &cleanroom.Definition{Name: "r", Owner: "owner@example.com",
		Nodes: []cleanroom.Node{
			{Name: "words", Kind: cleanroom.NodeRaw, IsRequired: true},
			{Name: "scores", Kind: cleanroom.NodeTable, IsRequired: true, Columns: []cleanroom.Column{{Name: "score", FormatType: cleanroom.FormatFloat}}},
			{Name: "stats", Kind: cleanroom.NodeR, Dependencies: []string{"words", "scores"}, EnableLogsOnError: true,
				Files: []cleanroom.File{{Name: "helpers.R", Content: "shout <- function(x) toupper(x)\n"}},
				Script: `
source("/input/code/helpers.R")
words <- scan("/input/words", what = character(), quiet = TRUE)
scores <- read.csv("/input/scores/dataset.csv", header = FALSE, col.names = "score")
dir.create("/output/summary")
writeLines(c(shout(words[1]), length(words), format(mean(scores$score), nsmall = 2)), "/output/summary/r.txt")
`},
		},
		Participants: []cleanroom.Participant{{Email: "owner@example.com", DataOwnerOf: []string{"words", "scores"}, AnalystOf: []string{"stats"}}},
	}
	id := publish(t, owner, def)
	uploadString(t, owner, id, "words", "hello brave new world")
	uploadString(t, owner, id, "scores", "1.5\n2.5\n")
	files := resultFiles(t, owner, runJob(t, owner, id, "stats"))
	if got := files["summary/r.txt"]; got != "HELLO\n4\n2.00\n" {
		t.Fatalf("summary/r.txt = %q (files %v)", got, files)
	}
}
