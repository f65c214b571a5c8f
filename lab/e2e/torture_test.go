package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/ratingslab/lab/lab/labtest"
	"github.com/ratingslab/lab/services/lib/kafkaio"
	"github.com/ratingslab/lab/services/model"
)

// tally counts one surface of the torture for docs/reliability.md.
type tally struct {
	mu                          sync.Mutex
	cases, refused, lost, dupes map[string]int
	order                       []string
}

func newTally() *tally {
	return &tally{cases: map[string]int{}, refused: map[string]int{}, lost: map[string]int{}, dupes: map[string]int{}}
}

func (y *tally) add(surface string, refused bool) {
	y.mu.Lock()
	defer y.mu.Unlock()
	if _, ok := y.cases[surface]; !ok {
		y.order = append(y.order, surface)
	}
	y.cases[surface]++
	if refused {
		y.refused[surface]++
	}
}

func (y *tally) print(t *testing.T) {
	var b bytes.Buffer
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "surface\tcases\tas specified\tlost\tduplicates")
	for _, s := range y.order {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\n", s, y.cases[s], y.refused[s], y.lost[s], y.dupes[s])
	}
	tw.Flush()
	t.Logf("torture figures (docs/reliability.md):\n%s", b.String())
}

// raw sends one request as written and returns status, content type, body
// and Location (no redirect followed).
func raw(t *testing.T, method, url, contentType string, body []byte) (int, string, string, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	c := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, res.Header.Get("Content-Type"), string(b), res.Header.Get("Location")
}

// totalCount is the sum of every movie's count in a variant's public view.
func totalCount(t *testing.T, base string) int64 {
	t.Helper()
	var n int64
	for offset := 0; ; offset += 500 {
		var page struct {
			Movies []struct{ Count int64 } `json:"movies"`
			Total  int                     `json:"total"`
		}
		if code, err := labtest.HTTPJSON(http.MethodGet, fmt.Sprintf("%s/api/movies?offset=%d&limit=500", base, offset), nil, &page); err != nil || code != http.StatusOK {
			t.Fatalf("GET %s/api/movies: %d %v", base, code, err)
		}
		for _, m := range page.Movies {
			n += m.Count
		}
		if offset+500 >= page.Total {
			return n
		}
	}
}

// The reliability torture of [L] items 5–8, as a test: bad input on every
// surface a user or a script reaches, request ids reused and retried, and
// kills under load with clients that retry with the same request id. Every
// case must be refused as specified (4xx JSON naming the field, a non-zero
// exit naming file, line and field) with nothing written, and no
// acknowledged rating may be lost or doubled. `go test ./lab/e2e -run
// TestTorture -v` prints the figures kept in docs/reliability.md.
func TestTorture(t *testing.T) {
	labtest.SkipUnlessE2E(t)
	l := labtest.Start(t, "--no-prometheus")
	bases := map[string]string{"rpc": "http://" + l.Ports.WebserverRPC(), "stream": "http://" + l.Ports.WebserverStream()}
	variants := []string{"rpc", "stream"}
	y := newTally()
	defer y.print(t)

	t.Run("API bodies", func(t *testing.T) { tortureBodies(t, bases, variants, y) })
	t.Run("API queries and paths", func(t *testing.T) { tortureQueriesAndPaths(t, bases, variants, y) })
	t.Run("request ids", func(t *testing.T) { tortureRequestIDs(t, l, bases, variants, y) })
	t.Run("files and flags", func(t *testing.T) { tortureFiles(t, l, bases, y) })
	t.Run("kills under load with retrying clients", func(t *testing.T) { tortureKills(t, l, bases, variants, y) })
}

