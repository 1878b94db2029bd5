#!/usr/bin/env bash
# Go-to-Go self test of the CometBFT shim: builds it, then runs every mode
# with one shim listening and one dialing (plus the bench modes) and prints
# PASS/FAIL per case, then "N passed, M failed". Exit status 1 if any failed.
#
#   xtask/go/selftest.sh            # normal build
#   SHIM_RACE=1 xtask/go/selftest.sh  # build with the race detector (needs cgo)
#   SHIM_BIN=path xtask/go/selftest.sh  # test that binary (e.g. one that
#                                       # `cargo xtask conformance` built against
#                                       # another CometBFT line); no build
#
# The versions the switch cases expect in NodeInfo are read from the binary
# (`cometbft-shim version`), so the same checks hold for every line.
#
# The mconn keepalive cases use a 200ms ping interval and 100ms pong timeout
# (1s/500ms with the race detector, which slows everything down so much that
# a pong queued behind megabytes of echo traffic can miss 100ms).
set -u
cd "$(dirname "$0")"
export GOTOOLCHAIN=local

BIN=bin/cometbft-shim
PING=200ms PONG=100ms LINGER=1s
if [ -n "${SHIM_BIN:-}" ]; then
	BIN=$SHIM_BIN
	build=(true)
elif [ "${SHIM_RACE:-0}" = 1 ]; then
	BIN=bin/cometbft-shim-race
	build=(go build -race -o "$BIN" .)
	PING=1s PONG=500ms LINGER=2s
else
	build=(go build -o "$BIN" .)
fi
if ! "${build[@]}"; then
	echo "FAIL build"
	echo "0 passed, 1 failed"
	exit 1
fi
VERSION=$("$BIN" version) || {
	echo "FAIL $BIN version"
	echo "0 passed, 1 failed"
	exit 1
}
# vfield KEY: a field of the version event.
vfield() { echo "$VERSION" | sed -n "s/.*\"$1\":\"\{0,1\}\([^\",]*\).*/\1/p"; }
CORE_SEMVER=$(vfield core_semver) P2P=$(vfield p2p) BLOCK=$(vfield block)
echo "reference: $VERSION"

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
passed=0
failed=0

# str FILE KEY: value of the first string field KEY in FILE.
str() { sed -n "s/.*\"$2\":\"\([^\"]*\)\".*/\1/p" "$1" | head -n1; }
# num FILE EVENT KEY: value of the numeric field KEY of the first EVENT line.
num() { grep "\"event\":\"$2\"" "$1" | sed -n "s/.*\"$3\":\([0-9.]*\).*/\1/p" | head -n1; }
# has FILE PATTERN
has() { grep -q -- "$2" "$1"; }

# pair NAME "LISTENER ARGS" "DIALER ARGS": runs a listening shim (arguments
# start with the mode; --listen is added) and a dialing one (--dial is
# added) and sets L_RC, D_RC, L (listener stdout), D (dialer stdout).
pair() {
	local name=$1
	L=$WORK/$name.listener
	D=$WORK/$name.dialer
	: >"$L"
	# shellcheck disable=SC2086 # word splitting of the argument strings is intended
	"$BIN" $2 --listen 127.0.0.1:0 >"$L" 2>"$L.log" &
	local pid=$!
	for _ in $(seq 200); do
		has "$L" '"event":"ready"' && break
		sleep 0.05
	done
	# shellcheck disable=SC2086
	"$BIN" $3 --dial "$(str "$L" node_id)@$(str "$L" addr)" >"$D" 2>"$D.log"
	D_RC=$?
	wait "$pid"
	L_RC=$?
}

# result NAME STATUS: records a case (STATUS 0 = pass; a data race reported
# in the logs is a failure too); prints both sides' events on failure.
result() {
	if grep -q "DATA RACE" "$L.log" "$D.log" 2>/dev/null; then
		echo "DATA RACE in $1:"
		cat "$L.log" "$D.log" 2>/dev/null | grep -A30 "DATA RACE" | head -60
		set -- "$1" 1
	fi
	if [ "$2" = 0 ]; then
		echo "PASS $1"
		passed=$((passed + 1))
	else
		echo "FAIL $1 (listener exit $L_RC, dialer exit $D_RC)"
		sed 's/^/    listener: /' "$L"
		sed 's/^/    dialer:   /' "$D"
		failed=$((failed + 1))
	fi
}

