package compose

// The compose stack run without Docker: every service built from the lab's
// image is started natively with its exact command, environment and user,
// beside stand-ins for the images that are not ours (see nativeStack).

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/ratingslab/lab/lab/labtest"
	"github.com/ratingslab/lab/lab/parts"
)

// labImage is the image every lab service runs (docker-compose.yml's x-lab).
const labImage = "ratings-lab/lab:dev"

// nonrootUID is distroless's "nonroot" user and group, which the lab image
// runs as (USER nonroot:nonroot in compose/Dockerfile).
const nonrootUID = 65532

// loadWith loads docker-compose.yml with these interpolation variables (and
// the file's defaults for the rest).
func loadWith(t *testing.T, env []string, profiles ...string) *types.Project {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	opts, err := cli.NewProjectOptions([]string{"docker-compose.yml"},
		cli.WithWorkingDirectory("."), cli.WithEnv(env), cli.WithProfiles(profiles),
		cli.WithResolvedPaths(true), cli.WithConsistency(true))
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(ctx)
	if err != nil {
		t.Fatalf("docker-compose.yml does not load: %v", err)
	}
	return p
}

// labServices are the services built from the lab's own image, sorted.
func labServices(p *types.Project) []string {
	var out []string
	for name, s := range p.Services {
		if s.Image == labImage {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// image is what compose/Dockerfile puts in the lab image that a native run
// must reproduce: the user it runs as, its working directory, and the
// directories it creates for the runtime user (named volumes mounted there
// inherit that owner; anywhere else Docker creates the mount point owned
// by root).
type image struct {
	uid, gid int
	workdir  string
	owned    map[string]bool // directories in the image owned by uid
}

// readImage reads compose/Dockerfile's final stage. It understands the
// lines this Dockerfile uses and fails on a change it does not.
func readImage(t *testing.T, dockerfile string) image {
	t.Helper()
	img := image{owned: map[string]bool{}, workdir: "/"}
	mkdir := regexp.MustCompile(`(?s)RUN mkdir -p ((?:[^\n\\]|\\\n)+)`)
	var made []string
	for _, m := range mkdir.FindAllStringSubmatch(dockerfile, -1) {
		made = append(made, strings.Fields(strings.ReplaceAll(m[1], "\\\n", " "))...)
	}
	copyOut := regexp.MustCompile(`(?m)^COPY --from=build --chown=(\d+):(\d+) (\S+) (\S+)$`)
	for _, m := range copyOut.FindAllStringSubmatch(dockerfile, -1) {
		img.owned[filepath.Clean(m[4])] = true
		for _, d := range made {
			if rel, ok := strings.CutPrefix(d, m[3]); ok {
				img.owned[filepath.Clean(m[4]+rel)] = true
			}
		}
	}
	if len(img.owned) == 0 {
		t.Fatalf("compose/Dockerfile: no directories made for the runtime user (RUN mkdir -p /out/data/... and COPY --chown=65532:65532 /out/data /data)")
	}
	users := regexp.MustCompile(`(?m)^USER (\S+)$`).FindAllStringSubmatch(dockerfile, -1)
	if len(users) == 0 || users[len(users)-1][1] != "nonroot:nonroot" {
		t.Fatalf("compose/Dockerfile: the final stage's USER is %v; this harness knows nonroot:nonroot (uid %d)", users, nonrootUID)
	}
	img.uid, img.gid = nonrootUID, nonrootUID
	if w := regexp.MustCompile(`(?m)^WORKDIR (\S+)$`).FindAllStringSubmatch(dockerfile, -1); len(w) > 0 {
		img.workdir = w[len(w)-1][1]
	}
	return img
}

// nativeStack runs a compose project on this machine.
//
// Addresses: each service gets its own loopback address 127.0.77.N, and
// every "service:port" in a command, an environment value, toxiproxy.json
// or prometheus.yml is rewritten to "127.0.77.N:port"; "0.0.0.0" (listen
// on the container's interfaces) becomes the service's own address. Ports
// stay as the compose file has them, so the port table is checked too.
// The one exception is the broker: the embedded broker listens on
// 127.0.0.1 only, so "kafka:9092" becomes 127.0.0.1:<a free port>.
// Host names without a port (--admin-allow lists) are left alone: natively
// every peer is loopback, which those lists allow anyway.
//
// Images that are not the lab's are stood in for: kafka by the embedded
// broker (which creates the topics kafka-init.sh creates; compose_test.go
// checks the two lists agree), toxiproxy by Toxiproxy v2.12.0 built from
// its Go module with the compose command, schema-registry by the Apicurio
// Registry jar `make apicurio` fetches, with the compose environment,
// Prometheus by the installed prometheus with compose/prometheus.yml.
type nativeStack struct {
	t      *testing.T
	p      *types.Project
	img    image
	root   string
	bin    string
	broker string // the embedded broker's address, for kafka:9092
	addrs  map[string]string
	mu     sync.Mutex
	procs  map[string]*exec.Cmd
	exited map[string]chan error
	// mutants are changed copies of services, run beside the stack.
	mutants map[string]types.ServiceConfig
}

func newNativeStack(t *testing.T, p *types.Project, dockerfile string) *nativeStack {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the native compose run starts the lab's services as uid 65532 and sets volume owners: run it as root (CI does)")
	}
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("setpriv (util-linux) is needed to run the services as uid 65532")
	}
	root, err := os.MkdirTemp("", "compose-native-")
	if err != nil {
		t.Fatal(err)
	}
	// The services run as another user: they must reach their binary and volumes.
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	s := &nativeStack{t: t, p: p, img: readImage(t, dockerfile), root: root, addrs: map[string]string{},
		procs: map[string]*exec.Cmd{}, exited: map[string]chan error{}, mutants: map[string]types.ServiceConfig{}}
	t.Cleanup(func() {
		s.stopAll()
		if t.Failed() {
			t.Logf("native compose run kept for inspection: %s (logs/)", root)
			return
		}
		os.RemoveAll(root)
	})
	var names []string
	for n := range p.Services {
		names = append(names, n)
	}
	sort.Strings(names)
	for i, n := range names {
		s.addrs[n] = fmt.Sprintf("127.0.77.%d", 10+i)
	}
	s.broker = freeLoopback(t)
	s.checkPortsFree()
	s.bin = s.install(labtest.Binary(t), "lab")
	return s
}

// checkPortsFree fails at once, naming the address, when a port a service
// will listen on is taken (by a wildcard listener, or another run's
// leftovers), rather than letting that service fail later.
func (s *nativeStack) checkPortsFree() {
	s.t.Helper()
	addr := regexp.MustCompile(`0\.0\.0\.0:(\d+)`)
	for name, svc := range s.p.Services {
		var texts []string
		texts = append(texts, svc.Command...)
		for _, v := range svc.Environment {
			if v != nil {
				texts = append(texts, *v)
			}
		}
		for _, m := range addr.FindAllStringSubmatch(strings.Join(texts, " "), -1) {
			ln, err := net.Listen("tcp", net.JoinHostPort(s.addrs[name], m[1]))
			if err != nil {
				s.t.Fatalf("%s's port %s is taken here (%v): a wildcard listener or a previous run's processes (ss -ltnp 'sport = :%s')", name, m[1], err, m[1])
			}
			ln.Close()
		}
	}
}

// install copies a binary where every user may run it.
func (s *nativeStack) install(src, name string) string {
	s.t.Helper()
	body, err := os.ReadFile(src)
	if err != nil {
		s.t.Fatal(err)
	}
	dst := filepath.Join(s.root, "bin", name)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		s.t.Fatal(err)
	}
	if err := os.WriteFile(dst, body, 0o755); err != nil {
		s.t.Fatal(err)
	}
	return dst
}

