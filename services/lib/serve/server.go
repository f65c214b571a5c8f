// Package serve runs a part's HTTP server the same way everywhere: deliberate
// timeouts, graceful shutdown, RED metrics per route, /healthz, /metrics, and
// a loopback-only /admin/ mux with in-service faults.
package serve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Server timeouts. Every part uses these unless its Options say otherwise.
const (
	// ReadHeaderTimeout bounds how long a client may take to send headers:
	// the defence against slowloris-style connections holding goroutines.
	ReadHeaderTimeout = 5 * time.Second
	// ReadTimeout bounds reading a whole request; bodies are at most 64 KiB.
	ReadTimeout = 15 * time.Second
	// DefaultWriteTimeout bounds a whole exchange after the headers were read.
	// It must exceed the slowest legitimate handler (backend timeout plus
	// injected latency); when it fires the client sees a closed connection,
	// not a status, so it is a last resort behind the handlers' own timeouts.
	DefaultWriteTimeout = 60 * time.Second
	// IdleTimeout frees keep-alive connections nobody reuses, while keeping
	// them long enough for a load generator's pool to reuse them.
	IdleTimeout = 90 * time.Second
	// MaxHeaderBytes is far above any header this API needs.
	MaxHeaderBytes = 64 << 10
	// ShutdownGrace is how long in-flight requests get after ctx is cancelled
	// before remaining connections are closed.
	ShutdownGrace = 10 * time.Second
)

// Run listens on addr and serves h until ctx is cancelled, then shuts down
// gracefully. It returns nil after a clean stop.
func Run(ctx context.Context, addr string, h http.Handler, log *slog.Logger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("--listen %s: %w", addr, err)
	}
	return Serve(ctx, ln, h, log, DefaultWriteTimeout)
}

// Serve is Run on a listener the caller opened (tests use 127.0.0.1:0).
// writeTimeout 0 means DefaultWriteTimeout.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, log *slog.Logger, writeTimeout time.Duration) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if writeTimeout <= 0 {
		writeTimeout = DefaultWriteTimeout
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("listening", "addr", ln.Addr().String())

	select {
	case err := <-errc:
		return fmt.Errorf("serving %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), ShutdownGrace)
	defer cancel()
	err := srv.Shutdown(shutdownCtx)
	if errors.Is(err, context.DeadlineExceeded) {
		log.Warn("shutdown grace expired; closing remaining connections", "grace", ShutdownGrace)
		err = srv.Close()
	}
	if serveErr := <-errc; serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return serveErr
	}
	if err != nil {
		return fmt.Errorf("shutting down %s: %w", ln.Addr(), err)
	}
	log.Info("stopped", "addr", ln.Addr().String())
	return nil
}
