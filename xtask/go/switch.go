package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"time"

	"github.com/cosmos/gogoproto/proto"

	"github.com/cometbft/cometbft/config"
	"github.com/cometbft/cometbft/libs/log"
	"github.com/cometbft/cometbft/p2p"
	"github.com/cometbft/cometbft/p2p/conn"
	"github.com/cometbft/cometbft/version"
)

// runSwitch implements mode "switch": a reference p2p.Switch over the
// reference p2p.MultiplexTransport, with an echo reactor owning --channels.
func runSwitch(args []string) error {
	fs := newFlagSet("switch")
	c := addCommonFlags(fs)
	m := addMConnFlags(fs)
	network := fs.String("network", "test-chain", "NodeInfo network (chain ID)")
	moniker := fs.String("moniker", "cometbft-shim", "NodeInfo moniker")
	softVersion := fs.String("version", coreSemVer, "NodeInfo software version")
	p2pVersion := fs.Uint64("p2p-version", version.P2PProtocol, "NodeInfo protocol_version.p2p")
	blockVersion := fs.Uint64("block-version", version.BlockProtocol, "NodeInfo protocol_version.block")
	appVersion := fs.Uint64("app-version", 0, "NodeInfo protocol_version.app")
	txIndex := fs.String("tx-index", "off", "NodeInfo other.tx_index")
	rpcAddress := fs.String("rpc-address", "", "NodeInfo other.rpc_address")
	externalAddr := fs.String("external-address", "", "NodeInfo listen_addr (default: tcp://<listen address>, or tcp://0.0.0.0:26656 when dialing)")
	exitAfterPeer := fs.Bool("exit-after-peer", false, "exit 0 right after the first peer is added or rejected")
	persistent := fs.Bool("persistent", false, "with --dial: the dialed peer is a persistent peer (the reference redials it when it fails); its removal is reported and the shim waits for the next connection")
	if err := parseFlags(fs, c, args); err != nil {
		return err
	}
	if err := m.validate(); err != nil {
		return err
	}
	logger, err := newLogger(c.logLevel)
	if err != nil {
		return err
	}
	nk := p2p.NodeKey{PrivKey: nodeKey(c.seed)}

	// Addresses. The transport keeps its listener private and reports the
	// address it was given, so for port 0 we pick a free port first (bind
	// and release) and hand the transport a concrete port.
	var listenAddr, dialAddr *p2p.NetAddress
	advertised := *externalAddr
	if c.listen != "" {
		addr, err := reservePort(c.listen)
		if err != nil {
			return err
		}
		listenAddr = p2p.NewNetAddress(nk.ID(), addr)
		if advertised == "" {
			advertised = "tcp://" + addr.String()
		}
	} else {
		if dialAddr, err = p2p.NewNetAddressString(c.dial); err != nil {
			return usagef("--dial: %v", err)
		}
		if advertised == "" {
			advertised = "tcp://0.0.0.0:26656" // the reference's default laddr
		}
	}
	startDeadline(c.timeout)

	nodeInfo := p2p.DefaultNodeInfo{
		ProtocolVersion: p2p.NewProtocolVersion(*p2pVersion, *blockVersion, *appVersion),
		DefaultNodeID:   nk.ID(),
		ListenAddr:      advertised,
		Network:         *network,
		Version:         *softVersion,
		Channels:        m.channelIDs(),
		Moniker:         *moniker,
		Other:           p2p.DefaultNodeInfoOther{TxIndex: *txIndex, RPCAddress: *rpcAddress},
	}
	// Deliberately not fatal, so that invalid NodeInfos can be sent on purpose.
	if err := nodeInfo.Validate(); err != nil {
		logger.Error("our NodeInfo is invalid (sending it anyway)", "err", err)
	}

	// Permissive test configuration: duplicate IPs allowed, no PEX, no
	// address book (a no-op one, since the switch dereferences it on a
	// "self" rejection), generous peer limits.
	cfg := config.DefaultP2PConfig()
	cfg.ListenAddress = advertised
	cfg.AllowDuplicateIP = true
	cfg.PexReactor = false
	cfg.AddrBookStrict = false
	cfg.MaxNumInboundPeers = 100
	cfg.MaxNumOutboundPeers = 100

	events := make(chan any, 100)
	errc := make(chan error, 4)
	reactor := newEchoReactor(m.descriptors(), events)
	transport := p2p.NewMultiplexTransport(nodeInfo, nk, m.config())
	sw := p2p.NewSwitch(cfg, transport)
	sw.SetLogger(rejectLogger{logger.With("module", "p2p"), events})
	sw.SetNodeInfo(nodeInfo)
	sw.SetNodeKey(&nk)
	sw.SetAddrBook(nopAddrBook{})
	sw.AddReactor("ECHO", reactor)

	shutdown := func() {
		_ = sw.Stop()
		_ = transport.Close()
	}
	ready := readyEvent{"ready", string(nk.ID()), ""}
	if listenAddr != nil {
		if err := transport.Listen(*listenAddr); err != nil {
			return err
		}
		ready.Addr = listenAddr.DialString()
	}
	// The reactor's receive function is fixed before the switch starts.
	var tr *tracker
	if m.role == "echo" {
		reactor.startEcho(errc)
	} else {
		tr = reactor.verifyEchoes(c.seed, m.count)
	}
	if err := sw.Start(); err != nil {
		return err
	}
	emit(ready)
	if dialAddr != nil && *persistent {
		if err := sw.AddPersistentPeers([]string{dialAddr.String()}); err != nil {
			return err
		}
	}
	if dialAddr != nil {
		go func() {
			if err := sw.DialPeerWithAddress(dialAddr); err != nil {
				events <- rejection{err: err, outbound: true}
			}
		}()
	}

	// Main loop: react to peers and rejections. Only the first added peer
	// takes part in the drive/echo exchange and decides when we are done
	// (the reactor still echoes for any peer).
	var (
		first   p2p.Peer
		driveOK <-chan struct{} // closed when all echoes were verified
		lingerC <-chan time.Time
	)
	for {
		select {
		case ev := <-events:
			switch ev := ev.(type) {
			case rejection:
				emit(rejectedEvent{"rejected", ev.err.Error(), rejectKind(ev.err)})
				if *exitAfterPeer {
					shutdown()
					return nil
				}
				if ev.outbound {
					return fmt.Errorf("dial %s: %w", dialAddr, ev.err)
				}
			case peerAdded:
				p := ev.peer
				emit(connectedEvent{"connected", string(p.SocketAddr().ID)})
				emit(newPeerEvent(p))
				if first != nil {
					continue
				}
				first = p
				if err := checkRemoteID(string(p.SocketAddr().ID), "", c.expectID); err != nil {
					return err
				}
				if *exitAfterPeer {
					shutdown()
					return nil
				}
				if m.role == "drive" {
					if err := startDrive(p, tr, c.seed, m, errc); err != nil {
						return err
					}
					driveOK = tr.done
				}
			case peerRemoved:
				if ev.peer != first {
					continue
				}
				if *persistent {
					// The reference's reconnect routine redials; the next added
					// peer takes the first one's place.
					emit(removedEvent{"removed", string(first.ID()), fmt.Sprint(ev.reason)})
					first = nil
					continue
				}
				emit(newStatusEvent(first.Status()))
				reason := asError(ev.reason)
				if ev.reason == nil {
					reason = errors.New("stopped")
				}
				if m.role == "drive" {
					n, _ := tr.progress()
					return fmt.Errorf("peer removed after %d/%d echoes: %w", n, m.count, reason)
				}
				if ev.reason != nil && !isPeerClosed(reason) {
					return fmt.Errorf("peer removed for error: %w", reason)
				}
				shutdown()
				n := int(reactor.echoed.Load())
				emit(doneEvent{Event: "done", Messages: &n, Bytes: reactor.echoedBytes.Load()})
				return nil
			}
		case <-driveOK:
			driveOK = nil
			lingerC = time.After(m.linger)
		case <-lingerC:
			emit(newStatusEvent(first.Status()))
			first.FlushStop()
			sw.StopPeerGracefully(first)
			shutdown()
			n, b := tr.progress()
			emit(doneEvent{Event: "done", Messages: &n, Bytes: b})
			return nil
		case err := <-errc:
			return err
		}
	}
}

