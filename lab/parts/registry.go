package parts

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/ratingslab/lab/lab/layout"
	schemaregistry "github.com/ratingslab/lab/lab/registry"
	"github.com/ratingslab/lab/services/model"
)

// RegistryPart is the schema registry's part name, whichever registry runs.
const RegistryPart = "schema-registry"

// Which schema registry a lab uses (lab up --registry).
const (
	RegistryEmbedded = "embedded" // the lab's own (lab/registry), a Go part like the others
	RegistryApicurio = "apicurio" // Apicurio Registry from Maven Central, run with Java
	RegistryExternal = "external" // --registry-url: the user's own; no part, no edge proxies
)

// ApicurioPath is where the Apicurio Registry's compatible API lives under
// its base URL.
const ApicurioPath = "/apis/ccompat/v7"

// registryEdges are the edges from the registry's clients to the registry:
// one per client instance, like their broker edges, so a registry outage
// or slowness is a fault like any other.
func registryEdges(ratingsStreamReplicas int) []Edge {
	es := []Edge{
		{Name: "webserver-stream->" + RegistryPart, From: "webserver-stream", To: RegistryPart, Variant: VariantStream, n: 0},
		{Name: "movies-connect->" + RegistryPart, From: "movies-connect", To: RegistryPart, Variant: VariantStream, n: 1},
	}
	for i := 0; i < ratingsStreamReplicas && i < MaxRatingsStreamReplicas && 2+i < layout.MaxRegistryEdges; i++ {
		from := InstanceName("ratings-stream", i)
		es = append(es, Edge{Name: from + "->" + RegistryPart, From: from, To: RegistryPart, Variant: VariantStream, n: 2 + i})
	}
	return es
}

// RegistryURL is the registry's base URL as the lab itself (CLI, replay,
// tests) reaches it, without an edge proxy.
func RegistryURL(p layout.Ports, o Options) string {
	switch o.Registry {
	case RegistryExternal:
		return strings.TrimRight(o.RegistryURL, "/")
	case RegistryApicurio:
		return "http://" + p.Registry() + ApicurioPath
	}
	return "http://" + p.Registry()
}

// FormatArgs are the flags every producer and consumer of the log gets:
// the event format and the registry, reached through the client's own
// edge proxy (an external registry is reached directly).
func FormatArgs(env Env, client string) []string {
	format := env.Options.Format
	if format == "" {
		format = string(model.DefaultFormat)
	}
	reg := RegistryURL(env.Ports, env.Options)
	if env.Options.Registry != RegistryExternal {
		u, _ := url.Parse(reg)
		u.Host = EdgeFrom(client, RegistryPart).Listen(env.Ports)
		reg = u.String()
	}
	return []string{"--format", format, "--registry", reg}
}

// ApicurioHome is where `make apicurio` unpacks Apicurio Registry (env
// APICURIO_HOME overrides it): <repo>/.cache/apicurio/apicurio-registry-app.
func ApicurioHome() string {
	if h := os.Getenv("APICURIO_HOME"); h != "" {
		return h
	}
	return filepath.Join(repoCache(), "apicurio", "apicurio-registry-app")
}

// repoCache finds the repository's /.cache/ from the working directory or
// the running binary (bin/lab sits in the repository).
func repoCache() string {
	var starts []string
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if exe, err := os.Executable(); err == nil {
		starts = append(starts, filepath.Dir(exe))
	}
	for _, d := range starts {
		for ; ; d = filepath.Dir(d) {
			if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
				return filepath.Join(d, ".cache")
			}
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	return ".cache"
}

// ApicurioJar is the runnable jar in an Apicurio home, or an error saying
// how to fetch it.
func ApicurioJar(home string) (string, error) {
	matches, _ := filepath.Glob(filepath.Join(home, "apicurio-registry-app-*-runner.jar"))
	if len(matches) == 0 {
		matches, _ = filepath.Glob(filepath.Join(home, "quarkus-run.jar"))
	}
	if len(matches) == 0 {
		return "", fmt.Errorf("no Apicurio Registry in %s: run 'make apicurio' (fetches io.apicurio:apicurio-registry-app from Maven Central into .cache/), or set APICURIO_HOME", home)
	}
	return matches[0], nil
}

// ApicurioCommand runs Apicurio Registry with Java on addr (loopback):
// its storage in an H2 file under dataDir (durable, like the embedded
// registry), or in memory when dataDir is empty; a bounded heap, and the
// JIT's first tier only (starts in seconds; the registry is not a hot path).
func ApicurioCommand(addr, dataDir string) (string, []string, error) {
	jar, err := ApicurioJar(ApicurioHome())
	if err != nil {
		return "", nil, err
	}
	host, port, _ := strings.Cut(addr, ":")
	java := "java"
	if jh := os.Getenv("JAVA_HOME"); jh != "" {
		java = filepath.Join(jh, "bin", "java")
	}
	args := []string{
		"-Xmx512m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
		"-Dquarkus.http.host=" + host, "-Dquarkus.http.port=" + port,
		"-Dquarkus.log.console.color=false",
	}
	if dataDir != "" {
		if err := os.MkdirAll(dataDir, 0o755); err != nil {
			return "", nil, err
		}
		args = append(args, "-Dapicurio.storage.kind=sql", "-Dapicurio.storage.sql.kind=h2",
			"-Dapicurio.datasource.url=jdbc:h2:file:"+filepath.Join(dataDir, "apicurio")+";DB_CLOSE_ON_EXIT=FALSE",
			"-Dapicurio.datasource.username=sa", "-Dapicurio.datasource.password=sa")
	}
	return java, append(args, "-jar", jar), nil
}

func init() {
	Register(&Part{
		Name:      RegistryPart,
		Variant:   VariantLab,
		Summary:   "schema registry (Confluent REST API): embedded, data in <dir>/data/schema-registry; or Apicurio (--registry apicurio)",
		Start:     1,
		NewRunner: func() Runner { return &schemaregistry.Runner{} },
		Args: func(env Env, _ int) []string {
			return []string{"--listen", env.Ports.Registry(), "--data", env.Dir.Data(RegistryPart)}
		},
		Exec: func(env Env, _ int) (string, []string, error) {
			if env.Options.Registry != RegistryApicurio {
				return "", nil, nil
			}
			return ApicurioCommand(env.Ports.Registry(), env.Dir.Data(RegistryPart))
		},
		Enabled: func(o Options) bool { return o.Registry != RegistryExternal },
		AdminFor: func(o Options, p layout.Ports, _ int) string {
			if o.Registry == RegistryApicurio {
				return p.Registry() // Apicurio: /metrics and /health/ready on its own port
			}
			return p.Admin(p.Registry())
		},
		HTTP:  func(p layout.Ports, _ int) string { return p.Registry() },
		Ready: func(ctx context.Context, p layout.Ports, _ int) error { return registryReady(ctx, p) },
	})
}

// registryReady asks the registry's health endpoint: the embedded
// registry's /healthz on its admin listener, else Apicurio's /health/ready
// on its own port (a Quarkus application has no admin listener of ours).
func registryReady(ctx context.Context, p layout.Ports) error {
	status, err := getStatus(ctx, "http://"+p.Admin(p.Registry())+"/healthz")
	if err != nil {
		status, err = getStatus(ctx, "http://"+p.Registry()+"/health/ready")
	}
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("the schema registry's health answered %d", status)
	}
	return nil
}

func getStatus(ctx context.Context, url string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}
