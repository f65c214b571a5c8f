package webserver

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"net/http"

	"github.com/ratingslab/lab/services/model"
)

//go:embed templates/page.html
var templateFS embed.FS

var pageTemplate = template.Must(template.New("page.html").Funcs(template.FuncMap{
	"average": func(m model.RatedMovie) string {
		if m.Count == 0 {
			return "–"
		}
		return fmt.Sprintf("%.2f", m.Average)
	},
}).ParseFS(templateFS, "templates/page.html"))

type pageData struct {
	Variant  string
	Error    string
	Movies   []model.RatedMovie
	Total    int
	Limit    int
	From, To int
	HasPrev  bool
	HasNext  bool

	PrevOffset, NextOffset int
}

// handlePage renders the movie list and the rating form. The page is served
// even when the backend is down (with the error and a 503), so a user sees why.
func (s *server) handlePage() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		data := pageData{Variant: s.opts.Variant}
		status := http.StatusOK
		page, err := ParsePage(r.URL.RawQuery, false)
		if err != nil {
			status, data.Error = http.StatusBadRequest, err.Error()
			page = Page{Limit: DefaultPageLimit}
		} else {
			ctx, cancel := context.WithTimeout(r.Context(), s.opts.BackendTimeout)
			movies, total, err := s.backend.Movies(ctx, page.Offset, page.Limit)
			cancel()
			if err != nil {
				status, data.Error = pageError(err)
			}
			data.Movies, data.Total = movies, total
		}
		data.Limit = page.Limit
		data.From, data.To = page.Offset+1, page.Offset+len(data.Movies)
		if len(data.Movies) == 0 {
			data.From = page.Offset
		}
		data.HasPrev, data.PrevOffset = page.Offset > 0, max(0, page.Offset-page.Limit)
		data.HasNext, data.NextOffset = page.Offset+len(data.Movies) < data.Total, page.Offset+page.Limit

		var buf bytes.Buffer
		if err := pageTemplate.Execute(&buf, data); err != nil {
			s.log.Error("rendering page", "err", err)
			writeError(w, http.StatusInternalServerError, "rendering page failed")
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(status)
		_, _ = w.Write(buf.Bytes())
	})
}

func pageError(err error) (int, string) {
	var unavailable *UnavailableError
	if errors.As(err, &unavailable) || errors.Is(err, context.DeadlineExceeded) {
		return http.StatusServiceUnavailable, "Movies are unavailable right now: " + err.Error()
	}
	return http.StatusInternalServerError, "Movies could not be loaded: " + err.Error()
}
