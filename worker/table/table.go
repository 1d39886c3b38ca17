// Package table validates table datasets against their declared columns.
// It runs inside the sandbox, the only place that sees a table's
// plaintext, and writes the table computations will read: the same rows,
// with the columns marked for hashing replaced by their hashes.
package table

import (
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cleanroom-dev/cleanroom"
)

// MaxIssues is how many problems a report lists; it still counts them all.
const MaxIssues = 100

// Report is what the data owner learns about an upload: never a silent accept.
type Report struct {
	Valid      bool    `json:"valid"`
	Rows       int64   `json:"rows"`
	Columns    int     `json:"columns"`
	Bytes      int64   `json:"bytes"`
	ErrorCount int64   `json:"error_count"`
	Errors     []Issue `json:"errors"`
	Hint       string  `json:"hint,omitempty"`
}

// Issue is one problem, located by line (1-based) and column.
type Issue struct {
	Line    int64  `json:"line"`
	Column  string `json:"column,omitempty"`
	Value   string `json:"value,omitempty"`
	Message string `json:"message"`
}

func (r *Report) add(is Issue) {
	r.ErrorCount++
	if len(r.Errors) < MaxIssues {
		if len(is.Value) > 100 {
			is.Value = is.Value[:100] + "..."
		}
		r.Errors = append(r.Errors, is)
	}
}

// isEmail accepts local@domain.tld without spaces: what a data column of
// email addresses holds, not the whole of RFC 5322.
func isEmail(v string) bool {
	local, domain, ok := strings.Cut(v, "@")
	dot := strings.LastIndexByte(domain, '.')
	return ok && local != "" && dot > 0 && dot < len(domain)-1 &&
		!strings.ContainsAny(v, " \t\r\n") && !strings.Contains(domain, "@")
}

// isPhoneE164 accepts + and 2 to 15 digits, the first not 0.
func isPhoneE164(v string) bool {
	if len(v) < 3 || len(v) > 16 || v[0] != '+' || v[1] == '0' {
		return false
	}
	return allBytes(v[1:], func(c byte) bool { return '0' <= c && c <= '9' })
}

func isSHA256Hex(v string) bool {
	return len(v) == 64 && allBytes(v, func(c byte) bool {
		return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
	})
}

func allBytes(s string, ok func(byte) bool) bool {
	for i := 0; i < len(s); i++ {
		if !ok(s[i]) {
			return false
		}
	}
	return true
}

// checkValue returns why v is not of format type t, or "".
func checkValue(t, v string) string {
	switch t {
	case cleanroom.FormatString:
		return ""
	case cleanroom.FormatInteger:
		if _, err := strconv.ParseInt(v, 10, 64); err != nil {
			return "not an integer"
		}
	case cleanroom.FormatFloat:
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return "not a finite number"
		}
	case cleanroom.FormatEmail:
		if !isEmail(v) {
			return "not an email address"
		}
	case cleanroom.FormatDateISO8601:
		if _, err := time.Parse(time.DateOnly, v); err != nil {
			return "not an ISO 8601 date (YYYY-MM-DD)"
		}
	case cleanroom.FormatPhoneE164:
		if !isPhoneE164(v) {
			return "not an E.164 phone number (+ and up to 15 digits)"
		}
	case cleanroom.FormatHashSHA256Hex:
		if !isSHA256Hex(v) {
			return "not a SHA-256 hex digest (64 hex digits)"
		}
	default:
		return fmt.Sprintf("unknown format type %q", t)
	}
	return ""
}

