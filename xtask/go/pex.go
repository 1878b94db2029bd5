package main

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cometbft/cometbft/config"
	"github.com/cometbft/cometbft/libs/log"
	"github.com/cometbft/cometbft/p2p"
	"github.com/cometbft/cometbft/p2p/conn"
	"github.com/cometbft/cometbft/p2p/pex"
	"github.com/cometbft/cometbft/version"
)

// pexFlags are the flags of mode "pex".
type pexFlags struct {
	role       string
	file       string
	count      int
	good       int
	seed       int64
	listen     string
	dial       string
	seeds      string
	known      string
	seedMode   bool
	strict     bool
	ensure     time.Duration
	stateEvery time.Duration
	runFor     time.Duration
	requests   int
	interval   time.Duration
	timeout    time.Duration
	logLevel   string
	network    string
	moniker    string
	maxOut     int
}

// runPex implements mode "pex": the reference address book (pex.AddrBook)
// and PEX reactor (pex.Reactor). Roles:
//
//   - book-write: build a book of --count addresses (the first --good marked
//     good, so moved to old buckets), save it to --file, print it;
//   - book-read: load --file with the reference book and print what it holds;
//   - node: a switch with the reference PEX reactor, printing its peers and
//     book every --state-every until killed or --timeout;
//   - flood: a switch whose only reactor owns the PEX channel and sends
//     --requests raw PexRequests, --interval apart, to the peer it dials.
func runPex(args []string) error {
	fs := newFlagSet("pex")
	f := &pexFlags{}
	fs.StringVar(&f.role, "role", "", "book-write|book-read|node|flood")
	fs.StringVar(&f.file, "file", "", "book-write, book-read, node: the addrbook.json `PATH`")
	fs.IntVar(&f.count, "count", 40, "book-write: number of addresses")
	fs.IntVar(&f.good, "good", 10, "book-write: how many of them are marked good")
	fs.Int64Var(&f.seed, "seed", 1, "seed for the node key (and the addresses of book-write)")
	fs.StringVar(&f.listen, "listen", "127.0.0.1:0", "node: listen on `HOST:PORT` (port 0 = any)")
	fs.StringVar(&f.dial, "dial", "", "node, flood: comma-separated `ID@HOST:PORT` list dialed once the switch runs")
	fs.StringVar(&f.seeds, "seeds", "", "node: the PEX reactor's seeds, comma-separated `ID@HOST:PORT`")
	fs.StringVar(&f.known, "known", "", "node: comma-separated `ID@HOST:PORT` list put into the book before start")
	fs.BoolVar(&f.seedMode, "seed-mode", false, "node: run the PEX reactor in seed (crawler) mode")
	fs.BoolVar(&f.strict, "strict", true, "book-write, book-read: the book's routability_strict (node: always false)")
	fs.DurationVar(&f.ensure, "ensure-peers-period", 30*time.Second, "node: the reactor's ensure-peers period (SetEnsurePeersPeriod)")
	fs.DurationVar(&f.stateEvery, "state-every", 500*time.Millisecond, "node: how often the state event is printed")
	fs.DurationVar(&f.runFor, "run-for", 0, "node: print a last state event and exit 0 after this long (0 = run until killed or --timeout)")
	fs.IntVar(&f.requests, "requests", 10, "flood: PexRequests to send")
	fs.DurationVar(&f.interval, "interval", 300*time.Millisecond, "flood: pause between two requests")
	fs.DurationVar(&f.timeout, "timeout", 60*time.Second, "overall deadline")
	fs.StringVar(&f.logLevel, "log-level", "info", "stderr log level of the reference code: debug|info|error|none")
	fs.StringVar(&f.network, "network", "test-chain", "node, flood: the NodeInfo network (chain ID)")
	fs.StringVar(&f.moniker, "moniker", "cometbft-shim-pex", "node, flood: the NodeInfo moniker")
	fs.IntVar(&f.maxOut, "max-outbound", 0, "node: the switch's max_num_outbound_peers (0 = the reference's default, 10)")
	if err := parseFlags(fs, nil, args); err != nil {
		return err
	}
	logger, err := newLogger(f.logLevel)
	if err != nil {
		return err
	}
	if f.maxOut < 0 {
		return usagef("--max-outbound must not be negative")
	}
	if f.file == "" && f.role != "flood" {
		return usagef("--file is required for role %q", f.role)
	}
	startDeadline(f.timeout)
	switch f.role {
	case "book-write":
		return pexBookWrite(f, logger)
	case "book-read":
		return pexBookRead(f, logger)
	case "node":
		return pexNode(f, logger)
	case "flood":
		return pexFlood(f, logger)
	}
	return usagef("--role must be book-write, book-read, node or flood, not %q", f.role)
}

