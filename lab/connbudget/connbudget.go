// Package connbudget caps how many connections a server holds at once.
//
// The lab's load generator never caps its connections (an open-loop load
// must not), so a step past what a trivial server carries opens connections
// until the server runs out of file descriptors ("accept4: too many open
// files") and fails in every way at once. A budget refuses what is over it
// instead, at once and visibly.
package connbudget

import (
	"net"
	"sync"
	"sync/atomic"
	"syscall"
)

// Listener accepts at most a budget of connections open at once. One over
// the budget is closed at once with a reset (no TIME_WAIT, its descriptor
// free again): its client sees the refusal straight away and records a
// failed request, where waiting in the kernel's backlog would only add a
// dial timeout per request and keep the overload going.
type Listener struct {
	net.Listener
	max     int64
	open    atomic.Int64
	refused atomic.Int64
}

// NewListener wraps l with a budget of max open connections.
func NewListener(l net.Listener, max int) *Listener {
	return &Listener{Listener: l, max: int64(max)}
}

// Accept returns the next connection within the budget, refusing those over it.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.open.Add(1) <= l.max {
			return &conn{Conn: c, l: l}, nil
		}
		l.open.Add(-1)
		l.refused.Add(1)
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetLinger(0)
		}
		c.Close()
	}
}

// TakeRefused returns how many connections were refused since the last call.
func (l *Listener) TakeRefused() int64 { return l.refused.Swap(0) }

// conn gives its place in the budget back when closed.
type conn struct {
	net.Conn
	l    *Listener
	once sync.Once
}

func (c *conn) Close() error {
	c.once.Do(func() { c.l.open.Add(-1) })
	return c.Conn.Close()
}

// Reserve are the descriptors a process keeps for everything but the
// connections a budget counts (the binary, the runtime's poller, a log, a
// dial in flight).
const Reserve = 64

// Share is the budget of one of shares equal users of this process's
// descriptors (a server and the connections it makes or receives from
// itself): the descriptors less Reserve, divided, at least 8.
func Share(shares int) int {
	return max((int(min(Descriptors(), 1<<20))-Reserve)/shares, 8)
}

// Descriptors is RLIMIT_NOFILE's soft limit (which Go raised to the hard
// limit when the process started), 1024 when it cannot be read.
func Descriptors() uint64 {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 1024
	}
	return lim.Cur
}
