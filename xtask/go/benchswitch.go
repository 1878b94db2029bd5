package main

import (
	"fmt"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/cometbft/cometbft/config"
	"github.com/cometbft/cometbft/libs/log"
	"github.com/cometbft/cometbft/p2p"
	"github.com/cometbft/cometbft/p2p/conn"
	"github.com/cometbft/cometbft/version"
)

// runBenchSwitch implements mode "bench-switch": reference switches in one
// process over loopback TCP, the Go side of the Rust switch suite's
// idle_peer_bytes (--what idle) and broadcast_1k (--what broadcast).
func runBenchSwitch(args []string) error {
	fs := newFlagSet("bench-switch")
	what := fs.String("what", "idle", "idle: live memory per idle peer end; broadcast: broadcasts per second")
	peers := fs.Int("peers", 500, "spokes dialing the hub")
	rounds := fs.Int("rounds", 500, "broadcasts (--what broadcast)")
	msgSize := fs.Int("msg-size", 1024, "broadcast message size")
	seed, err := parseBenchFlags(fs, args)
	if err != nil {
		return err
	}
	if *peers < 1 || *rounds < 1 || *msgSize < 1 {
		return usagef("--peers, --rounds and --msg-size must be >= 1")
	}
	switch *what {
	case "idle":
		return benchIdlePeers(seed, *peers)
	case "broadcast":
		return benchBroadcast(seed, *peers, *rounds, *msgSize)
	default:
		return usagef("--what: %q is neither idle nor broadcast", *what)
	}
}

// fullNodeChannels are the channels of a v0.38 full node (mempool,
// blocksync, consensus, evidence, statesync, pex) with the reactors' own
// queue and buffer sizes, as the Rust bench's p2p_mconn::reference::full_node.
func fullNodeChannels() []*conn.ChannelDescriptor {
	d := func(id byte, prio, sendCap, recvBuf, recvMsg int) *conn.ChannelDescriptor {
		return &conn.ChannelDescriptor{ID: id, Priority: prio, SendQueueCapacity: sendCap,
			RecvBufferCapacity: recvBuf, RecvMessageCapacity: recvMsg, MessageType: &rawMessage{}}
	}
	return []*conn.ChannelDescriptor{
		d(0x30, 5, 1, 4096, (1<<20)+8),
		d(0x40, 5, 1000, 204800, 104857605),
		d(0x20, 6, 100, 4096, 1048576),
		d(0x21, 10, 100, 204800, 1048576),
		d(0x22, 7, 100, 10000, 1048576),
		d(0x23, 1, 2, 1024, 1048576),
		d(0x38, 6, 1, 4096, 1048576),
		d(0x60, 5, 10, 4096, 4000000),
		d(0x61, 3, 10, 4096, 16000000),
		d(0x00, 1, 10, 4096, 64000),
	}
}

// benchNode is one reference switch listening on 127.0.0.1.
type benchNode struct {
	sw   *p2p.Switch
	tr   *p2p.MultiplexTransport
	addr *p2p.NetAddress
}

func newBenchNode(seed int64, descs []*conn.ChannelDescriptor, r p2p.Reactor, mconf conn.MConnConfig) (*benchNode, error) {
	nk := p2p.NodeKey{PrivKey: nodeKey(seed)}
	addr, err := reservePort("127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	na := p2p.NewNetAddress(nk.ID(), addr)
	ids := make([]byte, len(descs))
	for i, d := range descs {
		ids[i] = d.ID
	}
	info := p2p.DefaultNodeInfo{
		ProtocolVersion: p2p.NewProtocolVersion(version.P2PProtocol, version.BlockProtocol, 0),
		DefaultNodeID:   nk.ID(),
		ListenAddr:      "tcp://" + addr.String(),
		Network:         "bench-chain",
		Version:         coreSemVer,
		Channels:        ids,
		Moniker:         "bench",
		Other:           p2p.DefaultNodeInfoOther{TxIndex: "off"},
	}
	cfg := config.DefaultP2PConfig()
	cfg.ListenAddress = info.ListenAddr
	cfg.AllowDuplicateIP = true
	cfg.PexReactor = false
	cfg.AddrBookStrict = false
	cfg.MaxNumInboundPeers = 1000
	cfg.MaxNumOutboundPeers = 1000
	tr := p2p.NewMultiplexTransport(info, nk, mconf)
	sw := p2p.NewSwitch(cfg, tr)
	sw.SetLogger(log.NewNopLogger())
	sw.SetNodeInfo(info)
	sw.SetNodeKey(&nk)
	sw.SetAddrBook(nopAddrBook{})
	sw.AddReactor("BENCH", r)
	if err := tr.Listen(*na); err != nil {
		return nil, err
	}
	if err := sw.Start(); err != nil {
		return nil, err
	}
	return &benchNode{sw, tr, na}, nil
}

func (n *benchNode) stop() {
	_ = n.sw.Stop()
	_ = n.tr.Close()
}

// sinkReactor owns some channels and counts what it receives.
type sinkReactor struct {
	p2p.BaseReactor
	descs    []*conn.ChannelDescriptor
	messages atomic.Int64
}

func newSinkReactor(descs []*conn.ChannelDescriptor) *sinkReactor {
	r := &sinkReactor{descs: descs}
	r.BaseReactor = *p2p.NewBaseReactor("Sink", r)
	return r
}

func (r *sinkReactor) GetChannels() []*conn.ChannelDescriptor { return r.descs }

func (r *sinkReactor) receiveAny() { r.messages.Add(1) }

func waitPeers(sw *p2p.Switch, n int) error {
	deadline := time.Now().Add(120 * time.Second)
	for sw.Peers().Size() < n {
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d peers connected", sw.Peers().Size(), n)
		}
		time.Sleep(2 * time.Millisecond)
	}
	return nil
}