// removedEvent reports a persistent peer's removal (mode switch, --persistent).
type removedEvent struct {
	Event    string `json:"event"` // "removed"
	RemoteID string `json:"remote_id"`
	Reason   string `json:"reason"`
}

// reservePort resolves hostPort (port 0 = any free port) to a concrete
// address by binding it briefly.
func reservePort(hostPort string) (*net.TCPAddr, error) {
	ln, err := net.Listen("tcp", hostPort)
	if err != nil {
		return nil, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr), nil
}

// ---------------------------------------------------------------------------
// Events

type (
	peerAdded   struct{ peer p2p.Peer }
	peerRemoved struct {
		peer   p2p.Peer
		reason any
	}
	rejection struct {
		err      error
		outbound bool
	}
)

type rejectedEvent struct {
	Event string `json:"event"` // "rejected"
	Error string `json:"error"`
	Kind  string `json:"kind"`
}

type nodeInfoJSON struct {
	ProtocolVersion p2p.ProtocolVersion      `json:"protocol_version"` // {p2p, block, app}
	ID              string                   `json:"id"`
	ListenAddr      string                   `json:"listen_addr"`
	Network         string                   `json:"network"`
	Version         string                   `json:"version"`
	Channels        []int                    `json:"channels"`
	Moniker         string                   `json:"moniker"`
	Other           p2p.DefaultNodeInfoOther `json:"other"` // {tx_index, rpc_address}
}