// ---------------------------------------------------------------------------
// Book contents

// bookEntry is one address of a book as the events report it.
type bookEntry struct {
	ID      string `json:"id"`
	Addr    string `json:"addr"` // ID@IP:PORT
	Src     string `json:"src"`
	Old     bool   `json:"old"`  // bucket_type 2
	Good    bool   `json:"good"` // the book's IsGood
	Buckets []int  `json:"buckets"`
}

// savedBook is the part of addrbook.json read back (the reference's own
// format; its entry type is unexported, so the fields are declared here).
type savedBook struct {
	Key   string `json:"key"`
	Addrs []struct {
		Addr       *p2p.NetAddress `json:"addr"`
		Src        *p2p.NetAddress `json:"src"`
		Buckets    []int           `json:"buckets"`
		BucketType byte            `json:"bucket_type"`
	} `json:"addrs"`
}

// bookContents lists what book holds: the AddrBook interface has no way to
// enumerate it, so the book saves itself to path (its own file) and the
// saved entries are read back, with IsGood asked for each. Sorted by ID.
func bookContents(book pex.AddrBook, path string) (key string, out []bookEntry, err error) {
	book.Save()
	raw, err := os.ReadFile(path)
	if err != nil {
		return "", nil, err
	}
	var s savedBook
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", nil, fmt.Errorf("the reference saved an unreadable %s: %w", path, err)
	}
	out = make([]bookEntry, 0, len(s.Addrs))
	for _, a := range s.Addrs {
		if a.Addr == nil {
			continue
		}
		e := bookEntry{ID: string(a.Addr.ID), Addr: a.Addr.String(), Old: a.BucketType == 2,
			Good: book.IsGood(a.Addr), Buckets: a.Buckets}
		if a.Src != nil {
			e.Src = a.Src.String()
		}
		if e.Buckets == nil {
			e.Buckets = []int{}
		}
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return s.Key, out, nil
}

// plainDone is the last event of the book roles.
type plainDone struct {
	Event string `json:"event"` // "done"
}

type bookEvent struct {
	Event   string      `json:"event"` // "book"
	Key     string      `json:"key"`
	Size    int         `json:"size"` // the book's Size()
	Entries []bookEntry `json:"entries"`
}

