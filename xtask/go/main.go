// Command cometbft-shim drives the real CometBFT v0.38 p2p stack (imported
// from github.com/cometbft/cometbft) so that our Rust implementation can be
// tested against the reference over real TCP connections.
//
// Usage: cometbft-shim <mode> [flags]
//
// Every mode writes newline-delimited JSON events to stdout (one object per
// line, each with an "event" field); human-readable logs go to stderr. Exit
// status is 0 on success, 1 on failure (after an "error" event) and 2 on bad
// usage. See README.md for the full interface.
package main

import (
	stded25519 "crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cometbft/cometbft/crypto/ed25519"
	"github.com/cometbft/cometbft/libs/log"
	"github.com/cometbft/cometbft/p2p"
	"github.com/cometbft/cometbft/p2p/conn"
)

// modes maps each mode name to its entry point. The entry point receives the
// mode's arguments (without the mode name) and returns an error; failures are
// reported by main.
var modes = map[string]func(args []string) error{
	"secretconn":       runSecretConn,
	"mconn":            runMConn,
	"switch":           runSwitch,
	"pex":              runPex,
	"bench-secretconn": runBenchSecretConn,
	"bench-mconn":      runBenchMConn,
	"bench-switch":     runBenchSwitch,
	"version":          runVersion,
	"metrics":          runMetrics,
	"config":           runConfig,
}

const usageText = `usage: cometbft-shim <mode> [flags]

modes: secretconn, mconn, switch, pex, bench-secretconn, bench-mconn, bench-switch, version, metrics, config
run "cometbft-shim <mode> -h" for the flags of a mode; see README.md.
`

func main() {
	if len(os.Args) < 2 {
		usageExit(errors.New("missing mode"))
	}
	run, ok := modes[os.Args[1]]
	if !ok {
		usageExit(fmt.Errorf("unknown mode %q", os.Args[1]))
	}
	if err := run(os.Args[2:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			exit(0, nil) // -h / --help: flag printed the usage to stderr
		}
		var u usageError
		if errors.As(err, &u) {
			usageExit(err)
		}
		fail(err)
	}
	exit(0, nil)
}

// ---------------------------------------------------------------------------
// Event output and process exit

var (
	outMu sync.Mutex
	enc   = newEncoder()
)

func newEncoder() *json.Encoder {
	e := json.NewEncoder(os.Stdout)
	e.SetEscapeHTML(false) // keep "<" and ">" of reference error strings readable
	return e
}

// emit writes one JSON event line to stdout. It is safe for concurrent use.
func emit(v any) {
	outMu.Lock()
	defer outMu.Unlock()
	_ = enc.Encode(v)
}

// exit writes an optional last event and terminates the process. The output
// lock is never released, so no event can follow (e.g. from a goroutine that
// is still running, or a timeout firing at the same moment).
func exit(code int, last any) {
	outMu.Lock()
	if last != nil {
		_ = enc.Encode(last)
	}
	os.Exit(code)
}

type errorEvent struct {
	Event string `json:"event"` // "error"
	Error string `json:"error"`
	// Set only for verification failures (see mismatchError).
	Message *int `json:"message,omitempty"`
	Offset  *int `json:"offset,omitempty"`
	Channel *int `json:"channel,omitempty"`
}

// fail reports err as an "error" event and exits with status 1.
func fail(err error) {
	ev := errorEvent{Event: "error", Error: err.Error()}
	var m *mismatchError
	if errors.As(err, &m) {
		ev.Message, ev.Offset = &m.Index, &m.Offset
		if m.Channel >= 0 {
			ev.Channel = &m.Channel
		}
	}
	fmt.Fprintln(os.Stderr, "cometbft-shim: error:", err)
	exit(1, ev)
}

// usageError marks errors caused by bad command-line usage (exit status 2).
type usageError struct{ error }

func (u usageError) Unwrap() error { return u.error }

func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

func usageExit(err error) {
	fmt.Fprintf(os.Stderr, "cometbft-shim: %v\n%s", err, usageText)
	exit(2, errorEvent{Event: "error", Error: "usage: " + err.Error()})
}

// startDeadline makes the whole process fail once d has elapsed.
func startDeadline(d time.Duration) {
	if d > 0 {
		time.AfterFunc(d, func() { fail(fmt.Errorf("timeout: not done after %s", d)) })
	}
}

// ---------------------------------------------------------------------------
// Flags shared by the connection modes

type commonFlags struct {
	listen   string
	dial     string
	seed     int64
	timeout  time.Duration
	expectID string
	logLevel string
}

func addCommonFlags(fs *flag.FlagSet) *commonFlags {
	c := &commonFlags{}
	fs.StringVar(&c.listen, "listen", "", "listen on `HOST:PORT` (port 0 = any) and accept one connection")
	fs.StringVar(&c.dial, "dial", "", "dial `ID@HOST:PORT`")
	fs.Int64Var(&c.seed, "seed", 1, "seed for the node key and the random messages")
	fs.DurationVar(&c.timeout, "timeout", 60*time.Second, "overall deadline")
	fs.StringVar(&c.expectID, "expect-id", "", "fail unless the remote's authenticated node ID is `HEX`")
	fs.StringVar(&c.logLevel, "log-level", "info", "stderr log level of the reference code: debug|info|error|none")
	return c
}

