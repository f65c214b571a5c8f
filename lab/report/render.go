package report

import (
	"bytes"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"os"
	"path/filepath"
	"strings"
	texttemplate "text/template"

	"github.com/ratingslab/lab/lab/journal"
)

//go:embed templates/*.tmpl
var templateFS embed.FS

var (
	htmlTmpl = htmltemplate.Must(htmltemplate.New("report.html.tmpl").Funcs(htmltemplate.FuncMap{
		"dataURI": func(c chartCell) htmltemplate.URL {
			return htmltemplate.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(c.png))
		},
		"hasPrefix": strings.HasPrefix,
	}).ParseFS(templateFS, "templates/report.html.tmpl"))
	mdTmpl = texttemplate.Must(texttemplate.New("report.md.tmpl").Funcs(texttemplate.FuncMap{
		"md": mdEscape,
	}).ParseFS(templateFS, "templates/report.md.tmpl"))
)

// File names inside a report directory.
const (
	HTMLFile     = "index.html"
	MarkdownFile = "report.md"
	ChartsDir    = "charts"
)

// Output says where a report was written.
type Output struct {
	Dir      string
	HTML     string
	Markdown string
	Charts   []string
}

// DefaultDir is where a report of the journal at path goes when no
// directory is given: beside it, named after it ("run.json" → "run.report").
func DefaultDir(path string) string {
	return filepath.Join(filepath.Dir(path), journalName(path)+".report")
}

// DefaultCompareDir is where a comparison of two journals goes by default.
func DefaultCompareDir(a, b string) string {
	return filepath.Join(filepath.Dir(a), "compare-"+journalName(a)+"-vs-"+journalName(b)+".report")
}

// RenderFile reads the journal at path and renders it into dir.
func RenderFile(path, dir string) (Output, error) {
	j, err := journal.Read(path)
	if err != nil {
		return Output{}, err
	}
	return render(dir, run{Name: journalName(path), Journal: &j})
}

// RenderJournal renders a journal held in memory (the chaos runner's, right
// after writing it); name is how the report calls it.
func RenderJournal(j journal.Journal, name, dir string) (Output, error) {
	if err := j.Validate(); err != nil {
		return Output{}, fmt.Errorf("journal %s: %w", name, err)
	}
	return render(dir, run{Name: name, Journal: &j})
}

// CompareFiles reads two journals and renders them side by side into dir.
func CompareFiles(a, b, dir string) (Output, error) {
	ja, err := journal.Read(a)
	if err != nil {
		return Output{}, err
	}
	jb, err := journal.Read(b)
	if err != nil {
		return Output{}, err
	}
	na, nb := journalName(a), journalName(b)
	if na == nb {
		na, nb = a, b // same file names in different places: show the paths
	}
	return render(dir, run{Label: "A", Name: na, Journal: &ja}, run{Label: "B", Name: nb, Journal: &jb})
}

// render writes the report of one run, or the comparison of two, into dir:
// index.html (self-contained), report.md and charts/*.png (for the
// Markdown). Files of an earlier rendering in dir are replaced.
func render(dir string, runs ...run) (Output, error) {
	if len(runs) == 0 || len(runs) > 2 {
		return Output{}, errors.New("report: one journal, or two to compare")
	}
	doc, err := buildDocument(runs)
	if err != nil {
		return Output{}, err
	}
	var html, md bytes.Buffer
	if err := htmlTmpl.Execute(&html, doc); err != nil {
		return Output{}, fmt.Errorf("report: %w", err)
	}
	if err := mdTmpl.Execute(&md, doc); err != nil {
		return Output{}, fmt.Errorf("report: %w", err)
	}
	out := Output{Dir: dir, HTML: filepath.Join(dir, HTMLFile), Markdown: filepath.Join(dir, MarkdownFile)}
	// Stale charts of an earlier rendering would be misleading.
	if err := os.RemoveAll(filepath.Join(dir, ChartsDir)); err != nil {
		return Output{}, fmt.Errorf("report: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(dir, ChartsDir), 0o755); err != nil {
		return Output{}, fmt.Errorf("report: %w", err)
	}
	for _, g := range doc.Grids {
		for _, r := range g.Rows {
			for _, c := range r.Cells {
				if c.File == "" {
					continue
				}
				p := filepath.Join(dir, filepath.FromSlash(c.File))
				if err := os.WriteFile(p, c.png, 0o644); err != nil {
					return Output{}, fmt.Errorf("report: %w", err)
				}
				out.Charts = append(out.Charts, p)
			}
		}
	}
	if err := os.WriteFile(out.Markdown, md.Bytes(), 0o644); err != nil {
		return Output{}, fmt.Errorf("report: %w", err)
	}
	if err := os.WriteFile(out.HTML, html.Bytes(), 0o644); err != nil {
		return Output{}, fmt.Errorf("report: %w", err)
	}
	return out, nil
}

// mdEscape keeps a value inside one Markdown table cell.
func mdEscape(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	s = strings.ReplaceAll(s, "\r", "")
	return strings.ReplaceAll(s, "\n", " ")
}