// pexBookWrite builds a reference book with addresses in distinct routable
// IPs from four sources, marks the first --good good and saves it.
func pexBookWrite(f *pexFlags, logger log.Logger) error {
	if _, err := os.Stat(f.file); err == nil {
		return fmt.Errorf("%s exists; book-write wants a fresh path", f.file)
	}
	book := pex.NewAddrBook(f.file, f.strict)
	book.SetLogger(logger.With("module", "book"))
	addrAt := func(n int64, ip string, port int) (*p2p.NetAddress, error) {
		id := p2p.PubKeyToID(nodeKey(n).PubKey())
		return p2p.NewNetAddressString(p2p.IDAddressString(id, fmt.Sprintf("%s:%d", ip, port)))
	}
	var srcs []*p2p.NetAddress
	for i := 0; i < 4; i++ {
		src, err := addrAt(f.seed*100000+90000+int64(i), fmt.Sprintf("%d.9.9.9", 30+i), 26656)
		if err != nil {
			return err
		}
		srcs = append(srcs, src)
	}
	var addrs []*p2p.NetAddress
	for i := 0; i < f.count; i++ {
		a, err := addrAt(f.seed*100000+int64(i), fmt.Sprintf("%d.%d.%d.%d", 20+i%8, 1+i/8%250, 7, 1+i%250), 26656+i)
		if err != nil {
			return err
		}
		if err := book.AddAddress(a, srcs[i%len(srcs)]); err != nil {
			return fmt.Errorf("the reference book refused %s: %w", a, err)
		}
		addrs = append(addrs, a)
	}
	for i := 0; i < f.good && i < len(addrs); i++ {
		book.MarkGood(addrs[i].ID)
	}
	key, entries, err := bookContents(book, f.file)
	if err != nil {
		return err
	}
	emit(bookEvent{"book", key, book.Size(), entries})
	exit(0, plainDone{"done"})
	return nil
}

// pexBookRead loads --file with the reference book (its OnStart) and
// prints what it holds.
func pexBookRead(f *pexFlags, logger log.Logger) error {
	book := pex.NewAddrBook(f.file, f.strict)
	book.SetLogger(logger.With("module", "book"))
	if err := book.Start(); err != nil {
		return err
	}
	size := book.Size()
	key, entries, err := bookContents(book, f.file)
	if err != nil {
		return err
	}
	emit(bookEvent{"book", key, size, entries})
	exit(0, plainDone{"done"})
	return nil
}

// ---------------------------------------------------------------------------
// Nodes

// pexSwitch builds a permissive switch (duplicate IPs allowed, loopback
// friendly) with the reference transport and NodeInfo advertising channels.
func pexSwitch(f *pexFlags, listen string, channels []byte, logger log.Logger) (*p2p.Switch, *p2p.MultiplexTransport, *p2p.NetAddress, *config.P2PConfig, error) {
	seed := f.seed
	nk := p2p.NodeKey{PrivKey: nodeKey(seed)}
	addr, err := reservePort(listen)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	self := p2p.NewNetAddress(nk.ID(), addr)
	nodeInfo := p2p.DefaultNodeInfo{
		ProtocolVersion: p2p.NewProtocolVersion(version.P2PProtocol, version.BlockProtocol, 0),
		DefaultNodeID:   nk.ID(),
		ListenAddr:      "tcp://" + addr.String(),
		Network:         f.network,
		Version:         coreSemVer,
		Channels:        channels,
		Moniker:         f.moniker,
		Other:           p2p.DefaultNodeInfoOther{TxIndex: "off"},
	}
	cfg := config.DefaultP2PConfig()
	cfg.ListenAddress = nodeInfo.ListenAddr
	cfg.AllowDuplicateIP = true
	cfg.AddrBookStrict = false
	if f.maxOut > 0 {
		cfg.MaxNumOutboundPeers = f.maxOut
	}
	transport := p2p.NewMultiplexTransport(nodeInfo, nk, conn.DefaultMConnConfig())
	sw := p2p.NewSwitch(cfg, transport)
	sw.SetLogger(logger.With("module", "p2p"))
	sw.SetNodeInfo(nodeInfo)
	sw.SetNodeKey(&nk)
	return sw, transport, self, cfg, nil
}

