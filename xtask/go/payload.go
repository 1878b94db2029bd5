package main

import (
	"bytes"
	"fmt"
	"math/rand"
	"sync"
)

// bigMessageSize is the size of every K-th message with --big-every K.
const bigMessageSize = 1 << 20

// message describes one generated test message. Its content is a pure
// function of (seed, Index), so the verifying side can regenerate it instead
// of keeping a copy of everything in flight.
type message struct {
	Index   int
	Channel byte // unused by secretconn
	Size    int
}

// makePlan returns count messages with sizes uniform in 1..=maxSize (every
// bigEvery-th message, counting from 1, is exactly 1 MiB when bigEvery > 0),
// each on a channel chosen uniformly at random from channels (if any). The
// plan is fully determined by seed.
func makePlan(seed int64, count, maxSize, bigEvery int, channels []byte) []message {
	rng := rand.New(rand.NewSource(seed))
	plan := make([]message, count)
	for i := range plan {
		m := message{Index: i, Size: 1 + rng.Intn(maxSize)}
		if bigEvery > 0 && (i+1)%bigEvery == 0 {
			m.Size = bigMessageSize
		}
		if len(channels) > 0 {
			m.Channel = channels[rng.Intn(len(channels))]
		}
		plan[i] = m
	}
	return plan
}

// fillPayload fills buf with the content of message index under seed: a
// splitmix64 stream, little endian, keyed by seed and index.
func fillPayload(buf []byte, seed int64, index int) {
	state := uint64(seed)*0x9e3779b97f4a7c15 ^ uint64(index)*0xd1b54a32d192ed03
	for i := 0; i < len(buf); i += 8 {
		state += 0x9e3779b97f4a7c15
		z := state
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
		z = (z ^ (z >> 27)) * 0x94d049bb133111eb
		z ^= z >> 31
		for j := 0; j < 8 && i+j < len(buf); j++ {
			buf[i+j] = byte(z >> (8 * j))
		}
	}
}

// payload allocates and returns the content of m.
func payload(seed int64, m message) []byte {
	buf := make([]byte, m.Size)
	fillPayload(buf, seed, m.Index)
	return buf
}

// mismatchError reports the first difference between a received message and
// the expected one. Channel is -1 when channels do not apply.
type mismatchError struct {
	Index, Offset, Channel int
	Detail                 string
}

func (e *mismatchError) Error() string {
	ch := ""
	if e.Channel >= 0 {
		ch = fmt.Sprintf(" on channel %#x", e.Channel)
	}
	return fmt.Sprintf("mismatch in message %d%s at offset %d: %s", e.Index, ch, e.Offset, e.Detail)
}

// compare checks got against want and returns a *mismatchError for the first
// differing byte (or a length difference), nil if they are equal.
func compare(got, want []byte, index, channel int) error {
	if bytes.Equal(got, want) {
		return nil
	}
	n := min(len(got), len(want))
	for i := 0; i < n; i++ {
		if got[i] != want[i] {
			return &mismatchError{index, i, channel,
				fmt.Sprintf("got byte %#02x, want %#02x", got[i], want[i])}
		}
	}
	return &mismatchError{index, n, channel,
		fmt.Sprintf("got %d bytes, want %d", len(got), len(want))}
}

// tracker verifies echoed messages on a multi-channel connection: every
// message must come back on the channel it was sent on, byte-exact and in
// order per channel. The sender registers each message with expect before
// sending it, so an echo can never arrive before its registration.
type tracker struct {
	seed  int64
	total int

	mu       sync.Mutex
	pending  map[byte][]message // per channel, FIFO of sent, unechoed messages
	scratch  []byte
	received int
	bytes    int64
	done     chan struct{} // closed once all total messages were verified
}

func newTracker(seed int64, total int) *tracker {
	t := &tracker{seed: seed, total: total, pending: map[byte][]message{}, done: make(chan struct{})}
	if total == 0 {
		close(t.done)
	}
	return t
}

// expect registers m as sent.
func (t *tracker) expect(m message) {
	t.mu.Lock()
	t.pending[m.Channel] = append(t.pending[m.Channel], m)
	t.mu.Unlock()
}

// check verifies one received message on channel ch.
func (t *tracker) check(ch byte, got []byte) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	q := t.pending[ch]
	if len(q) == 0 {
		return &mismatchError{t.received, 0, int(ch),
			fmt.Sprintf("unexpected message of %d bytes (nothing pending on this channel)", len(got))}
	}
	m := q[0]
	t.pending[ch] = q[1:]
	if cap(t.scratch) < m.Size {
		t.scratch = make([]byte, m.Size)
	}
	want := t.scratch[:m.Size]
	fillPayload(want, t.seed, m.Index)
	if err := compare(got, want, m.Index, int(ch)); err != nil {
		return err
	}
	t.received++
	t.bytes += int64(len(got))
	if t.received == t.total {
		close(t.done)
	}
	return nil
}

// progress returns the number of verified messages and bytes.
func (t *tracker) progress() (int, int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.received, t.bytes
}
