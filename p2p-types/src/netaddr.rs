//! Peer addresses: [`NetAddress`] (resolved, `id@ip:port`) and [`PeerAddress`] (as configured,
//! `id@host:port` where the host may be a DNS name).
//!
//! The text form and the parsing steps are those of the reference's `p2p/netaddress.go`:
//!
//! 1. if the text contains `://`, keep only what follows the first `://` (up to a second
//!    `://`, if any: the reference splits on the separator and keeps the second piece);
//! 2. split on `@`, which must give exactly two pieces: the node ID and `host:port`;
//! 3. the node ID must be 40 hex characters;
//! 4. `host:port` is split like Go's `net.SplitHostPort` (IPv6 hosts in brackets), and the host
//!    must not be empty;
//! 5. the port is a decimal number in `0..=65535`.
//!
//! The reference resolves a DNS host right inside its parser. Here parsing never does I/O: a
//! host that is not an IP literal yields a [`PeerAddress`] with [`Host::Dns`], and
//! [`PeerAddress::resolve`] does the (blocking) lookup when the caller wants it.
//!
//! IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) are stored as plain IPv4, because Go's
//! `net.IP` makes no difference between the two and prints both as a dotted quad.

use core::fmt;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use core::str::FromStr;

use ipnet::{Ipv4Net, Ipv6Net};

use crate::{Error, NodeId, proto};

// ---- address ranges (`p2p/netaddress.go`, inherited from btcd) -----------------------------

/// RFC 1918 private networks.
const RFC1918: [Ipv4Net; 3] = [
    Ipv4Net::new_assert(Ipv4Addr::new(10, 0, 0, 0), 8),
    Ipv4Net::new_assert(Ipv4Addr::new(172, 16, 0, 0), 12),
    Ipv4Net::new_assert(Ipv4Addr::new(192, 168, 0, 0), 16),
];
/// RFC 3849 IPv6 documentation prefix.
const RFC3849: Ipv6Net = Ipv6Net::new_assert(Ipv6Addr::new(0x2001, 0x0db8, 0, 0, 0, 0, 0, 0), 32);
/// RFC 3927 IPv4 link-local autoconfiguration.
const RFC3927: Ipv4Net = Ipv4Net::new_assert(Ipv4Addr::new(169, 254, 0, 0), 16);
/// RFC 3964 6to4.
const RFC3964: Ipv6Net = Ipv6Net::new_assert(Ipv6Addr::new(0x2002, 0, 0, 0, 0, 0, 0, 0), 16);
/// RFC 4193 unique local addresses.
const RFC4193: Ipv6Net = Ipv6Net::new_assert(Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0), 7);
/// RFC 4380 Teredo.
const RFC4380: Ipv6Net = Ipv6Net::new_assert(Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 32);
/// RFC 4843 ORCHID.
const RFC4843: Ipv6Net = Ipv6Net::new_assert(Ipv6Addr::new(0x2001, 0x0010, 0, 0, 0, 0, 0, 0), 28);
/// RFC 4862 IPv6 link-local autoconfiguration (the reference uses /64, not fe80::/10).
const RFC4862: Ipv6Net = Ipv6Net::new_assert(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 64);
/// RFC 6052 well-known NAT64 prefix.
const RFC6052: Ipv6Net = Ipv6Net::new_assert(Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0), 96);
/// RFC 6145 IPv4-translated addresses (`::ffff:0:0:0/96`, not the IPv4-mapped `::ffff:0:0/96`).
const RFC6145: Ipv6Net = Ipv6Net::new_assert(Ipv6Addr::new(0, 0, 0, 0, 0xffff, 0, 0, 0), 96);
/// OnionCat (Tor) prefix, part of RFC 4193.
const ONION_CAT: Ipv6Net =
    Ipv6Net::new_assert(Ipv6Addr::new(0xfd87, 0xd87e, 0xeb43, 0, 0, 0, 0, 0), 48);
/// "This network", treated as local by the reference.
const ZERO4: Ipv4Net = Ipv4Net::new_assert(Ipv4Addr::new(0, 0, 0, 0), 8);

fn in_v4(ip: IpAddr, net: &Ipv4Net) -> bool {
    matches!(ip, IpAddr::V4(v4) if net.contains(&v4))
}

fn in_v6(ip: IpAddr, net: &Ipv6Net) -> bool {
    matches!(ip, IpAddr::V6(v6) if net.contains(&v6))
}

// ---- NetAddress ----------------------------------------------------------------------------

/// A resolved peer address: node ID, IP address and port, written `id@ip:port`.
///
/// This is what the address book stores, what PEX exchanges and what a dialer connects to.
/// The ID is mandatory. IPv4-mapped IPv6 addresses are always stored as IPv4, so two
/// addresses are equal exactly when the reference's `Equals` (comparison of the text forms)
/// says so.
///
/// ```
/// use p2p_types::NetAddress;
///
/// let addr: NetAddress = "tcp://deadbeefdeadbeefdeadbeefdeadbeefdeadbeef@[::ffff:1.2.3.4]:26656"
///     .parse()
///     .unwrap();
/// assert_eq!(addr.to_string(), "deadbeefdeadbeefdeadbeefdeadbeefdeadbeef@1.2.3.4:26656");
/// assert!(addr.is_routable());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NetAddress {
    id: NodeId,
    ip: IpAddr,
    port: u16,
}

impl NetAddress {
    /// Builds an address from a node ID and a socket address.
    ///
    /// An IPv4-mapped IPv6 address becomes plain IPv4; IPv6 flow info and scope ID are dropped.
    pub fn new(id: NodeId, addr: SocketAddr) -> Self {
        Self {
            id,
            ip: addr.ip().to_canonical(),
            port: addr.port(),
        }
    }

    /// The node ID.
    pub const fn id(&self) -> NodeId {
        self.id
    }

    /// The IP address (never IPv4-mapped IPv6).
    pub const fn ip(&self) -> IpAddr {
        self.ip
    }

    /// The port.
    pub const fn port(&self) -> u16 {
        self.port
    }

    /// The socket address to connect to.
    pub const fn socket_addr(&self) -> SocketAddr {
        SocketAddr::new(self.ip, self.port)
    }

    /// `host:port`, with an IPv6 host in brackets (the reference's `DialString`).
    pub fn dial_string(&self) -> String {
        self.socket_addr().to_string()
    }

    /// Whether both addresses point at the same node: same IP and port, or same node ID
    /// (the reference's `Same`).
    pub fn same(&self, other: &Self) -> bool {
        self.socket_addr() == other.socket_addr() || self.id == other.id
    }

