package main

import (
	"runtime"
	"runtime/debug"

	"github.com/cometbft/cometbft/p2p/conn"
	"github.com/cometbft/cometbft/version"
)

// cometbftModule is the module path of the reference.
const cometbftModule = "github.com/cometbft/cometbft"

type versionEvent struct {
	Event string `json:"event"` // "version"
	// Module is the version of the reference module linked into this binary
	// (from its build information), e.g. "v0.38.26".
	Module string `json:"module"`
	// CoreSemVer is the release string the reference puts into its NodeInfo
	// (version.TMCoreSemVer, or version.CMTSemVer on v1.0). A release does not
	// always update it: it can differ from Module.
	CoreSemVer string `json:"core_semver"`
	P2P        uint64 `json:"p2p"`   // version.P2PProtocol
	Block      uint64 `json:"block"` // version.BlockProtocol
	// The reference's MConnection defaults (conn.DefaultMConnConfig).
	FlushThrottleMs int64  `json:"flush_throttle_ms"`
	PingIntervalMs  int64  `json:"ping_interval_ms"`
	PongTimeoutMs   int64  `json:"pong_timeout_ms"`
	BuildTag        string `json:"build_tag"` // "" for the default (v0.38) sources
	Go              string `json:"go"`        // the Go release that built the binary
}

// runVersion implements mode "version": one "version" event describing the
// reference this binary was built against.
func runVersion(args []string) error {
	fs := newFlagSet("version")
	if err := parseFlags(fs, nil, args); err != nil {
		return err
	}
	def := conn.DefaultMConnConfig()
	emit(versionEvent{
		Event:           "version",
		Module:          linkedModuleVersion(),
		CoreSemVer:      coreSemVer,
		P2P:             version.P2PProtocol,
		Block:           version.BlockProtocol,
		FlushThrottleMs: def.FlushThrottle.Milliseconds(),
		PingIntervalMs:  def.PingInterval.Milliseconds(),
		PongTimeoutMs:   def.PongTimeout.Milliseconds(),
		BuildTag:        buildTag,
		Go:              runtime.Version(),
	})
	return nil
}

// linkedModuleVersion returns the version of the reference module in the
// build information ("unknown" if the binary has none, e.g. under go run of a
// file list).
func linkedModuleVersion() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	for _, dep := range info.Deps {
		if dep.Path == cometbftModule {
			if dep.Replace != nil {
				return dep.Replace.Version
			}
			return dep.Version
		}
	}
	return "unknown"
}
