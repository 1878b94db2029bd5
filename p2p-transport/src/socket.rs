//! How much the kernel may queue ahead of a high-priority message, and how the TCP transport
//! sizes it for each connection.
//!
//! The MConnection's scheduler picks the channel of each packet as it goes into its write
//! batch; whatever already sits in the kernel's socket buffers is out of its reach. With the
//! kernel's defaults those buffers grow to megabytes under a bulk transfer, and a consensus
//! vote waits behind all of it. Where the queue forms depends on the bottleneck:
//!
//! - **The sender's link** (a real network, a rate-capped link): bulk piles up *unsent* in
//!   the sender's send buffer. `TCP_NOTSENT_LOWAT` caps the unsent part without capping what
//!   is in flight, so it costs no throughput on any link: the kernel reports the socket
//!   writable only while less than this much is unsent.
//! - **The receiver** (loopback, a fast LAN, where decryption is slower than the wire): bulk
//!   piles up *unread* in the receiver's autotuned receive buffer. Only a smaller receive
//!   buffer (`SO_RCVBUF`) bounds it, and that fixes the TCP window: a connection moves at most
//!   one window per round trip. So the buffer is sized from the link, as twice the
//!   bandwidth-delay product of the receive rate, and left to the kernel's autotuning when
//!   that would exceed what the kernel lets a process set (`net.core.rmem_max`).
//!
//! [`size_socket`] is the sizing rule; [`SocketTuning`] (in
//! [`TransportConfig::socket_tuning`](crate::TransportConfig::socket_tuning)) chooses it,
//! fixed sizes, or the kernel's defaults.

use std::io;
use std::time::Duration;

/// Smallest receive buffer [`size_socket`] sets: 64 KiB (on loopback and short links the
/// rule gives less; below this, per-read overheads start to cost throughput).
pub const MIN_RECV_BUFFER: usize = 64 * 1024;

/// The receive rate assumed when it is unlimited: 64 MiB/s. A fixed receive buffer lets
/// through at least twice this (about 1 Gbit/s) at the measured round-trip time; a link that
/// would need more gets the kernel's autotuning instead.
pub const UNLIMITED_RECV_RATE: u64 = 64 << 20;

/// Smallest `TCP_NOTSENT_LOWAT` [`size_socket`] sets: 16 KiB, about 1.3 ms of a 100 Mbit/s
/// link.
pub const MIN_NOTSENT_LOWAT: u32 = 16 * 1024;

/// Largest `TCP_NOTSENT_LOWAT` [`size_socket`] sets: 256 KiB.
pub const MAX_NOTSENT_LOWAT: u32 = 256 * 1024;

/// How long the unsent reserve lasts at the send rate: 2 ms, time for the write task to be
/// scheduled and refill it before the link runs dry.
pub const NOTSENT_LOWAT_TIME: Duration = Duration::from_millis(2);

/// The kernel's default `net.core.rmem_max` (212992 bytes), assumed where it cannot be read.
pub const DEFAULT_MAX_RECV_BUFFER: usize = 212_992;

/// What is known of a link when its socket is tuned.
// Plain inputs of a pure function, built by callers: exhaustive on purpose.
#[allow(clippy::exhaustive_structs)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkEstimate {
    /// Round-trip time, as measured while connecting. The TCP transport takes the shorter of
    /// the TCP connect (outbound only) and the secret handshake (one round trip plus the
    /// handshake's computation), so it errs on the long side, and the receive buffer on the
    /// large side: throughput first.
    pub rtt: Duration,
    /// The MConnection's send rate, bytes per second (0 = unlimited).
    pub send_rate: u64,
    /// The MConnection's receive rate, bytes per second (0 = unlimited).
    pub recv_rate: u64,
    /// The largest receive buffer a process may set (`net.core.rmem_max` on Linux; see
    /// [`max_recv_buffer`]).
    pub max_recv_buffer: usize,
}

/// Socket buffer settings for one connection; `None` leaves the kernel's default.
// Built by users for `SocketTuning::Fixed`: exhaustive on purpose.
#[allow(clippy::exhaustive_structs)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SocketSizes {
    /// `SO_RCVBUF`, bytes. Setting it turns off the kernel's receive buffer autotuning for
    /// the socket (Linux doubles the value for its bookkeeping; about this much is window).
    pub recv_buffer: Option<usize>,
    /// `TCP_NOTSENT_LOWAT`, bytes (Linux and Android; ignored elsewhere).
    pub notsent_lowat: Option<u32>,
}

