package faults

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// heldHeal is an effect whose heal lasts until released: Toxiproxy's own
// removal of a toxic can take 5 s when a connection's writer fails during
// it (its link waits for the collection's lock the removal holds, until the
// removal's 5 s write timeout).
type heldHeal struct{ release chan struct{} }

func (heldHeal) apply(context.Context) error { return nil }
func (h heldHeal) heal(context.Context, bool) error {
	<-h.release
	return nil
}

// A heal asked for while the timer's heal of the same fault is still under
// way is that heal's: the caller waits for it and gets the healed fault,
// and meanwhile the fault is still active, not "no such fault".
func TestAHealAskedForDuringAnotherGetsItsOutcome(t *testing.T) {
	inj := New(Config{})
	k, err := Lookup("latency")
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	inj.running["f-1"] = &record{kind: k, effect: heldHeal{release}, ready: true,
		Fault: Fault{ID: "f-1", Fault: k.Name, Target: "ratings-rpc->movies-rpc", State: StateActive}}
	ctx := context.Background()

	byTimer := make(chan Fault, 1)
	go func() {
		f, err := inj.heal(ctx, "f-1", HealedByTimer)
		if err != nil {
			t.Error(err)
		}
		byTimer <- f
	}()
	deadline := time.Now().Add(5 * time.Second)
	for {
		inj.mu.Lock()
		_, healing := inj.healing["f-1"]
		inj.mu.Unlock()
		if healing {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the timer's heal did not start")
		}
		time.Sleep(time.Millisecond)
	}

	if f, err := inj.Get("f-1"); err != nil || f.State != StateActive {
		t.Fatalf("while being healed: Get = %+v, %v; want it still active", f, err)
	}
	if a := inj.Active(); len(a) != 1 || a[0].ID != "f-1" {
		t.Fatalf("while being healed: Active = %+v, want f-1", a)
	}
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := inj.Heal(short, "f-1"); !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "f-1 is being healed") {
		t.Fatalf("a heal that gives up while another is under way: %v, want it to say f-1 is being healed", err)
	}

	byRequest := make(chan Fault, 1)
	go func() {
		f, err := inj.Heal(ctx, "f-1")
		if err != nil {
			t.Error(err)
		}
		byRequest <- f
	}()
	select {
	case f := <-byRequest:
		t.Fatalf("the request returned %+v before the heal under way was over", f)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	timer, request := <-byTimer, <-byRequest
	if request.State != StateHealed || request.HealedBy != HealedByTimer || !request.HealedAt.Equal(timer.HealedAt) {
		t.Fatalf("the request got %+v, want the timer's heal %+v", request, timer)
	}
	if a := inj.Active(); len(a) != 0 {
		t.Fatalf("after the heal: Active = %+v", a)
	}
}
