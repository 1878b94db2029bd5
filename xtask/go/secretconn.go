package main

import (
	"fmt"
	"io"

	"github.com/cometbft/cometbft/p2p/conn"
)

type doneEvent struct {
	Event    string `json:"event"` // "done"
	Messages *int   `json:"messages,omitempty"`
	Bytes    int64  `json:"bytes"`
}

// runSecretConn implements mode "secretconn": a bare reference
// SecretConnection over TCP, either echoing bytes or driving random messages
// through an echoing peer.
func runSecretConn(args []string) error {
	fs := newFlagSet("secretconn")
	c := addCommonFlags(fs)
	role := fs.String("role", "echo", "echo|drive|sink")
	count := fs.Int("count", 1000, "drive: number of messages")
	maxSize := fs.Int("max-size", 65536, "drive: maximum message size (sizes are uniform in 1..=max-size)")
	if err := parseFlags(fs, c, args); err != nil {
		return err
	}
	if *role != "echo" && *role != "drive" && *role != "sink" {
		return usagef("--role must be echo, drive or sink")
	}
	if *count < 0 || *maxSize < 1 {
		return usagef("--count must be >= 0 and --max-size >= 1")
	}
	startDeadline(c.timeout)

	sc, err := connectSecret(c, nodeKey(c.seed))
	if err != nil {
		return err
	}
	defer sc.Close()
	switch *role {
	case "echo":
		return secretEcho(sc, true)
	case "sink":
		return secretEcho(sc, false)
	}
	return secretDrive(sc, c.seed, *count, *maxSize)
}

// secretEcho writes every chunk read back to the peer (or, with echo false,
// discards it, never writing anything) until the peer closes the connection.
func secretEcho(sc *conn.SecretConnection, echo bool) error {
	buf := make([]byte, 64*1024)
	var total int64
	for {
		n, err := sc.Read(buf)
		if n > 0 && echo {
			// SecretConnection.Write writes everything or fails.
			if _, werr := sc.Write(buf[:n]); werr != nil {
				if isPeerClosed(werr) {
					break
				}
				return fmt.Errorf("echo write: %w", werr)
			}
		}
		total += int64(n)
		if err != nil {
			if isPeerClosed(err) {
				break
			}
			return fmt.Errorf("echo read: %w", err)
		}
	}
	emit(doneEvent{Event: "done", Bytes: total})
	return nil
}

// secretDrive sends the planned messages from one goroutine while this one
// reads the echoes back and compares them byte by byte (reading concurrently
// avoids a deadlock once both TCP buffers are full).
func secretDrive(sc *conn.SecretConnection, seed int64, count, maxSize int) error {
	plan := makePlan(seed, count, maxSize, 0, nil)
	writeErr := make(chan error, 1)
	go func() {
		for _, m := range plan {
			if _, err := sc.Write(payload(seed, m)); err != nil {
				writeErr <- fmt.Errorf("write message %d: %w", m.Index, err)
				return
			}
		}
		writeErr <- nil
	}()

	var total int64
	got := make([]byte, maxSize)
	want := make([]byte, maxSize)
	for _, m := range plan {
		if _, err := io.ReadFull(sc, got[:m.Size]); err != nil {
			return fmt.Errorf("read echo of message %d (%d bytes): %w", m.Index, m.Size, err)
		}
		fillPayload(want[:m.Size], seed, m.Index)
		if err := compare(got[:m.Size], want[:m.Size], m.Index, -1); err != nil {
			return err
		}
		total += int64(m.Size)
	}
	if err := <-writeErr; err != nil {
		return err
	}
	// Everything was echoed, so closing now gives the echo side a clean EOF.
	if err := sc.Close(); err != nil {
		return fmt.Errorf("close: %w", err)
	}
	emit(doneEvent{Event: "done", Messages: &count, Bytes: total})
	return nil
}