func tortureBodies(t *testing.T, bases map[string]string, variants []string, y *tally) {
	big := `{"movie_id": 1, "rating": 5, "request_id": "x", "pad": "` + strings.Repeat("p", 70<<10) + `"}`
	bodies := []string{
		`{"movie_id": 66, "movie_id": 67, "rating": 5}`,
		`{"movie_id": 1, "rating": 5, "rating": 9}`,
		`{"movie_id": 1, "rating": 5, "request_id": "a", "request_id": "b"}`,
		`{"movie_id": 1, "rating": 5, "user_id": 1, "user_id": 2}`,
		`{"movie_id": 1, "rating": 5, "request_id": "nul\u0000"}`,
		`{"movie_id": 1, "rating": 5, "request_id": "line\nbreak"}`,
		`{"movie_id": 1, "rating": 5, "request_id": "tab\t"}`,
		`{"movie_id": 1, "rating": 5, "request_id": "esc\u001b[31m"}`,
		`{"movie_id": 1, "rating": 5, "request_id": "café"}`,
		`{"movie_id": 1, "rating": 5, "request_id": "a b"}`,
		`{"movie_id": 1, "rating": 5, "request_id": "a/b"}`,
		`{"movie_id": 1, "rating": 5, "request_id": "` + strings.Repeat("r", 129) + `"}`,
		`{"movie_id": 1, "rating": 5, "request_id": ""}`,
		`{"movie_id": "1", "rating": 5}`,
		`{"movie_id": 1.5, "rating": 5}`,
		`{"movie_id": 0, "rating": 5}`,
		`{"movie_id": -1, "rating": 5}`,
		`{"movie_id": 99999999999999999999, "rating": 5}`,
		`{"movie_id": 1e3, "rating": 5}`,
		`{"movie_id": true, "rating": 5}`,
		`{"movie_id": [1], "rating": 5}`,
		`{"movie_id": {"id": 1}, "rating": 5}`,
		`{"rating": 5}`,
		`{"movie_id": 1, "rating": 0}`,
		`{"movie_id": 1, "rating": 10.05}`,
		`{"movie_id": 1, "rating": 7.55}`,
		`{"movie_id": 1, "rating": 1e400}`,
		`{"movie_id": 1, "rating": -0}`,
		`{"movie_id": 1, "rating": "7"}`,
		`{"movie_id": 1, "rating": null}`,
		`{"movie_id": 1, "rating": 7.0000000000000001}`,
		`{"movie_id": 1, "rating": 5, "user_id": -1}`,
		`{"movie_id": 1, "rating": 5, "user_id": 1.5}`,
		`{"movie_id": 1, "rating": 5, "user_id": "u"}`,
		``, `   `, `[]`, `null`, `"str"`, `{`, `rating=5`,
		`{"movie_id": 1, "rating": 5} {"movie_id": 1, "rating": 5}`,
		`{"movie_id": 1, "rating": 5}x`,
		"\ufeff{\"movie_id\": 1, \"rating\": 5}",
		`{"movie_id": 1, "rating": 5, "stars": 3}`,
		`{"MOVIE_ID": 1, "rating": 5}`,
		`{"movie_id": 1, "rating": 5, "": 1}`,
		big,
	}
	before := map[string]int64{}
	for _, v := range variants {
		before[v] = totalCount(t, bases[v])
	}
	for _, v := range variants {
		for _, body := range bodies {
			code, ct, resp, _ := raw(t, http.MethodPost, bases[v]+"/api/ratings", "application/json", []byte(body))
			var e struct{ Error string }
			ok := code == http.StatusBadRequest && ct == "application/json" && json.Unmarshal([]byte(resp), &e) == nil &&
				strings.Contains(e.Error, ": ")
			if !ok {
				t.Errorf("%s POST %.80q: %d %s %.200s, want 400 with a JSON error naming the field", v, body, code, ct, resp)
			}
			y.add("POST /api/ratings bodies", ok)
		}
	}
	// Nothing was written by any of them (the stream variant applies
	// asynchronously: give a wrongly produced rating time to show).
	time.Sleep(2 * time.Second)
	for _, v := range variants {
		if after := totalCount(t, bases[v]); after != before[v] {
			t.Errorf("%s: %d ratings counted from rejected bodies", v, after-before[v])
			y.dupes["POST /api/ratings bodies"] += int(after - before[v])
		}
	}
}

