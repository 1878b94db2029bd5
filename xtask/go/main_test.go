package main

import (
	"errors"
	"testing"

	"github.com/cosmos/gogoproto/proto"

	"github.com/cometbft/cometbft/libs/log"
	"github.com/cometbft/cometbft/p2p"
)

func TestNodeKeyIsDeterministic(t *testing.T) {
	// Pinned so that the documented derivation cannot change silently.
	const want = "3346db6d2d0c230ee3ce1faf824000112b8e692b"
	if got := string(p2p.PubKeyToID(nodeKey(1).PubKey())); got != want {
		t.Fatalf("ID for seed 1 = %s, want %s", got, want)
	}
	if string(nodeKey(1)) == string(nodeKey(2)) {
		t.Fatal("seeds 1 and 2 give the same key")
	}
}

func TestParseChannels(t *testing.T) {
	got, err := parseChannels("0x01:1, 32:10,0x7f:3")
	if err != nil {
		t.Fatal(err)
	}
	want := []channelSpec{{0x01, 1}, {0x20, 10}, {0x7f, 3}}
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
	for _, bad := range []string{"", "1", "0x100:1", "1:0", "1:x", "1:1,1:2"} {
		if _, err := parseChannels(bad); err == nil {
			t.Errorf("parseChannels(%q) succeeded", bad)
		}
	}
}

func TestPlan(t *testing.T) {
	a := makePlan(7, 100, 500, 10, []byte{1, 2, 3})
	b := makePlan(7, 100, 500, 10, []byte{1, 2, 3})
	for i := range a {
		if a[i] != b[i] {
			t.Fatal("plan is not deterministic")
		}
		if (i+1)%10 == 0 && a[i].Size != bigMessageSize {
			t.Fatalf("message %d is not big", i)
		}
		if (i+1)%10 != 0 && (a[i].Size < 1 || a[i].Size > 500) {
			t.Fatalf("message %d has size %d", i, a[i].Size)
		}
	}
	if string(payload(7, a[0])) != string(payload(7, a[0])) || string(payload(7, a[1])) == string(payload(8, a[1])) {
		t.Fatal("payload is not a function of (seed, index)")
	}
}

func TestTrackerOrderAndContent(t *testing.T) {
	plan := makePlan(1, 3, 100, 0, []byte{5})
	tr := newTracker(1, 3)
	for _, m := range plan {
		tr.expect(m)
	}
	if err := tr.check(5, payload(1, plan[0])); err != nil {
		t.Fatal(err)
	}
	// Out of order: message 2 arrives where message 1 is due.
	var mm *mismatchError
	if err := tr.check(5, payload(1, plan[2])); !errors.As(err, &mm) || mm.Index != 1 || mm.Channel != 5 {
		t.Fatalf("got %v", err)
	}
	if err := tr.check(6, []byte{1}); err == nil {
		t.Fatal("message on an unused channel accepted")
	}
}

func TestCompareOffset(t *testing.T) {
	err := compare([]byte{1, 2, 3}, []byte{1, 9, 3}, 4, -1)
	var mm *mismatchError
	if !errors.As(err, &mm) || mm.Index != 4 || mm.Offset != 1 {
		t.Fatalf("got %v", err)
	}
	if err := compare([]byte{1, 2}, []byte{1, 2, 3}, 0, -1); !errors.As(err, &mm) || mm.Offset != 2 {
		t.Fatalf("got %v", err)
	}
}

// The switch's echo reactor relies on gogoproto using rawMessage's own
// methods (the same calls as p2p/peer.go).
func TestRawMessageThroughGogoproto(t *testing.T) {
	in := &rawMessage{[]byte{0xff, 0x00, 0x01}}
	bz, err := proto.Marshal(in)
	if err != nil || string(bz) != string(in.data) {
		t.Fatalf("Marshal = %x, %v", bz, err)
	}
	out := proto.Clone(&rawMessage{}).(*rawMessage)
	if err := proto.Unmarshal(bz, out); err != nil || string(out.data) != string(in.data) {
		t.Fatalf("Unmarshal = %x, %v", out.data, err)
	}
	bz[0] = 0 // the reference reuses its buffer
	if out.data[0] != 0xff {
		t.Fatal("Unmarshal does not copy")
	}
}

func TestRejectKindAndLogger(t *testing.T) {
	if k := rejectKind(p2p.ErrFilterTimeout{}); k != "filtered" {
		t.Errorf("filter timeout kind %q", k)
	}
	if k := rejectKind(p2p.ErrCurrentlyDialingOrExistingAddress{Addr: "x"}); k != "duplicate" {
		t.Errorf("existing address kind %q", k)
	}
	if k := rejectKind(errors.New("dial tcp: refused")); k != "other" {
		t.Errorf("plain error kind %q", k)
	}

	events := make(chan any, 4)
	l := rejectLogger{log.NewNopLogger(), events}.With("module", "p2p")
	l.Info("Inbound Peer rejected", "err", errors.New("boom"), "numPeers", 0)
	l.Info("unrelated", "err", errors.New("ignored"))
	l.Error("Peer filter timed out", "err", p2p.ErrFilterTimeout{})
	if len(events) != 2 {
		t.Fatalf("got %d rejections, want 2", len(events))
	}
	if r := (<-events).(rejection); r.err.Error() != "boom" || r.outbound {
		t.Fatalf("got %+v", r)
	}
}