func freeLoopback(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// rewrite maps one compose string (argument, environment value, config
// line) of service self onto this machine; see nativeStack.
func (s *nativeStack) rewrite(self, v string) string {
	// A container's own interfaces, and its loopback (healthchecks), are
	// the service's address here.
	v = strings.ReplaceAll(v, "0.0.0.0", s.addrs[self])
	v = strings.ReplaceAll(v, "127.0.0.1", s.addrs[self])
	v = strings.ReplaceAll(v, "kafka:9092", s.broker)
	for name, addr := range s.addrs {
		v = regexp.MustCompile(`(^|[/=@,\s"])`+regexp.QuoteMeta(name)+`:(\d)`).ReplaceAllString(v, "${1}"+addr+":${2}")
	}
	return v
}

// volumeDir is the directory standing in for a named volume, created on
// first use with the owner Docker gives a fresh volume mounted at target:
// the image's owner of that path, or root when the image has no such path.
func (s *nativeStack) volumeDir(img image, name, target string) string {
	s.t.Helper()
	dir := filepath.Join(s.root, "volumes", name)
	if _, err := os.Stat(dir); err == nil {
		return dir
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		s.t.Fatal(err)
	}
	if img.owned[target] {
		if err := os.Chown(dir, img.uid, img.gid); err != nil {
			s.t.Fatal(err)
		}
	}
	return dir
}

// mapPaths rewrites a volume's container path in v to its directory here.
func mapPaths(v, target, dir string) string {
	return regexp.MustCompile(`(^|[=\s])`+regexp.QuoteMeta(target)+`(/|$)`).ReplaceAllString(v, "${1}"+dir+"${2}")
}

// command is what a service runs here: program, arguments and environment,
// the compose ones rewritten.
type command struct {
	path string
	args []string
	env  []string
	dir  string
	user bool // run as the image's user
}

// labCommand is a lab-image service's command line here, from the image
// compose/Dockerfile builds.
func (s *nativeStack) labCommand(name string) command {
	return s.commandFor(name, s.p.Services[name], s.img)
}

// commandFor is labCommand for a service definition svc run under name
// (a mutated copy has its own name, address and volumes) from image img.
func (s *nativeStack) commandFor(name string, svc types.ServiceConfig, img image) command {
	s.t.Helper()
	if svc.User != "" || len(svc.Entrypoint) > 0 || svc.WorkingDir != "" {
		s.t.Fatalf("%s sets user/entrypoint/working_dir, which this harness does not model yet", name)
	}
	workdir := filepath.Join(s.root, "workdir", name)
	if err := os.MkdirAll(workdir, 0o755); err != nil {
		s.t.Fatal(err)
	}
	if img.owned[img.workdir] {
		_ = os.Chown(workdir, img.uid, img.gid)
	}
	c := command{path: s.bin, dir: workdir, user: true,
		env: []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + workdir}}
	var mounts [][2]string
	for _, v := range svc.Volumes {
		switch v.Type {
		case types.VolumeTypeVolume:
			mounts = append(mounts, [2]string{v.Target, s.volumeDir(img, v.Source, v.Target)})
		case types.VolumeTypeBind:
			mounts = append(mounts, [2]string{v.Target, v.Source})
		default:
			s.t.Fatalf("%s: volume type %s is not modelled", name, v.Type)
		}
	}
	fix := func(v string) string {
		v = s.rewrite(name, v)
		for _, m := range mounts {
			v = mapPaths(v, m[0], m[1])
		}
		return v
	}
	for _, a := range svc.Command {
		c.args = append(c.args, fix(a))
	}
	for k, v := range svc.Environment {
		if v != nil {
			c.env = append(c.env, k+"="+fix(*v))
		}
	}
	return c
}