type peerEvent struct {
	Event    string       `json:"event"` // "peer"
	RemoteID string       `json:"remote_id"`
	Outbound bool         `json:"outbound"`
	NodeInfo nodeInfoJSON `json:"node_info"`
}

func newPeerEvent(p p2p.Peer) peerEvent {
	ni, _ := p.NodeInfo().(p2p.DefaultNodeInfo)
	channels := make([]int, len(ni.Channels))
	for i, ch := range ni.Channels {
		channels[i] = int(ch)
	}
	return peerEvent{
		Event:    "peer",
		RemoteID: string(p.SocketAddr().ID), // authenticated by the transport
		Outbound: p.IsOutbound(),
		NodeInfo: nodeInfoJSON{ni.ProtocolVersion, string(ni.DefaultNodeID), ni.ListenAddr,
			ni.Network, ni.Version, channels, ni.Moniker, ni.Other},
	}
}

// rejectKind classifies a rejection error of the transport or switch.
func rejectKind(err error) string {
	var rej p2p.ErrRejected
	if errors.As(err, &rej) {
		// Same precedence as ErrRejected.Error().
		switch {
		case rej.IsAuthFailure():
			return "auth"
		case rej.IsDuplicate():
			return "duplicate"
		case rej.IsFiltered():
			return "filtered"
		case rej.IsIncompatible():
			return "incompatible"
		case rej.IsNodeInfoInvalid():
			return "invalid"
		case rej.IsSelf():
			return "self"
		}
	}
	var (
		timeout  p2p.ErrFilterTimeout
		dupID    p2p.ErrSwitchDuplicatePeerID
		existing p2p.ErrCurrentlyDialingOrExistingAddress
		self     p2p.ErrSwitchConnectToSelf
	)
	switch {
	case errors.As(err, &timeout):
		return "filtered"
	case errors.As(err, &dupID), errors.As(err, &existing):
		return "duplicate"
	case errors.As(err, &self):
		return "self"
	}
	return "other"
}

// ---------------------------------------------------------------------------
// Observing inbound rejections

// rejectLogger is the switch's logger. MultiplexTransport.Accept takes an
// unexported peerConfig, so the Transport interface cannot be wrapped from
// outside package p2p, and the accept routine swallows rejections after
// logging them. The log calls carry the original error value under the key
// "err", so this logger picks them out of the three accept-path messages
// (exact strings of switch.go v0.38) and forwards them as rejections;
// everything is still logged to stderr.
type rejectLogger struct {
	log.Logger
	events chan<- any
}

var acceptRejectMessages = map[string]bool{
	"Inbound Peer rejected":                                true, // transport.Accept: ErrRejected
	"Peer filter timed out":                                true, // transport.Accept: ErrFilterTimeout
	"Ignoring inbound connection: error while adding peer": true, // addPeer (duplicate ID, peer filters)
}

func (l rejectLogger) inspect(msg string, keyvals []any) {
	if !acceptRejectMessages[msg] {
		return
	}
	for i := 0; i+1 < len(keyvals); i += 2 {
		if err, ok := keyvals[i+1].(error); ok && keyvals[i] == "err" {
			l.events <- rejection{err: err}
			return
		}
	}
}

func (l rejectLogger) Info(msg string, keyvals ...any) {
	l.inspect(msg, keyvals)
	l.Logger.Info(msg, keyvals...)
}

func (l rejectLogger) Error(msg string, keyvals ...any) {
	l.inspect(msg, keyvals)
	l.Logger.Error(msg, keyvals...)
}

func (l rejectLogger) With(keyvals ...any) log.Logger {
	return rejectLogger{l.Logger.With(keyvals...), l.events}
}

// nopAddrBook satisfies p2p.AddrBook without storing anything.
type nopAddrBook struct{}

func (nopAddrBook) AddAddress(*p2p.NetAddress, *p2p.NetAddress) error { return nil }
func (nopAddrBook) AddPrivateIDs([]string)                            {}
func (nopAddrBook) AddOurAddress(*p2p.NetAddress)                     {}
func (nopAddrBook) OurAddress(*p2p.NetAddress) bool                   { return false }
func (nopAddrBook) MarkGood(p2p.ID)                                   {}
func (nopAddrBook) RemoveAddress(*p2p.NetAddress)                     {}
func (nopAddrBook) HasAddress(*p2p.NetAddress) bool                   { return false }
func (nopAddrBook) Save()                                             {}

// ---------------------------------------------------------------------------
// Raw messages