# ok_exchange: both exited 0, both printed done with the same byte count,
# the listener authenticated the dialer's ID, and the driver (listener or
# dialer, $1) verified $2 messages.
ok_exchange() {
	local driver=$1 count=$2
	[ "$L_RC" = 0 ] && [ "$D_RC" = 0 ] &&
		[ "$(str "$L" remote_id)" = "$(str "$D" node_id)" ] &&
		has "$driver" "\"event\":\"done\",\"messages\":$count," &&
		[ -n "$(num "$L" done bytes)" ] && [ "$(num "$L" done bytes)" = "$(num "$D" done bytes)" ]
}

# --- secretconn ---------------------------------------------------------
SC="secretconn --timeout 60s"
pair sc-listen-echo "$SC --seed 1 --role echo" "$SC --seed 2 --role drive --count 1000 --max-size 65536 --expect-id 3346db6d2d0c230ee3ce1faf824000112b8e692b"
ok_exchange "$D" 1000
result "secretconn: listener echo, dialer drive (1000 msgs)" $?

pair sc-listen-drive "$SC --seed 3 --role drive --count 1000 --max-size 65536" "$SC --seed 4 --role echo"
ok_exchange "$L" 1000
result "secretconn: listener drive, dialer echo (1000 msgs)" $?

pair sc-expect-id "$SC --seed 1 --role echo" "$SC --seed 2 --role drive --expect-id 0000000000000000000000000000000000000000"
[ "$D_RC" = 1 ] && has "$D" '"event":"error","error":"remote ID mismatch'
result "secretconn: --expect-id mismatch fails" $?

# Two drivers with different seeds: whichever reads first sees a foreign
# byte and must report the mismatch with its position.
pair sc-mismatch "$SC --seed 5 --role drive --count 1 --max-size 1" "$SC --seed 6 --role drive --count 1 --max-size 1"
[ "$L_RC" = 1 ] && [ "$D_RC" = 1 ] && cat "$L" "$D" | grep -q '"event":"error","error":"mismatch in message 0 at offset 0: .*","message":0,"offset":0}'
result "secretconn: a wrong echo is reported with message index and offset" $?

# --- mconn --------------------------------------------------------------
# timing NAME CHECK "LISTENER ARGS" "DIALER ARGS": pair + CHECK (evaluated)
# for a case with real-time bounds. The 100ms pong timeout is tight for the
# reference itself: its receive routine cannot read a pong while the echo
# reactor holds it back, so on a loaded machine two reference shims can time
# each other out. A failed attempt is reported and run once more; a real
# defect fails both.
retried=0
timing() {
	local name=$1 check=$2
	pair "$name" "$3" "$4"
	eval "$check" && return 0
	echo "RETRY $name (first attempt: listener exit $L_RC, dialer exit $D_RC; $(cat "$L" "$D" | grep '"event":"error"' | head -2 | tr '\n' ' '))"
	retried=$((retried + 1))
	pair "$name-2" "$3" "$4"
	eval "$check"
}

MC="mconn --timeout 60s --channels 0x01:1,0x02:5,0x20:10 --ping-interval $PING --pong-timeout $PONG"
timing mc-listen-echo 'ok_exchange "$D" 300 && has "$L" "\"event\":\"status\"" && has "$D" "\"event\":\"status\""' \
	"$MC --seed 1 --role echo" "$MC --seed 2 --role drive --count 300 --max-size 65536 --big-every 50 --linger $LINGER"
result "mconn: 3 channels, big-every 50, ping $PING/$PONG, linger $LINGER (listener echo)" $?

timing mc-listen-drive 'ok_exchange "$L" 300' \
	"$MC --seed 3 --role drive --count 300 --max-size 65536 --big-every 50 --linger $LINGER" "$MC --seed 4 --role echo"
result "mconn: same, listener drive, dialer echo" $?

timing mc-small-packets 'ok_exchange "$D" 100' \
	"$MC --seed 5 --role echo --max-packet-payload 100 --flush-throttle 10ms --send-rate 2000000 --recv-rate 2000000" \
	"$MC --seed 6 --role drive --count 100 --max-size 5000 --max-packet-payload 100 --flush-throttle 10ms --send-rate 2000000 --recv-rate 2000000"
result "mconn: payload 100, flush 10ms, rate-limited 2 MB/s" $?

