package serve

import (
	"context"
	"errors"
	"sync"
)

// RunAlongside serves s on l while body runs, until ctx ends. When body
// fails (the part cannot start: its topics never appeared, its database is
// unusable), the error is logged after stayUp and the server keeps answering
// /healthz — whose Ready should report the reason — until ctx ends, so the
// reason shows in `lab status` rather than in a vanished process. A server
// that stops by itself (the address is taken) cancels body.
func (s *Server) RunAlongside(ctx context.Context, l Listen, body func(context.Context) error, stayUp string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var serveErr error
	wg.Go(func() {
		serveErr = s.Run(ctx, l)
		cancel()
	})
	if err := body(ctx); err != nil && ctx.Err() == nil {
		s.log.Error(stayUp, "error", err.Error())
		<-ctx.Done()
	}
	cancel()
	wg.Wait()
	if serveErr != nil && !errors.Is(serveErr, context.Canceled) {
		return serveErr
	}
	return nil
}
