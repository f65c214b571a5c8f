package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ratingslab/lab/lab/layout"
	"github.com/ratingslab/lab/lab/parts"
	"github.com/ratingslab/lab/lab/registry"
	"github.com/ratingslab/lab/services/lib/eventformat"
	"github.com/ratingslab/lab/services/model"
)

// contractFlags are `lab up`'s event-format and registry switches.
type contractFlags struct {
	format        string
	registry      string
	registryURL   string
	compatibility string
}

func (f *contractFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.format, "format", string(model.DefaultFormat), "event format of the log variant: json, or avro (Confluent wire format through the schema registry)")
	cmd.Flags().StringVar(&f.registry, "registry", parts.RegistryEmbedded, "schema registry: embedded (the lab's own, no Java) or apicurio (Apicurio Registry from 'make apicurio', Java 17)")
	cmd.Flags().StringVar(&f.registryURL, "registry-url", "", "use an existing Confluent-compatible registry at this `URL` instead of starting one")
	cmd.Flags().StringVar(&f.compatibility, "compatibility", string(registry.DefaultLevel), "global compatibility `level` the lab sets on its registry (BACKWARD, FORWARD, FULL, NONE, or a _TRANSITIVE form); not applied to --registry-url")
}

// apply checks the flags and fills o.
func (f *contractFlags) apply(o *parts.Options) error {
	format, err := model.ParseFormat(f.format)
	if err != nil {
		return err
	}
	o.Format = string(format)
	if _, err := registry.ParseLevel(f.compatibility); err != nil {
		return fmt.Errorf("--compatibility: %w", err)
	}
	switch {
	case f.registryURL != "":
		if err := eventformat.CheckURL(f.registryURL); err != nil {
			return fmt.Errorf("--registry-url: %w", err)
		}
		if f.registry != parts.RegistryEmbedded {
			return fmt.Errorf("--registry %s and --registry-url: give one (--registry-url uses your registry; --registry starts one)", f.registry)
		}
		o.Registry, o.RegistryURL = parts.RegistryExternal, f.registryURL
	case f.registry == parts.RegistryEmbedded:
		o.Registry = ""
	case f.registry == parts.RegistryApicurio:
		if _, err := parts.ApicurioJar(parts.ApicurioHome()); err != nil {
			return fmt.Errorf("--registry apicurio: %w", err)
		}
		o.Registry = parts.RegistryApicurio
	default:
		return fmt.Errorf("--registry %q: want embedded or apicurio (or --registry-url URL for your own)", f.registry)
	}
	return nil
}

// formatFile records the format a lab's log was written in: a log of JSON
// events read with --format avro (or the other way round) is all dead
// letters, so a lab refuses to switch format over existing data.
func formatFile(dir layout.Dir) string { return dir.Path("data", "format") }

func checkFormat(dir layout.Dir, format string) error {
	had := string(model.FormatJSON) // a log written before formats were recorded is JSON
	b, err := os.ReadFile(formatFile(dir))
	switch {
	case err == nil:
		had = strings.TrimSpace(string(b))
	case !errors.Is(err, os.ErrNotExist):
		return err
	default:
		if entries, _ := os.ReadDir(dir.BrokerData()); len(entries) == 0 {
			return nil // no log yet: any format
		}
	}
	if had != format {
		return fmt.Errorf("--format %s: the log in %s holds %s events; start with --format %s, or from scratch: 'lab down && rm -rf %s'",
			format, dir, had, had, dir)
	}
	return nil
}

// recordFormat notes the format once the lab is up (it wrote with it).
func recordFormat(dir layout.Dir, format string) error {
	return os.WriteFile(formatFile(dir), []byte(format+"\n"), 0o644)
}

// setCompatibility sets the global level on the lab's own registry, so that
// the embedded registry and Apicurio (whose default is NONE) start alike.
func setCompatibility(ctx context.Context, ports layout.Ports, o parts.Options, level string) error {
	if o.Registry == parts.RegistryExternal {
		return nil
	}
	l, _ := registry.ParseLevel(level)
	body, _ := json.Marshal(map[string]string{"compatibility": string(l)})
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, parts.RegistryURL(ports, o)+"/config", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", registry.ContentType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("set the registry's compatibility level: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("set the registry's compatibility level: %s: %s", resp.Status, msg)
	}
	return nil
}

func printRegistry(g *globals, p layout.Ports, o parts.Options) {
	which := "embedded"
	switch o.Registry {
	case parts.RegistryApicurio:
		which = "Apicurio"
	case parts.RegistryExternal:
		which = "external"
	}
	fmt.Fprintf(g.stdout, "  Schema registry %s   (%s; curl %s/subjects)\n", parts.RegistryURL(p, o), which, parts.RegistryURL(p, o))
	format := o.Format
	if format == "" {
		format = string(model.DefaultFormat)
	}
	fmt.Fprintf(g.stdout, "  Event format    %s\n", format)
}

// formatOf is the event format a lab was started with.
func formatOf(o parts.Options) string {
	if o.Format == "" {
		return string(model.DefaultFormat)
	}
	return o.Format
}
