//! A hostile peer sending arbitrary bytes on a reactor's channel: a message that decodes as the
//! reactor's type is delivered, decoded once, exactly as it decodes; one that does not stops
//! the peer with a decode error, removed exactly once; nothing panics, and the switch keeps
//! serving other peers.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use p2p_testkit::memory::MemoryNetwork;
use proptest::prelude::*;

const SEC: Duration = Duration::from_secs(1);

fn check(messages: Vec<Vec<u8>>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(async move {
        let net = MemoryNetwork::new();
        let rec = Recorder::new(&[0x01]);
        let sw = memory_node(&net, None, 1, |_| {}, {
            let rec = Arc::clone(&rec);
            |b| {
                b.add_reactor_arc("r", rec).unwrap();
            }
        });
        let hostile = memory_node(
            &net,
            None,
            2,
            |_| {},
            |b| {
                b.add_reactor_arc("r", Recorder::new(&[0x01])).unwrap();
            },
        );
        sw.start().await.unwrap();
        hostile.start().await.unwrap();
        let p = hostile.dial_peer_with_address(&addr_of(&sw)).await.unwrap();
        eventually("added", 5 * SEC, || sw.peers().len() == 1).await;

        // What the switch must do: deliver the valid prefix, stop at the first invalid one.
        let mut expected = Vec::new();
        let mut bad = false;
        for m in &messages {
            match <Msg as prost::Message>::decode(&m[..]) {
                Ok(decoded) => expected.push(decoded.data),
                Err(_) => {
                    bad = true;
                    break;
                }
            }
        }
        for m in messages {
            if p.send_bytes(0x01, Bytes::from(m)).await.is_err() {
                break;
            }
        }
        if bad {
            eventually("hostile peer dropped", 10 * SEC, || sw.peers().is_empty()).await;
            let removes = rec.removes();
            assert_eq!(removes.len(), 1, "{removes:?}");
            assert!(removes[0].2.contains("undecodable"), "{removes:?}");
        } else {
            eventually("all delivered", 10 * SEC, || rec.count() == expected.len()).await;
            assert_eq!(sw.peers().len(), 1);
        }
        assert_eq!(rec.received_on(0x01), expected);

        // The switch still serves a well-behaved peer.
        let good = memory_node(
            &net,
            None,
            3,
            |_| {},
            |b| {
                b.add_reactor_arc("r", Recorder::new(&[0x01])).unwrap();
            },
        );
        good.start().await.unwrap();
        let g = good.dial_peer_with_address(&addr_of(&sw)).await.unwrap();
        let before = rec.count();
        g.send(0x01, &msg(b"fine")).await.unwrap();
        eventually("good peer served", 10 * SEC, || rec.count() == before + 1).await;
        sw.stop().await;
        hostile.stop().await;
        good.stop().await;
    });
}

/// Mostly valid `Msg` encodings, sometimes garbage.
fn message() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => proptest::collection::vec(any::<u8>(), 0..64)
            .prop_map(|d| prost::Message::encode_to_vec(&msg(&d))),
        1 => proptest::collection::vec(any::<u8>(), 0..64),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn hostile_bytes_are_delivered_or_stop_the_peer(
        messages in proptest::collection::vec(message(), 1..8)
    ) {
        check(messages);
    }
}

#[test]
fn a_known_bad_message_stops_the_peer() {
    // Field 1 announced as a length-delimited field longer than the message.
    check(vec![
        prost::Message::encode_to_vec(&msg(b"ok")),
        vec![0x0a, 0x05, 0x01],
    ]);
}