impl SocketSizes {
    /// The kernel's defaults: nothing is set.
    pub const KERNEL: Self = Self {
        recv_buffer: None,
        notsent_lowat: None,
    };
}

/// How the TCP transport sizes the socket buffers of its connections (see the [module
/// docs](self)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum SocketTuning {
    /// Sized for each connection by [`size_socket`] from the MConnection's rates and the
    /// round-trip time measured while connecting (the default). The reference (Go) leaves the
    /// kernel's defaults; this is a deliberate difference, listed in the crate's `manual`.
    #[default]
    Auto,
    /// The same sizes on every connection ([`SocketSizes::KERNEL`]: the kernel's defaults,
    /// as the reference).
    Fixed(SocketSizes),
}

impl SocketTuning {
    /// The sizes for a connection over `link`.
    pub fn sizes(&self, link: &LinkEstimate) -> SocketSizes {
        match self {
            Self::Auto => size_socket(link),
            Self::Fixed(sizes) => *sizes,
        }
    }
}

/// The sizing rule of [`SocketTuning::Auto`]:
///
/// - receive buffer: twice the bandwidth-delay product, `2 × recv_rate × rtt` (with
///   [`UNLIMITED_RECV_RATE`] for an unlimited rate), at least [`MIN_RECV_BUFFER`]; `None`
///   (the kernel's autotuning) when that exceeds `max_recv_buffer`, which the kernel would
///   silently cut it to;
/// - `TCP_NOTSENT_LOWAT`: what the send rate moves in [`NOTSENT_LOWAT_TIME`], between
///   [`MIN_NOTSENT_LOWAT`] and [`MAX_NOTSENT_LOWAT`] ([`MIN_NOTSENT_LOWAT`] for an unlimited
///   rate: the link's speed is unknown, and on the short links where the receiver is the
///   bottleneck unsent data only adds to the queue).
///
/// ```
/// use std::time::Duration;
/// use p2p_transport::socket::{LinkEstimate, size_socket};
///
/// // The reference's default rates (5.12 MB/s) over a 50 ms link.
/// let link = LinkEstimate {
///     rtt: Duration::from_millis(50),
///     send_rate: 5_120_000,
///     recv_rate: 5_120_000,
///     max_recv_buffer: 4 << 20,
/// };
/// let sizes = size_socket(&link);
/// assert_eq!(sizes.recv_buffer, Some(512_000)); // 2 × 5.12 MB/s × 50 ms
/// assert_eq!(sizes.notsent_lowat, Some(16 * 1024));
/// ```
pub fn size_socket(link: &LinkEstimate) -> SocketSizes {
    let recv_rate = if link.recv_rate == 0 {
        UNLIMITED_RECV_RATE
    } else {
        link.recv_rate
    };
    let bdp = u128::from(recv_rate).saturating_mul(link.rtt.as_micros()) / 1_000_000;
    let window = bdp.saturating_mul(2).max(MIN_RECV_BUFFER as u128);
    let recv_buffer = usize::try_from(window)
        .ok()
        .filter(|&w| w <= link.max_recv_buffer);

    let lowat = if link.send_rate == 0 {
        MIN_NOTSENT_LOWAT
    } else {
        let reserve =
            u128::from(link.send_rate).saturating_mul(NOTSENT_LOWAT_TIME.as_micros()) / 1_000_000;
        u32::try_from(reserve)
            .unwrap_or(MAX_NOTSENT_LOWAT)
            .clamp(MIN_NOTSENT_LOWAT, MAX_NOTSENT_LOWAT)
    };
    SocketSizes {
        recv_buffer,
        notsent_lowat: Some(lowat),
    }
}

/// The largest receive buffer this process may set: `net.core.rmem_max` on Linux (read once),
/// [`DEFAULT_MAX_RECV_BUFFER`] where it cannot be read.
pub fn max_recv_buffer() -> usize {
    static MAX: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *MAX.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/net/core/rmem_max")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(DEFAULT_MAX_RECV_BUFFER)
    })
}

