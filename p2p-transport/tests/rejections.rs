//! Every rejection kind, over real TCP, with the right variant, address and reason.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use p2p_mconn::ChannelDescriptor;
use p2p_secretconn::SecretStream;
use p2p_transport::{
    Denied, Error, ErrorKind, TcpTransport, Transport, conn_filter_fn, peer_filter_fn,
};
use p2p_types::{NetAddress, NodeInfo};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

#[tokio::test]
async fn spoofed_id_inbound() {
    let (b, b_addr) = listening(1, "chain", config(), "127.0.0.1").await;
    // The evil peer authenticates as key 9 but claims to be key 10.
    let evil = key(9);
    let mut claimed = info(&key(10), "chain");
    claimed.moniker = "evil".into();
    let _s = raw_peer(b_addr.socket_addr(), &evil, &claimed.encode_delimited()).await;
    match accept_err(&b).await {
        e @ Error::NodeInfoIdMismatch { .. } => {
            assert_eq!(e.kind(), ErrorKind::AuthFailure);
            let Error::NodeInfoIdMismatch {
                addr,
                authenticated,
                claimed,
            } = e
            else {
                unreachable!()
            };
            assert_eq!(authenticated, evil.node_id());
            assert_eq!(claimed, key(10).node_id());
            assert_eq!(addr, _s.get_ref().local_addr().unwrap());
        }
        e => panic!("expected NodeInfoIdMismatch, got {e:?}"),
    }
}

#[tokio::test]
async fn spoofed_id_outbound() {
    // An evil listener with key 9 that claims key 10 in its NodeInfo; we dial key 9 (its real
    // key), so the dialed-ID check passes and the NodeInfo check must catch it.
    let evil = key(9);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let at = listener.local_addr().unwrap();
    let wire = info(&key(10), "chain").encode_delimited();
    let evil_task = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut s = SecretStream::handshake(tcp, &evil).await.unwrap();
        s.write_all(&wire).await.unwrap();
        s.flush().await.unwrap();
        s
    });
    let a = transport(2, "chain", config());
    let err = a
        .dial(&NetAddress::new(key(9).node_id(), at))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::NodeInfoIdMismatch { authenticated, claimed, addr }
            if authenticated == key(9).node_id() && claimed == key(10).node_id() && addr == at),
        "{err:?}"
    );
    assert!(err.is_auth_failure());
    drop(evil_task.await.unwrap());
    assert!(a.conn_set().is_empty(), "the failed dial left an entry");
}

#[tokio::test]
async fn wrong_dialed_id() {
    let (b, b_addr) = listening(1, "chain", config(), "127.0.0.1").await;
    let a = transport(2, "chain", config());
    let wrong = key(3).node_id();
    let err = a
        .dial(&NetAddress::new(wrong, b_addr.socket_addr()))
        .await
        .unwrap_err();
    match &err {
        Error::DialedIdMismatch {
            addr,
            dialed,
            authenticated,
        } => {
            assert_eq!(*addr, b_addr.socket_addr());
            assert_eq!(*dialed, wrong);
            assert_eq!(*authenticated, key(1).node_id());
        }
        e => panic!("expected DialedIdMismatch, got {e:?}"),
    }
    assert!(err.is_auth_failure() && err.is_rejection());
    // The listener sees the dialer hang up during the NodeInfo exchange (as the reference's
    // listener does: "auth failure: handshake failed: EOF").
    let e = accept_err(&b).await;
    assert!(e.is_auth_failure(), "{e:?}");
    assert_eq!(e.peer_id(), Some(key(2).node_id()));
    assert!(a.conn_set().is_empty());
}

#[tokio::test]
async fn self_connection_reports_our_address() {
    let (a, a_addr) = listening(1, "chain", config(), "127.0.0.1").await;
    let err = a.dial(&a_addr).await.unwrap_err();
    assert!(err.is_self());
    assert_eq!(err.self_addr(), Some(&a_addr), "{err:?}");
    // The accepting side rejects it too, carrying our ID at the dialer's socket address.
    let e = accept_err(&a).await;
    assert!(e.is_self(), "{e:?}");
    let ours = e.self_addr().unwrap();
    assert_eq!(ours.id(), key(1).node_id());
    assert_eq!(ours.ip(), a_addr.ip());
    assert!(a.conn_set().is_empty());
}

