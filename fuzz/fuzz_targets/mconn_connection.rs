//! A whole MConnection reading whatever a peer sends: arbitrary bytes, or a mix of well-formed
//! and malformed packets. The connection must deliver exactly the messages a simple model
//! reassembles from the same bytes, in order, and end with the same error, never panic.

#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use p2p_mconn::{ChannelDescriptor, Error, MConnConfig, MConnection, Packet, PacketCodec, PacketMsg};
use tokio::io::AsyncWriteExt;

const CHANNELS: [(u8, usize); 3] = [(0x00, 300), (0x01, 5000), (0x80, 2000)];

#[derive(Arbitrary, Debug)]
enum Piece {
    Ping,
    Pong,
    Msg { channel: u8, eof: bool, data: Vec<u8> },
    /// A channel ID outside a byte.
    WideChannel { channel: i32, data: Vec<u8> },
    Raw(Vec<u8>),
}

/// The messages per channel and the final error a correct receiver produces for `wire`.
fn model(wire: &[u8]) -> (Vec<Vec<Bytes>>, Error) {
    let mut codec = PacketCodec::new(1034);
    let mut buf = BytesMut::from(wire);
    let mut partial: Vec<Vec<u8>> = vec![Vec::new(); CHANNELS.len()];
    let mut out = vec![Vec::new(); CHANNELS.len()];
    loop {
        let p = match codec.decode_packet(&mut buf) {
            Ok(Some(p)) => p,
            Ok(None) if buf.is_empty() => return (out, Error::ClosedByPeer),
            Ok(None) => return (out, Error::UnexpectedEof),
            Err(e) => return (out, e),
        };
        let Packet::Msg(m) = p else { continue };
        let Some(i) = CHANNELS.iter().position(|&(id, _)| i32::from(id) == m.channel_id) else {
            return (out, Error::UnknownChannel { channel: m.channel_id });
        };
        let (id, max) = CHANNELS[i];
        if partial[i].len() + m.data.len() > max {
            return (out, Error::MessageTooLarge { channel: id, max });
        }
        partial[i].extend_from_slice(&m.data);
        if m.eof {
            out[i].push(Bytes::from(std::mem::take(&mut partial[i])));
        }
    }
}

fuzz_target!(|pieces: Vec<Piece>| {
    let mut wire = BytesMut::new();
    for p in pieces {
        match p {
            Piece::Ping => Packet::Ping.encode(&mut wire),
            Piece::Pong => Packet::Pong.encode(&mut wire),
            Piece::Msg { channel, eof, data } => {
                Packet::Msg(PacketMsg::new(channel, eof, data)).encode(&mut wire)
            }
            Piece::WideChannel { channel, data } => {
                let mut m = PacketMsg::new(0, true, data);
                m.channel_id = channel;
                Packet::Msg(m).encode(&mut wire)
            }
            Piece::Raw(bytes) => {
                wire.extend_from_slice(&bytes);
                bytes.len()
            }
        };
    }
    let (want, want_end) = model(&wire);

    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let (ours, mut theirs) = tokio::io::duplex(1 << 20);
        let channels: Vec<ChannelDescriptor> = CHANNELS
            .iter()
            .map(|&(id, max)| ChannelDescriptor::new(id, 1).recv_message_capacity(max))
            .collect();
        let (conn, mut receivers) =
            MConnection::spawn_stream(ours, &channels, MConnConfig::default()).unwrap();
        // The peer writes everything and leaves (pongs it is sent stay unread in the pipe).
        theirs.write_all(&wire).await.unwrap();
        theirs.shutdown().await.unwrap();
        let end = conn.closed().await;
        for (rx, want) in receivers.iter_mut().zip(&want) {
            let mut got = Vec::new();
            while let Some(m) = rx.recv().await {
                got.push(m);
            }
            assert_eq!(&got, want);
        }
        assert_eq!(end, Err(want_end));
        drop(theirs);
    });
});
