//go:build !cometbft_v037 && !cometbft_v1

// The API of the v0.38 line (also v0.39 and v0.40): Reactor.Receive and
// Peer.Send take an Envelope, and the release is version.TMCoreSemVer.

package main

import (
	"github.com/cometbft/cometbft/p2p"
	"github.com/cometbft/cometbft/version"
)

// buildTag is the build tag this file is selected by ("" = none, the default
// line); reported by mode "version".
const buildTag = ""

// coreSemVer is the release the reference reports in its NodeInfo.
const coreSemVer = version.TMCoreSemVer

// Receive implements p2p.Reactor.
func (r *echoReactor) Receive(e p2p.Envelope) { r.receive(e) }

// sendEnvelope sends e to p, blocking up to the reference's send timeout.
func sendEnvelope(p p2p.Peer, e p2p.Envelope) bool { return p.Send(e) }

// Receive implements p2p.Reactor for mode pex's flood role.
func (r *floodReactor) Receive(e p2p.Envelope) { r.receive(e) }

// peerList is the switch's current peers. The IPeerSet interface has List on
// v0.38 but not on v0.40 (which has Copy instead); the concrete PeerSet has
// List on both.
func peerList(sw *p2p.Switch) []p2p.Peer {
	if ps, ok := sw.Peers().(interface{ List() []p2p.Peer }); ok {
		return ps.List()
	}
	return nil
}

// Receive implements p2p.Reactor for the bench's sink.
func (r *sinkReactor) Receive(p2p.Envelope) { r.receiveAny() }

// broadcast queues e for every peer (not waiting for the sends).
func broadcast(sw *p2p.Switch, e p2p.Envelope) { sw.Broadcast(e) }
