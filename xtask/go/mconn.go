package main

import (
	"bytes"
	"flag"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/cometbft/cometbft/p2p"
	"github.com/cometbft/cometbft/p2p/conn"
)

// echoQueueLen bounds the number of received messages waiting to be echoed.
const echoQueueLen = 256

// echoItem is a received message waiting to be echoed (peer is only used by
// the switch mode).
type echoItem struct {
	peer p2p.Peer
	ch   byte
	data []byte
}

// mconnFlags are the MConnection and traffic flags shared by the mconn and
// switch modes.
type mconnFlags struct {
	channelsStr      string
	channels         []channelSpec
	maxMsg           int
	pingInterval     time.Duration
	pongTimeout      time.Duration
	flushThrottle    time.Duration
	sendRate         int64
	recvRate         int64
	maxPacketPayload int

	role     string
	count    int
	maxSize  int
	bigEvery int
	linger   time.Duration
}

func addMConnFlags(fs *flag.FlagSet) *mconnFlags {
	def := conn.DefaultMConnConfig()
	m := &mconnFlags{}
	fs.StringVar(&m.channelsStr, "channels", "0x01:1", "channels as `ID:PRIO[,ID:PRIO...]` (ID decimal or 0x-hex)")
	fs.IntVar(&m.maxMsg, "max-msg", 4<<20, "RecvMessageCapacity of every channel, in bytes")
	fs.DurationVar(&m.pingInterval, "ping-interval", def.PingInterval, "MConnection ping interval")
	fs.DurationVar(&m.pongTimeout, "pong-timeout", def.PongTimeout, "MConnection pong timeout (must be < ping interval)")
	fs.DurationVar(&m.flushThrottle, "flush-throttle", def.FlushThrottle, "MConnection flush throttle")
	fs.Int64Var(&m.sendRate, "send-rate", 0, "send rate limit in bytes/s (0 = unlimited)")
	fs.Int64Var(&m.recvRate, "recv-rate", 0, "receive rate limit in bytes/s (0 = unlimited)")
	fs.IntVar(&m.maxPacketPayload, "max-packet-payload", def.MaxPacketMsgPayloadSize, "MaxPacketMsgPayloadSize")
	fs.StringVar(&m.role, "role", "echo", "echo|drive")
	fs.IntVar(&m.count, "count", 1000, "drive: number of messages")
	fs.IntVar(&m.maxSize, "max-size", 65536, "drive: maximum message size (sizes are uniform in 1..=max-size)")
	fs.IntVar(&m.bigEvery, "big-every", 0, "drive: every K-th message is exactly 1 MiB (0 = never)")
	fs.DurationVar(&m.linger, "linger", 0, "drive: keep the connection open this long after the last echo")
	return m
}

// validate checks the flags after parsing (usage errors).
func (m *mconnFlags) validate() error {
	var err error
	if m.channels, err = parseChannels(m.channelsStr); err != nil {
		return usagef("--channels: %v", err)
	}
	switch {
	case m.role != "echo" && m.role != "drive":
		return usagef("--role must be echo or drive")
	case m.pongTimeout >= m.pingInterval:
		// The reference panics in NewMConnectionWithConfig in this case.
		return usagef("--pong-timeout must be less than --ping-interval")
	case m.count < 0 || m.maxSize < 1 || m.bigEvery < 0 || m.maxMsg < 1 || m.maxPacketPayload < 1:
		return usagef("--count, --big-every must be >= 0; --max-size, --max-msg, --max-packet-payload >= 1")
	case m.sendRate < 0 || m.recvRate < 0:
		return usagef("rates must be >= 0")
	}
	return nil
}

// config returns the reference MConnConfig. A rate of 0 disables limiting:
// flowrate.Monitor.Limit returns immediately when rate < 1.
func (m *mconnFlags) config() conn.MConnConfig {
	cfg := conn.DefaultMConnConfig()
	cfg.SendRate = m.sendRate
	cfg.RecvRate = m.recvRate
	cfg.MaxPacketMsgPayloadSize = m.maxPacketPayload
	cfg.FlushThrottle = m.flushThrottle
	cfg.PingInterval = m.pingInterval
	cfg.PongTimeout = m.pongTimeout
	return cfg
}

