//! `p2p-transport` against the reference `p2p.Switch` over `p2p.MultiplexTransport` (shim
//! mode `switch`): both dial directions with the NodeInfo checked on both sides and messages
//! echoed on two shared channels, an incompatible network rejected by both sides, a wrong
//! dialed ID, and an invalid NodeInfo from the reference.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail, ensure};
use p2p_mconn::{ChannelDescriptor, ChannelReceiver, MConnConfig};
use p2p_transport::{Connection, Error, TcpTransport, Transport, TransportConfig};
use p2p_types::{NetAddress, NodeId, NodeInfo, NodeInfoOther, NodeKey, ProtocolVersion};
use serde_json::Value;

use super::{Case, CaseResult};
use crate::data;
use crate::shim::{self, Shim, parse_ready};

const EVENT_TIMEOUT: Duration = Duration::from_secs(30);
const RUN_TIMEOUT: Duration = Duration::from_secs(120);
/// Messages each way; sizes up to `MAX_SIZE`.
const COUNT: usize = 200;
const MAX_SIZE: usize = 64 * 1024;
/// The shared channels and their priorities (the shim's `--channels`).
const CHANNELS: [(u8, u32); 2] = [(0x01, 1), (0x02, 5)];
const SHIM_CHANNELS: &str = "0x01:1,0x02:5";

pub(super) fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "transport/rust-dials-go",
            run: |bin| Box::pin(rust_dials_go(bin)),
        },
        Case {
            name: "transport/go-dials-rust",
            run: |bin| Box::pin(go_dials_rust(bin)),
        },
        Case {
            name: "transport/incompatible-network/rust-dials-go",
            run: |bin| Box::pin(incompatible_rust_dials_go(bin)),
        },
        Case {
            name: "transport/incompatible-network/go-dials-rust",
            run: |bin| Box::pin(incompatible_go_dials_rust(bin)),
        },
        Case {
            name: "transport/wrong-dialed-id",
            run: |bin| Box::pin(wrong_dialed_id(bin)),
        },
        Case {
            name: "transport/invalid-go-node-info",
            run: |bin| Box::pin(invalid_go_node_info(bin)),
        },
    ]
}

fn our_key() -> NodeKey {
    NodeKey::from_seed(*b"p2p-rs conformance transport 001")
}

/// Our NodeInfo: every field set to something recognisable, so that Go's copy can be compared
/// field by field.
fn our_info(network: &str, listen: SocketAddr) -> NodeInfo {
    let key = our_key();
    let mut info = NodeInfo::new(key.node_id(), network, format!("tcp://{listen}"));
    info.protocol_version = ProtocolVersion::new(8, 11, 7);
    info.version = "0.1.0-p2p-rs".into();
    info.channels = CHANNELS.iter().map(|(id, _)| *id).collect();
    info.moniker = "p2p-rs conformance".into();
    info.other = NodeInfoOther {
        tx_index: "on".into(),
        rpc_address: "tcp://127.0.0.1:26657".into(),
    };
    info
}

fn our_config() -> TransportConfig {
    let mut mconn = MConnConfig::default();
    mconn.send_rate(0).recv_rate(0);
    let mut config = TransportConfig::default();
    config
        .channels(
            CHANNELS
                .iter()
                .map(|(id, prio)| ChannelDescriptor::new(*id, *prio).send_queue_capacity(100)),
        )
        .mconn(mconn);
    // The shim and we are both on 127.0.0.1.
    config.dangerous().allow_duplicate_ip(true);
    config
}

fn transport(network: &str, listen: SocketAddr) -> anyhow::Result<TcpTransport> {
    Ok(TcpTransport::new(
        our_key(),
        our_info(network, listen),
        our_config(),
    )?)
}

/// A free loopback port, to announce before listening on it (as the shim does).
fn free_port() -> anyhow::Result<SocketAddr> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?)
}

fn shim_args(network: &str, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "--channels",
        SHIM_CHANNELS,
        "--network",
        network,
        "--log-level",
        "error",
    ]
    .iter()
    .chain(extra)
    .map(|s| s.to_string())
    .collect();
    args.extend(["--timeout".into(), "100s".into()]);
    args
}