// start runs c as service name, its output in logs/<name>.log.
func (s *nativeStack) start(name string, c command) {
	s.t.Helper()
	logDir := filepath.Join(s.root, "logs")
	_ = os.MkdirAll(logDir, 0o755)
	logFile, err := os.Create(filepath.Join(logDir, name+".log"))
	if err != nil {
		s.t.Fatal(err)
	}
	path, args := c.path, c.args
	// Every process dies with the test process, even when a timeout kills
	// it before the cleanup runs (setpriv sets the signal again after
	// changing the user, which clears it).
	if c.user {
		path, args = "setpriv", append([]string{"--reuid", strconv.Itoa(s.img.uid), "--regid", strconv.Itoa(s.img.gid), "--clear-groups",
			"--pdeathsig", "KILL", "--", c.path}, args...)
	}
	cmd := exec.Command(path, args...)
	cmd.Dir, cmd.Env = c.dir, c.env
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		s.t.Fatalf("start %s: %v", name, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait(); logFile.Close() }()
	s.mu.Lock()
	s.procs[name], s.exited[name] = cmd, done
	s.mu.Unlock()
}

// stop ends one service: SIGTERM to its process group, SIGKILL after 10 s.
func (s *nativeStack) stop(name string) {
	s.mu.Lock()
	cmd, done := s.procs[name], s.exited[name]
	delete(s.procs, name)
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
}