func tortureQueriesAndPaths(t *testing.T, bases map[string]string, variants []string, y *tally) {
	queries := []string{"offset=%zz", "limit=5;offset=3", "limit=5&limit=6", "limt=5", "offset=-1", "limit=0", "limit=501",
		"offset=1e3", "limit=%00", "%zz=1", "offset=", "limit=ten", "offset=99999999999999999999"}
	paths := []struct{ method, path string }{
		{"GET", "/api//movies/1"}, {"GET", "/./api/movies"}, {"GET", "/api/movies/../ratings"}, {"GET", "/API/movies"},
		{"GET", "/api/movies/abc"}, {"GET", "/api/movies/0"}, {"GET", "/api/movies/99999999"}, {"GET", "/nope"},
		{"GET", "/api/ratings/"}, {"DELETE", "/api/movies/1"}, {"PUT", "/api/ratings"}, {"PATCH", "/"},
		{"OPTIONS", "/api/movies"}, {"GET", "/api/ratings"}, {"POST", "/api/movies"}, {"GET", "//"},
	}
	for _, v := range variants {
		for _, q := range queries {
			code, ct, resp, _ := raw(t, http.MethodGet, bases[v]+"/api/movies?"+q, "", nil)
			var e struct{ Error string }
			ok := code == http.StatusBadRequest && ct == "application/json" && json.Unmarshal([]byte(resp), &e) == nil && strings.Contains(e.Error, ": ")
			if !ok {
				t.Errorf("%s GET /api/movies?%s: %d %s %.200s, want 400 naming the parameter", v, q, code, ct, resp)
			}
			y.add("query strings", ok)
		}
		for _, p := range paths {
			code, ct, resp, loc := raw(t, p.method, bases[v]+p.path, "", nil)
			var e struct{ Error string }
			ok := code >= 400 && code < 500 && ct == "application/json" && loc == "" && json.Unmarshal([]byte(resp), &e) == nil && e.Error != ""
			if !ok {
				t.Errorf("%s %s %s: %d %s Location %q %.200s, want a JSON 4xx", v, p.method, p.path, code, ct, loc, resp)
			}
			y.add("paths and methods", ok)
		}
	}
}

func tortureRequestIDs(t *testing.T, l *labtest.Lab, bases map[string]string, variants []string, y *tally) {
	for _, v := range variants {
		base := bases[v]
		// The case: one id reused on 18 movies.
		id := "torture-reused-" + v
		for i := range 18 {
			movie := int64(60 + i)
			code, _, resp, _ := raw(t, http.MethodPost, base+"/api/ratings", "application/json",
				fmt.Appendf(nil, `{"movie_id": %d, "rating": 7, "request_id": %q}`, movie, id))
			want := http.StatusConflict
			if i == 0 {
				want = map[string]int{"rpc": 201, "stream": 202}[v]
			}
			ok := code == want && (i == 0 || strings.Contains(resp, "already names another rating (movie 60"))
			if !ok {
				t.Errorf("%s: %s on movie %d: %d %.200s, want %d", v, id, movie, code, resp, want)
			}
			y.add("request id reused on 18 movies", ok)
		}
		// The same rating sent 10 times, across a restart of the part that
		// keeps the record.
		same := "torture-same-" + v
		for i := range 10 {
			if i == 5 {
				part := map[string]string{"rpc": "ratings-rpc", "stream": "webserver-stream"}[v]
				l.Action(part, "restart")
				l.WaitPart(part, "healthy", 30*time.Second)
			}
			code, _, resp, _ := raw(t, http.MethodPost, base+"/api/ratings", "application/json",
				[]byte(`{"movie_id": 80, "rating": 6.5, "user_id": 3, "request_id": "`+same+`"}`))
			ok := code/100 == 2 && resp == `{"request_id":"`+same+`","movie_id":80}`+"\n"
			if !ok {
				t.Errorf("%s: %s sent again (%d): %d %.200s, want the first answer", v, same, i, code, resp)
			}
			y.add("same rating sent 10 times, restart between", ok)
		}
	}
	for _, v := range variants {
		labtest.Eventually(t, 30*time.Second, v+" to count each request id once", func() error {
			counted := int64(0)
			for movie := int64(60); movie < 78; movie++ {
				counted += getMovie(t, bases[v], movie).Count
			}
			if counted != 1 {
				return fmt.Errorf("the reused id counted %d times over its 18 movies", counted)
			}
			if m := getMovie(t, bases[v], 80); m.Count != 1 || m.SumTenths != 65 {
				return fmt.Errorf("movie 80: count %d sum %d, want 1 and 65", m.Count, m.SumTenths)
			}
			return nil
		})
	}
}

