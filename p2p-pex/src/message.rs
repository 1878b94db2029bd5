//! The two PEX messages, as they travel on channel 0x00.
//!
//! Both are wrapped in the protobuf `Message` (`oneof sum { PexRequest pex_request = 1;
//! PexAddrs pex_addrs = 2; }`); `PexAddrs` carries `repeated NetAddress addrs = 1` with the
//! ID as hex text, the IP as text and the port as a number. A request is the two bytes
//! `0a 00`.

use p2p_types::proto::p2p::{Message, PexAddrs, PexRequest, message};
use p2p_types::{NetAddress, NodeId};
use prost::Message as _;

use crate::Error;
use crate::params::{MAX_GET_SELECTION, MAX_MSG_SIZE};

/// A PEX message to send.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PexMessage {
    /// "Send me addresses."
    Request,
    /// The answer.
    Addrs(Vec<NetAddress>),
}

impl PexMessage {
    /// The protobuf form.
    pub fn to_proto(&self) -> Message {
        let sum = match self {
            Self::Request => message::Sum::PexRequest(PexRequest {}),
            Self::Addrs(addrs) => message::Sum::PexAddrs(PexAddrs {
                addrs: addrs.iter().map(NetAddress::to_proto).collect(),
            }),
        };
        Message { sum: Some(sum) }
    }

    /// The bytes to send on the PEX channel.
    ///
    /// ```
    /// use p2p_pex::PexMessage;
    ///
    /// assert_eq!(PexMessage::Request.encode(), [0x0a, 0x00]);
    /// assert_eq!(PexMessage::Addrs(vec![]).encode(), [0x12, 0x00]);
    /// ```
    pub fn encode(&self) -> Vec<u8> {
        self.to_proto().encode_to_vec()
    }
}

/// A PEX message received, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Received {
    /// A request for addresses.
    Request,
    /// Addresses.
    Addrs {
        /// The usable addresses.
        addrs: Vec<NetAddress>,
        /// How many entries were skipped for an invalid node ID (the reference keeps those and
        /// lets its address book refuse them, so they do not fail the message).
        skipped: usize,
    },
    /// A message of a kind this version does not know (the reference only logs these).
    Unknown,
}

/// Decodes a message `peer` sent on the PEX channel.
///
/// Fails with [`Error::MessageTooLarge`] above [`MAX_MSG_SIZE`] bytes,
/// [`Error::MalformedMessage`] if it is not a protobuf `Message`, [`Error::TooManyAddrs`] if
/// it carries more than [`MAX_GET_SELECTION`] addresses (no honest node sends more), and
/// [`Error::InvalidAddrs`] if an address has an unparsable IP or a port above 65535 (as in the
/// reference, one such address fails the whole message).
pub fn decode(peer: &NodeId, bytes: &[u8]) -> Result<Received, Error> {
    if bytes.len() > MAX_MSG_SIZE {
        return Err(Error::MessageTooLarge {
            peer: *peer,
            len: bytes.len(),
            max: MAX_MSG_SIZE,
        });
    }
    let msg = Message::decode(bytes).map_err(|e| Error::MalformedMessage {
        peer: *peer,
        reason: e.to_string(),
    })?;
    let addrs = match msg.sum {
        None => return Ok(Received::Unknown),
        Some(message::Sum::PexRequest(PexRequest {})) => return Ok(Received::Request),
        Some(message::Sum::PexAddrs(addrs)) => addrs.addrs,
    };
    if addrs.len() > MAX_GET_SELECTION {
        return Err(Error::TooManyAddrs {
            peer: *peer,
            count: addrs.len(),
            max: MAX_GET_SELECTION,
        });
    }
    let mut out = Vec::with_capacity(addrs.len());
    let mut skipped = 0;
    for pb in &addrs {
        match NetAddress::from_proto(pb) {
            Ok(addr) => out.push(addr),
            Err(p2p_types::Error::NetAddressId { .. }) => skipped += 1,
            Err(e) => {
                return Err(Error::InvalidAddrs {
                    peer: *peer,
                    reason: e.to_string(),
                });
            }
        }
    }
    Ok(Received::Addrs {
        addrs: out,
        skipped,
    })
}

#[cfg(test)]
mod tests {
    use p2p_types::proto::p2p::NetAddress as PbAddress;

    use super::*;

    fn peer() -> NodeId {
        NodeId::new([7; 20])
    }

    /// The reference's `TestPexVectors`.
    #[test]
    fn reference_vectors() {
        assert_eq!(hex::encode(PexMessage::Request.encode()), "0a00");
        // The reference's vector uses the (invalid) ID "1", so it is built from the raw type.
        let addrs = Message {
            sum: Some(message::Sum::PexAddrs(PexAddrs {
                addrs: vec![PbAddress {
                    id: "1".into(),
                    ip: "127.0.0.1".into(),
                    port: 9090,
                }],
            })),
        };
        let bytes = addrs.encode_to_vec();
        assert_eq!(
            hex::encode(&bytes),
            "12130a110a013112093132372e302e302e31188247"
        );
        // Received: the entry is skipped for its ID, the message is not refused.
        assert_eq!(
            decode(&peer(), &bytes).unwrap(),
            Received::Addrs {
                addrs: vec![],
                skipped: 1
            }
        );
    }

    #[test]
    fn addresses_round_trip() {
        let a: NetAddress = "0123456789abcdef0123456789abcdef01234567@1.2.3.4:26656"
            .parse()
            .unwrap();
        let b: NetAddress = "76543210fedcba9876543210fedcba9876543210@[2001:470::1]:1"
            .parse()
            .unwrap();
        let bytes = PexMessage::Addrs(vec![a, b]).encode();
        assert_eq!(
            decode(&peer(), &bytes).unwrap(),
            Received::Addrs {
                addrs: vec![a, b],
                skipped: 0
            }
        );
        assert_eq!(decode(&peer(), &[0x0a, 0x00]).unwrap(), Received::Request);
        assert_eq!(decode(&peer(), &[]).unwrap(), Received::Unknown);
    }

    #[test]
    fn refusals() {
        let bad = |ip: &str, port: u32| {
            Message {
                sum: Some(message::Sum::PexAddrs(PexAddrs {
                    addrs: vec![PbAddress {
                        id: "0123456789abcdef0123456789abcdef01234567".into(),
                        ip: ip.into(),
                        port,
                    }],
                })),
            }
            .encode_to_vec()
        };
        assert!(matches!(
            decode(&peer(), &bad("1.2.3", 1)),
            Err(Error::InvalidAddrs { .. })
        ));
        assert!(matches!(
            decode(&peer(), &bad("1.2.3.4", 70_000)),
            Err(Error::InvalidAddrs { .. })
        ));
        assert!(matches!(
            decode(&peer(), &[0xff, 0xff]),
            Err(Error::MalformedMessage { .. })
        ));
        assert!(matches!(
            decode(&peer(), &vec![0; MAX_MSG_SIZE + 1]),
            Err(Error::MessageTooLarge { .. })
        ));
        let a: NetAddress = "0123456789abcdef0123456789abcdef01234567@1.2.3.4:26656"
            .parse()
            .unwrap();
        let full = PexMessage::Addrs(vec![a; MAX_GET_SELECTION]).encode();
        assert!(matches!(decode(&peer(), &full), Ok(Received::Addrs { .. })));
        let over = PexMessage::Addrs(vec![a; MAX_GET_SELECTION + 1]).encode();
        assert!(over.len() <= MAX_MSG_SIZE);
        assert!(matches!(
            decode(&peer(), &over),
            Err(Error::TooManyAddrs { count: 251, .. })
        ));
    }
}