    /// Checks that the IP could be dialled at all (the reference's `Valid`): not unspecified
    /// (`0.0.0.0`, `::`), not the IPv4 broadcast address, not in the RFC 3849 documentation
    /// prefix. The node ID is valid by construction.
    pub fn validate(&self) -> Result<(), Error> {
        let reason = if self.ip.is_unspecified() {
            "unspecified address"
        } else if self.ip == IpAddr::V4(Ipv4Addr::BROADCAST) {
            "IPv4 broadcast address"
        } else if self.is_rfc3849() {
            "IPv6 documentation prefix (RFC 3849)"
        } else {
            return Ok(());
        };
        Err(Error::UnusableIp {
            ip: self.ip,
            reason,
        })
    }

    /// Whether [`validate`](Self::validate) succeeds.
    pub fn is_valid(&self) -> bool {
        self.validate().is_ok()
    }

    /// Whether the IP is loopback or in `0.0.0.0/8` (the reference's `Local`).
    pub fn is_local(&self) -> bool {
        self.ip.is_loopback() || in_v4(self.ip, &ZERO4)
    }

    /// Whether the address is valid and publicly routable (the reference's `Routable`): not
    /// private (RFC 1918, RFC 4193), not link-local (RFC 3927, RFC 4862), not ORCHID
    /// (RFC 4843) and not [local](Self::is_local).
    pub fn is_routable(&self) -> bool {
        self.is_valid()
            && !(self.is_rfc1918()
                || self.is_rfc3927()
                || self.is_rfc4862()
                || self.is_rfc4193()
                || self.is_rfc4843()
                || self.is_local())
    }

    /// IPv4 private networks: `10.0.0.0/8`, `172.16.0.0/12`, `192.168.0.0/16`.
    pub fn is_rfc1918(&self) -> bool {
        RFC1918.iter().any(|net| in_v4(self.ip, net))
    }

    /// IPv6 documentation prefix `2001:db8::/32`.
    pub fn is_rfc3849(&self) -> bool {
        in_v6(self.ip, &RFC3849)
    }

    /// IPv4 link-local autoconfiguration `169.254.0.0/16`.
    pub fn is_rfc3927(&self) -> bool {
        in_v4(self.ip, &RFC3927)
    }

    /// IPv6 6to4 `2002::/16`.
    pub fn is_rfc3964(&self) -> bool {
        in_v6(self.ip, &RFC3964)
    }

    /// IPv6 unique local addresses `fc00::/7`.
    pub fn is_rfc4193(&self) -> bool {
        in_v6(self.ip, &RFC4193)
    }

    /// IPv6 Teredo tunnelling `2001::/32`.
    pub fn is_rfc4380(&self) -> bool {
        in_v6(self.ip, &RFC4380)
    }

    /// IPv6 ORCHID `2001:10::/28`.
    pub fn is_rfc4843(&self) -> bool {
        in_v6(self.ip, &RFC4843)
    }

    /// IPv6 link-local autoconfiguration `fe80::/64` (as in the reference; not all of
    /// `fe80::/10`).
    pub fn is_rfc4862(&self) -> bool {
        in_v6(self.ip, &RFC4862)
    }

    /// IPv6 well-known NAT64 prefix `64:ff9b::/96`.
    pub fn is_rfc6052(&self) -> bool {
        in_v6(self.ip, &RFC6052)
    }

    /// IPv6 IPv4-translated addresses `::ffff:0:0:0/96`.
    pub fn is_rfc6145(&self) -> bool {
        in_v6(self.ip, &RFC6145)
    }

    /// OnionCat (Tor) addresses `fd87:d87e:eb43::/48`.
    pub fn is_onion_cat(&self) -> bool {
        in_v6(self.ip, &ONION_CAT)
    }

    /// The protobuf form carried by PEX.
    pub fn to_proto(&self) -> proto::p2p::NetAddress {
        proto::p2p::NetAddress {
            id: self.id.to_string(),
            ip: self.ip.to_string(),
            port: u32::from(self.port),
        }
    }

    /// Converts the protobuf form carried by PEX.
    ///
    /// Like the reference's `NetAddressFromProto`, the IP must be an IP literal
    /// ([`Error::InvalidIp`]) and the port below 65536 ([`Error::PortOutOfRange`]); these are
    /// checked first. Unlike the reference, which keeps the ID as an unchecked string and only
    /// drops the address later (its address book rejects it), the ID is parsed here, and a bad ID
    /// yields the distinct [`Error::NetAddressId`]. A PEX receiver that wants the reference's
    /// behaviour fails the whole message on the first two errors and skips entries with the
    /// third. An upper-case ID is accepted and normalised to lower case.
    pub fn from_proto(pb: &proto::p2p::NetAddress) -> Result<Self, Error> {
        let ip: IpAddr = pb
            .ip
            .parse()
            .map_err(|_| Error::InvalidIp { ip: pb.ip.clone() })?;
        let port = u16::try_from(pb.port).map_err(|_| Error::PortOutOfRange { port: pb.port })?;
        let id: NodeId = pb.id.parse().map_err(|e| Error::NetAddressId {
            id: pb.id.clone(),
            source: Box::new(e),
        })?;
        Ok(Self::new(id, SocketAddr::new(ip, port)))
    }
}

impl fmt::Display for NetAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.id, self.socket_addr())
    }
}

impl fmt::Debug for NetAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NetAddress({self})")
    }
}

impl FromStr for NetAddress {
    type Err = Error;

    /// Parses `[scheme://]id@ip:port`. The host must be an IP literal: a DNS name gives
    /// [`Error::HostNotIp`]; parse a [`PeerAddress`] and [resolve](PeerAddress::resolve) it
    /// instead.
    fn from_str(s: &str) -> Result<Self, Error> {
        let peer: PeerAddress = s.parse()?;
        match peer.host {
            Host::Ip(ip) => Ok(Self::new(peer.id, SocketAddr::new(ip, peer.port))),
            Host::Dns(host) => Err(Error::HostNotIp { host }),
        }
    }
}

impl From<&NetAddress> for proto::p2p::NetAddress {
    fn from(addr: &NetAddress) -> Self {
        addr.to_proto()
    }
}

impl TryFrom<&proto::p2p::NetAddress> for NetAddress {
    type Error = Error;

    fn try_from(pb: &proto::p2p::NetAddress) -> Result<Self, Error> {
        Self::from_proto(pb)
    }
}

// ---- PeerAddress ---------------------------------------------------------------------------

/// The host part of a [`PeerAddress`].
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Host {
    /// An IP literal (never IPv4-mapped IPv6).
    Ip(IpAddr),
    /// A syntactically valid DNS name, not yet resolved.
    Dns(String),
}

