package embedded

import (
	"fmt"
	"net"
	"sync"
)

// NodeStatus is one node of the embedded cluster.
type NodeStatus struct {
	Node int    `json:"node"` // 1-based, as in broker-1
	ID   int32  `json:"id"`   // kfake's node id
	Addr string `json:"addr"`
	Up   bool   `json:"up"`
}

// Nodes are the listeners of the cluster's nodes (kfake.ListenFn):
// they remember the connections each accepted, so that a lost node drops
// its clients the way a dead broker does (kfake's RemoveNode closes the
// listener only).
type Nodes struct {
	mu    sync.Mutex
	addrs []string // node i (0-based) listens here
	ids   []int32  // kfake node id of node i
	lns   map[string]*trackingListener
	alive []bool
}

func newNodes(addrs []string) *Nodes {
	nl := &Nodes{addrs: addrs, lns: map[string]*trackingListener{}, alive: make([]bool, len(addrs))}
	for i := range addrs {
		nl.ids = append(nl.ids, int32(i))
		nl.alive[i] = true
	}
	return nl
}

// listen is the kfake.ListenFn: it listens where kfake asks (127.0.0.1:port).
func (nl *Nodes) listen(network, address string) (net.Listener, error) {
	ln, err := net.Listen(network, address)
	if err != nil {
		return nil, err
	}
	tl := &trackingListener{Listener: ln, conns: map[net.Conn]struct{}{}}
	nl.mu.Lock()
	nl.lns[address] = tl
	nl.mu.Unlock()
	return tl, nil
}

// Count is the number of nodes.
func (nl *Nodes) Count() int { return len(nl.addrs) }

// ID is node's kfake node id (nodes are numbered from 1, as broker-1..N).
func (nl *Nodes) ID(node int) int32 { return nl.ids[node-1] }

// Port is the port node listens on.
func (nl *Nodes) Port(node int) int {
	_, p, _ := net.SplitHostPort(nl.addrs[node-1])
	var port int
	fmt.Sscan(p, &port)
	return port
}

// IsUp reports whether node is up (not removed by Down).
func (nl *Nodes) IsUp(node int) bool {
	nl.mu.Lock()
	defer nl.mu.Unlock()
	return nl.alive[node-1]
}

// UpIDs are the kfake node ids of the nodes that are up.
func (nl *Nodes) UpIDs() []int32 {
	nl.mu.Lock()
	defer nl.mu.Unlock()
	var out []int32
	for i, up := range nl.alive {
		if up {
			out = append(out, nl.ids[i])
		}
	}
	return out
}

// Down marks node down and closes the connections its listener accepted.
func (nl *Nodes) Down(node int) int {
	nl.mu.Lock()
	nl.alive[node-1] = false
	tl := nl.lns[nl.addrs[node-1]]
	nl.mu.Unlock()
	if tl == nil {
		return 0
	}
	return tl.closeAll()
}

// Up marks node up again (after kfake added it back).
func (nl *Nodes) Up(node int) {
	nl.mu.Lock()
	defer nl.mu.Unlock()
	nl.alive[node-1] = true
}

// Connections is how many connections node's listener accepted are open.
func (nl *Nodes) Connections(node int) int {
	nl.mu.Lock()
	tl := nl.lns[nl.addrs[node-1]]
	nl.mu.Unlock()
	if tl == nil {
		return 0
	}
	return tl.count()
}

// Status lists every node and whether it is up.
func (nl *Nodes) Status() []NodeStatus {
	nl.mu.Lock()
	defer nl.mu.Unlock()
	out := make([]NodeStatus, len(nl.addrs))
	for i, a := range nl.addrs {
		out[i] = NodeStatus{Node: i + 1, ID: nl.ids[i], Addr: a, Up: nl.alive[i]}
	}
	return out
}

// trackingListener remembers the connections it accepted.
type trackingListener struct {
	net.Listener
	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	l.conns[c] = struct{}{}
	l.mu.Unlock()
	return &trackedConn{Conn: c, l: l}, nil
}

// count is how many accepted connections are open.
func (l *trackingListener) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.conns)
}

func (l *trackingListener) closeAll() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := len(l.conns)
	for c := range l.conns {
		c.Close()
	}
	clear(l.conns)
	return n
}

type trackedConn struct {
	net.Conn
	l    *trackingListener
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.l.mu.Lock()
		delete(c.l.conns, c.Conn)
		c.l.mu.Unlock()
	})
	return c.Conn.Close()
}
