package chaos

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ratingslab/lab/lab/journal"
	"github.com/ratingslab/lab/lab/report"
)

// The verdict `lab chaos run` prints and the verdict the report renders
// are the same table, line for line: every phase, probe, tolerance, cell
// and the verdict row.
func TestTerminalAndReportVerdictsAgreeLineForLine(t *testing.T) {
	for _, fixture := range []string{"journal.json", "journal-breakers-off.json"} {
		path := filepath.Join("..", "report", "testdata", fixture)
		j, err := journal.Read(path)
		if err != nil {
			t.Fatal(err)
		}
		var term bytes.Buffer
		PrintVerdict(&term, j, path)
		terminal := terminalRows(term.String())

		out, err := report.RenderFile(path, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		md, _ := os.ReadFile(out.Markdown)
		rendered := markdownRows(string(md))

		if len(terminal) == 0 || len(terminal) != len(rendered) {
			t.Fatalf("%s: %d terminal lines, %d report lines\nterminal:\n%s\nreport:\n%s", fixture, len(terminal), len(rendered), strings.Join(terminal, "\n"), strings.Join(rendered, "\n"))
		}
		for i := range terminal {
			if terminal[i] != rendered[i] {
				t.Errorf("%s line %d:\nterminal %s\nreport   %s", fixture, i+1, terminal[i], rendered[i])
			}
		}
	}
}

var columns = regexp.MustCompile(`\s{2,}`)

// terminalRows are the hypothesis table's lines, cells joined by " | ".
func terminalRows(out string) []string {
	var rows []string
	in := false
	for _, l := range strings.Split(out, "\n") {
		switch {
		case strings.HasPrefix(l, "  PHASE"):
			in = true
		case !in:
			continue
		case strings.TrimSpace(l) == "":
			return rows
		}
		cells := columns.Split(strings.TrimSpace(l), -1)
		if strings.HasPrefix(strings.TrimSpace(l), "VERDICT") {
			cells = append([]string{"VERDICT", "", ""}, cells[1:]...)
		}
		rows = append(rows, strings.Join(cells, " | "))
	}
	return rows
}

// markdownRows are the report's hypothesis table lines in the same form.
func markdownRows(md string) []string {
	var rows []string
	in := false
	for _, l := range strings.Split(md, "\n") {
		switch {
		case strings.HasPrefix(l, "| PHASE |"):
			in = true
		case !in:
			continue
		case !strings.HasPrefix(l, "|"):
			return rows
		case strings.HasPrefix(l, "|---"):
			continue
		}
		l = strings.ReplaceAll(l, `\|`, "\x00") // an escaped | inside a cell
		cells := strings.Split(strings.TrimSpace(l), "|")
		cells = cells[1 : len(cells)-1]
		for i, c := range cells {
			cells[i] = strings.ReplaceAll(strings.TrimSpace(c), "\x00", "|")
		}
		rows = append(rows, strings.Join(cells, " | "))
	}
	return rows
}