impl Host {
    /// The IP address, if the host is an IP literal.
    pub const fn ip(&self) -> Option<IpAddr> {
        match self {
            Self::Ip(ip) => Some(*ip),
            Self::Dns(_) => None,
        }
    }
}

impl fmt::Display for Host {
    /// The bare host: IPv6 addresses are *not* bracketed here.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ip(ip) => ip.fmt(f),
            Self::Dns(name) => f.write_str(name),
        }
    }
}

impl fmt::Debug for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ip(ip) => write!(f, "Ip({ip})"),
            Self::Dns(name) => write!(f, "Dns({name:?})"),
        }
    }
}

impl FromStr for Host {
    type Err = Error;

    /// Parses an IP literal (without brackets) or a DNS name; see [`is_valid_dns_name`].
    fn from_str(s: &str) -> Result<Self, Error> {
        if let Ok(ip) = s.parse::<IpAddr>() {
            Ok(Self::Ip(ip.to_canonical()))
        } else if is_valid_dns_name(s) {
            Ok(Self::Dns(s.to_owned()))
        } else {
            Err(Error::InvalidHost { host: s.to_owned() })
        }
    }
}

impl From<IpAddr> for Host {
    fn from(ip: IpAddr) -> Self {
        Self::Ip(ip.to_canonical())
    }
}

/// A peer address as users configure it (`persistent_peers`, `seeds`, dial lists):
/// `[scheme://]id@host:port`, where the host is an IP literal or a DNS name.
///
/// Parsing does no I/O; call [`resolve`](Self::resolve) to get a [`NetAddress`].
///
/// ```
/// use p2p_types::{Host, PeerAddress};
///
/// let peer: PeerAddress = "tcp://deadbeefdeadbeefdeadbeefdeadbeefdeadbeef@seed.example.com:26656"
///     .parse()
///     .unwrap();
/// assert_eq!(peer.host(), &Host::Dns("seed.example.com".into()));
/// assert_eq!(peer.port(), 26656);
/// assert!(peer.to_net_address().is_none()); // needs a lookup
///
/// let local: PeerAddress = "deadbeefdeadbeefdeadbeefdeadbeefdeadbeef@127.0.0.1:26656"
///     .parse()
///     .unwrap();
/// assert_eq!(local.resolve().unwrap().to_string(), local.to_string()); // no lookup needed
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PeerAddress {
    id: NodeId,
    host: Host,
    port: u16,
}

impl PeerAddress {
    /// Builds a peer address; a [`Host::Dns`] name must be syntactically valid
    /// ([`is_valid_dns_name`]), else [`Error::InvalidHost`].
    pub fn new(id: NodeId, host: Host, port: u16) -> Result<Self, Error> {
        let host = match host {
            Host::Ip(ip) => Host::Ip(ip.to_canonical()),
            Host::Dns(name) if is_valid_dns_name(&name) => Host::Dns(name),
            Host::Dns(name) => return Err(Error::InvalidHost { host: name }),
        };
        Ok(Self { id, host, port })
    }

    /// The node ID.
    pub const fn id(&self) -> NodeId {
        self.id
    }

    /// The host.
    pub const fn host(&self) -> &Host {
        &self.host
    }

    /// The port.
    pub const fn port(&self) -> u16 {
        self.port
    }

    /// The address without a lookup, if the host is an IP literal.
    pub fn to_net_address(&self) -> Option<NetAddress> {
        let ip = self.host.ip()?;
        Some(NetAddress::new(self.id, SocketAddr::new(ip, self.port)))
    }

    /// Resolves the host to an IP address, taking the first address the system resolver
    /// returns (as the reference does). An IP host is returned without a lookup.
    ///
    /// This **blocks** on the system resolver (`std::net::ToSocketAddrs`); from async code run
    /// it on a blocking thread. Fails with [`Error::DnsLookup`] when the lookup fails or returns
    /// nothing.
    pub fn resolve(&self) -> Result<NetAddress, Error> {
        if let Some(addr) = self.to_net_address() {
            return Ok(addr);
        }
        let host = self.host.to_string();
        let lookup_err = |reason: String| Error::DnsLookup {
            host: host.clone(),
            reason,
        };
        let mut addrs = std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), self.port))
            .map_err(|e| lookup_err(e.to_string()))?;
        let first = addrs
            .next()
            .ok_or_else(|| lookup_err("no addresses found".into()))?;
        Ok(NetAddress::new(self.id, first))
    }
}

impl fmt::Display for PeerAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.host {
            Host::Ip(IpAddr::V6(ip)) => write!(f, "{}@[{ip}]:{}", self.id, self.port),
            _ => write!(f, "{}@{}:{}", self.id, self.host, self.port),
        }
    }
}

impl fmt::Debug for PeerAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PeerAddress({self})")
    }
}

impl FromStr for PeerAddress {
    type Err = Error;

    /// Parses `[scheme://]id@host:port` with the reference's steps (see the [module
    /// docs](self)), without resolving a DNS host.
    fn from_str(s: &str) -> Result<Self, Error> {
        let addr = strip_scheme(s);
        let mut parts = addr.split('@');
        let (Some(id), Some(host_port), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(Error::AddressMissingId {
                addr: addr.to_owned(),
            });
        };
        let id: NodeId = id.parse()?;
        let (host, port) = split_host_port(host_port)?;
        if host.is_empty() {
            return Err(Error::EmptyHost {
                addr: host_port.to_owned(),
            });
        }
        let host: Host = host.parse()?;
        let port = parse_port(port)?;
        Ok(Self { id, host, port })
    }
}

impl From<NetAddress> for PeerAddress {
    fn from(addr: NetAddress) -> Self {
        Self {
            id: addr.id,
            host: Host::Ip(addr.ip),
            port: addr.port,
        }
    }
}

// ---- HostPort ------------------------------------------------------------------------------

/// A host and port without a node ID, `[scheme://]host:port`: a listen address (`laddr`) or the
/// address a node advertises (`external_address`, a NodeInfo's `listen_addr`).
///
/// Parsing drops a `scheme://` prefix the way the reference does (its p2p layer listens on TCP
/// whatever the scheme says) and does no I/O: the host may be a DNS name. The text form has no
/// scheme and brackets an IPv6 host.
///
/// ```
/// use p2p_types::{Host, HostPort};
///
/// let laddr: HostPort = "tcp://0.0.0.0:26656".parse().unwrap();
/// assert_eq!(laddr.port(), 26656);
/// assert_eq!(laddr.to_string(), "0.0.0.0:26656");
/// let external: HostPort = "node.example.com:26656".parse().unwrap();
/// assert_eq!(external.host(), &Host::Dns("node.example.com".into()));
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HostPort {
    host: Host,
    port: u16,
}

