package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
)

// manifestReserved are the columns of a `synapse manifest`/`synapse sync`
// TSV that are not annotations (synapseutils.sync: REQUIRED_FIELDS,
// FILE_CONSTRUCTOR_FIELDS, STORE_FUNCTION_FIELDS, PROVENANCE_FIELDS).
var manifestReserved = []string{"path", "parent", "name", "id", "synapseStore", "contentType",
	"used", "executed", "activityName", "activityDescription", "forceVersion"}

// manifestProvenance are the reserved columns that describe an activity.
var manifestProvenance = []string{"used", "executed", "activityName", "activityDescription"}

// manifestRow is one file of a manifest.
type manifestRow struct {
	line        int               // 1-based line in the file
	parent      string            // parent Synapse ID
	name        string            // entity name: the name column, or the base name of path
	id          string            // the id column, if any
	annotations map[string]string // column → cell text (empty cells left out)
	provenance  bool              // a provenance column is set
}

// parseManifest reads a manifest TSV: a header line with at least path and
// parent, then one line per file. Cells are taken as pandas (which the
// official client uses) reads them: a cell in double quotes loses them, and
// "" inside stands for one quote. Empty cells set nothing.
func parseManifest(r io.Reader) ([]manifestRow, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	var header []string
	var rows []manifestRow
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimRight(sc.Text(), "\r")
		if header == nil {
			header = strings.Split(text, "\t")
			for i := range header {
				header[i] = unquoteCell(strings.TrimSpace(header[i]))
			}
			for _, need := range []string{"path", "parent"} {
				if !slices.Contains(header, need) {
					return nil, fmt.Errorf("line 1: the manifest has no %q column (a manifest from synapse manifest has path and parent)", need)
				}
			}
			continue
		}
		if strings.TrimSpace(text) == "" {
			continue
		}
		cells := strings.Split(text, "\t")
		if len(cells) > len(header) {
			return nil, fmt.Errorf("line %d: %d cells, but the header has %d columns", line, len(cells), len(header))
		}
		row := manifestRow{line: line, annotations: map[string]string{}}
		var path string
		for i, col := range header {
			cell := ""
			if i < len(cells) {
				cell = unquoteCell(cells[i])
			}
			switch {
			case col == "path":
				path = strings.TrimSpace(cell)
			case col == "parent":
				row.parent = strings.TrimSpace(cell)
			case col == "name":
				row.name = strings.TrimSpace(cell)
			case col == "id":
				row.id = strings.TrimSpace(cell)
			case slices.Contains(manifestProvenance, col):
				if strings.TrimSpace(cell) != "" {
					row.provenance = true
				}
			case slices.Contains(manifestReserved, col):
			case strings.TrimSpace(cell) != "":
				row.annotations[col] = cell
			}
		}
		if row.name == "" {
			row.name = filepath.Base(path)
		}
		if row.parent == "" || row.name == "" || row.name == "." {
			return nil, fmt.Errorf("line %d: a row needs a parent and a path or name", line)
		}
		rows = append(rows, row)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if header == nil {
		return nil, errors.New("the manifest is empty")
	}
	return rows, nil
}

// unquoteCell removes CSV quoting from a whole cell, as pandas does.
func unquoteCell(s string) string {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		return strings.ReplaceAll(s[1:len(s)-1], `""`, `"`)
	}
	return s
}
