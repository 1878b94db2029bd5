//! Network groups: which addresses count as "the same network" for bucket placement.
//!
//! An attacker usually controls addresses in few networks, so the book limits how many buckets
//! the addresses of one group, and the addresses learned from one group, can reach. The groups
//! are those of the reference (inherited from bitcoind): the /16 of an IPv4 address (also when
//! tunnelled in IPv6 by NAT64, 6to4 or Teredo), the /32 of other IPv6 addresses (/36 inside
//! Hurricane Electric's 2001:470::/32), 16 groups for Tor's OnionCat range, and, in strict
//! mode, one group `"local"` and one group `"unroutable"`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use p2p_types::NetAddress;

/// Hurricane Electric's IPv6 range, grouped by /36 instead of /32.
const HE_NET: Ipv6Addr = Ipv6Addr::new(0x2001, 0x0470, 0, 0, 0, 0, 0, 0);

/// The group key of `addr`, as text, exactly as the reference's `groupKeyFor` prints it.
///
/// With `strict`, local addresses (loopback, `0.0.0.0/8`) all fall in `"local"` and other
/// non-routable ones in `"unroutable"`; without it they are grouped by their IP like any
/// other.
///
/// ```
/// use p2p_pex::group_key;
///
/// let addr = "0123456789abcdef0123456789abcdef01234567@12.1.2.3:26656".parse().unwrap();
/// assert_eq!(group_key(&addr, true), "12.1.0.0");
/// let local = "0123456789abcdef0123456789abcdef01234567@127.0.0.1:26656".parse().unwrap();
/// assert_eq!(group_key(&local, true), "local");
/// ```
pub fn group_key(addr: &NetAddress, strict: bool) -> String {
    if strict && addr.is_local() {
        return "local".to_owned();
    }
    if strict && !addr.is_routable() {
        return "unroutable".to_owned();
    }
    let v6 = match addr.ip() {
        // `NetAddress` keeps IPv4-mapped IPv6 as IPv4.
        IpAddr::V4(v4) => return slash16(v4.octets()),
        IpAddr::V6(v6) => v6,
    };
    let b = v6.octets();
    if addr.is_rfc6145() || addr.is_rfc6052() {
        // The IPv4 address is the last four bytes.
        return slash16([b[12], b[13], b[14], b[15]]);
    }
    if addr.is_rfc3964() {
        // 6to4: the IPv4 address follows the 2002::/16 prefix.
        return slash16([b[2], b[3], b[4], b[5]]);
    }
    if addr.is_rfc4380() {
        // Teredo: the last four bytes are the client's IPv4 address, inverted.
        return slash16([b[12] ^ 0xff, b[13] ^ 0xff, b[14] ^ 0xff, b[15] ^ 0xff]);
    }
    if addr.is_onion_cat() {
        // Keyed by the first four bits of the onion key.
        return format!("tor:{}", b[6] & 0x0f);
    }
    let he_net = u128::from(HE_NET) & mask(32) == u128::from(v6) & mask(32);
    let bits = if he_net { 36 } else { 32 };
    Ipv6Addr::from(u128::from(v6) & mask(bits)).to_string()
}

/// `a.b.0.0`.
fn slash16(v4: [u8; 4]) -> String {
    Ipv4Addr::new(v4[0], v4[1], 0, 0).to_string()
}

/// The IPv6 network mask of `bits` leading ones (`bits` ≤ 128).
fn mask(bits: u32) -> u128 {
    u128::MAX.checked_shl(128 - bits).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use p2p_types::NodeId;

    use super::*;

    fn addr(ip: &str) -> NetAddress {
        let ip: IpAddr = ip.parse().unwrap();
        NetAddress::new(NodeId::new([1; 20]), SocketAddr::new(ip, 26656))
    }

    /// The reference's `TestAddrBookGroupKey`, both tables.
    #[test]
    fn group_keys_match_the_reference_table() {
        let loose = [
            ("12.1.2.3", "12.1.0.0"),
            ("173.1.2.3", "173.1.0.0"),
            ("196.1.2.3", "196.1.0.0"),
            ("2002:0c01:0203::", "12.1.0.0"),
            ("2001:0:1234::f3fe:fdfc", "12.1.0.0"),
            ("64:ff9b::0c01:0203", "12.1.0.0"),
            ("::ffff:0:0c01:0203", "12.1.0.0"),
            ("fd87:d87e:eb43:1234::5678", "tor:2"),
            ("fd87:d87e:eb43:1245::6789", "tor:2"),
            ("fd87:d87e:eb43:1345::6789", "tor:3"),
            ("2602:100::1", "2602:100::"),
            ("2602:0100::1234", "2602:100::"),
            ("2001:470:1f10:a1::2", "2001:470:1000::"),
            ("2001:0470:1f10:a1::2", "2001:470:1000::"),
        ];
        for (ip, want) in loose {
            assert_eq!(group_key(&addr(ip), false), want, "{ip} (not strict)");
        }
        let strict = [
            ("127.0.0.1", "local"),
            ("::1", "local"),
            ("0.0.0.0", "local"),
            ("0.1.2.3", "local"),
            ("255.255.255.255", "unroutable"),
            ("10.1.2.3", "unroutable"),
            ("172.16.1.2", "unroutable"),
            ("192.168.1.2", "unroutable"),
            ("2001:db8::1234", "unroutable"),
            ("169.254.1.2", "unroutable"),
            ("fc00::1234", "unroutable"),
            ("2001:10::1234", "unroutable"),
            ("fe80::1234", "unroutable"),
        ];
        for (ip, want) in strict {
            assert_eq!(group_key(&addr(ip), true), want, "{ip} (strict)");
        }
    }

    #[test]
    fn without_strictness_private_addresses_are_grouped_by_ip() {
        assert_eq!(group_key(&addr("10.1.2.3"), false), "10.1.0.0");
        assert_eq!(group_key(&addr("127.0.0.1"), false), "127.0.0.0");
        assert_eq!(group_key(&addr("::ffff:1.2.3.4"), true), "1.2.0.0");
    }
}
