package labtest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"
	"time"
)

// Echo listens on addr and sends back whatever each connection sends: a
// stand-in for the part behind an edge proxy. The test closes it to stop
// the "part".
func Echo(t testing.TB, addr string) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	return ln
}

// EchoesThrough sends a line through addr and wants it back from an Echo
// behind it.
func EchoesThrough(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := fmt.Fprintln(c, "rating"); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return fmt.Errorf("read back: %w", err)
	}
	if line != "rating\n" {
		return fmt.Errorf("read back %q", line)
	}
	return nil
}

// WantRefused fails the test unless dialling addr is refused, as a dead
// process's port refuses it; when says at which step.
func WantRefused(t testing.TB, addr, when string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if c != nil {
		c.Close()
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("%s: dialling %s gave %v, want connection refused (what a dead process's port does)", when, addr, err)
	}
}