// rawMessage lets the echo reactor carry arbitrary bytes: the p2p layer
// (de)serialises channel messages with gogoproto's proto.Marshal/Unmarshal
// and copies the channel's prototype with proto.Clone, which use a type's own
// Marshal, Unmarshal and Merge methods when present. The bytes on the
// MConnection channel are therefore exactly the message bytes, with no
// protobuf framing.
type rawMessage struct{ data []byte }

var _ proto.Message = (*rawMessage)(nil)

func (m *rawMessage) Reset()                   { m.data = nil }
func (m *rawMessage) String() string           { return fmt.Sprintf("rawMessage(%d bytes)", len(m.data)) }
func (*rawMessage) ProtoMessage()              {}
func (m *rawMessage) Marshal() ([]byte, error) { return m.data, nil }

// Unmarshal copies b: the reference reuses its receive buffer.
func (m *rawMessage) Unmarshal(b []byte) error { m.data = bytes.Clone(b); return nil }
func (m *rawMessage) Merge(src proto.Message)  { m.data = append(m.data, src.(*rawMessage).data...) }

// ---------------------------------------------------------------------------
// Echo reactor

// echoReactor owns the --channels. In echo role it sends every message back
// to its sender on the same channel; in drive role it verifies echoes.
type echoReactor struct {
	p2p.BaseReactor
	descs  []*conn.ChannelDescriptor
	events chan<- any

	receive     func(e p2p.Envelope) // set before the switch starts
	echoed      atomic.Int64
	echoedBytes atomic.Int64
}

func newEchoReactor(descs []*conn.ChannelDescriptor, events chan<- any) *echoReactor {
	for _, d := range descs {
		d.MessageType = &rawMessage{}
	}
	r := &echoReactor{descs: descs, events: events}
	r.BaseReactor = *p2p.NewBaseReactor("Echo", r)
	r.receive = func(p2p.Envelope) {}
	return r
}

func (r *echoReactor) GetChannels() []*conn.ChannelDescriptor { return r.descs }
func (r *echoReactor) AddPeer(p p2p.Peer)                     { r.events <- peerAdded{p} }
func (r *echoReactor) RemovePeer(p p2p.Peer, reason any)      { r.events <- peerRemoved{p, reason} }

// The reactor's receive method (Receive or ReceiveEnvelope, depending on the
// line) is in the compat_*.go files; it runs synchronously on the peer's
// MConnection receive routine and calls r.receive.

// startEcho makes Receive echo messages. As in mode mconn, the blocking Send
// is not called on the receive routine but from a goroutine fed through a
// bounded queue (see runMConn).
func (r *echoReactor) startEcho(errc chan<- error) {
	queue := make(chan echoItem, echoQueueLen)
	r.receive = func(e p2p.Envelope) {
		queue <- echoItem{e.Src, e.ChannelID, e.Message.(*rawMessage).data}
	}
	go func() {
		for it := range queue {
			if !sendEnvelope(it.peer, p2p.Envelope{ChannelID: it.ch, Message: &rawMessage{it.data}}) {
				if !it.peer.IsRunning() {
					continue // the peer is gone; RemovePeer reports why
				}
				errc <- fmt.Errorf("echo Send on channel %#x failed (not advertised by the peer, or queue full for 10s)", it.ch)
				return
			}
			r.echoed.Add(1)
			r.echoedBytes.Add(int64(len(it.data)))
		}
	}()
}

// verifyEchoes makes Receive verify echoes of the messages sent by
// startDrive (see tracker).
func (r *echoReactor) verifyEchoes(seed int64, count int) *tracker {
	tr := newTracker(seed, count)
	r.receive = func(e p2p.Envelope) {
		if err := tr.check(e.ChannelID, e.Message.(*rawMessage).data); err != nil {
			fail(err)
		}
	}
	return tr
}

// startDrive sends the planned messages to p, in a goroutine, over the
// channels that both sides advertise.
func startDrive(p p2p.Peer, tr *tracker, seed int64, m *mconnFlags, errc chan<- error) error {
	ni, _ := p.NodeInfo().(p2p.DefaultNodeInfo)
	var common []byte
	for _, ch := range m.channelIDs() {
		if ni.HasChannel(ch) {
			common = append(common, ch)
		}
	}
	if len(common) == 0 && m.count > 0 {
		return fmt.Errorf("no channel in common with the peer (ours %v, theirs %v)", m.channelIDs(), []byte(ni.Channels))
	}
	plan := makePlan(seed, m.count, m.maxSize, m.bigEvery, common)
	go func() {
		for _, msg := range plan {
			tr.expect(msg)
			if !sendEnvelope(p, p2p.Envelope{ChannelID: msg.Channel, Message: &rawMessage{payload(seed, msg)}}) {
				errc <- fmt.Errorf("Send of message %d on channel %#x failed (queue full for 10s or peer stopped)",
					msg.Index, msg.Channel)
				return
			}
		}
	}()
	return nil
}
