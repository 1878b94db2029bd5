//! An emulated long link for the bench: two network namespaces, 100 Mbit/s and 25 ms each way
//! (a 50 ms round trip), with the kernel's own TCP at both ends. Needs root and `ip`/`tc`
//! (iproute2). The namespaces get names unique to this process and are deleted when the
//! [`Link`] is dropped, also after a failure half-way.
//!
//! Three ways, tried in this order:
//! 1. a veth pair between the namespaces, each end shaped with `netem` (the delay) over `tbf`
//!    (the rate), where the kernel has the netem qdisc;
//! 2. else a TUN device in each namespace and a userspace delay line between them (see
//!    [`DelayLine`]): each packet read from one TUN is serialized at the rate behind the
//!    packets before it, held for the delay, and written to the other TUN;
//! 3. else the veth with `tbf` alone: the rate without the delay, said so in
//!    [`Link::describe`].
//!
//! [`Link::calibrate`] measures the round trip actually seen by TCP and refuses a delayed link
//! whose round trip is not near 50 ms.

use std::fs::File;
use std::io::{ErrorKind, Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail, ensure};
use nix::sched::{CloneFlags, setns};
use tun_rs::{DeviceBuilder, InterruptEvent, SyncDevice};

/// One-way delay of each direction.
pub const DELAY_MS: u32 = 25;
/// The rate cap of each direction.
pub const RATE_MBIT: u32 = 100;
/// The round trips accepted from a delayed link by [`Link::calibrate`].
const RTT_OK: std::ops::RangeInclusive<Duration> =
    Duration::from_millis(45)..=Duration::from_millis(70);
/// Ping-pongs whose median is the measured round trip.
const RTT_PINGS: usize = 20;

/// How the link is emulated.
enum Mode {
    /// veth with netem and tbf.
    Netem,
    /// TUN devices and a userspace delay line.
    Tun(DelayLine),
    /// veth with tbf only; why neither of the others could be set up.
    Undelayed(String),
}

/// The two namespaces and their link; deleted on drop.
pub struct Link {
    names: [String; 2],
    mode: Mode,
    /// The round trip measured by [`Link::calibrate`].
    rtt: Option<Duration>,
}

const ADDR: [Ipv4Addr; 2] = [Ipv4Addr::new(10, 213, 7, 1), Ipv4Addr::new(10, 213, 7, 2)];
/// The TUN device's name in each namespace (each namespace has its own device names).
const TUN_NAME: &str = "p2pwan0";