// descriptors returns one channel descriptor per --channels entry.
func (m *mconnFlags) descriptors() []*conn.ChannelDescriptor {
	descs := make([]*conn.ChannelDescriptor, len(m.channels))
	for i, ch := range m.channels {
		descs[i] = &conn.ChannelDescriptor{
			ID:                  ch.ID,
			Priority:            ch.Priority,
			SendQueueCapacity:   100,
			RecvMessageCapacity: m.maxMsg,
		}
	}
	return descs
}

func (m *mconnFlags) channelIDs() []byte {
	ids := make([]byte, len(m.channels))
	for i, ch := range m.channels {
		ids[i] = ch.ID
	}
	return ids
}

// runMConn implements mode "mconn": a reference MConnection on top of a
// reference SecretConnection.
func runMConn(args []string) error {
	fs := newFlagSet("mconn")
	c := addCommonFlags(fs)
	m := addMConnFlags(fs)
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
	startDeadline(c.timeout)

	sc, err := connectSecret(c, nodeKey(c.seed))
	if err != nil {
		return err
	}

	// onError is called at most once by the MConnection, from its own
	// goroutines; errc hands the error to the main goroutine.
	errc := make(chan error, 2)
	onError := func(r any) { errc <- asError(r) }

	var mc *conn.MConnection
	var onReceive func(ch byte, msg []byte)
	var tr *tracker
	var echoed atomic.Int64
	var echoedBytes atomic.Int64
	if m.role == "drive" {
		tr = newTracker(c.seed, m.count)
		// Verification runs synchronously in the receive routine; it only
		// computes, so it never blocks the connection.
		onReceive = func(ch byte, msg []byte) {
			if err := tr.check(ch, msg); err != nil {
				fail(err)
			}
		}
	} else {
		// onReceive runs on the MConnection's receive routine. Calling the
		// blocking Send there would stall that routine while our send queue
		// is full: it would stop reading (pings/pongs included), and if the
		// peer does the same both sides wait on each other. Instead messages
		// are copied (msg is reused by the reference after we return) into a
		// bounded queue that a separate goroutine drains with Send. When the
		// queue is full, onReceive blocks, which is plain TCP back-pressure,
		// as with any slow reactor in the reference.
		queue := make(chan echoItem, echoQueueLen)
		onReceive = func(ch byte, msg []byte) {
			queue <- echoItem{ch: ch, data: bytes.Clone(msg)}
		}
		go func() {
			for item := range queue {
				if !mc.Send(item.ch, item.data) {
					if !mc.IsRunning() {
						return // stopping; onError reports why
					}
					errc <- fmt.Errorf("echo Send on channel %#x timed out", item.ch)
					return
				}
				echoed.Add(1)
				echoedBytes.Add(int64(len(item.data)))
			}
		}()
	}

	mc = conn.NewMConnectionWithConfig(sc, m.descriptors(), onReceive, onError, m.config())
	mc.SetLogger(logger.With("module", "mconn"))
	if err := mc.Start(); err != nil {
		return err
	}

	if m.role == "echo" {
		// Echo until the peer disconnects. Anything but the peer closing the
		// connection (e.g. "pong timeout", "unknown channel") is a failure.
		err := <-errc
		emit(newStatusEvent(mc.Status()))
		if !isPeerClosed(err) {
			return fmt.Errorf("connection error: %w", err)
		}
		_ = mc.Stop()
		n := int(echoed.Load())
		emit(doneEvent{Event: "done", Messages: &n, Bytes: echoedBytes.Load()})
		return nil
	}

	plan := makePlan(c.seed, m.count, m.maxSize, m.bigEvery, m.channelIDs())
	go func() {
		for _, msg := range plan {
			tr.expect(msg)
			if !mc.Send(msg.Channel, payload(c.seed, msg)) {
				errc <- fmt.Errorf("Send of message %d on channel %#x failed (queue full for 10s or connection stopped)",
					msg.Index, msg.Channel)
				return
			}
		}
	}()
	if err := waitDrive(tr, errc, m.linger); err != nil {
		emit(newStatusEvent(mc.Status()))
		return err
	}
	emit(newStatusEvent(mc.Status()))
	mc.FlushStop()
	n, b := tr.progress()
	emit(doneEvent{Event: "done", Messages: &n, Bytes: b})
	return nil
}

