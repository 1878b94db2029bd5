//! The sending side's decisions, with no IO: which channel sends the next packet, how messages
//! are cut into packets, and the periodic decay of the per-channel statistics.
//!
//! The reference picks, among channels with something to send, the one with the smallest
//! `recently_sent / priority` (ties go to the channel registered first), and every 2 s
//! multiplies every `recently_sent` by 0.8. The ratio is compared here by cross-multiplication,
//! which is exact.

use std::time::Duration;

use bytes::{BufMut, Bytes};
use tokio::time::Instant;

use crate::packet::{encode_msg, max_piece_len};

/// How often `recently_sent` decays (the reference's `updateStats`).
pub const STATS_DECAY_INTERVAL: Duration = Duration::from_secs(2);

/// One channel's sending state.
#[derive(Debug)]
pub(crate) struct ChannelSend {
    pub(crate) id: u8,
    pub(crate) priority: u32,
    /// Bytes (packet framing included) sent recently; decays over time.
    pub(crate) recently_sent: u64,
    /// The message being sent and how much of it went out already.
    current: Option<(Bytes, usize)>,
    /// Largest data piece per packet on this channel.
    piece: usize,
}

impl ChannelSend {
    /// Whether a message is in progress (loaded and not fully sent).
    pub(crate) fn is_busy(&self) -> bool {
        self.current.is_some()
    }

    /// Starts sending `msg`. The channel must not be busy.
    pub(crate) fn load(&mut self, msg: Bytes) {
        debug_assert!(self.current.is_none());
        self.current = Some((msg, 0));
    }
}

/// The channels' sending states and the selection rule.
#[derive(Debug)]
pub(crate) struct Scheduler {
    pub(crate) channels: Vec<ChannelSend>,
    next_decay: Instant,
}

/// What [`Scheduler::encode_next`] wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Sent {
    /// Bytes written, length prefix included.
    pub(crate) wire_len: usize,
    /// Whether the packet completed its message.
    pub(crate) eof: bool,
}

impl Scheduler {
    /// A scheduler for channels given as `(id, priority)` in registration order.
    pub(crate) fn new(
        channels: impl IntoIterator<Item = (u8, u32)>,
        payload: usize,
        now: Instant,
    ) -> Self {
        Self {
            channels: channels
                .into_iter()
                .map(|(id, priority)| ChannelSend {
                    id,
                    priority,
                    recently_sent: 0,
                    current: None,
                    piece: max_piece_len(id, payload),
                })
                .collect(),
            next_decay: now + STATS_DECAY_INTERVAL,
        }
    }

    /// The channel (by index) that sends next: among busy channels, the smallest
    /// `recently_sent / priority`, the first registered on ties.
    pub(crate) fn pick(&self) -> Option<usize> {
        let mut best: Option<usize> = None;
        for (i, ch) in self.channels.iter().enumerate() {
            if !ch.is_busy() {
                continue;
            }
            best = match best {
                None => Some(i),
                Some(b) => {
                    let cur = &self.channels[b];
                    // ch.rs / ch.prio < cur.rs / cur.prio  <=>  ch.rs * cur.prio < cur.rs * ch.prio
                    let lhs = u128::from(ch.recently_sent) * u128::from(cur.priority);
                    let rhs = u128::from(cur.recently_sent) * u128::from(ch.priority);
                    if lhs < rhs { Some(i) } else { Some(b) }
                }
            };
        }
        best
    }

    /// Whether any channel has a message in progress.
    pub(crate) fn any_busy(&self) -> bool {
        self.channels.iter().any(ChannelSend::is_busy)
    }

    /// Appends the next packet of channel `idx` to `out` and accounts for it. The channel must
    /// be busy.
    pub(crate) fn encode_next(&mut self, idx: usize, out: &mut impl BufMut) -> Sent {
        let ch = &mut self.channels[idx];
        let Some((msg, offset)) = ch.current.as_mut() else {
            return Sent {
                wire_len: 0,
                eof: false,
            };
        };
        let rest = &msg[*offset..];
        let (piece, eof) = if rest.len() <= ch.piece {
            (rest, true)
        } else {
            (&rest[..ch.piece], false)
        };
        let wire_len = encode_msg(ch.id, eof, piece, out);
        *offset += piece.len();
        if eof {
            ch.current = None;
        }
        ch.recently_sent = ch.recently_sent.saturating_add(wire_len as u64);
        Sent { wire_len, eof }
    }