/// Applies `sizes` to a connected socket (anything with a socket file descriptor or handle:
/// a tokio or std `TcpStream`). Fails on the first option the socket refuses.
pub fn apply<S>(socket: &S, sizes: &SocketSizes) -> io::Result<()>
where
    for<'s> socket2::SockRef<'s>: From<&'s S>,
{
    let sock = socket2::SockRef::from(socket);
    if let Some(size) = sizes.recv_buffer {
        sock.set_recv_buffer_size(size)?;
    }
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if let Some(lowat) = sizes.notsent_lowat {
        sock.set_tcp_notsent_lowat(lowat)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn link(rtt: Duration, rate: u64) -> LinkEstimate {
        LinkEstimate {
            rtt,
            send_rate: rate,
            recv_rate: rate,
            max_recv_buffer: 4 << 20,
        }
    }

    #[test]
    fn loopback_gets_the_minimum_receive_buffer() {
        // Unlimited rates, 100 µs: 2 × 64 MiB/s × 0.1 ms = 13 KiB, raised to the minimum.
        let s = size_socket(&link(Duration::from_micros(100), 0));
        assert_eq!(s.recv_buffer, Some(MIN_RECV_BUFFER));
        assert_eq!(s.notsent_lowat, Some(MIN_NOTSENT_LOWAT));
    }

    #[test]
    fn the_receive_buffer_is_twice_the_bandwidth_delay_product() {
        // Unlimited, 2 ms: 2 × 64 MiB/s × 2 ms.
        let s = size_socket(&link(2 * MS, 0));
        assert_eq!(s.recv_buffer, Some(2 * ((64 << 20) * 2 / 1000)));
        // 10 MB/s, 20 ms: 400 kB.
        assert_eq!(
            size_socket(&link(20 * MS, 10_000_000)).recv_buffer,
            Some(400_000)
        );
        // It never fills less than the minimum.
        assert_eq!(
            size_socket(&link(MS, 1000)).recv_buffer,
            Some(MIN_RECV_BUFFER)
        );
    }

    #[test]
    fn links_needing_more_than_the_kernel_allows_keep_autotuning() {
        // Unlimited over 50 ms would need 6.7 MB, past rmem_max: left to the kernel.
        assert_eq!(size_socket(&link(50 * MS, 0)).recv_buffer, None);
        // The reference's 5.12 MB/s over 50 ms: 512 kB, fixed where allowed...
        assert_eq!(
            size_socket(&link(50 * MS, 5_120_000)).recv_buffer,
            Some(512_000)
        );
        // ... autotuned where the kernel's default rmem_max (208 KiB) would cut it.
        let mut l = link(50 * MS, 5_120_000);
        l.max_recv_buffer = DEFAULT_MAX_RECV_BUFFER;
        assert_eq!(size_socket(&l).recv_buffer, None);
        // Absurd inputs do not overflow.
        let l = link(Duration::MAX, u64::MAX);
        assert_eq!(size_socket(&l).recv_buffer, None);
        assert_eq!(size_socket(&l).notsent_lowat, Some(MAX_NOTSENT_LOWAT));
    }

    #[test]
    fn the_unsent_reserve_follows_the_send_rate() {
        // 5.12 MB/s × 2 ms = 10 kB: the minimum.
        let s = size_socket(&link(50 * MS, 5_120_000));
        assert_eq!(s.notsent_lowat, Some(MIN_NOTSENT_LOWAT));
        // 50 MB/s × 2 ms = 100 kB.
        let s = size_socket(&link(50 * MS, 50_000_000));
        assert_eq!(s.notsent_lowat, Some(100_000));
        // 1 GB/s: capped.
        let s = size_socket(&link(50 * MS, 1_000_000_000));
        assert_eq!(s.notsent_lowat, Some(MAX_NOTSENT_LOWAT));
    }

    #[test]
    fn fixed_tuning_ignores_the_link() {
        let fixed = SocketSizes {
            recv_buffer: Some(1 << 20),
            notsent_lowat: None,
        };
        let t = SocketTuning::Fixed(fixed);
        assert_eq!(t.sizes(&link(MS, 0)), fixed);
        assert_eq!(
            SocketTuning::Fixed(SocketSizes::KERNEL).sizes(&link(MS, 0)),
            SocketSizes::default()
        );
        assert_eq!(SocketTuning::default(), SocketTuning::Auto);
    }
}