// waitDrive waits until all echoes were verified, then lingers. Any
// connection error in the meantime (even a clean close) is a failure.
func waitDrive(tr *tracker, errc <-chan error, linger time.Duration) error {
	select {
	case <-tr.done:
	case err := <-errc:
		n, _ := tr.progress()
		return fmt.Errorf("connection failed after %d/%d echoes: %w", n, tr.total, err)
	}
	select {
	case <-time.After(linger):
		return nil
	case err := <-errc:
		return fmt.Errorf("connection failed while lingering: %w", err)
	}
}

// ---------------------------------------------------------------------------
// "status" event

type monitorJSON struct {
	Bytes      int64 `json:"bytes"`
	Samples    int64 `json:"samples"`
	InstRate   int64 `json:"inst_rate"`
	CurRate    int64 `json:"cur_rate"`
	AvgRate    int64 `json:"avg_rate"`
	PeakRate   int64 `json:"peak_rate"`
	DurationMs int64 `json:"duration_ms"`
	IdleMs     int64 `json:"idle_ms"`
}

type channelStatusJSON struct {
	ID                int   `json:"id"`
	Priority          int   `json:"priority"`
	SendQueueCapacity int   `json:"send_queue_capacity"`
	SendQueueSize     int   `json:"send_queue_size"`
	RecentlySent      int64 `json:"recently_sent"`
}

type statusEvent struct {
	Event       string              `json:"event"` // "status"
	DurationMs  int64               `json:"duration_ms"`
	SendMonitor monitorJSON         `json:"send_monitor"`
	RecvMonitor monitorJSON         `json:"recv_monitor"`
	Channels    []channelStatusJSON `json:"channels"`
}

// newMonitorJSON takes the fields of a reference flowrate.Status one by one:
// v1.0 moved package flowrate under internal/, so the type cannot be named
// here, but its fields are the same on every supported line.
func newMonitorJSON(bytes, samples, inst, cur, avg, peak int64, dur, idle time.Duration) monitorJSON {
	return monitorJSON{bytes, samples, inst, cur, avg, peak, dur.Milliseconds(), idle.Milliseconds()}
}

func newStatusEvent(s conn.ConnectionStatus) statusEvent {
	ev := statusEvent{
		Event:      "status",
		DurationMs: s.Duration.Milliseconds(),
		SendMonitor: newMonitorJSON(s.SendMonitor.Bytes, s.SendMonitor.Samples, s.SendMonitor.InstRate,
			s.SendMonitor.CurRate, s.SendMonitor.AvgRate, s.SendMonitor.PeakRate,
			s.SendMonitor.Duration, s.SendMonitor.Idle),
		RecvMonitor: newMonitorJSON(s.RecvMonitor.Bytes, s.RecvMonitor.Samples, s.RecvMonitor.InstRate,
			s.RecvMonitor.CurRate, s.RecvMonitor.AvgRate, s.RecvMonitor.PeakRate,
			s.RecvMonitor.Duration, s.RecvMonitor.Idle),
		Channels: []channelStatusJSON{},
	}
	for _, ch := range s.Channels {
		ev.Channels = append(ev.Channels, channelStatusJSON{int(ch.ID), ch.Priority,
			ch.SendQueueCapacity, ch.SendQueueSize, ch.RecentlySent})
	}
	return ev
}