fn run(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .with_context(|| format!("running {}", args.join(" ")))?;
    ensure!(
        out.status.success(),
        "{} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(())
}

impl Link {
    /// Sets the link up, or says why it cannot be.
    pub fn new() -> anyhow::Result<Self> {
        let id = std::process::id();
        let mut link = Self {
            names: [format!("p2pbench{id}a"), format!("p2pbench{id}b")],
            mode: Mode::Undelayed(String::new()),
            rtt: None,
        };
        // From here on, dropping `link` removes whatever was created.
        let [a, b] = link.names.clone();
        run(&["ip", "netns", "add", &a])?;
        run(&["ip", "netns", "add", &b])?;
        for ns in [&a, &b] {
            run(&["ip", "-n", ns, "link", "set", "lo", "up"])?;
        }
        let veth = [format!("pb{id}a"), format!("pb{id}b")];
        let netem = match link.veth(&veth, true) {
            Ok(()) => {
                link.mode = Mode::Netem;
                return Ok(link);
            }
            Err(e) => e,
        };
        // Deleting one end deletes the pair (it may not exist if it was netem that failed
        // half-way through creating it).
        let _ = run(&["ip", "-n", &a, "link", "del", &veth[0]]);
        let tun = match link.tun() {
            Ok(line) => {
                link.mode = Mode::Tun(line);
                return Ok(link);
            }
            Err(e) => e,
        };
        let _ = run(&["ip", "-n", &a, "link", "del", TUN_NAME]);
        let _ = run(&["ip", "-n", &b, "link", "del", TUN_NAME]);
        link.veth(&veth, false)?;
        link.mode = Mode::Undelayed(format!(
            "no netem qdisc ({netem:#}) and no TUN delay line ({tun:#})"
        ));
        Ok(link)
    }

    /// The veth pair `names` between the namespaces, addressed, up, shaped with tbf and, if
    /// `delay`, delayed with netem.
    fn veth(&self, names: &[String; 2], delay: bool) -> anyhow::Result<()> {
        let [a, b] = &self.names;
        let [va, vb] = names;
        run(&[
            "ip", "link", "add", va, "netns", a, "type", "veth", "peer", "name", vb, "netns", b,
        ])?;
        let rate = format!("{RATE_MBIT}mbit");
        let delay_ms = format!("{DELAY_MS}ms");
        for (ns, dev, addr) in [(a, va, ADDR[0]), (b, vb, ADDR[1])] {
            run(&[
                "ip",
                "-n",
                ns,
                "addr",
                "add",
                &format!("{addr}/30"),
                "dev",
                dev,
            ])?;
            run(&["ip", "-n", ns, "link", "set", dev, "up"])?;
            if delay {
                run(&[
                    "ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", dev, "root", "handle",
                    "1:", "netem", "delay", &delay_ms, "limit", "100000",
                ])?;
                run(&[
                    "ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", dev, "parent", "1:1",
                    "handle", "10:", "tbf", "rate", &rate, "burst", "32kb", "latency", "20ms",
                ])?;
            } else {
                run(&[
                    "ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", dev, "root", "tbf",
                    "rate", &rate, "burst", "32kb", "latency", "20ms",
                ])?;
            }
        }
        Ok(())
    }

    /// A TUN device in each namespace, addressed point-to-point and up, and the delay line
    /// between them.
    fn tun(&self) -> anyhow::Result<DelayLine> {
        let mut devs = Vec::with_capacity(2);
        for i in 0..2 {
            // The device is made in the namespace of the thread that opens it.
            let dev = self
                .in_ns(i, || DeviceBuilder::new().name(TUN_NAME).build_sync())
                .with_context(|| format!("creating a TUN device in {}", self.names[i]))?;
            dev.set_nonblocking(true)
                .context("making the TUN device non-blocking")?;
            devs.push(dev);
            let ns = &self.names[i];
            run(&[
                "ip",
                "-n",
                ns,
                "addr",
                "add",
                &ADDR[i].to_string(),
                "peer",
                &format!("{}/32", ADDR[1 - i]),
                "dev",
                TUN_NAME,
            ])?;
            run(&["ip", "-n", ns, "link", "set", TUN_NAME, "mtu", "1500", "up"])?;
        }
        let b = devs.pop().ok_or_else(|| anyhow!("no second TUN device"))?;
        let a = devs.pop().ok_or_else(|| anyhow!("no first TUN device"))?;
        DelayLine::start(a, b)
    }

    /// Measures the round trip TCP sees on the link (the median of a few 1-byte ping-pongs),
    /// prints it, and fails if the link is delayed and the round trip is not near 50 ms.
    pub fn calibrate(&mut self) -> anyhow::Result<Duration> {
        let (mut a, mut b) = self.tcp_pair()?;
        for s in [&a, &b] {
            s.set_nonblocking(false)?;
            s.set_read_timeout(Some(Duration::from_secs(5)))?;
        }
        let mut byte = [0u8; 1];
        let mut rtts = Vec::with_capacity(RTT_PINGS);
        // One more, not counted: the first exchange may still find the connection cold.
        for i in 0..=RTT_PINGS {
            let started = Instant::now();
            a.write_all(b"p")?;
            b.read_exact(&mut byte).context("ping over the link")?;
            b.write_all(&byte)?;
            a.read_exact(&mut byte).context("pong over the link")?;
            if i > 0 {
                rtts.push(started.elapsed());
            }
        }
        rtts.sort();
        let rtt = rtts[rtts.len() / 2];
        self.rtt = Some(rtt);
        eprintln!(
            "bench: the emulated link: round trip measured {:.1} ms (median of {RTT_PINGS} \
             1-byte TCP ping-pongs; min {:.1}, max {:.1})",
            ms(rtt),
            ms(rtts[0]),
            ms(rtts[rtts.len() - 1]),
        );
        if !matches!(self.mode, Mode::Undelayed(_)) && !RTT_OK.contains(&rtt) {
            bail!(
                "the emulated link ({}) has a measured round trip of {:.1} ms, outside {:.0}..{:.0} ms",
                self.describe(),
                ms(rtt),
                ms(*RTT_OK.start()),
                ms(*RTT_OK.end()),
            );
        }
        Ok(rtt)
    }

    /// What is emulated, for the report.
    pub fn describe(&self) -> String {
        let measured = self
            .rtt
            .map(|r| format!("; measured round trip {:.1} ms", ms(r)))
            .unwrap_or_default();
        let rtt = 2 * DELAY_MS;
        match &self.mode {
            Mode::Netem => format!("{RATE_MBIT} Mbit/s, {rtt} ms round trip (netem){measured}"),
            Mode::Tun(_) => format!(
                "{RATE_MBIT} Mbit/s, {rtt} ms round trip (userspace delay line over TUN: this \
                 kernel has no netem){measured}"
            ),
            Mode::Undelayed(why) => format!(
                "{RATE_MBIT} Mbit/s without added delay ({why}; the round trip is the veth's, \
                 well under 1 ms){measured}"
            ),
        }
    }

    /// What the delay line did, if there is one: packets moved and dropped.
    pub fn stats(&self) -> Option<String> {
        match &self.mode {
            Mode::Tun(line) => Some(line.stats()),
            _ => None,
        }
    }

    /// A connected TCP pair across the link (dialed from the first namespace, accepted in the
    /// second), with Nagle off, non-blocking for tokio.
    pub fn tcp_pair(&self) -> anyhow::Result<(TcpStream, TcpStream)> {
        let listener = self.in_ns(1, || TcpListener::bind(SocketAddr::from((ADDR[1], 0))))?;
        let to = listener.local_addr()?;
        let a = self.in_ns(0, || TcpStream::connect(to))?;
        let (b, _) = listener.accept()?;
        for s in [&a, &b] {
            s.set_nodelay(true)?;
            s.set_nonblocking(true)?;
        }
        Ok((a, b))
    }

    /// Runs `f` on a thread inside namespace `i` (sockets and TUN devices stay in the
    /// namespace they were made in, wherever they are used later).
    fn in_ns<T: Send>(
        &self,
        i: usize,
        f: impl FnOnce() -> std::io::Result<T> + Send,
    ) -> anyhow::Result<T> {
        let path = format!("/run/netns/{}", self.names[i]);
        let ns = File::open(&path).with_context(|| format!("opening {path}"))?;
        std::thread::scope(|s| {
            s.spawn(move || -> anyhow::Result<T> {
                setns(&ns, CloneFlags::CLONE_NEWNET).context("setns")?;
                Ok(f()?)
            })
            .join()
            .map_err(|_| anyhow!("namespace thread panicked"))?
        })
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        // The delay line first: its threads stop and the TUN devices close (and so vanish).
        self.mode = Mode::Undelayed(String::new());
        // Deleting a namespace deletes what is left in it (the veth's end, and so the pair).
        for ns in &self.names {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// How long `len` bytes take at the rate.
fn serialization(len: usize) -> Duration {
    // 1 Mbit/s is one bit per microsecond.
    Duration::from_nanos(len as u64 * 8 * 1000 / u64::from(RATE_MBIT))
}

/// The router buffer in front of each direction: twice the bandwidth-delay product
/// (1.25 MB at 100 Mbit/s and 50 ms), as time at the rate (100 ms). A packet that would wait
/// longer than this to be sent is dropped (drop-tail).
fn queue_limit() -> Duration {
    2 * Duration::from_millis(u64::from(2 * DELAY_MS))
}

/// Counts of one direction of the delay line.
#[derive(Default)]
struct Counts {
    packets: AtomicU64,
    bytes: AtomicU64,
    /// Dropped because the queue was full.
    dropped: AtomicU64,
    /// Lost because the receiving TUN would not take them.
    unwritten: AtomicU64,
}

/// The userspace link between two TUN devices: per direction, a reader thread takes each IP
/// packet from one device as it comes, gives it its departure time `max(now, previous
/// departure) + len × 8 / RATE` (the serialization at the rate behind the packets queued before
/// it), drops it if it would wait longer than [`queue_limit`], else hands it with its due time
/// `departure + DELAY` to a writer thread, which sleeps until then and writes it to the other
/// device. No spinning: readers block in `poll` (woken by a packet or the stop event), writers
/// sleep until the next due time.
struct DelayLine {
    stop: Arc<AtomicBool>,
    event: Arc<InterruptEvent>,
    threads: Vec<JoinHandle<()>>,
    counts: [Arc<Counts>; 2],
}

/// How long a blocked thread waits before it looks at the stop flag again (the stop event
/// wakes the readers sooner).
const WAKE: Duration = Duration::from_millis(200);

impl DelayLine {
    fn start(a: SyncDevice, b: SyncDevice) -> anyhow::Result<Self> {
        let (a, b) = (Arc::new(a), Arc::new(b));
        let mut line = Self {
            stop: Arc::new(AtomicBool::new(false)),
            event: Arc::new(InterruptEvent::new().context("creating the stop event")?),
            threads: Vec::with_capacity(4),
            counts: [Arc::default(), Arc::default()],
        };
        for (dir, from, to) in [("a2b", &a, &b), ("b2a", &b, &a)] {
            let counts = Arc::clone(&line.counts[usize::from(dir == "b2a")]);
            let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
            let (from, stop, event) = (Arc::clone(from), line.stop.clone(), line.event.clone());
            let c = Arc::clone(&counts);
            line.threads.push(
                std::thread::Builder::new()
                    .name(format!("wan-{dir}-in"))
                    .spawn(move || read_side(&from, &tx, &stop, &event, &c))
                    .context("spawning a delay-line thread")?,
            );
            let (to, stop) = (Arc::clone(to), line.stop.clone());
            line.threads.push(
                std::thread::Builder::new()
                    .name(format!("wan-{dir}-out"))
                    .spawn(move || write_side(&to, &rx, &stop, &counts))
                    .context("spawning a delay-line thread")?,
            );
        }
        Ok(line)
    }

    fn stats(&self) -> String {
        let one = |c: &Counts| {
            format!(
                "{} packets ({:.1} MiB), {} dropped (queue full), {} not taken by the TUN",
                c.packets.load(Ordering::Relaxed),
                c.bytes.load(Ordering::Relaxed) as f64 / (1024.0 * 1024.0),
                c.dropped.load(Ordering::Relaxed),
                c.unwritten.load(Ordering::Relaxed),
            )
        };
        format!(
            "delay line: dialer to listener {}; back {}",
            one(&self.counts[0]),
            one(&self.counts[1])
        )
    }
}

impl Drop for DelayLine {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Err(e) = self.event.trigger() {
            eprintln!(
                "bench: delay line: cannot signal its threads to stop ({e}); they will see the flag"
            );
        }
        for t in self.threads.drain(..) {
            if t.join().is_err() {
                eprintln!("bench: a delay-line thread panicked");
            }
        }
    }
}

/// One direction's reader: packets from `from`, stamped with their due time, to `tx`.
fn read_side(
    from: &SyncDevice,
    tx: &mpsc::Sender<(Instant, Vec<u8>)>,
    stop: &AtomicBool,
    event: &InterruptEvent,
    counts: &Counts,
) {
    let delay = Duration::from_millis(u64::from(DELAY_MS));
    let limit = queue_limit();
    let mut buf = vec![0u8; 65536];
    let mut departure = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let n = match from.recv_intr_timeout(&mut buf, event, Some(WAKE)) {
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::TimedOut | ErrorKind::WouldBlock | ErrorKind::Interrupted
                ) =>
            {
                continue;
            }
            Err(e) => {
                if !stop.load(Ordering::Relaxed) {
                    eprintln!("bench: delay line: reading a TUN device failed: {e}");
                }
                return;
            }
        };
        let now = Instant::now();
        let departs = departure.max(now) + serialization(n);
        if departs - now > limit {
            counts.dropped.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        departure = departs;
        if tx.send((departs + delay, buf[..n].to_vec())).is_err() {
            return;
        }
    }
}

/// One direction's writer: each packet from `rx` written to `to` at its due time.
fn write_side(
    to: &SyncDevice,
    rx: &mpsc::Receiver<(Instant, Vec<u8>)>,
    stop: &AtomicBool,
    counts: &Counts,
) {
    while !stop.load(Ordering::Relaxed) {
        let (due, packet) = match rx.recv_timeout(WAKE) {
            Ok(p) => p,
            Err(mpsc::RecvTimeoutError::Timeout) => continue,
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        };
        // Due times only grow (departures do, the delay is constant): first in, first out.
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        match to.send(&packet) {
            Ok(_) => {
                counts.packets.fetch_add(1, Ordering::Relaxed);
                counts
                    .bytes
                    .fetch_add(packet.len() as u64, Ordering::Relaxed);
            }
            Err(_) => {
                counts.unwritten.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialization_is_at_the_rate() {
        // 1500 bytes at 100 Mbit/s: 120 µs.
        assert_eq!(serialization(1500), Duration::from_micros(120));
        // The queue limit is twice the bandwidth-delay product in bytes.
        let bdp_bytes = u64::from(RATE_MBIT) * 1_000_000 / 8 * u64::from(2 * DELAY_MS) / 1000;
        assert_eq!(serialization(2 * bdp_bytes as usize), queue_limit());
    }

    /// The link as the bench uses it: the round trip is near 50 ms and bulk TCP goes no faster
    /// than the rate. Needs root, `ip` and either netem or `/dev/net/tun`; says so and passes
    /// where the link cannot be set up at all.
    #[test]
    fn the_link_has_the_delay_and_the_rate() -> anyhow::Result<()> {
        let mut link = match Link::new() {
            Ok(link) => link,
            Err(e) => {
                eprintln!("no emulated link here, not tested: {e:#}");
                return Ok(());
            }
        };
        if let Mode::Undelayed(why) = &link.mode {
            eprintln!("the link has no delay here, not tested: {why}");
            return Ok(());
        }
        let rtt = link.calibrate()?;
        assert!(RTT_OK.contains(&rtt), "round trip {rtt:?}");

        let (mut a, mut b) = link.tcp_pair()?;
        for s in [&a, &b] {
            s.set_nonblocking(false)?;
        }
        let total = 4usize << 20;
        let started = Instant::now();
        let sender = std::thread::spawn(move || -> std::io::Result<()> {
            let chunk = vec![7u8; 64 << 10];
            for _ in 0..total / chunk.len() {
                a.write_all(&chunk)?;
            }
            Ok(())
        });
        let mut got = 0;
        let mut buf = vec![0u8; 64 << 10];
        while got < total {
            let n = b.read(&mut buf)?;
            assert!(n > 0, "the link closed after {got} bytes");
            got += n;
        }
        let elapsed = started.elapsed();
        sender.join().map_err(|_| anyhow!("sender panicked"))??;
        let rate = total as f64 * 8.0 / elapsed.as_secs_f64() / 1e6;
        eprintln!(
            "{total} bytes in {elapsed:?}: {rate:.1} Mbit/s; {:?}",
            link.stats()
        );
        // IP and TCP headers come on top of the payload, so the payload rate is below the cap.
        assert!(
            rate < f64::from(RATE_MBIT),
            "{rate:.1} Mbit/s over a {RATE_MBIT} Mbit/s link"
        );
        // At least one round trip per window, and the window has to open from scratch.
        assert!(
            elapsed > Duration::from_millis(u64::from(4 * DELAY_MS)),
            "{elapsed:?}"
        );
        drop(link);
        Ok(())
    }
}
