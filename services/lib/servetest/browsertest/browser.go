//go:build unix

// Package browsertest drives a headless Chromium over the Chrome DevTools
// Protocol for tests of the pages the parts serve: launch it, load a page,
// evaluate JavaScript, collect uncaught exceptions. A test without a
// browser on PATH is skipped (servetest.Need).
package browsertest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/websocket"

	"github.com/ratingslab/lab/services/lib/servetest"
)

// FindChromium returns a Chromium-like browser on PATH, or "".
func FindChromium() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "headless_shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// Page speaks the Chrome DevTools Protocol to one page of a browser.
type Page struct {
	ws     *websocket.Conn
	nextID int
	thrown []string
}

// Launch starts a headless browser for the test (skipping it when none
// can start) and returns its first page.
func Launch(t testing.TB, browser string) *Page {
	t.Helper()
	// Not t.TempDir: the browser's helpers may still write the profile for a
	// moment after it exits, and TempDir's cleanup fails the test on that.
	profile, err := os.MkdirTemp("", "lab-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(browser, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0", "--remote-allow-origins=*", "--user-data-dir="+profile, "about:blank")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // its helpers join its process group
	if err := cmd.Start(); err != nil {
		os.RemoveAll(profile)
		servetest.Need(t, false, browser, fmt.Sprintf("it is there but does not start: %v", err))
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
	p := &Page{ws: ws}
	p.send(t, "Runtime.enable", nil)
	return p
}

// send makes one CDP call and returns its result, collecting exceptions
// reported meanwhile. Every read has a deadline.
func (p *Page) send(t testing.TB, method string, params any) json.RawMessage {
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

// Eval evaluates a JavaScript expression in the page and returns its value.
func (p *Page) Eval(t testing.TB, expr string) any {
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

// Navigate loads url and waits until the page is complete.
func (p *Page) Navigate(t testing.TB, url string) {
	t.Helper()
	p.send(t, "Page.navigate", map[string]any{"url": url})
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for p.Eval(t, `document.readyState`) != "complete" || p.Eval(t, `location.href`) != url {
		if ctx.Err() != nil {
			t.Fatalf("page %s did not load", url)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Exceptions are the JavaScript exceptions thrown so far.
func (p *Page) Exceptions() []string { return p.thrown }