func tortureFiles(t *testing.T, l *labtest.Lab, bases map[string]string, y *tally) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	refused := func(surface string, wantOut []string, args ...string) {
		t.Helper()
		out, err := l.Run(args...)
		ok := err != nil
		for _, w := range wantOut {
			ok = ok && strings.Contains(out, w)
		}
		if !ok {
			t.Errorf("lab %s: err %v, output lacks %q:\n%s", strings.Join(args, " "), err, wantOut, out)
		}
		y.add(surface, ok)
	}

	catalog := func() int {
		var page struct{ Total int }
		labtest.HTTPJSON(http.MethodGet, bases["rpc"]+"/api/movies?limit=1", nil, &page)
		return page.Total
	}
	before := catalog()
	good := "900001::Good::2001::::X::::::Drama::::::::::::\n"
	for _, c := range []struct{ name, content, want string }{
		{"nul.dat", good + "900002::Bad\x00Title::1990::::X::::::Drama::::::::::::\n", "line 2: title contains a control character (U+0000)"},
		{"esc.dat", good + "900002::T::1990::::X::::::Drama::A\x1b[31m::::::::::\n", "line 2: actors contains a control character"},
		{"long.dat", good + "900002::" + strings.Repeat("t", 2<<20) + "::1990::::X::::::Drama::::::::::::\n", "line 2: longer than 1048576 bytes"},
		{"few.dat", good + "900002::Short::1990\n", "line 2: has 3 fields"},
		{"year.dat", good + "900002::T::19x5::::X::::::Drama::::::::::::\n", `line 2: release_year "19x5"`},
		{"repeat.dat", good + good, "line 2: movie_id 900001 repeats line 1"},
		{"utf8.dat", good + "900002::\xff\xfe::1990::::X::::::Drama::::::::::::\n", "line 2: is not valid UTF-8"},
		{"tab.csv", "movie_id,title,release_year,genres\n900001,A,2001,Dra\tma\n", "line 2: genres contains a control character (U+0009)"},
		{"newline.csv", "movie_id,title,release_year\n900001,\"Two\nLines\",2001\n", "title contains a control character (U+000A)"},
		{"ragged.csv", "movie_id,title,release_year\n900001,A,2001\n900002,B\n", "line 3: wrong number of fields"},
		{"empty.csv", "", "line 1: missing header row"},
	} {
		refused("movie imports", []string{c.want}, "data", "import", "movies", write(c.name, c.content))
	}
	if after := catalog(); after != before {
		t.Errorf("rejected imports changed the catalog: %d movies, was %d", after, before)
		y.dupes["movie imports"] += after - before
	}

	scenario := func(extra string) string {
		return `{"name":"s","arrival":{"executor":"constant-arrival-rate","rate":5,"duration":"1s"}` + extra + `}`
	}
	for i, c := range []struct{ extra, want string }{
		{`,"mix":{"rating":0,"movie":0,"list":0}`, "mix: at least one weight"},
		{`,"list":{"limit":0}`, "list.limit"},
		{`,"request_timeout":"0s"`, "request_timeout"},
		{`,"movies":{"min_id":0,"max_id":0}`, "movies"},
		{`,"thresholds":{"success_rate":0}`, "thresholds.success_rate"},
		{`,"movies":{"popularity":"zipf","zipf_s":0}`, "movies.zipf_s"},
		{`,"arival":{}`, "unknown field"},
	} {
		f := write(fmt.Sprintf("s%d.json", i), scenario(c.extra))
		refused("scenario files and load flags", []string{f, c.want}, "load", "--scenario", f, "--quiet", "--metrics-listen", "off")
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--duration", "0s"}, "--duration 0s: must be > 0"},
		{[]string{"--target", "rcp=http://127.0.0.1:1"}, "--target rcp=http://127.0.0.1:1: rcp is not a variant"},
		{[]string{"--rate", "0/s"}, "--rate"},
		{[]string{"--variants", "rpc,rpc"}, "twice"},
		{[]string{"--seed", "-1"}, "--seed"},
	} {
		refused("scenario files and load flags", []string{c.want}, append([]string{"load", "--scenario", "smoke", "--quiet", "--metrics-listen", "off"}, c.args...)...)
	}
	if entries, _ := os.ReadDir(l.Dir.Ledgers()); len(entries) != 0 {
		t.Errorf("refused load runs wrote %d ledger(s)", len(entries))
	}

	exp := func(method string) string {
		return "title: t\nload:\n  scenario: smoke\n  duration: 30s\nsteady_state:\n  probes:\n    - probe: success_rate\n      min: 0.99\nmethod:\n" + method
	}
	outage := "  - fault: movies-outage\n    at: 5s\n    for: 5s\n"
	for i, c := range []struct{ content, want string }{
		{exp("  - fault: latency\n    targets: {rpc: 'ratings-stream->broker', stream: 'ratings-stream->broker'}\n    at: 5s\n    for: 5s\n"), ":11: method[0].targets.rpc: \"ratings-stream->broker\" belongs to the stream variant, not rpc"},
		{strings.Replace(exp(outage), "title: t\n", "title: t\nvariants: []\n", 1), ":2: variants: is empty"},
		{strings.Replace(exp(outage), "      min: 0.99\n", "      min: 0.99\n    - probe: success_rate\n      min: 0.9\n      why: t\n", 1), ":9: steady_state.probes[1]: success_rate is already checked for rpc"},
		{exp("  - fault: meteor\n    at: 5s\n    for: 5s\n"), ":10: method[0].fault: unknown fault"},
		{exp("  - fault: movies-outage\n    at: soon\n    for: 5s\n"), ":11: method[0].at: want a duration"},
		{exp("  - fault: kill\n    targets: {rpc: ratings-stream}\n    at: 5s\n    for: 5s\n"), ":11: method[0].targets.rpc: \"ratings-stream\" belongs to the stream variant, not rpc"},
		{strings.Replace(exp(outage), "      min: 0.99\n", "      min: 0.99\n      variants: []\n", 1), ":9: steady_state.probes[0].variants: is empty"},
	} {
		f := write(fmt.Sprintf("e%d.yaml", i), c.content)
		refused("experiment files", []string{f + c.want}, "chaos", "validate", f)
	}
}

