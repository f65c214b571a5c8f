// Package labtest starts real labs for end-to-end tests: the real `lab`
// binary, real processes, a private state dir and port block per lab. Helpers
// wait on health endpoints with bounds, never on sleeps.
package labtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/ratingslab/lab/lab/apachekafka"
	"github.com/ratingslab/lab/lab/layout"
	"github.com/ratingslab/lab/lab/supervisor"
	"github.com/ratingslab/lab/services/lib/servetest"
)

// SkipUnlessE2E skips end-to-end tests when LAB_E2E=0 or under -short.
func SkipUnlessE2E(t testing.TB) {
	t.Helper()
	if os.Getenv("LAB_E2E") == "0" || testing.Short() {
		t.Skip("end-to-end test: set LAB_E2E=1 and drop -short to run")
	}
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// Main runs a package's tests (call it from TestMain: os.Exit(labtest.Main(m)))
// and then removes the binaries Binary built, ~130 MB a test process that
// would otherwise pile up in the temp dir with every run.
func Main(m *testing.M) int {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	return code
}

// Binary builds the lab binary (and lab-part, lab-supervisor beside it) once per test
// process and returns the lab binary's path.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Join(filepath.Dir(file), "..", "..")
		dir, err := os.MkdirTemp("", "labbin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "lab")
		// As `make build` does: static, and lab-part and lab-supervisor
		// after lab, so they are not older than lab and lab up and the
		// supervisor run them.
		for _, b := range [][2]string{{binPath, "./lab/cmd/lab"}, {filepath.Join(dir, "lab-part"), "./lab/cmd/lab-part"},
			{filepath.Join(dir, "lab-supervisor"), "./lab/cmd/lab-supervisor"}} {
			cmd := exec.Command("go", "build", "-o", b[0], b[1])
			cmd.Dir = root
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("build %s: %v\n%s", b[1], err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// Lab is one running lab owned by a test.
type Lab struct {
	t     testing.TB
	Bin   string
	Dir   layout.Dir
	Ports layout.Ports
}

// New prepares a lab (not started) in a temp dir with a free port block.
func New(t testing.TB) *Lab {
	t.Helper()
	return &Lab{t: t, Bin: Binary(t), Dir: layout.Dir(t.TempDir()), Ports: layout.Ports{Base: FreePortBase(t)}}
}

// KafkaEnv selects the Kafka platform of the labs Start runs: unset (or
// "embedded") for the embedded broker, "cluster" for three Apache Kafka
// nodes (make test runs the stream suites a second time that way).
const KafkaEnv = "LAB_E2E_KAFKA"

// Platform is the Kafka platform tests run on (KafkaEnv).
func Platform() string {
	if p := os.Getenv(KafkaEnv); p != "" {
		return p
	}
	return "embedded"
}

// OnCluster reports whether tests run on the real Kafka cluster.
func OnCluster() bool { return Platform() == "cluster" }

// SkipOnCluster skips a test that is about the embedded broker itself.
func SkipOnCluster(t testing.TB, why string) {
	t.Helper()
	if OnCluster() {
		t.Skip("embedded broker only: " + why)
	}
}

// Start runs `lab up` with extra args and registers `lab down` at cleanup;
// on failure it shows the part logs. On a cluster (KafkaEnv) it adds
// --kafka cluster unless the args choose a platform.
func Start(t testing.TB, upArgs ...string) *Lab {
	t.Helper()
	if OnCluster() && !slices.ContainsFunc(upArgs, func(a string) bool { return strings.HasPrefix(a, "--kafka") }) {
		upArgs = append(upArgs, "--kafka", "cluster")
	}
	l := New(t)
	t.Cleanup(func() {
		if out, err := l.Run("down"); err != nil {
			t.Logf("lab down: %v\n%s", err, out)
		}
		if t.Failed() {
			l.DumpLogs()
			l.keep()
		}
	})
	if out, err := l.Run(append([]string{"up"}, upArgs...)...); err != nil {
		t.Fatalf("lab up: %v\n%s", err, out)
	}
	return l
}

// KeepEnv names a directory where a failed test's lab is kept: its whole
// state dir (data of every part, Kafka's log segments, full part logs,
// journals), copied after `lab down`, so that the records behind a failure
// can be read afterwards (kafka-dump-log on the segments, the parts'
// SQLite files). Unset: nothing is kept (t.TempDir removes it).
const KeepEnv = "LAB_E2E_KEEP"

// keep copies the stopped lab's state dir under KeepEnv.
func (l *Lab) keep() {
	root := os.Getenv(KeepEnv)
	if root == "" {
		return
	}
	name := strings.NewReplacer("/", "_", " ", "_").Replace(l.t.Name()) + "-" + time.Now().UTC().Format("20060102T150405Z")
	dst := filepath.Join(root, name)
	// cp -a rather than os.CopyFS: a state dir may hold symlinks and sockets.
	if out, err := exec.Command("cp", "-a", string(l.Dir), dst).CombinedOutput(); err != nil {
		l.t.Logf("keep the lab in %s: %v\n%s", dst, err, out)
		return
	}
	l.t.Logf("lab kept in %s (%s)", dst, KeepEnv)
}

// Run runs the lab binary with this lab's --dir and --port-base (bounded to 3 minutes).
func (l *Lab) Run(args ...string) (string, error) {
	return l.RunContext(context.Background(), args...)
}

// RunContext is Run with a context.
func (l *Lab) RunContext(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	full := append([]string{"--dir", string(l.Dir), "--port-base", fmt.Sprint(l.Ports.Base)}, args...)
	cmd := exec.CommandContext(ctx, l.Bin, full...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// RunDirOnly runs the lab binary with this lab's --dir only: no --port-base
// and no LAB_PORT_BASE, as a user who started the lab elsewhere would.
func (l *Lab) RunDirOnly(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, l.Bin, append([]string{"--dir", string(l.Dir)}, args...)...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "LAB_PORT_BASE=") && !strings.HasPrefix(kv, "LAB_DIR=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// MustRun is Run failing the test on error.
func (l *Lab) MustRun(args ...string) string {
	l.t.Helper()
	out, err := l.Run(args...)
	if err != nil {
		l.t.Fatalf("lab %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// Bootstrap is where tests reach the lab's Kafka directly (its broker, or
// every node of its cluster), comma-separated like kcat -b takes it.
func (l *Lab) Bootstrap() string {
	l.t.Helper()
	st, err := supervisor.ReadState(l.Dir)
	if err != nil {
		l.t.Fatalf("lab state: %v", err)
	}
	return strings.Join(st.Options.KafkaBootstrap(l.Ports), ",")
}

// Kafka is Bootstrap as a kafka-go address.
func (l *Lab) Kafka() net.Addr { return kafka.TCP(strings.Split(l.Bootstrap(), ",")...) }

// Control is a client for this lab's supervisor.
func (l *Lab) Control() *supervisor.Client { return supervisor.NewClient(l.Ports.Control()) }

// Part returns the current status of one part.
func (l *Lab) Part(name string) supervisor.PartStatus {
	l.t.Helper()
	ps, err := l.Control().Parts(context.Background())
	if err != nil {
		l.t.Fatalf("parts: %v", err)
	}
	for _, p := range ps {
		if p.Name == name {
			return p
		}
	}
	l.t.Fatalf("no part %s", name)
	return supervisor.PartStatus{}
}

// WaitPart waits until the part reaches health h.
func (l *Lab) WaitPart(name string, h supervisor.Health, bound time.Duration) {
	l.t.Helper()
	Eventually(l.t, bound, fmt.Sprintf("%s %s", name, h), func() error {
		if p := l.Part(name); p.Health != h {
			return fmt.Errorf("%s is %s (%s)", name, p.Health, p.Error)
		}
		return nil
	})
}

// Action runs a control action (start, stop, restart, kill, pause, resume).
func (l *Lab) Action(part string, action supervisor.Action) {
	l.t.Helper()
	if _, err := l.Control().Action(context.Background(), part, action); err != nil {
		l.t.Fatalf("%s %s: %v", action, part, err)
	}
}

// DumpLogs logs the tail of every part log (used when a test failed).
func (l *Lab) DumpLogs() {
	files, _ := filepath.Glob(filepath.Join(l.Dir.Logs(), "*.log"))
	for _, f := range files {
		b, _ := os.ReadFile(f)
		lines := strings.Split(string(b), "\n")
		if len(lines) > 30 {
			lines = lines[len(lines)-30:]
		}
		l.t.Logf("==== %s\n%s", filepath.Base(f), strings.Join(lines, "\n"))
	}
}

// HTTPJSON does a request with a JSON body and decodes a JSON answer; it
// returns the status code.
func HTTPJSON(method, url string, in, out any) (int, error) {
	var body *bytes.Reader
	if in != nil {
		b, _ := json.Marshal(in)
		body = bytes.NewReader(b)
	} else {
		body = bytes.NewReader(nil)
	}
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if out != nil {
		_ = json.NewDecoder(resp.Body).Decode(out)
	}
	return resp.StatusCode, nil
}

// Status returns every part's status.
func (l *Lab) Status(t testing.TB) []supervisor.PartStatus {
	t.Helper()
	ps, err := l.Control().Parts(context.Background())
	if err != nil {
		t.Fatalf("parts: %v", err)
	}
	return ps
}

// Eventually polls fn until it returns nil or bound passes (servetest.Eventually).
func Eventually(t testing.TB, bound time.Duration, what string, fn func() error) {
	t.Helper()
	servetest.Eventually(t, bound, what, fn)
}

// KafkaTool runs one of Kafka's own tools (apachekafka.Tools) from the
// jars 'make kafka' fetched (or KAFKA_HOME) against the lab's Kafka. Where
// Kafka or Java is missing, the test is skipped on the embedded platform
// and fails on a cluster (whose lab could not have started without them).
func (l *Lab) KafkaTool(tool string, args ...string) string {
	l.t.Helper()
	out, err := l.KafkaToolErr(tool, args...)
	if err != nil {
		l.t.Fatal(err)
	}
	return out
}

// KafkaToolErr is KafkaTool returning the tool's failure.
func (l *Lab) KafkaToolErr(tool string, args ...string) (string, error) {
	l.t.Helper()
	home, err := apachekafka.FindHome("", os.Getenv("KAFKA_HOME"), "")
	if err == nil {
		var java apachekafka.Java
		if java, err = apachekafka.FindJava(os.Getenv("JAVA_HOME")); err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			return apachekafka.RunTool(ctx, home, java, tool, append([]string{"--bootstrap-server", l.Bootstrap()}, args...)...)
		}
	}
	if OnCluster() {
		l.t.Fatalf("Kafka's tools: %v", err)
	}
	l.t.Skipf("Kafka's own tools are not available (%v); 'make kafka' fetches them", err)
	return "", err
}