func splitList(s string) []string {
	var out []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

func parseAddrList(flagName, s string) ([]*p2p.NetAddress, error) {
	var out []*p2p.NetAddress
	for _, item := range splitList(s) {
		a, err := p2p.NewNetAddressString(item)
		if err != nil {
			return nil, usagef("%s: %v", flagName, err)
		}
		out = append(out, a)
	}
	return out, nil
}

type peerJSON struct {
	ID       string `json:"id"`
	Outbound bool   `json:"outbound"`
}

type stateEvent struct {
	Event string      `json:"event"` // "state"
	Peers []peerJSON  `json:"peers"`
	Book  []bookEntry `json:"book"`
}

type dialedEvent struct {
	Event string `json:"event"` // "dialed"
	Addr  string `json:"addr"`
	Error string `json:"error,omitempty"`
}

// pexNode runs a switch with the reference PEX reactor and book (as
// node/setup.go wires them: our own address added to the book, the book
// set on the switch) and prints its state until killed.
func pexNode(f *pexFlags, logger log.Logger) error {
	dials, err := parseAddrList("--dial", f.dial)
	if err != nil {
		return err
	}
	known, err := parseAddrList("--known", f.known)
	if err != nil {
		return err
	}
	sw, transport, self, cfg, err := pexSwitch(f, f.listen, []byte{pex.PexChannel}, logger)
	if err != nil {
		return err
	}
	cfg.PexReactor = true
	cfg.SeedMode = f.seedMode
	cfg.Seeds = f.seeds
	book := pex.NewAddrBook(f.file, false)
	book.SetLogger(logger.With("module", "book"))
	book.AddOurAddress(self)
	for _, a := range known {
		if err := book.AddAddress(a, self); err != nil {
			return fmt.Errorf("--known %s refused by the reference book: %w", a, err)
		}
	}
	r := pex.NewReactor(book, &pex.ReactorConfig{
		SeedMode:                 f.seedMode,
		Seeds:                    splitList(f.seeds),
		SeedDisconnectWaitPeriod: 28 * time.Hour, // what node/setup.go sets
	})
	r.SetEnsurePeersPeriod(f.ensure)
	r.SetLogger(logger.With("module", "pex"))
	sw.AddReactor("PEX", r)
	sw.SetAddrBook(book)
	if err := transport.Listen(*self); err != nil {
		return err
	}
	if err := sw.Start(); err != nil {
		return err
	}
	emit(readyEvent{"ready", string(self.ID), self.DialString()})
	for _, a := range dials {
		go func(a *p2p.NetAddress) {
			ev := dialedEvent{Event: "dialed", Addr: a.String()}
			if err := sw.DialPeerWithAddress(a); err != nil {
				ev.Error = err.Error()
			}
			emit(ev)
		}(a)
	}
	tick := time.NewTicker(f.stateEvery)
	defer tick.Stop()
	var end <-chan time.Time
	if f.runFor > 0 {
		end = time.After(f.runFor)
	}
	for last := false; ; {
		select {
		case <-tick.C:
		case <-end:
			last = true
		}
		ev := stateEvent{Event: "state", Peers: []peerJSON{}}
		for _, p := range peerList(sw) {
			ev.Peers = append(ev.Peers, peerJSON{string(p.ID()), p.IsOutbound()})
		}
		sort.Slice(ev.Peers, func(i, j int) bool { return ev.Peers[i].ID < ev.Peers[j].ID })
		if _, ev.Book, err = bookContents(book, f.file); err != nil {
			return err
		}
		if last {
			_ = sw.Stop()
			exit(0, ev)
		}
		emit(ev)
	}
}

// ---------------------------------------------------------------------------
// Flooding PEX requests

// pexRequest is a PexRequest wrapped in the PEX channel's Message (field 1,
// empty): the bytes every implementation sends to ask for addresses.
var pexRequest = []byte{0x0a, 0x00}

// floodReactor owns the PEX channel with raw messages, so that requests can
// be sent at any rate (the reference reactor never sends them that often).
type floodReactor struct {
	p2p.BaseReactor
	events  chan<- any
	answers atomic.Int64 // PexAddrs received (field 2 of the Message)
	other   atomic.Int64 // anything else received
}

func newFloodReactor(events chan<- any) *floodReactor {
	r := &floodReactor{events: events}
	r.BaseReactor = *p2p.NewBaseReactor("Flood", r)
	return r
}

func (*floodReactor) GetChannels() []*conn.ChannelDescriptor {
	return []*conn.ChannelDescriptor{{
		ID: pex.PexChannel, Priority: 1, SendQueueCapacity: 10,
		RecvMessageCapacity: 1 << 20, MessageType: &rawMessage{},
	}}
}

func (r *floodReactor) AddPeer(p p2p.Peer)                { r.events <- peerAdded{p} }
func (r *floodReactor) RemovePeer(p p2p.Peer, reason any) { r.events <- peerRemoved{p, reason} }

// receive counts what arrived; called by the line's Receive or
// ReceiveEnvelope (compat_*.go).
func (r *floodReactor) receive(e p2p.Envelope) {
	data := e.Message.(*rawMessage).data
	if len(data) > 0 && data[0] == 0x12 {
		n := r.answers.Add(1)
		emit(answerEvent{"answer", int(n), len(data)})
	} else {
		r.other.Add(1)
	}
}

type answerEvent struct {
	Event string `json:"event"` // "answer"
	N     int    `json:"n"`
	Bytes int    `json:"bytes"`
}

type requestEvent struct {
	Event string `json:"event"` // "request"
	N     int    `json:"n"`
	Sent  bool   `json:"sent"`
}

type floodDoneEvent struct {
	Event    string `json:"event"` // "done"
	Requests int    `json:"requests"`
	Answers  int    `json:"answers"`
	Removed  bool   `json:"removed"` // the peer was removed before the flood ended
	Reason   string `json:"reason"`
}

// pexFlood dials --dial and floods the peer with PexRequests until it is
// removed or --requests were sent (then it waits 3 s more).
func pexFlood(f *pexFlags, logger log.Logger) error {
	dials, err := parseAddrList("--dial", f.dial)
	if err != nil {
		return err
	}
	if len(dials) != 1 {
		return usagef("flood: --dial needs exactly one address")
	}
	events := make(chan any, 100)
	reactor := newFloodReactor(events)
	sw, _, self, _, err := pexSwitch(f, "127.0.0.1:0", []byte{pex.PexChannel}, logger)
	if err != nil {
		return err
	}
	sw.SetAddrBook(nopAddrBook{})
	sw.AddReactor("FLOOD", reactor)
	if err := sw.Start(); err != nil {
		return err
	}
	emit(readyEvent{"ready", string(self.ID), ""})
	go func() {
		if err := sw.DialPeerWithAddress(dials[0]); err != nil {
			events <- rejection{err: err, outbound: true}
		}
	}()
	var sent atomic.Int64
	finished := make(chan struct{})
	for {
		select {
		case ev := <-events:
			switch ev := ev.(type) {
			case rejection:
				return fmt.Errorf("dial %s: %w", dials[0], ev.err)
			case peerAdded:
				emit(newPeerEvent(ev.peer))
				go func(p p2p.Peer) {
					for i := 1; i <= f.requests && p.IsRunning(); i++ {
						ok := sendEnvelope(p, p2p.Envelope{ChannelID: pex.PexChannel, Message: &rawMessage{pexRequest}})
						if ok {
							sent.Add(1)
						}
						emit(requestEvent{"request", i, ok})
						time.Sleep(f.interval)
					}
					time.Sleep(3 * time.Second)
					close(finished)
				}(ev.peer)
			case peerRemoved:
				reason := "stopped"
				if ev.reason != nil {
					reason = asError(ev.reason).Error()
				}
				_ = sw.Stop()
				exit(0, floodDoneEvent{"done", int(sent.Load()), int(reactor.answers.Load()), true, reason})
			}
		case <-finished:
			_ = sw.Stop()
			exit(0, floodDoneEvent{"done", int(sent.Load()), int(reactor.answers.Load()), false, ""})
		}
	}
}
