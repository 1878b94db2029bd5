//go:build cometbft_v1

// The API of the v1.0 line: as v0.38 (Reactor.Receive and Peer.Send take an
// Envelope), but the release is version.CMTSemVer (TMCoreSemVer is gone) and
// package flowrate is internal (see newMonitorJSON and flowrate_test.go).

package main

import (
	"github.com/cometbft/cometbft/p2p"
	"github.com/cometbft/cometbft/version"
)

// buildTag is the build tag this file is selected by; reported by mode
// "version".
const buildTag = "cometbft_v1"

// coreSemVer is the release the reference reports in its NodeInfo.
const coreSemVer = version.CMTSemVer

// Receive implements p2p.Reactor.
func (r *echoReactor) Receive(e p2p.Envelope) { r.receive(e) }

// sendEnvelope sends e to p, blocking up to the reference's send timeout.
func sendEnvelope(p p2p.Peer, e p2p.Envelope) bool { return p.Send(e) }

// Receive implements p2p.Reactor for mode pex's flood role.
func (r *floodReactor) Receive(e p2p.Envelope) { r.receive(e) }

// peerList is the switch's current peers.
func peerList(sw *p2p.Switch) []p2p.Peer { return sw.Peers().Copy() }

// Receive implements p2p.Reactor for the bench's sink.
func (r *sinkReactor) Receive(p2p.Envelope) { r.receiveAny() }

// broadcast queues e for every peer.
func broadcast(sw *p2p.Switch, e p2p.Envelope) { sw.Broadcast(e) }