/// The NodeInfo the shim announces with its default flags: the release string and protocol
/// versions are those of the reference line it was built against.
fn go_info(id: NodeId, network: &str, listen_addr: &str) -> NodeInfo {
    let reference = shim::reference();
    let (version, p2p, block) = reference.map_or_else(
        |_| (String::new(), 0, 0),
        |r| (r.core_semver.clone(), r.p2p_protocol, r.block_protocol),
    );
    NodeInfo {
        protocol_version: ProtocolVersion::new(p2p, block, 0),
        id,
        listen_addr: listen_addr.into(),
        network: network.into(),
        version,
        channels: CHANNELS.iter().map(|(id, _)| *id).collect(),
        moniker: "cometbft-shim".into(),
        other: NodeInfoOther {
            tx_index: "off".into(),
            rpc_address: String::new(),
        },
    }
}

/// Checks the shim's `peer` event: the ID it authenticated, the direction, and our NodeInfo
/// exactly as we sent it.
fn check_peer_event(ev: &Value, ours: &NodeInfo, outbound: bool) -> anyhow::Result<()> {
    ensure!(
        ev["remote_id"] == ours.id.to_string(),
        "Go authenticated {} instead of {}",
        ev["remote_id"],
        ours.id
    );
    ensure!(
        ev["outbound"] == outbound,
        "Go's peer has outbound={}",
        ev["outbound"]
    );
    let ni = &ev["node_info"];
    let want = serde_json::json!({
        "protocol_version": {
            "p2p": ours.protocol_version.p2p,
            "block": ours.protocol_version.block,
            "app": ours.protocol_version.app,
        },
        "id": ours.id.to_string(),
        "listen_addr": ours.listen_addr,
        "network": ours.network,
        "version": ours.version,
        "channels": ours.channels,
        "moniker": ours.moniker,
        "other": {"tx_index": ours.other.tx_index, "rpc_address": ours.other.rpc_address},
    });
    ensure!(
        *ni == want,
        "Go received our NodeInfo as {ni}, we sent {want}"
    );
    Ok(())
}

fn check_our_view(conn: &Connection, want: &NodeInfo, outbound: bool) -> anyhow::Result<()> {
    ensure!(
        conn.node_id() == want.id,
        "we authenticated {} instead of Go's {}",
        conn.node_id(),
        want.id
    );
    ensure!(
        conn.node_info() == want,
        "we received Go's NodeInfo as {:?}, expected {:?}",
        conn.node_info(),
        want
    );
    ensure!(conn.is_outbound() == outbound, "wrong direction");
    Ok(())
}

/// Sends `COUNT` messages over both channels and checks every echo, per channel, in order.
async fn drive_echoes(conn: &mut Connection, seed: u64) -> anyhow::Result<(usize, usize)> {
    let msgs = data::messages(seed, COUNT, MAX_SIZE);
    let total: usize = msgs.iter().map(Vec::len).sum();
    let plan: Vec<(u8, Vec<u8>)> = msgs
        .into_iter()
        .enumerate()
        .map(|(i, m)| (CHANNELS[i % CHANNELS.len()].0, m))
        .collect();
    let receivers = conn.take_receivers();
    let mut checkers = tokio::task::JoinSet::new();
    for (idx, mut rx) in receivers.into_iter().enumerate() {
        let ch = CHANNELS[idx].0;
        let expected: Vec<Vec<u8>> = plan
            .iter()
            .filter(|(c, _)| *c == ch)
            .map(|(_, m)| m.clone())
            .collect();
        checkers.spawn(async move {
            for (i, want) in expected.iter().enumerate() {
                let got = rx
                    .recv()
                    .await
                    .ok_or_else(|| anyhow!("channel {ch:#04x} ended after {i} echoes"))?;
                ensure!(
                    got[..] == want[..],
                    "echo {i} on channel {ch:#04x} differs ({} bytes, expected {})",
                    got.len(),
                    want.len()
                );
            }
            anyhow::Ok(rx)
        });
    }
    let mconn = conn.mconn().clone();
    let sender = tokio::spawn(async move {
        for (ch, m) in plan {
            mconn.send(ch, m).await?;
        }
        anyhow::Ok(())
    });
    let mut kept: Vec<ChannelReceiver> = Vec::new();
    while let Some(r) = checkers.join_next().await {
        kept.push(r??);
    }
    sender.await??;
    drop(kept);
    Ok((COUNT, total))
}

/// Echoes every message back on its channel until the connection ends; returns the count.
async fn echo(conn: &mut Connection) -> usize {
    let mut tasks = tokio::task::JoinSet::new();
    for mut rx in conn.take_receivers() {
        let mconn = conn.mconn().clone();
        tasks.spawn(async move {
            let ch = rx.channel_id();
            let mut n = 0;
            while let Some(m) = rx.recv().await {
                if mconn.send(ch, m).await.is_err() {
                    break;
                }
                n += 1;
            }
            n
        });
    }
    let mut total = 0;
    while let Some(n) = tasks.join_next().await {
        total += n.unwrap_or(0);
    }
    total
}