pair mc-pong-timeout "mconn --timeout 20s --seed 1 --role echo --ping-interval 200ms --pong-timeout 100ms" "secretconn --timeout 20s --seed 2 --role sink"
[ "$L_RC" = 1 ] && has "$L" '"error":"connection error: pong timeout"' && [ "$D_RC" = 0 ]
result "mconn: silent peer (secretconn sink) causes pong timeout failure" $?

pair mc-unknown-channel "mconn --timeout 20s --seed 1 --role echo --channels 0x02:1" "mconn --timeout 20s --seed 2 --role drive --channels 0x01:1 --count 10"
[ "$L_RC" = 1 ] && has "$L" 'unknown channel 1' && [ "$D_RC" = 1 ] && has "$D" 'connection failed after 0/10 echoes'
result "mconn: message on an unknown channel fails both sides" $?

# --- switch -------------------------------------------------------------
SW="switch --timeout 60s --channels 0x01:1,0x02:5,0x20:10"
pair sw-listen-echo "$SW --seed 1 --role echo" "$SW --seed 2 --role drive --count 200 --max-size 65536 --big-every 50 --linger 500ms"
ok_exchange "$D" 200 &&
	has "$L" '"event":"peer","remote_id":"[0-9a-f]*","outbound":false,"node_info":{"protocol_version":{"p2p":'"$P2P"',"block":'"$BLOCK"',"app":0}' &&
	has "$D" '"event":"peer","remote_id":"3346db6d2d0c230ee3ce1faf824000112b8e692b","outbound":true' &&
	has "$D" '"network":"test-chain","version":"'"$CORE_SEMVER"'","channels":\[1,2,32\]'
result "switch: matching network, listener echo, dialer drive (200 msgs)" $?

pair sw-listen-drive "$SW --seed 3 --role drive --count 200 --max-size 65536 --linger 500ms --moniker lst" "$SW --seed 4 --role echo --moniker dlr"
ok_exchange "$L" 200 && has "$L" '"moniker":"dlr"' && has "$D" '"moniker":"lst"'
result "switch: matching network, listener drive, dialer echo (200 msgs)" $?

pair sw-network "$SW --seed 1 --network chain-a --exit-after-peer" "$SW --seed 2 --network chain-b --exit-after-peer"
[ "$L_RC" = 0 ] && [ "$D_RC" = 0 ] &&
	has "$L" '"event":"rejected","error":"incompatible: peer is on a different network. Got chain-b, expected chain-a","kind":"incompatible"' &&
	has "$D" '"event":"rejected","error":"incompatible: peer is on a different network. Got chain-a, expected chain-b","kind":"incompatible"'
result "switch: mismatching network rejected on both sides" $?

pair sw-network-noexit "$SW --seed 1 --network chain-a --timeout 3s" "$SW --seed 2 --network chain-b"
[ "$L_RC" = 1 ] && has "$L" '"kind":"incompatible"' && has "$L" '"error":"timeout' &&
	[ "$D_RC" = 1 ] && has "$D" '"kind":"incompatible"' && has "$D" '"event":"error","error":"dial '
result "switch: without --exit-after-peer a rejection is not success" $?

pair sw-self "$SW --seed 7 --exit-after-peer" "$SW --seed 7 --exit-after-peer"
[ "$L_RC" = 0 ] && [ "$D_RC" = 0 ] && has "$L" '"kind":"self"' && has "$D" '"event":"rejected","error":"self ID<'
result "switch: connecting to our own ID is rejected as self" $?

pair sw-exit-after-peer "$SW --seed 1 --exit-after-peer" "$SW --seed 2 --exit-after-peer"
[ "$L_RC" = 0 ] && [ "$D_RC" = 0 ] && has "$L" '"event":"peer"' && has "$D" '"event":"peer"'
result "switch: --exit-after-peer after a successful peer" $?

# Dial a wrong ID: the dialer's transport rejects (auth), the listener sees
# the connection dropped during the NodeInfo exchange (auth; EOF or reset).
L=$WORK/sw-bad-id.listener D=$WORK/sw-bad-id.dialer
: >"$L"
"$BIN" $SW --seed 1 --exit-after-peer --listen 127.0.0.1:0 >"$L" 2>"$L.log" &
pid=$!
for _ in $(seq 200); do has "$L" '"event":"ready"' && break; sleep 0.05; done
"$BIN" $SW --seed 2 --exit-after-peer --dial "0000000000000000000000000000000000000000@$(str "$L" addr)" >"$D" 2>"$D.log"
D_RC=$?
wait "$pid"
L_RC=$?
[ "$L_RC" = 0 ] && [ "$D_RC" = 0 ] &&
	has "$D" '"kind":"auth"' && has "$D" 'dialed ID (0000000000000000000000000000000000000000) mismatch' &&
	has "$L" '"event":"rejected","error":"auth failure: handshake failed: .*","kind":"auth"'