// parseFlags parses args and validates the common flags. It turns every
// parse problem into a usageError.
func parseFlags(fs *flag.FlagSet, c *commonFlags, args []string) error {
	fs.SetOutput(os.Stderr)
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	if c != nil && (c.listen == "") == (c.dial == "") {
		return usagef("exactly one of --listen and --dial is required")
	}
	return nil
}

func newFlagSet(mode string) *flag.FlagSet {
	return flag.NewFlagSet("cometbft-shim "+mode, flag.ContinueOnError)
}

// newLogger returns the stderr logger handed to the reference code.
func newLogger(level string) (log.Logger, error) {
	opt, err := log.AllowLevel(level)
	if err != nil {
		return nil, usageError{err}
	}
	return log.NewFilter(log.NewTMLogger(log.NewSyncWriter(os.Stderr)), opt), nil
}

// ---------------------------------------------------------------------------
// Node key

// nodeKey derives the node's ed25519 key from the seed: the 32-byte ed25519
// seed is SHA-256("cometbft-shim/node-key" || seed as 8-byte big endian).
func nodeKey(seed int64) ed25519.PrivKey {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(seed))
	secret := sha256.Sum256(append([]byte("cometbft-shim/node-key"), b[:]...))
	// CometBFT's ed25519.PrivKey has Go's crypto/ed25519 layout (seed || pub).
	return ed25519.PrivKey(stded25519.NewKeyFromSeed(secret[:]))
}

// ---------------------------------------------------------------------------
// Connection setup for secretconn and mconn

type readyEvent struct {
	Event  string `json:"event"` // "ready"
	NodeID string `json:"node_id"`
	Addr   string `json:"addr"`
}

type connectedEvent struct {
	Event    string `json:"event"` // "connected"
	RemoteID string `json:"remote_id"`
}

// connectSecret prints "ready", establishes one TCP connection (accepting
// exactly one when listening), runs the reference SecretConnection handshake
// and prints "connected". The remote ID is checked against the ID in --dial
// (if any) and --expect-id (if given).
func connectSecret(c *commonFlags, key ed25519.PrivKey) (*conn.SecretConnection, error) {
	ourID := string(p2p.PubKeyToID(key.PubKey()))
	var raw net.Conn
	var dialedID string
	if c.listen != "" {
		ln, err := net.Listen("tcp", c.listen)
		if err != nil {
			return nil, err
		}
		emit(readyEvent{"ready", ourID, ln.Addr().String()})
		raw, err = ln.Accept()
		ln.Close() // exactly one connection
		if err != nil {
			return nil, err
		}
	} else {
		hostPort := c.dial
		if i := strings.LastIndex(c.dial, "@"); i >= 0 {
			dialedID, hostPort = c.dial[:i], c.dial[i+1:]
		}
		emit(readyEvent{"ready", ourID, ""})
		var err error
		if raw, err = net.Dial("tcp", hostPort); err != nil {
			return nil, err
		}
	}
	sc, err := conn.MakeSecretConnection(raw, key)
	if err != nil {
		raw.Close()
		return nil, fmt.Errorf("secret connection handshake: %w", err)
	}
	remoteID := string(p2p.PubKeyToID(sc.RemotePubKey()))
	emit(connectedEvent{"connected", remoteID})
	if err := checkRemoteID(remoteID, dialedID, c.expectID); err != nil {
		sc.Close()
		return nil, err
	}
	return sc, nil
}

// checkRemoteID compares the authenticated remote ID with the expected ones
// (empty strings are not checked).
func checkRemoteID(remoteID, dialedID, expectID string) error {
	for _, want := range []string{dialedID, expectID} {
		if want != "" && !strings.EqualFold(want, remoteID) {
			return fmt.Errorf("remote ID mismatch: authenticated %s, expected %s", remoteID, want)
		}
	}
	return nil
}

// isPeerClosed reports whether err just means that the peer closed the
// connection (clean EOF, our own socket closed, or a reset by the peer).
func isPeerClosed(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// asError converts a value reported through an MConnection onError callback
// (an error, or a recovered panic value) into an error.
func asError(r any) error {
	if err, ok := r.(error); ok {
		return err
	}
	return fmt.Errorf("%v", r)
}

// ---------------------------------------------------------------------------
// Channel list parsing

// channelSpec is one entry of --channels.
type channelSpec struct {
	ID       byte
	Priority int
}

// parseChannels parses "ID:PRIO[,ID:PRIO...]" where ID is decimal or 0x-hex
// (0..255) and PRIO a positive integer.
func parseChannels(s string) ([]channelSpec, error) {
	var out []channelSpec
	seen := map[byte]bool{}
	for _, item := range strings.Split(s, ",") {
		idStr, prioStr, ok := strings.Cut(strings.TrimSpace(item), ":")
		if !ok {
			return nil, fmt.Errorf("channel %q: want ID:PRIORITY", item)
		}
		id, err := strconv.ParseUint(idStr, 0, 8)
		if err != nil {
			return nil, fmt.Errorf("channel %q: bad ID: %w", item, err)
		}
		prio, err := strconv.Atoi(prioStr)
		if err != nil || prio <= 0 {
			return nil, fmt.Errorf("channel %q: priority must be a positive integer", item)
		}
		if seen[byte(id)] {
			return nil, fmt.Errorf("channel %#x listed twice", id)
		}
		seen[byte(id)] = true
		out = append(out, channelSpec{byte(id), prio})
	}
	return out, nil
}