async fn rust_dials_go(bin: PathBuf) -> CaseResult {
    let ours = our_info("test-chain", "127.0.0.1:26656".parse()?);
    let args = shim_args(
        "test-chain",
        &[
            "--listen",
            "127.0.0.1:0",
            "--role",
            "echo",
            "--expect-id",
            &ours.id.to_string(),
        ],
    );
    let mut shim = Shim::spawn(&bin, "switch", &args)?;
    let ready = parse_ready(&shim.expect("ready", EVENT_TIMEOUT).await?)?;
    let t = transport("test-chain", "127.0.0.1:26656".parse()?)?;
    let go_addr = NetAddress::new(ready.node_id, ready.addr.parse()?);
    let mut conn = t
        .dial(&go_addr)
        .await
        .with_context(|| format!("dialing the reference at {go_addr}"))?;
    check_our_view(
        &conn,
        &go_info(
            ready.node_id,
            "test-chain",
            &format!("tcp://{}", ready.addr),
        ),
        true,
    )?;
    check_peer_event(&shim.expect("peer", EVENT_TIMEOUT).await?, &ours, false)?;

    let (n, bytes) = tokio::time::timeout(RUN_TIMEOUT, drive_echoes(&mut conn, 11))
        .await
        .map_err(|_| anyhow!("echoes timed out"))??;
    t.cleanup(conn);
    let done = shim.expect_done(EVENT_TIMEOUT).await?;
    ensure!(
        done["messages"] == n,
        "Go echoed {} messages, we sent {n}",
        done["messages"]
    );
    Ok(format!(
        "NodeInfo checked both ways; {n} messages, {bytes} bytes echoed by Go on 2 channels"
    ))
}

async fn go_dials_rust(bin: PathBuf) -> CaseResult {
    let listen = free_port()?;
    let t = transport("test-chain", listen)?;
    t.listen(listen).await?;
    let ours = our_info("test-chain", listen);
    let args = shim_args(
        "test-chain",
        &[
            "--dial",
            &NetAddress::new(ours.id, listen).to_string(),
            "--role",
            "drive",
            "--count",
            &COUNT.to_string(),
            "--max-size",
            &MAX_SIZE.to_string(),
            "--seed",
            "5",
            "--expect-id",
            &ours.id.to_string(),
        ],
    );
    let mut shim = Shim::spawn(&bin, "switch", &args)?;
    let ready = parse_ready(&shim.expect("ready", EVENT_TIMEOUT).await?)?;
    let mut conn = match tokio::time::timeout(EVENT_TIMEOUT, t.accept())
        .await
        .map_err(|_| anyhow!("the reference did not connect"))?
    {
        Ok(c) => c,
        Err(e) if e.is_rejection() => bail!("we rejected the reference: {e}"),
        Err(e) => return Err(e.into()),
    };
    check_our_view(
        &conn,
        // The shim announces the reference's default laddr when it dials.
        &go_info(ready.node_id, "test-chain", "tcp://0.0.0.0:26656"),
        false,
    )?;
    check_peer_event(&shim.expect("peer", EVENT_TIMEOUT).await?, &ours, true)?;

    let echoed = tokio::time::timeout(RUN_TIMEOUT, echo(&mut conn))
        .await
        .map_err(|_| anyhow!("echoing timed out"))?;
    let done = shim.expect_done(EVENT_TIMEOUT).await?;
    ensure!(
        done["messages"] == COUNT,
        "Go verified {} echoes, expected {COUNT}",
        done["messages"]
    );
    t.cleanup(conn);
    t.close().await;
    Ok(format!(
        "NodeInfo checked both ways; Go verified {} messages ({} bytes) echoed by Rust ({echoed})",
        done["messages"], done["bytes"]
    ))
}

/// Go's `rejected` event must have kind `kind` and its error text contain `needle`.
fn check_rejected(ev: &Value, kind: &str, needle: &str) -> anyhow::Result<String> {
    let text = ev["error"].as_str().unwrap_or_default().to_owned();
    ensure!(
        ev["kind"] == kind && text.contains(needle),
        "Go's rejection is {ev}, expected kind {kind:?} mentioning {needle:?}"
    );
    Ok(text)
}

fn is_network_mismatch(e: &Error, ours: &str, theirs: &str) -> bool {
    matches!(e, Error::Incompatible {
        source: p2p_types::Error::IncompatibleNetwork { ours: o, theirs: t }, ..
    } if o == ours && t == theirs)
}

