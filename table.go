package cleanroom

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Format types of a table column: what each value must look like.
const (
	FormatString        = "STRING"
	FormatInteger       = "INTEGER"
	FormatFloat         = "FLOAT"
	FormatEmail         = "EMAIL"
	FormatDateISO8601   = "DATE_ISO8601"
	FormatPhoneE164     = "PHONE_NUMBER_E164"
	FormatHashSHA256Hex = "HASH_SHA256_HEX"
)

// FormatTypes lists every format type.
var FormatTypes = []string{FormatString, FormatInteger, FormatFloat, FormatEmail, FormatDateISO8601, FormatPhoneE164, FormatHashSHA256Hex}

// HashSHA256Hex is the hashing a column can ask for: the enclave replaces
// each value by its lowercase hex SHA-256 before any computation sees it.
const HashSHA256Hex = "SHA256_HEX"

// Column declares one column of a table data node.
type Column struct {
	Name       string `json:"name"`
	FormatType string `json:"format_type"`
	IsNullable bool   `json:"is_nullable,omitempty"`
	HashWith   string `json:"hash_with,omitempty"`
}

// Schema is what every row of a table must satisfy; it is also the
// schema.json a computation finds beside a table's dataset.csv.
type Schema struct {
	Columns                  []Column   `json:"columns"`
	UniqueColumnCombinations [][]string `json:"unique_column_combinations,omitempty"`
}

// Problems returns what is wrong with the schema, each naming its column.
func (s Schema) Problems() []string {
	var out []string
	if len(s.Columns) == 0 {
		out = append(out, "a table needs at least one column")
	}
	seen := map[string]bool{}
	for _, c := range s.Columns {
		key := strings.ToLower(c.Name)
		switch {
		case strings.TrimSpace(c.Name) == "" || len(c.Name) > 128 || !utf8.ValidString(c.Name) || strings.ContainsAny(c.Name, "\x00\"\n\r"):
			out = append(out, fmt.Sprintf("column %q: invalid name; use 1-128 characters without quotes or line breaks", c.Name))
		case seen[key]:
			out = append(out, fmt.Sprintf("column %q: duplicate name (names are compared without case, as SQL does)", c.Name))
		}
		seen[key] = true
		if !contains(FormatTypes, c.FormatType) {
			out = append(out, fmt.Sprintf("column %q: unknown format_type %q; use one of %s", c.Name, c.FormatType, strings.Join(FormatTypes, ", ")))
		}
		if c.HashWith != "" && c.HashWith != HashSHA256Hex {
			out = append(out, fmt.Sprintf("column %q: unknown hash_with %q; use %s", c.Name, c.HashWith, HashSHA256Hex))
		}
	}
	for _, combo := range s.UniqueColumnCombinations {
		if len(combo) == 0 {
			out = append(out, "a unique column combination is empty")
		}
		for _, name := range combo {
			if !s.hasColumn(name) {
				out = append(out, fmt.Sprintf("unique column combination names unknown column %q", name))
			}
		}
	}
	return out
}

// AsComputed returns the schema of the rows computations read: a hashed
// column holds SHA-256s in hex, whatever it held when uploaded, and says
// so in its format type (its hash_with stays, to say it was hashed).
func (s Schema) AsComputed() Schema {
	c := s
	c.Columns = make([]Column, len(s.Columns))
	for i, col := range s.Columns {
		if col.HashWith != "" {
			col.FormatType = FormatHashSHA256Hex
		}
		c.Columns[i] = col
	}
	return c
}

func (s Schema) hasColumn(name string) bool {
	for _, c := range s.Columns {
		if c.Name == name {
			return true
		}
	}
	return false
}