func (s *nativeStack) stopAll() {
	s.mu.Lock()
	var names []string
	for n := range s.procs {
		names = append(names, n)
	}
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, n := range names {
		wg.Go(func() { s.stop(n) })
	}
	wg.Wait()
}

// exitErr reports whether service name has exited, and how.
func (s *nativeStack) exitErr(name string) (bool, error) {
	s.mu.Lock()
	done := s.exited[name]
	s.mu.Unlock()
	select {
	case err := <-done:
		// Put it back for the next reader.
		ch := make(chan error, 1)
		ch <- err
		s.mu.Lock()
		s.exited[name] = ch
		s.mu.Unlock()
		return true, err
	default:
		return false, nil
	}
}

// logTail is the end of a service's log, for failure messages.
func (s *nativeStack) logTail(name string) string {
	b, _ := os.ReadFile(filepath.Join(s.root, "logs", name+".log"))
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// healthy runs service name's compose healthcheck once, natively: the lab
// image's `CMD /usr/local/bin/lab ...` with the lab binary and rewritten
// URLs. A service that has exited is not healthy.
func (s *nativeStack) healthy(name string) error {
	if gone, err := s.exitErr(name); gone {
		return fmt.Errorf("%s exited (%v):\n%s", name, err, s.logTail(name))
	}
	s.mu.Lock()
	svc, ok := s.mutants[name]
	s.mu.Unlock()
	if !ok {
		svc = s.p.Services[name]
	}
	hc := svc.HealthCheck
	if hc == nil || len(hc.Test) < 2 || hc.Test[0] != "CMD" || hc.Test[1] != "/usr/local/bin/lab" {
		return fmt.Errorf("%s: healthcheck %v, want [CMD /usr/local/bin/lab ...]", name, hc)
	}
	var args []string
	for _, a := range hc.Test[2:] {
		args = append(args, s.rewrite(name, a))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, s.bin, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s healthcheck %v: %v: %s", name, args, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// url is http://<service's address>:port.
func (s *nativeStack) url(name string, port int) string {
	return fmt.Sprintf("http://%s:%d", s.addrs[name], port)
}

// httpOK GETs url and wants 200.
func httpOK(url string) error {
	_, err := httpText(url)
	return err
}

// httpText GETs url and returns its body; anything but 200 is an error
// naming the status and the body's start.
func httpText(url string) (string, error) {
	c := &http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: HTTP %d: %.300s", url, resp.StatusCode, body)
	}
	return string(body), err
}

func eventually(t *testing.T, bound time.Duration, what string, fn func() error) {
	t.Helper()
	labtest.Eventually(t, bound, what, fn)
}

// requiredFlagsMissing lists the flags part documents as "(required)" that
// a command line does not set: what `lab serve` would refuse or report.
func requiredFlagsMissing(part string, args []string) ([]string, error) {
	p, err := parts.Lookup(part)
	if err != nil {
		return nil, err
	}
	fs := newPartFlags(p)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flagT) { set[f.Name] = true })
	var missing []string
	fs.VisitAll(func(f *flagT) {
		if strings.Contains(f.Usage, "(required)") && !set[f.Name] {
			missing = append(missing, "--"+f.Name)
		}
	})
	return missing, nil
}

// jsonBody decodes a JSON answer.
func jsonBody(resp *http.Response, v any) error {
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("HTTP %d %s: %w", resp.StatusCode, b, err)
	}
	return nil
}

type flagT = flag.Flag

func newPartFlags(p *parts.Part) *flag.FlagSet {
	fs := flag.NewFlagSet("lab serve "+p.Name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	p.NewRunner().Flags(fs)
	return fs
}
