package connbudget

import (
	"errors"
	"net"
	"syscall"
	"testing"
	"time"
)

// Within the budget connections are served; one over it is reset at once
// and counted; closing a served connection gives its place back.
func TestAConnectionOverTheBudgetIsResetAndItsPlaceComesBack(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := NewListener(ln, 2)
	defer l.Close()
	served := make(chan net.Conn, 8)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			served <- c
		}
	}()
	dial := func() net.Conn {
		t.Helper()
		c, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	accepted := func() net.Conn {
		t.Helper()
		select {
		case c := <-served:
			return c
		case <-time.After(2 * time.Second):
			t.Fatal("a connection within the budget was not served")
			return nil
		}
	}
	a, b := dial(), dial()
	defer a.Close()
	defer b.Close()
	first, second := accepted(), accepted()
	defer second.Close()

	// The reset can reach the client while its connect is still returning
	// (the dial fails with it) or after (the first read does).
	over, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second)
	if err == nil {
		defer over.Close()
		over.SetReadDeadline(time.Now().Add(2 * time.Second))
		_, err = over.Read(make([]byte, 1))
	}
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("a connection over the budget got %v, want a reset", err)
	}
	if n := l.TakeRefused(); n != 1 {
		t.Fatalf("refused %d, want 1", n)
	}

	first.Close() // its place comes back
	c := dial()
	defer c.Close()
	accepted().Close()
	if n := l.TakeRefused(); n != 0 {
		t.Fatalf("refused %d after a place came back, want 0", n)
	}
}
