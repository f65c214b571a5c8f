// Package kafkatest runs a real Kafka broker (kfake, the Kafka wire protocol
// in-process) for package tests, with the lab's topics, and a TCP forwarder
// that stands in for a fault proxy.
package kafkatest

import (
	"io"
	"net"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/ratingslab/lab/services/model"
)

// Topic is one topic to create.
type Topic = model.Topic

// LabTopics are the topics the lab's broker part creates at start.
var LabTopics = model.Topics

// Broker is a running single-node kfake cluster.
type Broker struct {
	*kfake.Cluster
	Addr string
}

// Start runs a broker on 127.0.0.1 with topics created, closed at test end.
// Extra kfake options come last.
func Start(t testing.TB, topics []Topic, opts ...kfake.Opt) *Broker {
	t.Helper()
	opts = append([]kfake.Opt{kfake.NumBrokers(1)}, opts...)
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatalf("start kfake: %v", err)
	}
	t.Cleanup(c.Close)
	for _, tp := range topics {
		if err := c.CreateTopic(tp.Name, tp.Partitions, tp.Configs); err != nil {
			t.Fatalf("create topic %s: %v", tp.Name, err)
		}
	}
	return &Broker{Cluster: c, Addr: c.ListenAddrs()[0]}
}

// Forwarder accepts TCP connections and forwards each to an upstream
// address, like a fault proxy with no fault. It can be cut (every
// connection reset, new ones refused) and healed.
type Forwarder struct {
	Addr     string
	upstream string
	ln       net.Listener

	mu         sync.Mutex
	accepted   int
	upstreamLA map[string]bool // local addresses of connections to upstream
	conns      []net.Conn
	cut        bool
}

// Forward starts a forwarder to upstream, closed at test end.
func Forward(t testing.TB, upstream string) *Forwarder {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &Forwarder{Addr: ln.Addr().String(), upstream: upstream, ln: ln, upstreamLA: map[string]bool{}}
	t.Cleanup(func() { ln.Close(); f.Cut() })
	go f.serve()
	return f
}

func (f *Forwarder) serve() {
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		f.mu.Lock()
		if f.cut {
			f.mu.Unlock()
			c.Close()
			continue
		}
		f.accepted++
		f.mu.Unlock()
		go f.pipe(c)
	}
}

func (f *Forwarder) pipe(c net.Conn) {
	u, err := net.Dial("tcp", f.upstream)
	if err != nil {
		c.Close()
		return
	}
	f.mu.Lock()
	f.upstreamLA[u.LocalAddr().String()] = true
	f.conns = append(f.conns, c, u)
	f.mu.Unlock()
	go func() { io.Copy(u, c); u.Close() }()
	io.Copy(c, u)
	c.Close()
}

// Accepted counts the client connections the forwarder took.
func (f *Forwarder) Accepted() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.accepted
}

// FromForwarder reports whether a connection the upstream accepted from
// remote came through this forwarder.
func (f *Forwarder) FromForwarder(remote string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.upstreamLA[remote]
}

// Cut resets every open connection and refuses new ones until Heal.
func (f *Forwarder) Cut() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cut = true
	for _, c := range f.conns {
		c.Close()
	}
	f.conns = nil
}

// Heal accepts connections again.
func (f *Forwarder) Heal() {
	f.mu.Lock()
	f.cut = false
	f.mu.Unlock()
}

// Recorder wraps a listener and records the remote address of every
// connection it accepts (pass Listen to kfake.ListenFn).
type Recorder struct {
	mu      sync.Mutex
	remotes []string
}

// Listen is a kfake.ListenFn that records accepted connections.
func (r *Recorder) Listen(network, address string) (net.Listener, error) {
	ln, err := net.Listen(network, address)
	if err != nil {
		return nil, err
	}
	return &recordingListener{Listener: ln, r: r}, nil
}

// Remotes lists the remote addresses accepted so far.
func (r *Recorder) Remotes() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.remotes...)
}

type recordingListener struct {
	net.Listener
	r *Recorder
}

func (l *recordingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.r.mu.Lock()
		l.r.remotes = append(l.r.remotes, c.RemoteAddr().String())
		l.r.mu.Unlock()
	}
	return c, err
}