#[tokio::test]
async fn incompatible_network_on_both_sides() {
    let (b, b_addr) = listening(1, "chain-b", config(), "127.0.0.1").await;
    let a = transport(2, "chain-a", config());
    let err = a.dial(&b_addr).await.unwrap_err();
    assert!(err.is_incompatible());
    assert!(
        matches!(&err, Error::Incompatible { addr, id, source: p2p_types::Error::IncompatibleNetwork { ours, theirs } }
            if *addr == b_addr.socket_addr() && *id == key(1).node_id() && ours == "chain-a" && theirs == "chain-b"),
        "{err:?}"
    );
    let e = accept_err(&b).await;
    assert!(
        matches!(&e, Error::Incompatible { id, source: p2p_types::Error::IncompatibleNetwork { ours, theirs }, .. }
            if *id == key(2).node_id() && ours == "chain-b" && theirs == "chain-a"),
        "{e:?}"
    );
}

#[tokio::test]
async fn no_common_channel_and_block_version() {
    // A peer with only channel 0x03.
    let (b, b_addr) = listening(1, "chain", config(), "127.0.0.1").await;
    let k = key(2);
    let mut i = info(&k, "chain");
    i.channels = vec![0x03];
    let mut c = config();
    c.channels([ChannelDescriptor::new(0x03, 1)]);
    let a = TcpTransport::new(k, i, c).unwrap();
    let err = a.dial(&b_addr).await.unwrap_err();
    assert!(
        matches!(
            &err,
            Error::Incompatible {
                source: p2p_types::Error::NoCommonChannels { .. },
                ..
            }
        ),
        "{err:?}"
    );
    assert!(accept_err(&b).await.is_incompatible());

    // A raw peer on another block version.
    let evil = key(5);
    let mut other = info(&evil, "chain");
    other.protocol_version.block = 10;
    let _s = raw_peer(b_addr.socket_addr(), &evil, &other.encode_delimited()).await;
    let e = accept_err(&b).await;
    assert!(
        matches!(
            &e,
            Error::Incompatible {
                source: p2p_types::Error::IncompatibleBlockVersion {
                    ours: 11,
                    theirs: 10
                },
                ..
            }
        ),
        "{e:?}"
    );
}

// Linux only: the second listener is on 127.0.0.2, which Linux routes to loopback like all of
// 127.0.0.0/8; other systems only have 127.0.0.1 unless configured.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn duplicate_ip_outbound() {
    // Duplicate IPs not allowed on the dialer: the node default.
    let mut strict = config();
    strict.dangerous().allow_duplicate_ip(false);
    let a = transport(1, "chain", strict);
    let (b, b_addr) = listening(2, "chain", config(), "127.0.0.1").await;
    let (c, c_addr) = listening(3, "chain", config(), "127.0.0.2").await;
    let (d, d_addr) = listening(4, "chain", config(), "127.0.0.1").await;

    let (to_b, from_a) = tokio::join!(a.dial(&b_addr), accept_ok(&b));
    let to_b = to_b.unwrap();
    // Another IP is fine.
    let (to_c, _from_a_c) = tokio::join!(a.dial(&c_addr), accept_ok(&c));
    let to_c = to_c.unwrap();
    // 127.0.0.1 again is not, even on another port and another node.
    let err = a.dial(&d_addr).await.unwrap_err();
    assert!(
        matches!(err, Error::DuplicateIp { addr, ip } if addr == d_addr.socket_addr() && ip == d_addr.ip()),
        "{err:?}"
    );
    assert!(err.is_duplicate());
    assert_eq!(a.conn_set().len(), 2);
    // Once the first connection is cleaned up, the IP is free again.
    a.cleanup(to_b);
    b.cleanup(from_a);
    let (to_d, _from_a_d) = tokio::join!(a.dial(&d_addr), accept_ok(&d));
    to_d.unwrap();
    drop(to_c);
}

#[tokio::test]
async fn duplicate_ip_inbound() {
    let mut strict = config();
    strict.dangerous().allow_duplicate_ip(false);
    let (a, a_addr) = listening(1, "chain", strict, "127.0.0.1").await;
    let b = transport(2, "chain", config());
    let c = transport(3, "chain", config());
    let (out_b, in_b) = tokio::join!(b.dial(&a_addr), accept_ok(&a));
    let out_b = out_b.unwrap();
    // c comes from 127.0.0.1 too: refused before any handshake work, so c sees the socket close
    // during its handshake.
    let err_c = c.dial(&a_addr).await.unwrap_err();
    assert!(
        matches!(err_c, Error::Handshake { .. }),
        "dialer saw {err_c:?}"
    );
    let e = accept_err(&a).await;
    assert!(
        matches!(e, Error::DuplicateIp { ip, .. } if ip == a_addr.ip()),
        "{e:?}"
    );
    assert_eq!(a.stats().tracked, 1);
    b.cleanup(out_b);
    a.cleanup(in_b);
}