async fn incompatible_rust_dials_go(bin: PathBuf) -> CaseResult {
    let args = shim_args("chain-b", &["--listen", "127.0.0.1:0", "--exit-after-peer"]);
    let mut shim = Shim::spawn(&bin, "switch", &args)?;
    let ready = parse_ready(&shim.expect("ready", EVENT_TIMEOUT).await?)?;
    let t = transport("chain-a", "127.0.0.1:26656".parse()?)?;
    let ours = match t
        .dial(&NetAddress::new(ready.node_id, ready.addr.parse()?))
        .await
    {
        Ok(_) => bail!("we accepted a peer on another network"),
        Err(e) if is_network_mismatch(&e, "chain-a", "chain-b") => e,
        Err(e) => bail!("expected an incompatible-network rejection, got {e:?}"),
    };
    let go = check_rejected(
        &shim.expect("rejected", EVENT_TIMEOUT).await?,
        "incompatible",
        "different network",
    )?;
    Ok(format!("ours: {ours}; Go: {go}"))
}

async fn incompatible_go_dials_rust(bin: PathBuf) -> CaseResult {
    let listen = free_port()?;
    let t = transport("chain-a", listen)?;
    t.listen(listen).await?;
    let args = shim_args(
        "chain-b",
        &[
            "--dial",
            &NetAddress::new(our_key().node_id(), listen).to_string(),
            "--exit-after-peer",
        ],
    );
    let mut shim = Shim::spawn(&bin, "switch", &args)?;
    let ours = match tokio::time::timeout(EVENT_TIMEOUT, t.accept())
        .await
        .map_err(|_| anyhow!("the reference did not connect"))?
    {
        Ok(_) => bail!("we accepted a peer on another network"),
        Err(e) if is_network_mismatch(&e, "chain-a", "chain-b") => e,
        Err(e) => bail!("expected an incompatible-network rejection, got {e:?}"),
    };
    let go = check_rejected(
        &shim.expect("rejected", EVENT_TIMEOUT).await?,
        "incompatible",
        "different network",
    )?;
    t.close().await;
    Ok(format!("ours: {ours}; Go: {go}"))
}

async fn wrong_dialed_id(bin: PathBuf) -> CaseResult {
    let args = shim_args(
        "test-chain",
        &["--listen", "127.0.0.1:0", "--exit-after-peer"],
    );
    let mut shim = Shim::spawn(&bin, "switch", &args)?;
    let ready = parse_ready(&shim.expect("ready", EVENT_TIMEOUT).await?)?;
    let t = transport("test-chain", "127.0.0.1:26656".parse()?)?;
    let wrong = NodeKey::from_seed([0x42; 32]).node_id();
    let ours = match t.dial(&NetAddress::new(wrong, ready.addr.parse()?)).await {
        Ok(_) => bail!("we accepted a peer under the wrong ID"),
        Err(
            e @ Error::DialedIdMismatch {
                dialed,
                authenticated,
                ..
            },
        ) if dialed == wrong && authenticated == ready.node_id => e,
        Err(e) => bail!("expected DialedIdMismatch, got {e:?}"),
    };
    // The reference's listener sees the dialer hang up during the NodeInfo exchange.
    let go = check_rejected(
        &shim.expect("rejected", EVENT_TIMEOUT).await?,
        "auth",
        "auth failure",
    )?;
    Ok(format!("ours: {ours}; Go: {go}"))
}

async fn invalid_go_node_info(bin: PathBuf) -> CaseResult {
    let listen = free_port()?;
    let t = transport("test-chain", listen)?;
    t.listen(listen).await?;
    // A moniker of one tab: not printable ASCII, so invalid (the shim sends it anyway).
    let args = shim_args(
        "test-chain",
        &[
            "--dial",
            &NetAddress::new(our_key().node_id(), listen).to_string(),
            "--moniker",
            "\t",
            "--exit-after-peer",
        ],
    );
    let _shim = Shim::spawn(&bin, "switch", &args)?;
    let e = match tokio::time::timeout(EVENT_TIMEOUT, t.accept())
        .await
        .map_err(|_| anyhow!("the reference did not connect"))?
    {
        Ok(_) => bail!("we accepted an invalid NodeInfo"),
        Err(e) => e,
    };
    ensure!(
        matches!(
            &e,
            Error::InvalidNodeInfo {
                source: p2p_types::Error::InvalidMoniker { .. },
                ..
            }
        ),
        "expected InvalidNodeInfo(moniker), got {e:?}"
    );
    t.close().await;
    Ok(format!("ours: {e}"))
}