impl HostPort {
    /// Builds a host and port; a [`Host::Dns`] name must be syntactically valid
    /// ([`is_valid_dns_name`]), else [`Error::InvalidHost`].
    pub fn new(host: Host, port: u16) -> Result<Self, Error> {
        let host = match host {
            Host::Ip(ip) => Host::Ip(ip.to_canonical()),
            Host::Dns(name) if is_valid_dns_name(&name) => Host::Dns(name),
            Host::Dns(name) => return Err(Error::InvalidHost { host: name }),
        };
        Ok(Self { host, port })
    }

    /// The host.
    pub const fn host(&self) -> &Host {
        &self.host
    }

    /// The port.
    pub const fn port(&self) -> u16 {
        self.port
    }

    /// The socket address, if the host is an IP literal.
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        Some(SocketAddr::new(self.host.ip()?, self.port))
    }

    /// The address with a node ID in front.
    pub fn with_id(&self, id: NodeId) -> PeerAddress {
        PeerAddress {
            id,
            host: self.host.clone(),
            port: self.port,
        }
    }
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.host {
            Host::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]:{}", self.port),
            _ => write!(f, "{}:{}", self.host, self.port),
        }
    }
}

impl fmt::Debug for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HostPort({self})")
    }
}

impl FromStr for HostPort {
    type Err = Error;

    /// Parses `[scheme://]host:port` with the reference's rules for the `host:port` part (see
    /// the [module docs](self)).
    fn from_str(s: &str) -> Result<Self, Error> {
        let host_port = strip_scheme(s);
        let (host, port) = split_host_port(host_port)?;
        if host.is_empty() {
            return Err(Error::EmptyHost {
                addr: host_port.to_owned(),
            });
        }
        let host: Host = host.parse()?;
        let port = parse_port(port)?;
        Ok(Self { host, port })
    }
}

impl From<SocketAddr> for HostPort {
    fn from(addr: SocketAddr) -> Self {
        Self {
            host: Host::from(addr.ip()),
            port: addr.port(),
        }
    }
}

#[cfg(feature = "serde")]
mod serde_impls {
    use super::{HostPort, NetAddress, PeerAddress};

    macro_rules! via_string {
        ($ty:ty) => {
            impl serde::Serialize for $ty {
                fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                    s.collect_str(self)
                }
            }

            impl<'de> serde::Deserialize<'de> for $ty {
                fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                    let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                    s.parse().map_err(serde::de::Error::custom)
                }
            }
        };
    }

    via_string!(NetAddress);
    via_string!(PeerAddress);
    via_string!(HostPort);
}

// ---- parsing helpers -----------------------------------------------------------------------

/// Drops a `scheme://` prefix the way the reference does: split on `://` and keep the second
/// piece (so `a://b://c` gives `b`).
pub(crate) fn strip_scheme(s: &str) -> &str {
    s.split("://").nth(1).unwrap_or(s)
}

/// Splits `host:port` or `[host]:port` with the rules of Go's `net.SplitHostPort`.
fn split_host_port(host_port: &str) -> Result<(&str, &str), Error> {
    let err = |reason| Error::MalformedHostPort {
        addr: host_port.to_owned(),
        reason,
    };
    // The port starts after the last colon.
    let colon = host_port.rfind(':').ok_or_else(|| err("missing port"))?;
    let (host, rest_start, close_at) = if let Some(inner) = host_port.strip_prefix('[') {
        // `inner` starts at index 1 of `host_port`.
        let close = inner.find(']').ok_or_else(|| err("missing ']'"))? + 1;
        if close + 1 == host_port.len() {
            return Err(err("missing port"));
        }
        if close + 1 != colon {
            // `]` is followed by something other than the last colon.
            return Err(if host_port.as_bytes().get(close + 1) == Some(&b':') {
                err("too many colons")
            } else {
                err("missing port")
            });
        }
        (host_port.get(1..close).unwrap_or_default(), 1, close + 1)
    } else {
        let host = host_port.get(..colon).unwrap_or_default();
        if host.contains(':') {
            return Err(err("too many colons"));
        }
        (host, 0, 0)
    };
    if host_port
        .get(rest_start..)
        .unwrap_or_default()
        .contains('[')
    {
        return Err(err("unexpected '['"));
    }
    if host_port.get(close_at..).unwrap_or_default().contains(']') {
        return Err(err("unexpected ']'"));
    }
    Ok((host, host_port.get(colon + 1..).unwrap_or_default()))
}

/// Parses a decimal port like Go's `strconv.ParseUint(s, 10, 16)`: digits only (no sign),
/// leading zeros allowed.
fn parse_port(s: &str) -> Result<u16, Error> {
    let err = || Error::InvalidPort { port: s.to_owned() };
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err());
    }
    s.parse().map_err(|_| err())
}