// tortureKills keeps writers posting ratings to both variants, each rating
// retried with its request id and the same payload until acknowledged,
// while parts of both variants are killed (kill -9) and started again.
// Every rating must then be counted exactly once.
func tortureKills(t *testing.T, l *labtest.Lab, bases map[string]string, variants []string, y *tally) {
	type want struct{ count, tenths int64 }
	var mu sync.Mutex
	wants := map[string]map[int64]*want{"rpc": {}, "stream": {}}
	ackedIDs := map[string]bool{} // the stream ratings acknowledged, by request id
	var sent, retried, gaveUp atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 5 * time.Second}
	for w := range 4 {
		for _, v := range variants {
			wg.Go(func() {
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					movie, tenths := int64(100+(i*3+w)%30), int64(10+(i*13+w)%91)
					body := fmt.Sprintf(`{"movie_id": %d, "rating": %s, "request_id": "kill-%s-%d-%d"}`, movie, fmt.Sprint(float64(tenths)/10), v, w, i)
					acked := false
					for attempt := 0; attempt < 120 && !acked; attempt++ {
						if attempt > 0 {
							retried.Add(1)
							time.Sleep(250 * time.Millisecond)
						}
						res, err := client.Post(bases[v]+"/api/ratings", "application/json", strings.NewReader(body))
						if err != nil {
							continue // the webserver is down: retry
						}
						io.Copy(io.Discard, res.Body)
						res.Body.Close()
						switch res.StatusCode {
						case http.StatusCreated, http.StatusAccepted:
							acked = true
						case http.StatusServiceUnavailable, http.StatusGatewayTimeout, http.StatusInternalServerError, http.StatusBadGateway:
						default:
							t.Errorf("%s %s: %d", v, body, res.StatusCode)
							return
						}
					}
					sent.Add(1)
					if !acked {
						gaveUp.Add(1) // unknown: the check below cannot be exact for it
						t.Errorf("%s %s: not acknowledged after 120 attempts", v, body)
						continue
					}
					mu.Lock()
					ws := wants[v][movie]
					if ws == nil {
						ws = &want{}
						wants[v][movie] = ws
					}
					ws.count++
					ws.tenths += tenths
					if v == "stream" {
						ackedIDs[fmt.Sprintf("kill-%s-%d-%d", v, w, i)] = true
					}
					mu.Unlock()
				}
			})
		}
	}
	kills := []string{"ratings-rpc", "ratings-stream", "webserver-stream", "webserver-rpc", "broker", "movies-rpc", "movies-connect"}
	for round := range 2 {
		for _, part := range kills {
			time.Sleep(700 * time.Millisecond)
			l.Action(part, "kill")
			time.Sleep(1200 * time.Millisecond)
			l.Action(part, "start")
			y.add("kills under load (retrying clients)", true)
			_ = round
		}
	}
	// Answers that come too late — the webserver gives up (outcome
	// unknown) while the write goes through — so the clients' retries make
	// copies: ratings-rpc must apply a request id once, ratings-stream must
	// count the copies in the log once.
	for _, edge := range []string{"webserver-stream->broker", "webserver-rpc->ratings-rpc"} {
		l.MustRun("chaos", "inject", "latency", "--target", edge, "--latency", "2500ms", "--for", "4s")
		y.add("late answers under load (retrying clients)", true)
		time.Sleep(5 * time.Second)
	}
	for _, part := range kills {
		l.WaitPart(part, "healthy", 60*time.Second)
	}
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()
	t.Logf("%d ratings sent (both variants), %d retries, %d given up", sent.Load(), retried.Load(), gaveUp.Load())
	for _, v := range variants {
		labtest.Eventually(t, 90*time.Second, v+" to hold exactly the acknowledged ratings", func() error {
			mu.Lock()
			defer mu.Unlock()
			ids := make([]int64, 0, len(wants[v]))
			for id := range wants[v] {
				ids = append(ids, id)
			}
			sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
			for _, id := range ids {
				m := getMovie(t, bases[v], id)
				if w := wants[v][id]; m.Count != w.count || m.SumTenths != w.tenths {
					return fmt.Errorf("movie %d: count %d sum %d, acknowledged %d and %d", id, m.Count, m.SumTenths, w.count, w.tenths)
				}
			}
			return nil
		})
		mu.Lock()
		var lost, dupes int64
		for id, w := range wants[v] {
			m := getMovie(t, bases[v], id)
			if d := m.Count - w.count; d > 0 {
				dupes += d
			} else {
				lost -= d
			}
		}
		mu.Unlock()
		y.lost["kills under load (retrying clients)"] += int(lost)
		y.dupes["kills under load (retrying clients)"] += int(dupes)
		t.Logf("%s: %d movies checked, lost %d, doubled %d", v, len(wants[v]), lost, dupes)
	}
	// How much the dedupe had to absorb, read from the log itself: the
	// records of these writers' request ids in ratings, and how many of
	// them repeat a request id (a retry after an unknown outcome that had
	// reached the log). The view matched the acknowledgements above, so
	// ratings-stream counted each of those copies once. (This was once
	// "records appended minus acknowledged", with the end offsets read
	// after the writers had started: ratings acknowledged in between made
	// it negative, -3.)
	mu.Lock()
	acked := maps.Clone(ackedIDs)
	mu.Unlock()
	inLog := requestIDsInLog(t, l, "kill-stream-")
	var records, copies int64
	for _, n := range inLog {
		records += n
		copies += n - 1
	}
	for id := range acked {
		if inLog[id] == 0 {
			t.Errorf("stream rating %s was acknowledged but is not in the ratings log", id)
		}
	}
	t.Logf("stream: %d ratings acknowledged; the ratings log holds %d records of %d request ids (acknowledged, or sent and never answered): %d copies of a request id already in the log, each counted once",
		len(acked), records, len(inLog), copies)
}

// requestIDsInLog counts the records in ratings per request id with prefix
// (a test's own writers), reading the whole log from outside.
func requestIDsInLog(t *testing.T, l *labtest.Lab, prefix string) map[string]int64 {
	t.Helper()
	k, err := kafkaio.NewCluster(kafkaio.Config{Brokers: strings.Split(l.Bootstrap(), ","), DialTimeout: 2 * time.Second}, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out := map[string]int64{}
	err = k.ReadCommitted(ctx, model.TopicRatings, kafkaio.AllPartitions(model.RatingsPartitions), func(m kafka.Message) error {
		e, err := model.DecodeRatingEvent(m.Value)
		if err == nil && strings.HasPrefix(e.RequestID, prefix) { // not a rating: another test's poison
			out[e.RequestID]++
		}
		return nil
	})
	if err != nil {
		t.Fatalf("read the ratings log: %v", err)
	}
	return out
}
