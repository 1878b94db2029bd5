//! An emulated long link for the bench: two network namespaces joined by a veth pair, each
//! end shaped to 100 Mbit/s (`tbf`) and, where the kernel has `netem`, delayed by 25 ms (a
//! 50 ms round trip). Needs root and `ip`/`tc` (iproute2). The namespaces get names unique to
//! this process and are deleted when the [`Link`] is dropped, also after a failure half-way.

use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::process::Command;

use anyhow::{Context as _, anyhow, ensure};
use nix::sched::{CloneFlags, setns};

/// One-way delay added to each direction where `netem` exists.
pub const DELAY_MS: u32 = 25;
/// The rate cap of each direction.
pub const RATE_MBIT: u32 = 100;

/// The two namespaces and their link; deleted on drop.
pub struct Link {
    names: [String; 2],
    /// Whether the delay is emulated (the kernel has `netem`).
    pub delayed: bool,
}

const ADDR: [Ipv4Addr; 2] = [Ipv4Addr::new(10, 213, 7, 1), Ipv4Addr::new(10, 213, 7, 2)];

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
            delayed: false,
        };
        // From here on, dropping `link` removes whatever was created.
        let [a, b] = link.names.clone();
        run(&["ip", "netns", "add", &a])?;
        run(&["ip", "netns", "add", &b])?;
        let (va, vb) = (format!("pb{id}a"), format!("pb{id}b"));
        run(&[
            "ip", "link", "add", &va, "netns", &a, "type", "veth", "peer", "name", &vb, "netns", &b,
        ])?;
        for (ns, dev, addr) in [(&a, &va, ADDR[0]), (&b, &vb, ADDR[1])] {
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
            run(&["ip", "-n", ns, "link", "set", "lo", "up"])?;
        }
        // The delay where the kernel has netem (with the rate cap below it), else the cap alone.
        let rate = format!("{RATE_MBIT}mbit");
        let delay = format!("{DELAY_MS}ms");
        let netem = |ns: &str, dev: &str| -> anyhow::Result<()> {
            run(&[
                "ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", dev, "root", "handle",
                "1:", "netem", "delay", &delay, "limit", "100000",
            ])?;
            run(&[
                "ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", dev, "parent", "1:1",
                "handle", "10:", "tbf", "rate", &rate, "burst", "32kb", "latency", "20ms",
            ])
        };
        link.delayed = netem(&a, &va).is_ok() && netem(&b, &vb).is_ok();
        if !link.delayed {
            for (ns, dev) in [(&a, &va), (&b, &vb)] {
                // (A half-set netem is replaced.)
                let _ = run(&[
                    "ip", "netns", "exec", ns, "tc", "qdisc", "del", "dev", dev, "root",
                ]);
                run(&[
                    "ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", dev, "root", "tbf",
                    "rate", &rate, "burst", "32kb", "latency", "20ms",
                ])?;
            }
        }
        Ok(link)
    }

    /// What is emulated, for the report.
    pub fn describe(&self) -> String {
        if self.delayed {
            format!("{RATE_MBIT} Mbit/s, {} ms round trip", 2 * DELAY_MS)
        } else {
            format!(
                "{RATE_MBIT} Mbit/s without added delay (this kernel has no netem qdisc; \
                 the round trip is the veth's, well under 1 ms)"
            )
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

    /// Runs `f` on a thread inside namespace `i` (sockets stay in the namespace they were
    /// made in, wherever they are used later).
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
        // Deleting a namespace deletes its end of the veth, and so the pair.
        for ns in &self.names {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}
