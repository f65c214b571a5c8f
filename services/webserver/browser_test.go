//go:build unix

package webserver_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/websocket"

	"github.com/ratingslab/lab/services/webserver"
)

// TestThePageWorksInHeadlessChromium loads the page in a real browser, rates
// a movie through the form, and waits for the row's count and average to
// update from the API. It runs when a Chromium is installed.
func TestThePageWorksInHeadlessChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a browser")
	}
	browser := findChromium()
	if browser == "" {
		t.Skip("no chromium on PATH")
	}
	b := newMemoryBackend(5)
	site := httptest.NewServer(webserver.New(b, webserver.Options{Variant: "stream", AcceptedStatus: http.StatusAccepted}, nil))
	defer site.Close()

	page := launch(t, browser)
	page.navigate(t, site.URL+"/")
	if title := page.eval(t, `document.title`); title != "Ratings Lab — stream" {
		t.Fatalf("title %q", title)
	}
	if rows := page.eval(t, `document.querySelectorAll("#movies tbody tr").length`); rows != float64(5) {
		t.Fatalf("%v rows, want 5", rows)
	}
	page.eval(t, `document.getElementById("movie").value = "3";
		document.getElementById("rating").value = "6.5";
		document.getElementById("rate-submit").click(); true`)

	deadline := time.Now().Add(10 * time.Second)
	for {
		count := page.eval(t, `document.querySelector("#movie-3 .count").textContent`)
		average := page.eval(t, `document.querySelector("#movie-3 .average").textContent`)
		if count == "1" && average == "6.50" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("row of movie 3 shows count %v average %v; result: %v", count, average, page.eval(t, `document.getElementById("result").textContent`))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if result, _ := page.eval(t, `document.getElementById("result").textContent`).(string); !strings.Contains(result, "HTTP 202") {
		t.Errorf("result line %q does not report the 202", result)
	}
	if applied := b.appliedRatings(); len(applied) != 1 || applied[0].MovieID != 3 || applied[0].Tenths != 65 {
		t.Errorf("backend got %+v, want one rating 6.5 of movie 3", applied)
	}
	if errs := page.exceptions(); len(errs) > 0 {
		t.Errorf("JavaScript exceptions: %v", errs)
	}
}

func findChromium() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "headless_shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// cdpPage speaks the Chrome DevTools Protocol to one page of a browser.
type cdpPage struct {
	ws     *websocket.Conn
	nextID int
	thrown []string
}

func launch(t *testing.T, browser string) *cdpPage {
	t.Helper()
	// Not t.TempDir: the browser's helpers may still write the profile for a
	// moment after it exits, and TempDir's cleanup fails the test on that.
	profile, err := os.MkdirTemp("", "webserver-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(browser, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
		"--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0", "--remote-allow-origins=*", "--user-data-dir="+profile, "about:blank")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // its helpers join its process group
	if err := cmd.Start(); err != nil {
		os.RemoveAll(profile)
		t.Skipf("cannot start %s: %v", browser, err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // the group this test started
		_ = cmd.Wait()
		for range 50 {
			if os.RemoveAll(profile) == nil {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	})

	// The browser writes its chosen port to DevToolsActivePort.
	var port string
	deadline := time.Now().Add(20 * time.Second)
	for port == "" {
		if b, err := os.ReadFile(filepath.Join(profile, "DevToolsActivePort")); err == nil {
			port, _, _ = strings.Cut(string(b), "\n")
		}
		if time.Now().After(deadline) {
			t.Fatal("browser did not open its DevTools port")
		}
		time.Sleep(50 * time.Millisecond)
	}
	var targets []struct{ Type, WebSocketDebuggerURL string }
	for {
		res, err := http.Get("http://127.0.0.1:" + port + "/json/list")
		if err == nil {
			err = json.NewDecoder(res.Body).Decode(&targets)
			res.Body.Close()
		}
		if err == nil && len(targets) > 0 && targets[0].WebSocketDebuggerURL != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no page target: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	var wsURL string
	var ws *websocket.Conn
	for _, tg := range targets {
		if tg.Type == "page" {
			wsURL = tg.WebSocketDebuggerURL
		}
	}
	ws, err = websocket.Dial(wsURL, "", "http://127.0.0.1/")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	p := &cdpPage{ws: ws}
	p.send(t, "Runtime.enable", nil)
	return p
}

// send makes one CDP call and returns its result, collecting exceptions
// reported meanwhile. Every read has a deadline.
func (p *cdpPage) send(t *testing.T, method string, params any) json.RawMessage {
	t.Helper()
	p.nextID++
	id := p.nextID
	if err := websocket.JSON.Send(p.ws, map[string]any{"id": id, "method": method, "params": params}); err != nil {
		t.Fatal(err)
	}
	_ = p.ws.SetReadDeadline(time.Now().Add(15 * time.Second))
	for {
		var msg struct {
			ID     int             `json:"id"`
			Method string          `json:"method"`
			Params json.RawMessage `json:"params"`
			Result json.RawMessage `json:"result"`
			Error  *struct{ Message string }
		}
		if err := websocket.JSON.Receive(p.ws, &msg); err != nil {
			t.Fatalf("%s: %v", method, err)
		}
		if msg.Method == "Runtime.exceptionThrown" {
			p.thrown = append(p.thrown, string(msg.Params))
		}
		if msg.ID == id {
			if msg.Error != nil {
				t.Fatalf("%s: %s", method, msg.Error.Message)
			}
			return msg.Result
		}
	}
}

func (p *cdpPage) eval(t *testing.T, expr string) any {
	t.Helper()
	raw := p.send(t, "Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true, "awaitPromise": true})
	var r struct {
		Result           struct{ Value any }
		ExceptionDetails *struct{ Text string }
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatal(err)
	}
	if r.ExceptionDetails != nil {
		t.Fatalf("evaluating %q: %s", expr, r.ExceptionDetails.Text)
	}
	return r.Result.Value
}

func (p *cdpPage) navigate(t *testing.T, url string) {
	t.Helper()
	p.send(t, "Page.navigate", map[string]any{"url": url})
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for p.eval(t, `document.readyState`) != "complete" || p.eval(t, `location.href`) != url {
		if ctx.Err() != nil {
			t.Fatalf("page %s did not load", url)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (p *cdpPage) exceptions() []string { return p.thrown }