// Validate reads a header-less CSV table from r, checks every row against
// schema, and writes the rows computations see to w (hashing the columns
// that ask for it). It returns the report; an error only when reading or
// writing fails, not for bad data. w receives rows even when the table is
// invalid: the caller discards them then.
func Validate(r io.Reader, w io.Writer, schema cleanroom.Schema) (*Report, error) {
	if problems := schema.Problems(); len(problems) > 0 {
		// Checked when the definition was published; refuse rather than guess.
		return nil, fmt.Errorf("invalid table schema: %s", strings.Join(problems, "; "))
	}
	rep := &Report{Columns: len(schema.Columns), Errors: []Issue{}}
	counter := &countingReader{r: r}
	cr := csv.NewReader(counter)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	cw := csv.NewWriter(w)

	unique := make([]map[comboID]int64, len(schema.UniqueColumnCombinations))
	uniqueIdx := make([][]int, len(schema.UniqueColumnCombinations))
	for i, combo := range schema.UniqueColumnCombinations {
		unique[i] = map[comboID]int64{}
		for _, name := range combo {
			uniqueIdx[i] = append(uniqueIdx[i], columnIndex(schema, name))
		}
	}
	var headerLike bool
	out := make([]string, len(schema.Columns))
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		line := rep.Rows + 1
		var perr *csv.ParseError
		if errors.As(err, &perr) {
			rep.add(Issue{Line: int64(perr.Line), Message: "malformed CSV: " + perr.Err.Error()})
			if errors.Is(perr.Err, csv.ErrQuote) || errors.Is(perr.Err, csv.ErrBareQuote) {
				// The reader cannot find the next row reliably after a broken quote.
				break
			}
			continue
		} else if err != nil {
			return nil, err
		}
		rep.Rows++
		if len(rec) != len(schema.Columns) {
			rep.add(Issue{Line: line, Message: fmt.Sprintf("has %d values, the table has %d columns", len(rec), len(schema.Columns))})
			continue
		}
		bad := 0
		for i, c := range schema.Columns {
			v := rec[i]
			switch {
			case !utf8.ValidString(v):
				rep.add(Issue{Line: line, Column: c.Name, Message: "not UTF-8 text"})
				bad++
			case v == "" && !c.IsNullable:
				rep.add(Issue{Line: line, Column: c.Name, Message: "missing value in a column that is not nullable"})
				bad++
			case v != "":
				if msg := checkValue(c.FormatType, v); msg != "" {
					rep.add(Issue{Line: line, Column: c.Name, Value: v, Message: msg})
					bad++
					if line == 1 && strings.EqualFold(strings.TrimSpace(v), c.Name) {
						headerLike = true
					}
				}
			}
			out[i] = v
			if c.HashWith == cleanroom.HashSHA256Hex && v != "" {
				sum := sha256.Sum256([]byte(v))
				out[i] = hex.EncodeToString(sum[:])
			}
		}
		if bad == 0 {
			for u, idx := range uniqueIdx {
				key := comboKey(rec, idx)
				if first, dup := unique[u][key]; dup {
					rep.add(Issue{Line: line, Column: strings.Join(schema.UniqueColumnCombinations[u], ", "), Message: fmt.Sprintf("duplicates line %d in a unique column combination", first)})
				} else {
					unique[u][key] = line
				}
			}
		}
		if err := cw.Write(out); err != nil {
			return nil, err
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return nil, err
	}
	rep.Bytes = counter.n
	rep.Valid = rep.ErrorCount == 0
	if headerLike {
		rep.Hint = "the first row looks like a header (its values are column names); uploads have no header row: remove it"
	}
	return rep, nil
}

// comboID identifies the values of a unique column combination in 16
// bytes, so checking ten million rows stays within memory. Two 64-bit
// hashes make a false "duplicate" about as likely as a disk error.
type comboID [2]uint64

var comboSeeds = [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}

func comboKey(rec []string, idx []int) comboID {
	var id comboID
	for k, seed := range comboSeeds {
		var h maphash.Hash
		h.SetSeed(seed)
		for _, i := range idx {
			// Length-prefixed, so ("ab","c") and ("a","bc") differ.
			h.WriteString(strconv.Itoa(len(rec[i])))
			h.WriteByte(':')
			h.WriteString(rec[i])
		}
		id[k] = h.Sum64()
	}
	return id
}

func columnIndex(s cleanroom.Schema, name string) int {
	for i, c := range s.Columns {
		if c.Name == name {
			return i
		}
	}
	return -1
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