result "switch: dialing with a wrong ID is an auth rejection on both sides" $?

# One listener, several dialers: each kind of inbound rejection, then a
# real peer (drive, lingering) and a second connection with its ID.
L=$WORK/sw-kinds.listener D=$WORK/sw-kinds.dialer
: >"$L"
: >"$D"
"$BIN" $SW --seed 1 --channels 1:1 --timeout 30s --listen 127.0.0.1:0 >"$L" 2>"$L.log" &
pid=$!
for _ in $(seq 200); do has "$L" '"event":"ready"' && break; sleep 0.05; done
TARGET="$(str "$L" node_id)@$(str "$L" addr)"
D_RC=0
for extra in "--block-version 10" "--channels 2:1" "--moniker="; do
	# shellcheck disable=SC2086
	"$BIN" $SW --seed 2 --exit-after-peer --dial "$TARGET" $extra >>"$D" 2>>"$D.log" || D_RC=$?
done
"$BIN" $SW --seed 3 --channels 1:1 --role drive --count 5 --linger 2s --dial "$TARGET" >>"$D" 2>>"$D.log" &
dpid=$!
for _ in $(seq 200); do has "$L" '"event":"peer"' && break; sleep 0.05; done
"$BIN" $SW --seed 3 --channels 1:1 --exit-after-peer --dial "$TARGET" >>"$D" 2>>"$D.log" || D_RC=$?
wait "$dpid" || D_RC=$?
wait "$pid"
L_RC=$?
[ "$L_RC" = 0 ] && [ "$D_RC" = 0 ] &&
	has "$L" '"error":"incompatible: peer is on a different Block version. Got 10, expected '"$BLOCK"'","kind":"incompatible"' &&
	has "$L" '"error":"incompatible: peer has no common channels. Our channels: 01 ; Peer channels: 02","kind":"incompatible"' &&
	has "$L" '"error":"invalid NodeInfo: info.Moniker must be valid non-empty ASCII text without tabs, but got ","kind":"invalid"' &&
	has "$L" '"error":"duplicate ID<04dca987d187f625139dd9a381ed47d4e901c716>","kind":"duplicate"' &&
	has "$L" '"event":"done","messages":5,'
result "switch: listener reports block-version, channels, invalid NodeInfo and duplicate-ID rejections" $?

# --- pex ----------------------------------------------------------------
# The reference book and PEX reactor against themselves.
L=$WORK/pex-book.write D=$WORK/pex-book.read
"$BIN" pex --role book-write --file "$WORK/addrbook.json" --count 40 --good 12 --log-level error >"$L" 2>"$L.log"
L_RC=$?
"$BIN" pex --role book-read --file "$WORK/addrbook.json" --log-level error >"$D" 2>"$D.log"
D_RC=$?
[ "$L_RC" = 0 ] && [ "$D_RC" = 0 ] &&
	has "$L" '"event":"book","key":"[0-9a-f]*","size":40,' && has "$D" '"event":"book","key":"[0-9a-f]*","size":40,' &&
	[ "$(grep -o '"old":true' "$D" | wc -l)" = 12 ] && [ "$(grep -o '"good":true' "$D" | wc -l)" = 12 ]
result "pex: a saved book (40 addresses, 12 good) loads back with its old/new state" $?

# A request flood: two free requests, then one per ensure-peers period / 3.
L=$WORK/pex-flood.node D=$WORK/pex-flood.flooder
: >"$L"
"$BIN" pex --role node --seed 1 --file "$WORK/flood-book.json" --run-for 8s --log-level error >"$L" 2>"$L.log" &
pid=$!
for _ in $(seq 200); do has "$L" '"event":"ready"' && break; sleep 0.05; done
"$BIN" pex --role flood --seed 2 --requests 10 --interval 300ms --dial "$(str "$L" node_id)@$(str "$L" addr)" --log-level error >"$D" 2>"$D.log"
D_RC=$?
wait "$pid"
L_RC=$?
[ "$L_RC" = 0 ] && [ "$D_RC" = 0 ] && has "$D" '"event":"done","requests":[34],"answers":2,"removed":true'
result "pex: a peer flooding PexRequests gets 2 answers, then is disconnected" $?