/// Whether `name` is a syntactically valid DNS host name.
///
/// Rules: at most 253 characters (one trailing dot allowed on top); labels of 1 to 63
/// characters from `A-Z a-z 0-9 - _`, not starting or ending with `-` (underscores are
/// accepted, as Go's resolver does, because container host names often use them); and the last
/// label not purely numeric, so that a mistyped IPv4 address such as `127.0.0` or `1.2.3.256`
/// is reported as an invalid host instead of being looked up.
pub fn is_valid_dns_name(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() || name.len() > 253 {
        return false;
    }
    let mut last = "";
    for label in name.split('.') {
        let bytes = label.as_bytes();
        let valid = (1..=63).contains(&bytes.len())
            && bytes.first() != Some(&b'-')
            && bytes.last() != Some(&b'-')
            && bytes
                .iter()
                .all(|&b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid {
            return false;
        }
        last = label;
    }
    !last.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const ID: &str = "deadbeefdeadbeefdeadbeefdeadbeefdeadbeef";

    fn id() -> NodeId {
        ID.parse().unwrap()
    }

    fn addr(s: &str) -> NetAddress {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn ip_addr(ip: &str) -> NetAddress {
        NetAddress::new(id(), SocketAddr::new(ip.parse().unwrap(), 26656))
    }

    /// The reference's `TestNewNetAddressString` table (`p2p/netaddress_test.go`).
    #[test]
    fn reference_parse_table() {
        let cases: &[(&str, &str, Option<&str>)] = &[
            ("no node id and no protocol", "127.0.0.1:8080", None),
            ("no node id w/ tcp input", "tcp://127.0.0.1:8080", None),
            ("no node id w/ udp input", "udp://127.0.0.1:8080", None),
            (
                "no protocol",
                "deadbeefdeadbeefdeadbeefdeadbeefdeadbeef@127.0.0.1:8080",
                Some("deadbeefdeadbeefdeadbeefdeadbeefdeadbeef@127.0.0.1:8080"),
            ),
            (
                "tcp input",
                "tcp://deadbeefdeadbeefdeadbeefdeadbeefdeadbeef@127.0.0.1:8080",
                Some("deadbeefdeadbeefdeadbeefdeadbeefdeadbeef@127.0.0.1:8080"),
            ),
            (
                "udp input",
                "udp://deadbeefdeadbeefdeadbeefdeadbeefdeadbeef@127.0.0.1:8080",
                Some("deadbeefdeadbeefdeadbeefdeadbeefdeadbeef@127.0.0.1:8080"),
            ),
            (
                "malformed tcp input",
                "tcp//deadbeefdeadbeefdeadbeefdeadbeefdeadbeef@127.0.0.1:8080",
                None,
            ),
            (
                "malformed udp input",
                "udp//deadbeefdeadbeefdeadbeefdeadbeefdeadbeef@127.0.0.1:8080",
                None,
            ),
            ("invalid host", "notahost", None),
            ("invalid port", "127.0.0.1:notapath", None),
            ("invalid host w/ port", "notahost:8080", None),
            ("just a port", "8082", None),
            ("non-existent port", "127.0.0:8080000", None),
            ("too short nodeId", "deadbeef@127.0.0.1:8080", None),
            (
                "too short, not hex nodeId",
                "this-isnot-hex@127.0.0.1:8080",
                None,
            ),
            (
                "not hex nodeId",
                "xxxxbeefdeadbeefdeadbeefdeadbeefdeadbeef@127.0.0.1:8080",
                None,
            ),
            (
                "too short nodeId w/tcp",
                "tcp://deadbeef@127.0.0.1:8080",
                None,
            ),
            (
                "too short notHex nodeId w/tcp",
                "tcp://this-isnot-hex@127.0.0.1:8080",
                None,
            ),
            (
                "notHex nodeId w/tcp",
                "tcp://xxxxbeefdeadbeefdeadbeefdeadbeefdeadbeef@127.0.0.1:8080",
                None,
            ),
            (
                "correct nodeId w/tcp",
                "tcp://deadbeefdeadbeefdeadbeefdeadbeefdeadbeef@127.0.0.1:8080",
                Some("deadbeefdeadbeefdeadbeefdeadbeefdeadbeef@127.0.0.1:8080"),
            ),
            ("no node id", "tcp://@127.0.0.1:8080", None),
            ("no node id or IP", "tcp://@", None),
            ("tcp no host, w/ port", "tcp://:26656", None),
            ("empty", "", None),
            ("node id delimiter 1", "@", None),
            ("node id delimiter 2", " @", None),
            ("node id delimiter 3", " @ ", None),
        ];
        for &(name, input, expected) in cases {
            let net = input.parse::<NetAddress>();
            let peer = input.parse::<PeerAddress>();
            match expected {
                Some(want) => {
                    assert_eq!(
                        net.as_ref().map(ToString::to_string),
                        Ok(want.into()),
                        "{name}"
                    );
                    assert_eq!(peer.map(|p| p.to_string()), Ok(want.into()), "{name}");
                }
                None => {
                    assert!(net.is_err(), "{name}: {net:?}");
                    assert!(peer.is_err(), "{name}: {peer:?}");
                }
            }
        }
    }

    #[test]
    fn parse_error_variants() {
        let cases: &[(&str, Error)] = &[
            (
                "127.0.0.1:8080",
                Error::AddressMissingId {
                    addr: "127.0.0.1:8080".into(),
                },
            ),
            (
                "tcp//deadbeefdeadbeefdeadbeefdeadbeefdeadbeef@127.0.0.1:8080",
                Error::NodeIdNotHex {
                    id: "tcp//deadbeefdeadbeefdeadbeefdeadbeefdeadbeef".into(),
                },
            ),
            ("tcp://@127.0.0.1:8080", Error::EmptyNodeId),
            (
                "a@b@c",
                Error::AddressMissingId {
                    addr: "a@b@c".into(),
                },
            ),
            (
                "deadbeef@127.0.0.1:8080",
                Error::NodeIdLength {
                    id: "deadbeef".into(),
                    len: 4,
                },
            ),
            (
                "deadbeefdeadbeefdeadbeefdeadbeefdeadbeef@:26656",
                Error::EmptyHost {
                    addr: ":26656".into(),
                },
            ),
            (
                "deadbeefdeadbeefdeadbeefdeadbeefdeadbeef@127.0.0.1",
                Error::MalformedHostPort {
                    addr: "127.0.0.1".into(),
                    reason: "missing port",
                },
            ),
            (
                "deadbeefdeadbeefdeadbeefdeadbeefdeadbeef@::1:80",
                Error::MalformedHostPort {
                    addr: "::1:80".into(),
                    reason: "too many colons",
                },
            ),
            (
                "deadbeefdeadbeefdeadbeefdeadbeefdeadbeef@127.0.0.1:notapath",
                Error::InvalidPort {
                    port: "notapath".into(),
                },
            ),
            (
                "deadbeefdeadbeefdeadbeefdeadbeefdeadbeef@127.0.0.1:65536",
                Error::InvalidPort {
                    port: "65536".into(),
                },
            ),
            (
                "deadbeefdeadbeefdeadbeefdeadbeefdeadbeef@127.0.0.1:+80",
                Error::InvalidPort { port: "+80".into() },
            ),
            (
                "deadbeefdeadbeefdeadbeefdeadbeefdeadbeef@127.0.0:8080",
                Error::InvalidHost {
                    host: "127.0.0".into(),
                },
            ),
            (
                "deadbeefdeadbeefdeadbeefdeadbeefdeadbeef@not a host:8080",
                Error::InvalidHost {
                    host: "not a host".into(),
                },
            ),
            (
                "deadbeefdeadbeefdeadbeefdeadbeefdeadbeef@[fe80::1%eth0]:8080",
                Error::InvalidHost {
                    host: "fe80::1%eth0".into(),
                },
            ),
        ];
        for (input, want) in cases {
            assert_eq!(input.parse::<PeerAddress>().as_ref(), Err(want), "{input}");
        }
    }

    #[test]
    fn dns_host_needs_peer_address() {
        let s = "deadbeefdeadbeefdeadbeefdeadbeefdeadbeef@seed.example.com:26656";
        assert_eq!(
            s.parse::<NetAddress>(),
            Err(Error::HostNotIp {
                host: "seed.example.com".into()
            })
        );
        let peer: PeerAddress = s.parse().unwrap();
        assert_eq!(peer.host(), &Host::Dns("seed.example.com".into()));
        assert_eq!(peer.to_string(), s);
        assert_eq!(peer.to_net_address(), None);
        let err = s.parse::<NetAddress>().unwrap_err().to_string();
        assert!(err.contains("PeerAddress::resolve"), "{err}");
    }

    #[test]
    fn resolve_ip_host_without_lookup() {
        let peer: PeerAddress = "deadbeefdeadbeefdeadbeefdeadbeefdeadbeef@[::1]:26656"
            .parse()
            .unwrap();
        assert_eq!(peer.resolve().unwrap(), addr(&peer.to_string()));
        assert_eq!(
            peer.resolve().unwrap().ip(),
            IpAddr::V6(Ipv6Addr::LOCALHOST)
        );
    }

    #[test]
    fn resolve_localhost() {
        // `localhost` resolves from the hosts file on any sane system, without network access.
        let peer: PeerAddress = "deadbeefdeadbeefdeadbeefdeadbeefdeadbeef@localhost:26656"
            .parse()
            .unwrap();
        let resolved = peer.resolve().unwrap();
        assert!(resolved.ip().is_loopback(), "{resolved}");
        assert_eq!(resolved.port(), 26656);
        assert_eq!(resolved.id(), id());
    }

    #[test]
    fn resolve_failure_is_reported() {
        // `.invalid` is reserved (RFC 2606) and never resolves.
        let peer: PeerAddress = "deadbeefdeadbeefdeadbeefdeadbeefdeadbeef@no-such-host.invalid:1"
            .parse()
            .unwrap();
        assert!(matches!(
            peer.resolve(),
            Err(Error::DnsLookup { host, .. }) if host == "no-such-host.invalid"
        ));
    }

    /// The reference's `TestNetAddress_String` and `TestNewNetAddress`.
    #[test]
    fn display_and_dial_string() {
        let a = NetAddress::new(id(), "127.0.0.1:8080".parse().unwrap());
        assert_eq!(a.to_string(), format!("{ID}@127.0.0.1:8080"));
        assert_eq!(a.dial_string(), "127.0.0.1:8080");
        let v6 = NetAddress::new(id(), "[2001:db8::1]:26656".parse().unwrap());
        assert_eq!(v6.to_string(), format!("{ID}@[2001:db8::1]:26656"));
        assert_eq!(v6.dial_string(), "[2001:db8::1]:26656");
    }

    #[test]
    fn ipv4_mapped_is_canonicalised() {
        let mapped = NetAddress::new(id(), "[::ffff:1.2.3.4]:80".parse().unwrap());
        assert_eq!(mapped.ip(), IpAddr::V4(Ipv4Addr::new(1, 2, 3, 4)));
        assert_eq!(mapped.to_string(), format!("{ID}@1.2.3.4:80"));
        assert_eq!(mapped, addr(&format!("{ID}@[::ffff:1.2.3.4]:80")));
        assert!(mapped.is_routable());
        // IPv4-compatible (`::a.b.c.d`) and RFC 6145 (`::ffff:0:a.b.c.d`) addresses stay IPv6,
        // as in Go, and print in Go's hex form.
        let compat = ip_addr("::1.2.3.4");
        assert!(compat.ip().is_ipv6());
        assert_eq!(compat.dial_string(), "[::102:304]:26656");
        let translated = ip_addr("::ffff:0:1.2.3.4");
        assert!(translated.ip().is_ipv6());
        assert!(translated.is_rfc6145());
        assert_eq!(translated.dial_string(), "[::ffff:0:102:304]:26656");
        // `::1` must not turn into 0.0.0.1.
        assert_eq!(ip_addr("::1").ip(), IpAddr::V6(Ipv6Addr::LOCALHOST));
    }

    #[test]
    fn ipv6_text_matches_go() {
        // Go's `net.IP.String` (RFC 5952): longest zero run compressed, first on ties, a single
        // zero group never compressed, lower-case hex.
        for (input, go) in [
            ("2001:0DB8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),
            ("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"),
            ("1:0:0:2:0:0:0:3", "1:0:0:2::3"),
            ("fe80::", "fe80::"),
            ("::", "::"),
        ] {
            let ip: IpAddr = input.parse().unwrap();
            assert_eq!(ip.to_string(), go, "{input}");
        }
    }

    #[test]
    fn scheme_is_stripped_like_the_reference() {
        assert_eq!(strip_scheme("tcp://a@b:1"), "a@b:1");
        assert_eq!(strip_scheme("a@b:1"), "a@b:1");
        assert_eq!(strip_scheme("tcp://a://b"), "a");
        assert_eq!(strip_scheme("://x"), "x");
        // Anything after a second `://` is ignored, as in the reference.
        assert_eq!(
            addr(&format!("tcp://{ID}@1.2.3.4:80://junk")),
            addr(&format!("{ID}@1.2.3.4:80"))
        );
    }

    #[test]
    fn split_host_port_follows_go() {
        let ok: &[(&str, (&str, &str))] = &[
            ("localhost:http", ("localhost", "http")),
            ("[::1]:80", ("::1", "80")),
            ("[fe80::1%lo0]:80", ("fe80::1%lo0", "80")),
            (":80", ("", "80")),
            ("host:", ("host", "")),
            ("[]:80", ("", "80")),
        ];
        for (input, want) in ok {
            assert_eq!(split_host_port(input).unwrap(), *want, "{input}");
        }
        let bad: &[(&str, &str)] = &[
            ("host", "missing port"),
            ("[::1]", "missing port"),
            ("[::1]80", "missing port"),
            ("[::1]:80:81", "too many colons"),
            ("::1:80", "too many colons"),
            ("[::1:80", "missing ']'"),
            ("a[b]:80", "unexpected '['"),
            ("ab]:80", "unexpected ']'"),
            ("[a]b]:80", "missing port"),
        ];
        for (input, reason) in bad {
            assert_eq!(
                split_host_port(input),
                Err(Error::MalformedHostPort {
                    addr: (*input).into(),
                    reason
                }),
                "{input}"
            );
        }
    }

    #[test]
    fn ports() {
        assert_eq!(parse_port("0"), Ok(0));
        assert_eq!(parse_port("080"), Ok(80));
        assert_eq!(parse_port("65535"), Ok(65535));
        for bad in ["", "65536", "-1", "+1", " 1", "1 ", "0x10", "1_000"] {
            assert!(parse_port(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn dns_names() {
        for good in [
            "localhost",
            "seed.example.com",
            "seed.example.com.",
            "node_1",
            "a-b.c",
            "xn--bcher-kva.example",
            "1.2.3.example",
            "3com.com",
        ] {
            assert!(is_valid_dns_name(good), "{good}");
        }
        let long_label = "a".repeat(64);
        let long_name = ["a"; 127].join(".") + ".com";
        for bad in [
            "",
            ".",
            "a..b",
            ".a",
            "-a.com",
            "a-.com",
            "a b",
            "a/b",
            "a:b",
            "ü.com",
            "127.0.0",
            "1.2.3.256",
            "12345",
            long_label.as_str(),
            long_name.as_str(),
        ] {
            assert!(!is_valid_dns_name(bad), "{bad}");
        }
        assert!(is_valid_dns_name(&"a".repeat(63)));
    }

    #[test]
    fn peer_address_new_checks_dns_syntax() {
        assert_eq!(
            PeerAddress::new(id(), Host::Dns("bad name".into()), 1),
            Err(Error::InvalidHost {
                host: "bad name".into()
            })
        );
        let p = PeerAddress::new(id(), Host::Ip("::ffff:10.0.0.1".parse().unwrap()), 1).unwrap();
        assert_eq!(p.host(), &Host::Ip("10.0.0.1".parse().unwrap()));
        assert_eq!(PeerAddress::from(p.to_net_address().unwrap()), p);
    }

    /// The reference's `TestNetAddressProperties`, with a public IP standing in for `ya.ru`
    /// (tests do no DNS), plus boundary cases.
    #[test]
    fn valid_local_routable() {
        let cases: &[(&str, bool, bool, bool)] = &[
            // ip, valid, local, routable
            ("127.0.0.1", true, true, false),
            ("87.250.250.242", true, false, true),
            ("0.0.0.0", false, true, false),
            ("0.1.2.3", true, true, false),
            ("255.255.255.255", false, false, false),
            ("255.255.255.254", true, false, true),
            ("10.1.2.3", true, false, false),
            ("172.16.0.1", true, false, false),
            ("172.31.255.255", true, false, false),
            ("172.32.0.1", true, false, true),
            ("192.168.1.1", true, false, false),
            ("169.254.1.1", true, false, false),
            ("::", false, false, false),
            ("::1", true, true, false),
            ("::ffff:127.0.0.1", true, true, false),
            ("2001:db8::1", false, false, false),
            ("2001:4860::8888", true, false, true),
            ("fe80::1", true, false, false),
            ("fe80:0:0:1::1", true, false, true), // outside the reference's fe80::/64
            ("fc00::1", true, false, false),
            ("fd87:d87e:eb43::1", true, false, false),
            ("2001:10::1", true, false, false),
            ("2001:20::1", true, false, true),
            ("2002::1", true, false, true),
        ];
        for &(ip, valid, local, routable) in cases {
            let a = ip_addr(ip);
            assert_eq!(a.is_valid(), valid, "valid {ip}");
            assert_eq!(a.validate().is_ok(), valid, "validate {ip}");
            assert_eq!(a.is_local(), local, "local {ip}");
            assert_eq!(a.is_routable(), routable, "routable {ip}");
        }
        assert_eq!(
            ip_addr("2001:db8::1").validate(),
            Err(Error::UnusableIp {
                ip: "2001:db8::1".parse().unwrap(),
                reason: "IPv6 documentation prefix (RFC 3849)"
            })
        );
    }

    #[test]
    fn rfc_ranges() {
        type Pred = fn(&NetAddress) -> bool;
        // name, predicate, an address just inside the range, one just outside it
        #[rustfmt::skip]
        let cases: &[(&str, Pred, &str, &str)] = &[
            ("rfc1918/10", NetAddress::is_rfc1918, "10.255.255.255", "11.0.0.0"),
            ("rfc1918/172", NetAddress::is_rfc1918, "172.16.0.0", "172.15.255.255"),
            ("rfc1918/192", NetAddress::is_rfc1918, "192.168.255.255", "192.169.0.0"),
            ("rfc3849", NetAddress::is_rfc3849, "2001:db8:ffff::", "2001:db9::"),
            ("rfc3927", NetAddress::is_rfc3927, "169.254.0.0", "169.255.0.0"),
            ("rfc3964", NetAddress::is_rfc3964, "2002:ffff::1", "2003::"),
            ("rfc4193", NetAddress::is_rfc4193, "fdff::1", "fe00::"),
            ("rfc4380", NetAddress::is_rfc4380, "2001:0:ffff::1", "2001:1::"),
            ("rfc4843", NetAddress::is_rfc4843, "2001:1f::1", "2001:20::"),
            ("rfc4862", NetAddress::is_rfc4862, "fe80::ffff:1", "fe80:0:0:1::"),
            ("rfc6052", NetAddress::is_rfc6052, "64:ff9b::1.2.3.4", "64:ff9b:0:0:0:1::"),
            ("rfc6145", NetAddress::is_rfc6145, "::ffff:0:1.2.3.4", "::fffe:0:1.2.3.4"),
            ("onioncat", NetAddress::is_onion_cat, "fd87:d87e:eb43:ffff::1", "fd87:d87e:eb44::"),
        ];
        for &(name, pred, inside, outside) in cases {
            assert!(pred(&ip_addr(inside)), "{name}: {inside} should be inside");
            assert!(
                !pred(&ip_addr(outside)),
                "{name}: {outside} should be outside"
            );
        }
        // IPv6 ranges never match IPv4 addresses, including IPv4-mapped ones (as in Go).
        assert!(!ip_addr("::ffff:1.2.3.4").is_rfc6145());
        assert!(!ip_addr("1.2.3.4").is_rfc3849());
    }

    #[test]
    fn same_follows_the_reference() {
        let a = addr(&format!("{ID}@1.2.3.4:80"));
        let other_id = "0000000000000000000000000000000000000001";
        assert!(a.same(&a));
        assert!(a.same(&addr(&format!("{other_id}@1.2.3.4:80"))));
        assert!(a.same(&addr(&format!("{ID}@5.6.7.8:90"))));
        assert!(!a.same(&addr(&format!("{other_id}@1.2.3.4:81"))));
    }

    #[test]
    fn proto_round_trip_and_errors() {
        let a = addr(&format!("{ID}@[2001:4860::1]:26656"));
        let pb = a.to_proto();
        assert_eq!(pb.ip, "2001:4860::1");
        assert_eq!(pb.port, 26656);
        assert_eq!(NetAddress::from_proto(&pb), Ok(a));

        let mut mapped = pb.clone();
        mapped.ip = "::ffff:1.2.3.4".into();
        assert_eq!(
            NetAddress::from_proto(&mapped).unwrap().ip(),
            IpAddr::V4(Ipv4Addr::new(1, 2, 3, 4))
        );

        let mut host = pb.clone();
        host.ip = "example.com".into();
        assert_eq!(
            NetAddress::from_proto(&host),
            Err(Error::InvalidIp {
                ip: "example.com".into()
            })
        );
        let mut port = pb.clone();
        port.port = 65536;
        assert_eq!(
            NetAddress::from_proto(&port),
            Err(Error::PortOutOfRange { port: 65536 })
        );
        let mut bad_id = pb.clone();
        bad_id.id = "xyz".into();
        assert_eq!(
            NetAddress::from_proto(&bad_id),
            Err(Error::NetAddressId {
                id: "xyz".into(),
                source: Box::new(Error::NodeIdNotHex { id: "xyz".into() })
            })
        );
        // IP and port errors win over ID errors: they fail a whole PEX message.
        let mut both = bad_id.clone();
        both.port = 70000;
        assert_eq!(
            NetAddress::from_proto(&both),
            Err(Error::PortOutOfRange { port: 70000 })
        );
        let mut upper = pb;
        upper.id = ID.to_uppercase();
        assert_eq!(NetAddress::from_proto(&upper), Ok(a));
    }

    #[cfg(feature = "serde")]
    #[test]
    fn serde_uses_the_text_form() {
        let a = addr(&format!("{ID}@[2001:4860::1]:26656"));
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(json, format!("\"{ID}@[2001:4860::1]:26656\""));
        assert_eq!(serde_json::from_str::<NetAddress>(&json).unwrap(), a);
        let peer: PeerAddress = format!("{ID}@seed.example.com:1").parse().unwrap();
        let json = serde_json::to_string(&peer).unwrap();
        assert_eq!(serde_json::from_str::<PeerAddress>(&json).unwrap(), peer);
        assert!(serde_json::from_str::<NetAddress>("\"seed.example.com:1\"").is_err());
    }

    fn any_ip() -> impl Strategy<Value = IpAddr> {
        prop_oneof![
            any::<[u8; 4]>().prop_map(IpAddr::from),
            any::<[u8; 16]>().prop_map(IpAddr::from),
            // Bias towards the interesting IPv4-mapped range.
            any::<[u8; 4]>().prop_map(|b| IpAddr::V6(Ipv4Addr::from(b).to_ipv6_mapped())),
        ]
    }

    proptest! {
        #[test]
        fn display_from_str_round_trip(id: [u8; 20], ip in any_ip(), port: u16) {
            let a = NetAddress::new(NodeId::new(id), SocketAddr::new(ip, port));
            let text = a.to_string();
            prop_assert_eq!(text.parse::<NetAddress>(), Ok(a));
            prop_assert_eq!(format!("tcp://{text}").parse::<NetAddress>(), Ok(a));
            let peer = PeerAddress::from(a);
            prop_assert_eq!(peer.to_string(), text.clone());
            prop_assert_eq!(text.parse::<PeerAddress>(), Ok(peer));
            prop_assert_eq!(NetAddress::from_proto(&a.to_proto()), Ok(a));
        }

        #[test]
        fn dns_peer_round_trip(
            id: [u8; 20],
            name in "[a-z0-9_]([a-z0-9_-]{0,20}[a-z0-9_])?(\\.[a-z0-9]{1,10}){0,3}\\.[a-z]{2,6}",
            port: u16,
        ) {
            let peer = PeerAddress::new(NodeId::new(id), Host::Dns(name), port).unwrap();
            prop_assert_eq!(peer.to_string().parse::<PeerAddress>(), Ok(peer));
        }

        #[test]
        fn parse_never_panics(s in "\\PC*") {
            if let Ok(p) = s.parse::<PeerAddress>() {
                prop_assert_eq!(p.to_string().parse::<PeerAddress>(), Ok(p));
            }
            let _ = s.parse::<NetAddress>();
        }

        #[test]
        fn parse_never_panics_near_valid(
            prefix in "(tcp://)?[0-9a-f]{40}@",
            rest in "[\\[\\]:0-9a-f.@/ ]{0,30}",
        ) {
            let s = format!("{prefix}{rest}");
            if let Ok(p) = s.parse::<PeerAddress>() {
                prop_assert_eq!(p.to_string().parse::<PeerAddress>(), Ok(p));
            }
        }

        #[test]
        fn host_port_round_trip(rest in "(tcp://)?[\\[\\]:0-9a-f.x/]{0,24}") {
            if let Ok(hp) = rest.parse::<HostPort>() {
                prop_assert_eq!(hp.to_string().parse::<HostPort>(), Ok(hp.clone()));
                // The same text with an ID in front is a peer address with the same parts.
                let peer: PeerAddress = format!("{ID}@{hp}").parse().unwrap();
                prop_assert_eq!(peer, hp.with_id(id()));
            }
        }
    }

    #[test]
    fn host_port_forms() {
        let ok: &[(&str, &str)] = &[
            ("tcp://0.0.0.0:26656", "0.0.0.0:26656"),
            ("0.0.0.0:26656", "0.0.0.0:26656"),
            ("udp://127.0.0.1:0", "127.0.0.1:0"),
            ("[::1]:26656", "[::1]:26656"),
            ("tcp://[::ffff:1.2.3.4]:1", "1.2.3.4:1"),
            ("localhost:26656", "localhost:26656"),
            ("node-1.example.com:026656", "node-1.example.com:26656"),
        ];
        for &(input, shown) in ok {
            let hp: HostPort = input.parse().unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(hp.to_string(), shown, "{input}");
        }
        let bad: &[(&str, Error)] = &[
            (
                "0.0.0.0",
                Error::MalformedHostPort {
                    addr: "0.0.0.0".into(),
                    reason: "missing port",
                },
            ),
            (
                ":26656",
                Error::EmptyHost {
                    addr: ":26656".into(),
                },
            ),
            (
                "::1:26656",
                Error::MalformedHostPort {
                    addr: "::1:26656".into(),
                    reason: "too many colons",
                },
            ),
            (
                "1.2.3.4:65536",
                Error::InvalidPort {
                    port: "65536".into(),
                },
            ),
            (
                "127.0.0:1",
                Error::InvalidHost {
                    host: "127.0.0".into(),
                },
            ),
        ];
        for (input, err) in bad {
            assert_eq!(input.parse::<HostPort>().as_ref(), Err(err), "{input}");
        }
        let hp: HostPort = "1.2.3.4:5".parse().unwrap();
        assert_eq!(hp.socket_addr(), Some("1.2.3.4:5".parse().unwrap()));
        assert_eq!(HostPort::from(hp.socket_addr().unwrap()), hp);
        assert!(HostPort::new(Host::Dns("bad name".into()), 1).is_err());
    }
}
