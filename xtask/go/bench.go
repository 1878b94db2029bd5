package main

import (
	"flag"
	"fmt"
	"net"
	"sync/atomic"
	"time"

	"github.com/cometbft/cometbft/crypto/ed25519"
	"github.com/cometbft/cometbft/libs/log"
	"github.com/cometbft/cometbft/p2p/conn"
)

type benchEvent struct {
	Event    string   `json:"event"` // "bench"
	Name     string   `json:"name"`
	MsgSize  *int     `json:"msg_size,omitempty"`
	Messages *int     `json:"messages,omitempty"`
	Count    *int     `json:"count,omitempty"`
	Bytes    *int64   `json:"bytes,omitempty"`
	Seconds  float64  `json:"seconds"`
	MiBPerS  *float64 `json:"mib_per_s,omitempty"`
	PerS     *float64 `json:"per_s,omitempty"`
}

func mibPerS(n int64, d time.Duration) *float64 {
	v := float64(n) / (1 << 20) / d.Seconds()
	return &v
}

// parseBenchFlags parses the flags common to the bench modes.
func parseBenchFlags(fs *flag.FlagSet, args []string) (seed int64, err error) {
	fs.Int64Var(&seed, "seed", 1, "seed for the node keys and the payload")
	timeout := fs.Duration("timeout", 600*time.Second, "overall deadline")
	if err := parseFlags(fs, nil, args); err != nil {
		return 0, err
	}
	startDeadline(*timeout)
	return seed, nil
}

// loopbackPair returns both ends of a fresh loopback TCP connection.
func loopbackPair() (dialed, accepted net.Conn, err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	defer ln.Close()
	acc := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept() // nil on error; the dial then fails or we report below
		acc <- c
	}()
	if dialed, err = net.Dial("tcp", ln.Addr().String()); err != nil {
		return nil, nil, err
	}
	if accepted = <-acc; accepted == nil {
		dialed.Close()
		return nil, nil, fmt.Errorf("accept failed")
	}
	return dialed, accepted, nil
}

// handshakePair runs the reference handshake on both ends concurrently.
func handshakePair(c1, c2 net.Conn, k1, k2 ed25519.PrivKey) (*conn.SecretConnection, *conn.SecretConnection, error) {
	type result struct {
		sc  *conn.SecretConnection
		err error
	}
	r2 := make(chan result, 1)
	go func() {
		sc, err := conn.MakeSecretConnection(c2, k2)
		r2 <- result{sc, err}
	}()
	sc1, err1 := conn.MakeSecretConnection(c1, k1)
	res2 := <-r2
	if err1 != nil || res2.err != nil {
		c1.Close()
		c2.Close()
		return nil, nil, fmt.Errorf("handshake: %v / %v", err1, res2.err)
	}
	return sc1, res2.sc, nil
}

// secretPair returns two ends of a SecretConnection over loopback TCP.
func secretPair(seed int64) (*conn.SecretConnection, *conn.SecretConnection, error) {
	c1, c2, err := loopbackPair()
	if err != nil {
		return nil, nil, err
	}
	return handshakePair(c1, c2, nodeKey(seed), nodeKey(seed+1))
}

// runBenchSecretConn implements mode "bench-secretconn".
func runBenchSecretConn(args []string) error {
	fs := newFlagSet("bench-secretconn")
	total := fs.Int64("bytes", 256<<20, "bytes to transfer")
	writeSize := fs.Int("write-size", 65536, "bytes per Write call")
	handshakes := fs.Int("handshakes", 0, "instead of throughput, time N sequential handshakes")
	seed, err := parseBenchFlags(fs, args)
	if err != nil {
		return err
	}
	if *total < 1 || *writeSize < 1 || *handshakes < 0 {
		return usagef("--bytes and --write-size must be >= 1, --handshakes >= 0")
	}
	if *handshakes > 0 {
		return benchHandshakes(seed, *handshakes)
	}

	tx, rx, err := secretPair(seed)
	if err != nil {
		return err
	}
	defer tx.Close()
	defer rx.Close()

	buf := make([]byte, *writeSize)
	fillPayload(buf, seed, 0)
	started := make(chan time.Time, 1)
	writeErr := make(chan error, 1)
	go func() {
		started <- time.Now()
		for sent := int64(0); sent < *total; {
			n := int(min(int64(len(buf)), *total-sent))
			if _, err := tx.Write(buf[:n]); err != nil {
				writeErr <- err
				return
			}
			sent += int64(n)
		}
		writeErr <- nil
	}()

	rbuf := make([]byte, 64*1024)
	for got := int64(0); got < *total; {
		n, err := rx.Read(rbuf)
		if err != nil {
			return fmt.Errorf("read after %d bytes: %w", got, err)
		}
		got += int64(n)
	}
	elapsed := time.Since(<-started)
	if err := <-writeErr; err != nil {
		return err
	}
	emit(benchEvent{Event: "bench", Name: "secretconn_throughput", Bytes: total,
		Seconds: elapsed.Seconds(), MiBPerS: mibPerS(*total, elapsed)})
	return nil
}