# Discovery through a seed: two nodes knowing only the seed find each other.
#
# Except on v0.37 and v0.40.0, where the reference gets in its own way. Their ensurePeers asks
# a random peer for addresses on every call, not only when its period has elapsed (the guard
# v0.38 and v1.0 have), and it is also called out of turn: whenever a seed's answer arrives,
# and (v0.40.0) whenever a peer goes away. A node with nothing left to dial redials the seed
# on each tick, the seed answers and hangs up, and the out-of-turn call may ask the other node
# again moments after the tick's call did: that third request comes too soon, the other node
# disconnects and bans the asker ("sent next PEX request too soon"; either node may be the
# asker), and they stay apart.
# Whether it happens is a race (about half the runs on v0.40.0, most runs on v0.37 on a busy machine). On those
# lines the check passes when the nodes discover each other or when that ban explains why
# not; anything else fails. (Our nodes meet the reference on every line in
# pex/go-seed-rust-nodes-discover and pex/rust-seed-go-nodes-discover.)
L=$WORK/pex-seed.seed D=$WORK/pex-seed.nodes
: >"$L"
: >"$D"
: >"$D.log"
"$BIN" pex --role node --seed 3 --seed-mode --file "$WORK/seed-book.json" --run-for 14s --log-level error >"$L" 2>"$L.log" &
pid=$!
for _ in $(seq 200); do has "$L" '"event":"ready"' && break; sleep 0.05; done
SEEDS="$(str "$L" node_id)@$(str "$L" addr)"
# The second node starts once the seed knows the first: started together, both could ask the
# seed before it knew the other, and the answer would be empty.
"$BIN" pex --role node --seed 4 --seeds "$SEEDS" --ensure-peers-period 1s --file "$WORK/n4.json" --run-for 9s --log-level error >"$D.4" 2>"$D.4.log" &
p4=$!
for _ in $(seq 200); do has "$D.4" '"event":"ready"' && break; sleep 0.05; done
for _ in $(seq 100); do has "$L" "$(str "$D.4" node_id)" && break; sleep 0.05; done
"$BIN" pex --role node --seed 5 --seeds "$SEEDS" --ensure-peers-period 1s --file "$WORK/n5.json" --run-for 7s --log-level error >"$D.5" 2>"$D.5.log"
D_RC=$?
wait "$p4" || D_RC=$?
wait "$pid"
L_RC=$?
cat "$D.4" "$D.5" >"$D"
cat "$D.4.log" "$D.5.log" >>"$D.log"
met() {
	tail -n1 "$D.4" | grep -q "\"id\":\"$(str "$D.5" node_id)\"" &&
		tail -n1 "$D.5" | grep -q "\"id\":\"$(str "$D.4" node_id)\""
}
case "$VERSION" in
*'"module":"v0.37.'* | *'"module":"v0.40.'*)
	[ "$L_RC" = 0 ] && [ "$D_RC" = 0 ] && {
		met || grep -q "peer ($(str "$D.5" node_id)) sent next PEX request too soon" "$D.4.log" ||
			grep -q "peer ($(str "$D.4" node_id)) sent next PEX request too soon" "$D.5.log"
	}
	result "pex: two nodes knowing only a seed discover each other, unless the line's too-soon PEX request bans one (reference bug; see selftest.sh)" $?
	;;
*)
	[ "$L_RC" = 0 ] && [ "$D_RC" = 0 ] && met
	result "pex: two nodes knowing only a seed discover each other" $?
	;;
esac

# --- benches ------------------------------------------------------------
L=$WORK/bench.out D=$WORK/bench.out L_RC=- D_RC=-
: >"$L"
bench() {
	local out
	out=$("$BIN" "$@" 2>"$L.log")
	local rc=$?
	echo "$out" >>"$L"
	echo "    $out"
	[ "$rc" = 0 ] && [[ "$out" == '{"event":"bench",'* ]]
}
bench bench-secretconn --bytes $((64 << 20))
result "bench-secretconn: throughput (64 MiB)" $?
bench bench-secretconn --handshakes 100
result "bench-secretconn: 100 handshakes" $?
bench bench-mconn --msg-size 1024 --messages 20000
result "bench-mconn: 1024-byte messages" $?
bench bench-mconn --msg-size 65536 --messages 1000
result "bench-mconn: 65536-byte messages" $?

[ "$retried" = 0 ] || echo "!!! $retried timing case(s) needed a second attempt"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
