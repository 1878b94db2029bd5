package main

// Mode "bench-mconn-latency": the latency of small messages on a high-priority
// channel of two reference MConnections, on an idle link or while a low-priority
// channel is kept saturated with 64 KiB messages (the Rust bench's
// latency_p99_loaded, same channels, sizes, spacing and flush throttle).

import (
	"flag"
	"fmt"
	"math"
	"math/rand"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cometbft/cometbft/libs/log"
	"github.com/cometbft/cometbft/p2p/conn"
)

func init() {
	modes["bench-mconn-latency"] = runBenchMConnLatency
}

type latencyEvent struct {
	Event  string  `json:"event"` // "bench"
	Name   string  `json:"name"`
	Loaded bool    `json:"loaded"`
	Probes int     `json:"probes"`
	P50us  float64 `json:"p50_us"`
	P99us  float64 `json:"p99_us"`
}

// percentile of sorted xs, as the Rust bench computes it.
func percentile(xs []float64, q float64) float64 {
	i := int(math.Ceil(float64(len(xs))*q)) - 1
	if i < 0 {
		i = 0
	}
	if i >= len(xs) {
		i = len(xs) - 1
	}
	return xs[i]
}

func runBenchMConnLatency(args []string) error {
	fs := flag.NewFlagSet("bench-mconn-latency", flag.ContinueOnError)
	probes := fs.Int("probes", 150, "number of probe messages")
	loaded := fs.Bool("loaded", false, "keep the bulk channel saturated meanwhile")
	seed, err := parseBenchFlags(fs, args)
	if err != nil {
		return err
	}
	if *probes < 1 {
		return usagef("--probes must be >= 1")
	}
	const bulkCh, probeCh, probeLen = 0x01, 0x20, 100

	a, b, err := secretPair(seed)
	if err != nil {
		return err
	}
	cfg := conn.DefaultMConnConfig()
	cfg.SendRate, cfg.RecvRate = 0, 0
	cfg.FlushThrottle = 10 * time.Millisecond
	descs := func() []*conn.ChannelDescriptor {
		return []*conn.ChannelDescriptor{
			{ID: bulkCh, Priority: 1, SendQueueCapacity: 10, RecvMessageCapacity: 64 << 10},
			{ID: probeCh, Priority: 10, SendQueueCapacity: 10},
		}
	}

	base := time.Now()
	errc := make(chan error, 2)
	onError := func(r any) { errc <- asError(r) }
	var (
		mu        sync.Mutex
		latencies []float64
		done      = make(chan struct{})
	)
	onReceive := func(ch byte, msg []byte) {
		if ch != probeCh || len(msg) < 8 {
			return
		}
		now := time.Since(base).Nanoseconds()
		var sent int64
		for i := 7; i >= 0; i-- {
			sent = sent<<8 | int64(msg[i])
		}
		mu.Lock()
		latencies = append(latencies, float64(now-sent)/1000)
		if len(latencies) == *probes {
			close(done)
		}
		mu.Unlock()
	}
	sender := conn.NewMConnectionWithConfig(a, descs(), func(byte, []byte) {}, onError, cfg)
	receiver := conn.NewMConnectionWithConfig(b, descs(), onReceive, onError, cfg)
	sender.SetLogger(log.NewNopLogger())
	receiver.SetLogger(log.NewNopLogger())
	if err := receiver.Start(); err != nil {
		return err
	}
	if err := sender.Start(); err != nil {
		return err
	}
	defer func() {
		_ = sender.Stop()
		_ = receiver.Stop()
	}()

	var stop atomic.Bool
	if *loaded {
		bulk := make([]byte, 64<<10)
		fillPayload(bulk, seed, 0)
		go func() {
			for !stop.Load() {
				if !sender.Send(bulkCh, bulk) && !sender.IsRunning() {
					return
				}
			}
		}()
		// Let the bulk fill every buffer on the way first.
		time.Sleep(300 * time.Millisecond)
	}
	rng := rand.New(rand.NewSource(7))
	for i := 0; i < *probes; i++ {
		time.Sleep(time.Duration(12000+rng.Intn(4000)) * time.Microsecond)
		msg := make([]byte, probeLen)
		t := time.Since(base).Nanoseconds()
		for j := 0; j < 8; j++ {
			msg[j] = byte(t >> (8 * j))
		}
		if !sender.Send(probeCh, msg) {
			return fmt.Errorf("Send of probe %d failed", i)
		}
	}
	select {
	case <-done:
	case err := <-errc:
		return fmt.Errorf("after %d/%d probes: %w", len(latencies), *probes, err)
	case <-time.After(60 * time.Second):
		return fmt.Errorf("only %d/%d probes arrived", len(latencies), *probes)
	}
	stop.Store(true)
	mu.Lock()
	xs := append([]float64(nil), latencies...)
	mu.Unlock()
	sort.Float64s(xs)
	emit(latencyEvent{Event: "bench", Name: "mconn_latency", Loaded: *loaded, Probes: *probes,
		P50us: percentile(xs, 0.50), P99us: percentile(xs, 0.99)})
	return nil
}