// benchHandshakes times n sequential handshakes, each over a fresh loopback
// TCP connection. Only the handshakes are timed, not the TCP connects.
func benchHandshakes(seed int64, n int) error {
	k1, k2 := nodeKey(seed), nodeKey(seed+1)
	var elapsed time.Duration
	for i := 0; i < n; i++ {
		c1, c2, err := loopbackPair()
		if err != nil {
			return err
		}
		start := time.Now()
		sc1, sc2, err := handshakePair(c1, c2, k1, k2)
		elapsed += time.Since(start)
		if err != nil {
			return fmt.Errorf("handshake %d: %w", i, err)
		}
		sc1.Close()
		sc2.Close()
	}
	perS := float64(n) / elapsed.Seconds()
	emit(benchEvent{Event: "bench", Name: "secretconn_handshake", Count: &n,
		Seconds: elapsed.Seconds(), PerS: &perS})
	return nil
}

// runBenchMConn implements mode "bench-mconn": one channel, one direction.
func runBenchMConn(args []string) error {
	fs := newFlagSet("bench-mconn")
	messages := fs.Int("messages", 10000, "number of messages")
	msgSize := fs.Int("msg-size", 1024, "message size in bytes")
	flushThrottle := fs.Duration("flush-throttle", conn.DefaultMConnConfig().FlushThrottle, "MConnection flush throttle")
	maxPacketPayload := fs.Int("max-packet-payload", conn.DefaultMConnConfig().MaxPacketMsgPayloadSize, "MaxPacketMsgPayloadSize")
	seed, err := parseBenchFlags(fs, args)
	if err != nil {
		return err
	}
	if *messages < 1 || *msgSize < 1 || *maxPacketPayload < 1 {
		return usagef("--messages, --msg-size and --max-packet-payload must be >= 1")
	}

	a, b, err := secretPair(seed)
	if err != nil {
		return err
	}
	cfg := conn.DefaultMConnConfig()
	cfg.SendRate, cfg.RecvRate = 0, 0 // 0 = unlimited (flowrate.Limit skips rate < 1)
	cfg.FlushThrottle = *flushThrottle
	cfg.MaxPacketMsgPayloadSize = *maxPacketPayload
	descs := []*conn.ChannelDescriptor{{ID: 0x01, Priority: 1, SendQueueCapacity: 100, RecvMessageCapacity: *msgSize}}

	errc := make(chan error, 2)
	onError := func(r any) { errc <- asError(r) }
	var (
		received atomic.Int64 // read by the main goroutine on failure
		gotBytes int64
		finished time.Time
		done     = make(chan struct{})
	)
	onReceive := func(_ byte, msg []byte) {
		gotBytes += int64(len(msg))
		if received.Add(1) == int64(*messages) {
			finished = time.Now()
			close(done)
		}
	}
	sender := conn.NewMConnectionWithConfig(a, descs, func(byte, []byte) {}, onError, cfg)
	receiver := conn.NewMConnectionWithConfig(b, descs, onReceive, onError, cfg)
	// SetLogger is mandatory: channels have a nil logger until it is called.
	sender.SetLogger(log.NewNopLogger())
	receiver.SetLogger(log.NewNopLogger())
	if err := receiver.Start(); err != nil {
		return err
	}
	if err := sender.Start(); err != nil {
		return err
	}

	msg := make([]byte, *msgSize)
	fillPayload(msg, seed, 0)
	start := time.Now()
	go func() {
		for i := 0; i < *messages; i++ {
			if !sender.Send(0x01, msg) {
				errc <- fmt.Errorf("Send of message %d failed", i)
				return
			}
		}
	}()
	select {
	case <-done:
	case err := <-errc:
		return fmt.Errorf("after %d/%d messages: %w", received.Load(), *messages, err)
	}
	elapsed := finished.Sub(start)
	_ = sender.Stop()
	_ = receiver.Stop()
	emit(benchEvent{Event: "bench", Name: "mconn_throughput", MsgSize: msgSize, Messages: messages,
		Bytes: &gotBytes, Seconds: elapsed.Seconds(), MiBPerS: mibPerS(gotBytes, elapsed)})
	return nil
}
