//go:build cometbft_v037

// The API of the v0.37 line: the Envelope methods are still named
// ReceiveEnvelope and SendEnvelope (Receive and Send take a channel ID and
// raw bytes), and the release is version.TMCoreSemVer.

package main

import (
	"github.com/cometbft/cometbft/p2p"
	"github.com/cometbft/cometbft/version"
)

// buildTag is the build tag this file is selected by; reported by mode
// "version".
const buildTag = "cometbft_v037"

// coreSemVer is the release the reference reports in its NodeInfo.
const coreSemVer = version.TMCoreSemVer

// ReceiveEnvelope implements p2p.Reactor. (BaseReactor has a no-op one, so
// without this method the reactor would compile and silently drop every
// message.)
func (r *echoReactor) ReceiveEnvelope(e p2p.Envelope) { r.receive(e) }

// sendEnvelope sends e to p, blocking up to the reference's send timeout.
func sendEnvelope(p p2p.Peer, e p2p.Envelope) bool { return p.SendEnvelope(e) }

// ReceiveEnvelope implements p2p.Reactor for mode pex's flood role.
func (r *floodReactor) ReceiveEnvelope(e p2p.Envelope) { r.receive(e) }

// peerList is the switch's current peers.
func peerList(sw *p2p.Switch) []p2p.Peer { return sw.Peers().List() }

// ReceiveEnvelope implements p2p.Reactor for the bench's sink.
func (r *sinkReactor) ReceiveEnvelope(p2p.Envelope) { r.receiveAny() }

// broadcast queues e for every peer (the line's BroadcastEnvelope).
func broadcast(sw *p2p.Switch, e p2p.Envelope) { sw.BroadcastEnvelope(e) }
