package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/ratingslab/lab/lab/labtest"
	"github.com/ratingslab/lab/lab/procstat"
	"github.com/ratingslab/lab/lab/supervisor"
	"github.com/ratingslab/lab/services/lib/servetest"
)

type statusJSON struct {
	Up    bool                    `json:"up"`
	Phase string                  `json:"phase"`
	Parts []supervisor.PartStatus `json:"parts"`
}

func status(t *testing.T, l *labtest.Lab) statusJSON {
	t.Helper()
	var st statusJSON
	out := l.MustRun("status", "--json")
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	return st
}

// The foundation contract: up brings every part up healthy, the broker speaks
// Kafka to kcat and kafka-go, a killed broker shows as down, restarts through
// the control API with its data intact, and down leaves no process behind.
func TestLabUpBrokerKillRestartDown(t *testing.T) {
	labtest.SkipUnlessE2E(t)
	t.Parallel()
	l := labtest.Start(t)

	st := status(t, l)
	if !st.Up || st.Phase != "running" || len(st.Parts) < 7 {
		t.Fatalf("want the lab up with at least 7 parts, got %+v", st)
	}
	sup, err := supervisor.ReadState(l.Dir)
	if err != nil {
		t.Fatal(err)
	}
	pids := []int{sup.PID} // the supervisor must be gone after lab down too
	for _, p := range st.Parts {
		if p.Health != supervisor.HealthOK {
			t.Errorf("part %s is %s (%s), want healthy", p.Name, p.Health, p.Error)
		}
		pids = append(pids, p.PID)
	}
	if out := l.MustRun("up"); !strings.Contains(out, "already up") {
		t.Errorf("second lab up should say it is already up, got:\n%s", out)
	}

	broker := l.Ports.Broker()
	// kcat (librdkafka) proves wire compatibility: metadata, produce, consume, group.
	_, kcatErr := exec.LookPath("kcat")
	servetest.Need(t, kcatErr == nil, "kcat", "apt-get install kcat")
	if kcatErr == nil {
		md := run(t, "kcat", "-b", broker, "-L")
		for _, topic := range []string{"ratings", "movies", "rated-movies", "ratings-dlq"} {
			if !strings.Contains(md, `topic "`+topic+`"`) {
				t.Errorf("kcat -L does not list topic %s:\n%s", topic, md)
			}
		}
		if !strings.Contains(md, `topic "ratings" with 6 partitions`) {
			t.Errorf("ratings should have 6 partitions:\n%s", md)
		}
		runInput(t, "hello-from-kcat\n", "kcat", "-b", broker, "-P", "-t", "ratings-dlq", "-p", "0")
		got := run(t, "kcat", "-b", broker, "-C", "-t", "ratings-dlq", "-o", "beginning", "-e", "-q")
		if !strings.Contains(got, "hello-from-kcat") {
			t.Errorf("kcat consume did not see the produced record: %q", got)
		}
		grp := run(t, "kcat", "-b", broker, "-G", "e2e-kcat-group", "-o", "beginning", "-e", "-q", "ratings-dlq")
		if !strings.Contains(grp, "hello-from-kcat") {
			t.Errorf("kcat consumer group did not see the record: %q", grp)
		}
	} else {
		t.Log("kcat not installed; .ci/run installs it")
	}

	// kafka-go: produce with acks=all, read back.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	w := &kafka.Writer{Addr: kafka.TCP(broker), Topic: "ratings-dlq", RequiredAcks: kafka.RequireAll, BatchTimeout: 5 * time.Millisecond}
	if err := w.WriteMessages(ctx, kafka.Message{Key: []byte("k"), Value: []byte("before-broker-kill")}); err != nil {
		t.Fatalf("kafka-go produce: %v", err)
	}
	w.Close()
	if !topicHas(t, ctx, broker, "before-broker-kill") {
		t.Fatal("kafka-go did not read back its record")
	}

	l.Action("broker", "kill")
	if p := l.Part("broker"); p.Health == supervisor.HealthOK || p.PID != 0 {
		t.Fatalf("after kill the broker should be down, got %+v", p)
	}
	if out := l.MustRun("status"); !strings.Contains(out, "broker") || strings.Contains(lineOf(out, "broker "), "healthy") {
		t.Errorf("lab status should show the broker down:\n%s", out)
	}
	l.Action("broker", "start")
	l.WaitPart("broker", supervisor.HealthOK, 20*time.Second)
	if !topicHas(t, ctx, broker, "before-broker-kill") {
		t.Fatal("a record written before the broker was killed is gone after its restart")
	}

	l.MustRun("down")
	for _, pid := range pids {
		if pid > 0 && syscall.Kill(pid, 0) == nil && !zombie(pid) {
			t.Errorf("process %d survived lab down", pid)
		}
	}
	if out := l.MustRun("down"); !strings.Contains(out, "not running") {
		t.Errorf("second lab down should say not running, got %q", out)
	}
	if st := status(t, l); st.Up || st.Phase != "down" {
		t.Errorf("status --json after down: up %v, phase %q; want up false, phase down", st.Up, st.Phase)
	}
}

