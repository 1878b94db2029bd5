//go:build !cometbft_v1

// v1.0 moved package flowrate under internal/, so this test only builds
// against the v0.3x lines.

package main

import (
	"testing"
	"time"

	flow "github.com/cometbft/cometbft/libs/flowrate"
)

// A rate of 0 must disable the reference's flow-rate limiter.
func TestZeroRateIsUnlimited(t *testing.T) {
	m := flow.New(0, 0)
	start := time.Now()
	for i := 0; i < 1000; i++ {
		m.Limit(1034, 0, true)
		m.Update(1 << 20)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("1000 Limit calls with rate 0 took %s", d)
	}
}