// liveBytes is the live heap plus the goroutine stacks (Go's counterpart of
// the heap-allocated tokio tasks), after a collection.
func liveBytes() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc + m.StackInuse
}

func benchIdlePeers(seed int64, n int) error {
	mconf := conn.DefaultMConnConfig()
	mk := func(i int) (*benchNode, error) {
		descs := fullNodeChannels()
		return newBenchNode(seed+int64(i), descs, newSinkReactor(descs), mconf)
	}
	hub, err := mk(0)
	if err != nil {
		return err
	}
	spokes := make([]*benchNode, 0, n)
	for i := 1; i <= n; i++ {
		s, err := mk(i)
		if err != nil {
			return err
		}
		spokes = append(spokes, s)
	}
	time.Sleep(200 * time.Millisecond)
	before := liveBytes()
	for _, s := range spokes {
		if err := s.sw.DialPeerWithAddress(hub.addr); err != nil {
			return err
		}
	}
	if err := waitPeers(hub.sw, n); err != nil {
		return err
	}
	time.Sleep(500 * time.Millisecond)
	after := liveBytes()
	if hub.sw.Peers().Size() != n {
		return fmt.Errorf("a peer dropped")
	}
	perEnd := float64(after-before) / float64(2*n)
	hub.stop()
	for _, s := range spokes {
		s.stop()
	}
	emit(benchEvent{Event: "bench", Name: "idle_peer_bytes", Count: &n, PerS: &perEnd})
	return nil
}

func benchBroadcast(seed int64, n, rounds, size int) error {
	mconf := conn.DefaultMConnConfig()
	mconf.SendRate, mconf.RecvRate = 0, 0
	desc := func() []*conn.ChannelDescriptor {
		return []*conn.ChannelDescriptor{{ID: 0x01, Priority: 1, SendQueueCapacity: 100,
			RecvMessageCapacity: 22020096, MessageType: &rawMessage{}}}
	}
	hubR := newSinkReactor(desc())
	hub, err := newBenchNode(seed, hubR.descs, hubR, mconf)
	if err != nil {
		return err
	}
	sinks := make([]*sinkReactor, 0, n)
	spokes := make([]*benchNode, 0, n)
	for i := 1; i <= n; i++ {
		r := newSinkReactor(desc())
		s, err := newBenchNode(seed+int64(i), r.descs, r, mconf)
		if err != nil {
			return err
		}
		if err := s.sw.DialPeerWithAddress(hub.addr); err != nil {
			return err
		}
		sinks = append(sinks, r)
		spokes = append(spokes, s)
	}
	if err := waitPeers(hub.sw, n); err != nil {
		return err
	}
	msg := make([]byte, size)
	fillPayload(msg, seed, 0)
	deadline := time.Now().Add(300 * time.Second)
	start := time.Now()
	for i := 0; i < rounds; i++ {
		broadcast(hub.sw, p2p.Envelope{ChannelID: 0x01, Message: &rawMessage{data: msg}})
	}
	for _, r := range sinks {
		for r.messages.Load() < int64(rounds) {
			if time.Now().After(deadline) {
				return fmt.Errorf("a spoke got %d of %d broadcasts", r.messages.Load(), rounds)
			}
			time.Sleep(time.Millisecond)
		}
	}
	elapsed := time.Since(start)
	perS := float64(rounds) / elapsed.Seconds()
	hub.stop()
	for _, s := range spokes {
		s.stop()
	}
	emit(benchEvent{Event: "bench", Name: "broadcast", Count: &n, Messages: &rounds, MsgSize: &size,
		Seconds: elapsed.Seconds(), PerS: &perS})
	return nil
}