func topicHas(t *testing.T, ctx context.Context, broker, value string) bool {
	t.Helper()
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{broker}, Topic: "ratings-dlq", Partition: 0, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		m, err := r.ReadMessage(rctx)
		if err != nil {
			t.Logf("read: %v", err)
			return false
		}
		if string(m.Value) == value {
			return true
		}
	}
}

// Bad input is refused with a message naming the problem, and nothing is left running.
func TestBadInputs(t *testing.T) {
	labtest.SkipUnlessE2E(t)
	t.Parallel()
	l := labtest.New(t)
	occupied, err := net.Listen("tcp", l.Ports.WebserverRPC())
	if err != nil {
		t.Fatal(err)
	}
	defer occupied.Close()

	corrupt := t.TempDir()
	os.WriteFile(filepath.Join(corrupt, "lab.json"), []byte("{not json"), 0o644)

	cases := []struct {
		name string
		args []string
		want string
	}{
		{"unknown part", []string{"serve", "nope"}, `unknown part "nope"`},
		{"bad breakers", []string{"up", "--breakers", "maybe"}, `--breakers "maybe"`},
		{"bad replicas", []string{"up", "--replicas", "webserver-rpc=2"}, "--replicas webserver-rpc=2"},
		{"bad replicas form", []string{"up", "--replicas", "ratings-stream"}, "want part=N"},
		{"bad port base", []string{"--port-base", "80", "status"}, "--port-base 80"},
		{"port in use", []string{"up"}, l.Ports.WebserverRPC() + " (webserver-rpc) is already in use"},
		{"corrupt state", []string{"--dir", corrupt, "status"}, "is corrupt"},
		{"bad part flag", []string{"serve", "broker", "--listen", "10.1.2.3:9092"}, "loopback only"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, err := l.Run(tc.args...)
			if err == nil {
				t.Fatalf("lab %v succeeded, want an error containing %q\n%s", tc.args, tc.want, out)
			}
			if !strings.Contains(out, tc.want) {
				t.Fatalf("lab %v: error should contain %q, got:\n%s", tc.args, tc.want, out)
			}
		})
	}
	if _, err := os.Stat(l.Dir.State()); err == nil {
		t.Error("a refused lab up left a state file behind")
	}
}

// A state dir the user cannot write is refused before anything starts. Root
// writes anywhere (and CI runs as root), so the case runs as nobody.
func TestUnwritableStateDirIsRefused(t *testing.T) {
	labtest.SkipUnlessE2E(t)
	t.Parallel()
	l := labtest.New(t)
	// Everything nobody needs must be reachable by nobody: the binary and
	// the parent of the read-only dir.
	parent, err := os.MkdirTemp("", "lab-ro-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(filepath.Join(parent, "ro"), 0o755); os.RemoveAll(parent) })
	ro := filepath.Join(parent, "ro")
	if err := os.Mkdir(ro, 0o555); err != nil {
		t.Fatal(err)
	}
	os.Chmod(parent, 0o755)
	bin := filepath.Join(parent, "lab")
	b, err := os.ReadFile(l.Bin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	args := []string{bin, "--dir", ro, "--port-base", itoa(l.Ports.Base), "up"}
	if os.Geteuid() == 0 {
		setpriv, err := exec.LookPath("setpriv")
		servetest.Need(t, err == nil, "setpriv (util-linux)", "apt-get install util-linux")
		args = append([]string{setpriv, "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"}, args...)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), "HOME="+parent)
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("lab up in a read-only dir succeeded:\n%s", out)
	}
	for _, want := range []string{ro, "not writable", "permission denied"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("lab up in a read-only dir should say %q:\n%s", want, out)
		}
	}
	if entries, _ := os.ReadDir(ro); len(entries) > 0 {
		t.Errorf("a refused lab up wrote into the read-only dir: %v", entries)
	}
}

// labProcesses lists the pids of running processes that belong to the lab
// in dir (the supervisor gives each LAB_DIR=<dir>).
func labProcesses(dir string) []int {
	var out []int
	procs, _ := filepath.Glob("/proc/[0-9]*/environ")
	for _, f := range procs {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, kv := range strings.Split(string(b), "\x00") {
			if kv == "LAB_DIR="+dir {
				var pid int
				fmt.Sscanf(filepath.Base(filepath.Dir(f)), "%d", &pid)
				if !zombie(pid) {
					out = append(out, pid)
				}
			}
		}
	}
	return out
}

func run(t *testing.T, name string, args ...string) string { return runInput(t, "", name, args...) }

func runInput(t *testing.T, stdin, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

func lineOf(out, prefix string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	return ""
}

func zombie(pid int) bool {
	state, ok := procstat.State(pid)
	return !ok || state == 'Z'
}

func itoa(n int) string { return fmt.Sprint(n) }
