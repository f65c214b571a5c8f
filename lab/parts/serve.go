package parts

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"

	"github.com/ratingslab/lab/lab/idlegc"
)

// Serve runs part name with its command-line flags until ctx is cancelled:
// the body of `lab serve PART` and of the lab-part binary. A part's errors
// are logged to stderr as well as returned.
func Serve(ctx context.Context, name string, args []string, stderr io.Writer) error {
	p, err := Lookup(name)
	if err != nil {
		return err
	}
	r := p.NewRunner()
	fs := flag.NewFlagSet("lab serve "+p.Name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	r.Flags(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return fmt.Errorf("lab serve %s: %w", p.Name, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("lab serve %s: unexpected argument %q", p.Name, fs.Arg(0))
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo})).With("part", p.Name)
	// Every part alike: a smaller heap goal only while the part is idle.
	defer idlegc.Start()()
	if err := r.Run(ctx, log); err != nil {
		log.Error("part failed", "err", err)
		return fmt.Errorf("%s: %w", p.Name, err)
	}
	return nil
}