#[tokio::test]
async fn duplicate_connection() {
    let (b, b_addr) = listening(1, "chain", config(), "127.0.0.1").await;
    let a = transport(2, "chain", config());
    let (first, inb) = tokio::join!(a.dial(&b_addr), accept_ok(&b));
    let first = first.unwrap();
    // Same remote ip:port while the first connection is held.
    let err = a.dial(&b_addr).await.unwrap_err();
    assert!(
        matches!(err, Error::DuplicateConnection { addr } if addr == b_addr.socket_addr()),
        "{err:?}"
    );
    assert!(err.is_duplicate());
    a.cleanup(first);
    b.cleanup(inb);
    // Released: dialing again works.
    let (again, inb) = tokio::join!(a.dial(&b_addr), accept_ok(&b));
    assert!(again.is_ok());
    drop(inb);
}

#[tokio::test]
async fn invalid_node_info() {
    let (b, b_addr) = listening(1, "chain", config(), "127.0.0.1").await;
    let evil = key(9);
    let mut bad = info(&evil, "chain");
    bad.moniker = String::new();
    let _s = raw_peer(b_addr.socket_addr(), &evil, &bad.encode_delimited()).await;
    let e = accept_err(&b).await;
    assert!(e.is_invalid_node_info());
    assert!(
        matches!(&e, Error::InvalidNodeInfo { id, source: p2p_types::Error::InvalidMoniker { .. }, .. }
            if *id == evil.node_id()),
        "{e:?}"
    );
}

#[tokio::test]
async fn oversize_node_info_is_refused_before_allocation() {
    let (b, b_addr) = listening(1, "chain", config(), "127.0.0.1").await;
    // A length prefix of 10241 bytes (one over the limit) and no body.
    let _s = raw_peer(b_addr.socket_addr(), &key(9), &[0x81, 0x50]).await;
    let e = accept_err(&b).await;
    assert!(
        matches!(
            &e,
            Error::NodeInfoDecode {
                source: p2p_types::Error::MessageTooLarge {
                    len: 10241,
                    max: 10240
                },
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.is_auth_failure());
    // A huge varint as well.
    let _s2 = raw_peer(
        b_addr.socket_addr(),
        &key(8),
        &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
    )
    .await;
    assert!(matches!(accept_err(&b).await, Error::NodeInfoDecode { .. }));
}

#[tokio::test]
async fn garbage_instead_of_a_handshake() {
    let (b, b_addr) = listening(1, "chain", config(), "127.0.0.1").await;
    let mut tcp = TcpStream::connect(b_addr.socket_addr()).await.unwrap();
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: example\r\n\r\n")
        .await
        .unwrap();
    tcp.shutdown().await.unwrap();
    let e = accept_err(&b).await;
    assert!(matches!(e, Error::Handshake { .. }), "{e:?}");
    assert!(e.is_auth_failure());
}

#[tokio::test]
async fn handshake_and_node_info_timeouts() {
    let mut c = config();
    c.handshake_timeout(Duration::from_millis(300));
    let (b, b_addr) = listening(1, "chain", c, "127.0.0.1").await;
    // Silent: the secret handshake times out.
    let silent = TcpStream::connect(b_addr.socket_addr()).await.unwrap();
    match accept_err(&b).await {
        Error::Handshake { source, addr } => {
            assert!(matches!(
                source,
                p2p_secretconn::Error::HandshakeTimeout { .. }
            ));
            assert_eq!(addr, silent.local_addr().unwrap());
        }
        e => panic!("{e:?}"),
    }
    // Handshakes, then never sends its NodeInfo: the fresh NodeInfo deadline fires.
    let _s = raw_peer(b_addr.socket_addr(), &key(9), &[]).await;
    let e = accept_err(&b).await;
    assert!(
        matches!(e, Error::NodeInfoTimeout { id, timeout, .. }
            if id == key(9).node_id() && timeout == Duration::from_millis(300)),
        "{e:?}"
    );
    assert_eq!(b.stats().incoming, 0);
}

#[tokio::test]
async fn connection_filters() {
    // A filter refusing everything from 127.0.0.1, and one that never answers.
    let mut c = config();
    c.conn_filter(conn_filter_fn("no-loopback", |conn| {
        let refuse = conn.remote().ip().is_loopback();
        async move {
            if refuse {
                Err(Denied::new("no-loopback", "loopback refused"))
            } else {
                Ok(())
            }
        }
    }));
    let (b, b_addr) = listening(1, "chain", c, "127.0.0.1").await;
    let a = transport(2, "chain", config());
    assert!(a.dial(&b_addr).await.is_err());
    let e = accept_err(&b).await;
    assert!(
        matches!(&e, Error::Filtered { denied, id: None, .. } if denied.filter == "no-loopback"),
        "{e:?}"
    );
    assert!(e.is_filtered());
    assert!(b.conn_set().is_empty());

    // Outbound: the dialer's own filters run too, and know the dialed ID.
    let mut c = config();
    c.filter_timeout(Duration::from_millis(200))
        .conn_filter(conn_filter_fn("stuck", |_| std::future::pending()));
    let a = transport(3, "chain", c);
    let (ok_b, ok_addr) = listening(4, "chain", config(), "127.0.0.1").await;
    let e = a.dial(&ok_addr).await.unwrap_err();
    assert!(
        matches!(&e, Error::FilterTimeout { filter, id: Some(id), timeout, .. }
            if filter == "stuck" && *id == key(4).node_id() && *timeout == Duration::from_millis(200)),
        "{e:?}"
    );
    assert!(e.is_filtered());
    assert!(a.conn_set().is_empty());
    drop(ok_b);
}

#[tokio::test]
async fn peer_filters_see_the_node_info() {
    let mut c = config();
    c.peer_filter(peer_filter_fn("moniker", |peer| {
        let ok = peer.node_info().moniker != "banned";
        async move {
            if ok {
                Ok(())
            } else {
                Err(Denied::new("moniker", "banned moniker"))
            }
        }
    }));
    let (b, b_addr) = listening(1, "chain", c, "127.0.0.1").await;
    let k = key(2);
    let mut i = info(&k, "chain");
    i.moniker = "banned".into();
    let banned = TcpTransport::new(k, i, config()).unwrap();
    // The dialer finished its own upgrade before the listener's peer filter refused it, so it
    // may get a connection; the listener closes it at once.
    if let Ok(c) = banned.dial(&b_addr).await {
        let ended = soon("the refused connection to end", c.mconn().closed()).await;
        assert!(ended.is_err(), "{ended:?}");
    }
    let e = accept_err(&b).await;
    assert!(
        matches!(&e, Error::Filtered { id: Some(id), denied, .. }
            if *id == key(2).node_id() && denied.reason == "banned moniker"),
        "{e:?}"
    );
    // Others pass.
    let a = transport(3, "chain", config());
    let (out, inb) = tokio::join!(a.dial(&b_addr), accept_ok(&b));
    assert!(out.is_ok());
    drop(inb);
}

#[tokio::test]
async fn dial_refused() {
    // A port nobody listens on.
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let at: SocketAddr = l.local_addr().unwrap();
    drop(l);
    let a = transport(1, "chain", config());
    let e = a
        .dial(&NetAddress::new(key(2).node_id(), at))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::Dial { addr, .. } if *addr == at),
        "{e:?}"
    );
    assert!(e.is_dial() && !e.is_rejection());
}