    /// Applies the decay if it is due.
    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        while now >= self.next_decay {
            for ch in &mut self.channels {
                // floor(x * 0.8), as the reference does with float math.
                ch.recently_sent = (u128::from(ch.recently_sent) * 8 / 10) as u64;
            }
            self.next_decay += STATS_DECAY_INTERVAL;
        }
    }

    /// When the next decay is due.
    pub(crate) fn poll_timeout(&self) -> Instant {
        self.next_decay
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::{Packet, PacketCodec, PacketMsg};
    use bytes::BytesMut;

    fn sched(chs: &[(u8, u32)]) -> Scheduler {
        Scheduler::new(chs.iter().copied(), 1024, Instant::now())
    }

    #[test]
    fn splits_and_marks_eof() {
        let mut s = sched(&[(1, 1)]);
        let msg: Vec<u8> = (0..2500u32).map(|i| i as u8).collect();
        s.channels[0].load(Bytes::from(msg.clone()));
        let mut out = BytesMut::new();
        let mut sent = Vec::new();
        while let Some(i) = s.pick() {
            sent.push(s.encode_next(i, &mut out));
        }
        assert_eq!(
            sent.iter().map(|s| s.eof).collect::<Vec<_>>(),
            [false, false, true]
        );
        let mut codec = PacketCodec::new(1034);
        let mut got = Vec::new();
        while let Some(Packet::Msg(m)) = codec.decode_packet(&mut out).unwrap() {
            got.push(m);
        }
        assert_eq!(got.len(), 3);
        assert_eq!(got[0], PacketMsg::new(1, false, msg[..1024].to_vec()));
        assert_eq!(got[2], PacketMsg::new(1, true, msg[2048..].to_vec()));
        assert_eq!(
            s.channels[0].recently_sent,
            sent.iter().map(|s| s.wire_len as u64).sum::<u64>()
        );
    }

    #[test]
    fn empty_message_is_one_eof_packet() {
        let mut s = sched(&[(0, 1)]);
        s.channels[0].load(Bytes::new());
        let mut out = BytesMut::new();
        let i = s.pick().unwrap();
        assert_eq!(
            s.encode_next(i, &mut out),
            Sent {
                wire_len: 5,
                eof: true
            }
        );
        // PEX-style channel 0: the channel ID and the empty data are omitted.
        assert_eq!(&out[..], &[0x04, 0x1a, 0x02, 0x10, 0x01]);
        assert!(s.pick().is_none());
    }

    #[test]
    fn picks_lowest_ratio_first_registered_on_ties() {
        let mut s = sched(&[(1, 1), (2, 10), (3, 1)]);
        for ch in &mut s.channels {
            ch.load(Bytes::from_static(b"x"));
        }
        // All zero: the first registered.
        assert_eq!(s.pick(), Some(0));
        s.channels[0].recently_sent = 100;
        s.channels[1].recently_sent = 500; // 50 per priority unit
        s.channels[2].recently_sent = 60;
        assert_eq!(s.pick(), Some(1));
        s.channels[1].recently_sent = 600; // 60: tie with channel 3, channel 2 registered first
        assert_eq!(s.pick(), Some(1));
        s.channels[1].recently_sent = 601;
        assert_eq!(s.pick(), Some(2));
    }

    #[test]
    fn saturated_channels_share_by_priority() {
        let mut s = sched(&[(1, 1), (2, 3)]);
        let big = Bytes::from(vec![0u8; 1 << 20]);
        let mut bytes = [0usize; 2];
        let mut out = BytesMut::new();
        for _ in 0..4000 {
            for ch in &mut s.channels {
                if !ch.is_busy() {
                    ch.load(big.clone());
                }
            }
            let i = s.pick().unwrap();
            bytes[i] += s.encode_next(i, &mut out).wire_len;
            out.clear();
        }
        let share = bytes[1] as f64 / bytes[0] as f64;
        assert!((share - 3.0).abs() < 0.05, "share {share}");
    }

    #[test]
    fn decay() {
        let t0 = Instant::now();
        let mut s = Scheduler::new([(1, 1)], 1024, t0);
        s.channels[0].recently_sent = 1000;
        s.handle_timeout(t0 + Duration::from_millis(1999));
        assert_eq!(s.channels[0].recently_sent, 1000);
        s.handle_timeout(t0 + STATS_DECAY_INTERVAL);
        assert_eq!(s.channels[0].recently_sent, 800);
        s.handle_timeout(t0 + 3 * STATS_DECAY_INTERVAL);
        assert_eq!(s.channels[0].recently_sent, 512);
        assert_eq!(s.poll_timeout(), t0 + 4 * STATS_DECAY_INTERVAL);
    }
}
