package load

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// CheckReachable proves every target answers HTTP before any load is sent:
// GET <base>/healthz must get an answer, whatever its status (a variant
// that is up but unhealthy is still a fair target — that is what a chaos
// run looks at). It returns one error naming every unreachable variant.
func CheckReachable(ctx context.Context, targets []Target, timeout time.Duration) error {
	if err := validateTargets(targets); err != nil {
		return err
	}
	client := &http.Client{
		Timeout:       timeout,
		Transport:     &http.Transport{Proxy: nil, DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	type result struct {
		t   Target
		err error
	}
	results := make(chan result, len(targets))
	for _, t := range targets {
		go func() {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(t.BaseURL, "/")+"/healthz", nil)
			if err == nil {
				var resp *http.Response
				if resp, err = client.Do(req); err == nil {
					io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
					resp.Body.Close()
				}
			}
			results <- result{t, err}
		}()
	}
	var errs []error
	for range targets {
		if r := <-results; r.err != nil {
			errs = append(errs, fmt.Errorf("variant %s at %s is unreachable (is the lab up? `lab status`): %w", r.t.Variant, r.t.BaseURL, r.err))
		}
	}
	return errors.Join(errs...)
}