// Linux only: it needs a connect that hangs, which Linux gives when the listen queue is full
// (it drops the SYN and the dialer retransmits); other systems may refuse the connection at
// once instead (a reset), which is a dial error, not a timeout.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn dial_timeout() {
    // A listener that never accepts, with a backlog of one: once its queue is full the kernel
    // drops further SYNs, so a connect hangs (retransmitting) until our dial timeout.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let at = socket.local_addr().unwrap();
    let _listener = socket.listen(1).unwrap();
    let mut fillers = Vec::new();
    // Fill the backlog: connects that complete without being accepted, until one hangs.
    loop {
        match tokio::time::timeout(Duration::from_millis(300), TcpStream::connect(at)).await {
            Ok(Ok(s)) => fillers.push(s),
            Ok(Err(e)) => panic!("connect failed: {e}"),
            Err(_) => break,
        }
        assert!(fillers.len() < 64, "the backlog never filled");
    }
    let mut cfg = config();
    cfg.dial_timeout(Duration::from_millis(500));
    let a = transport(1, "chain", cfg);
    let e = a
        .dial(&NetAddress::new(key(2).node_id(), at))
        .await
        .unwrap_err();
    // Our timeout, not the kernel's (minutes later, and a different error).
    assert!(
        matches!(&e, Error::DialTimeout { addr, timeout } if *addr == at && *timeout == Duration::from_millis(500)),
        "{e:?}"
    );
    assert!(e.is_dial() && !e.is_rejection());
}

