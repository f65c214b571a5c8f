package connbudget

import (
	"errors"
	"io"
	"net"
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

	over := dial()
	defer over.Close()
	over.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := over.Read(make([]byte, 1)); err == nil || errors.Is(err, io.EOF) || isTimeout(err) {
		t.Fatalf("a connection over the budget read %v, want a reset", err)
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

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