#[tokio::test]
async fn close_releases_the_port_and_ends_accept() {
    let (b, b_addr) = listening(1, "chain", config(), "127.0.0.1").await;
    assert!(matches!(
        b.listen("127.0.0.1:0".parse().unwrap()).await,
        Err(Error::AlreadyListening { .. })
    ));
    b.close().await;
    assert!(matches!(b.accept().await, Err(Error::Closed)));
    // The port is free again.
    let again = transport(2, "chain", config());
    assert_eq!(
        again.listen(b_addr.socket_addr()).await.unwrap(),
        b_addr.socket_addr()
    );
}

#[tokio::test]
async fn cleanup_releases_everything() {
    let (b, b_addr) = listening(1, "chain", config(), "127.0.0.1").await;
    let a = transport(2, "chain", config());
    let (out, inb) = tokio::join!(a.dial(&b_addr), accept_ok(&b));
    let out = out.unwrap();
    assert_eq!((a.conn_set().len(), b.conn_set().len()), (1, 1));
    assert!(b.conn_set().entries()[0].established);
    assert_eq!(b.stats().incoming, 1);
    let watch = out.mconn().clone();
    b.cleanup(inb);
    assert_eq!(b.stats().incoming, 0);
    assert!(b.conn_set().is_empty());
    // The socket is closed: the dialer's MConnection ends.
    let ended = soon("the dialer's connection to end", watch.closed()).await;
    assert!(ended.is_err(), "{ended:?}");
    a.cleanup(out);
    assert!(a.conn_set().is_empty());
}

#[tokio::test]
async fn our_own_node_info_is_checked_up_front() {
    let k = key(1);
    let mut i = info(&k, "chain");
    i.id = key(2).node_id();
    assert!(matches!(
        TcpTransport::new(k.clone(), i, config()),
        Err(Error::InvalidConfig { .. })
    ));
    let mut i = info(&k, "chain");
    i.channels.push(0x30); // no descriptor
    assert!(matches!(
        TcpTransport::new(k.clone(), i, config()),
        Err(Error::InvalidConfig { .. })
    ));
    let mut i: NodeInfo = info(&k, "chain");
    i.moniker = "\t".into();
    assert!(matches!(
        TcpTransport::new(k, i, config()),
        Err(Error::InvalidConfig { .. })
    ));
}

#[tokio::test]
async fn bypassed_peers_skip_the_filter() {
    let friend = key(2).node_id();
    let mut c = config();
    c.peer_filter(p2p_transport::filter::bypass(
        peer_filter_fn("members-only", |_| async {
            Err(Denied::new("members-only", "not a member"))
        }),
        [friend],
    ));
    let (b, b_addr) = listening(1, "chain", c, "127.0.0.1").await;
    let a = transport(2, "chain", config());
    let (out, inb) = tokio::join!(a.dial(&b_addr), accept_ok(&b));
    assert!(out.is_ok());
    assert_eq!(inb.node_id(), friend);
    let stranger = transport(3, "chain", config());
    let _ = stranger.dial(&b_addr).await;
    let e = accept_err(&b).await;
    assert!(
        matches!(&e, Error::Filtered { denied, .. } if denied.filter == "members-only"),
        "{e:?}"
    );
}

#[tokio::test]
async fn a_dropped_dial_releases_its_entry() {
    // A listener that accepts and then says nothing.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let at = listener.local_addr().unwrap();
    let _hold = tokio::spawn(async move {
        let (s, _) = listener.accept().await.unwrap();
        std::future::pending::<()>().await;
        drop(s);
    });
    let a = transport(1, "chain", config());
    let target = NetAddress::new(key(2).node_id(), at);
    let dial = a.dial(&target);
    assert!(
        tokio::time::timeout(Duration::from_millis(200), dial)
            .await
            .is_err()
    );
    assert!(a.conn_set().is_empty());
    assert_eq!(a.stats().upgrading, 0);
}

#[tokio::test]
async fn close_abandons_upgrades_in_progress() {
    use tokio::io::AsyncReadExt;
    let mut c = config();
    c.handshake_timeout(Duration::from_secs(120));
    let (b, b_addr) = listening(1, "chain", c, "127.0.0.1").await;
    let mut silent = TcpStream::connect(b_addr.socket_addr()).await.unwrap();
    wait_until("the silent connection to be upgrading", || {
        b.stats().upgrading == 1
    })
    .await;
    b.close().await;
    wait_until("the upgrade to be abandoned", || {
        let s = b.stats();
        s.upgrading == 0 && s.incoming == 0 && s.tracked == 0
    })
    .await;
    // Its socket is closed: reading ends (EOF or a reset) instead of waiting for the 120 s
    // handshake timeout; all it got is our 35-byte ephemeral key message.
    let mut buf = Vec::new();
    let _ended = soon("the socket to close", silent.read_to_end(&mut buf)).await;
    assert!(buf.len() < 100);
}
