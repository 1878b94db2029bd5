//! Reactors: the protocols running over the switch, one set of channels each.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use bytes::Bytes;
use p2p_mconn::ChannelDescriptor;

use crate::error::{ReactorError, StopReason};
use crate::{Peer, SwitchHandle};

pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A message received from a peer, decoded as its reactor's message type.
#[derive(Debug)]
#[non_exhaustive]
pub struct Envelope<M> {
    /// The peer that sent it.
    pub src: Peer,
    /// The channel it came on.
    pub channel: u8,
    /// The message.
    pub message: M,
}

/// A protocol running over the switch (the reference's `Reactor`): it owns channels, learns
/// about peers coming and going, and receives the messages of its channels, decoded.
///
/// Only [`channels`](Self::channels) and [`receive`](Self::receive) are required; every other
/// method has a default that does nothing. A reactor is shared by all peers' tasks (`&self`);
/// keep its state behind locks or atomics, and per-peer state in the peer
/// ([`Peer::insert`](crate::Peer::insert)).
///
/// # Life cycle
///
/// - [`start`](Self::start) when the switch starts (before it accepts or dials), in
///   registration order; an error aborts the start. [`stop`](Self::stop) after every peer is
///   removed when the switch stops.
/// - For each peer: [`init_peer`](Self::init_peer) (before anything else, to attach per-peer
///   data), then [`add_peer`](Self::add_peer) once the peer is in the peer set, then
///   [`receive`](Self::receive) for its messages, then [`remove_peer`](Self::remove_peer)
///   exactly once, with the reason, whatever ends the peer. `remove_peer` never comes before
///   `add_peer` has returned, never overlaps a `receive` of that peer, and a new connection of
///   the same node is not initialised before the old one's `remove_peer` has returned on every
///   reactor.
///
/// # Receiving, backpressure and isolation
///
/// Each channel of each peer has its own task, which takes the next message out of the
/// channel's bounded receive queue, decodes it (once) and awaits `receive`. So messages of one
/// channel of one peer arrive in order, one at a time; a slow `receive` holds up only that
/// channel of that peer. While it is held up, its messages wait in the channel's receive queue
/// (`ChannelDescriptor::recv_queue_capacity` bytes, 1 MiB by default). When that queue is
/// full, the connection stops reading from the peer: TCP backpressure, nothing is dropped, but
/// then every channel of that peer waits. A queue that stays full for the pong timeout (45 s)
/// ends the connection (`p2p_mconn::Error::ReceiverStalled`, blamed on us, not on the peer),
/// so a `receive` stuck that long costs the connection. Other peers are never held up.
///
/// Awaiting in `receive` is how a reactor applies backpressure; to process messages of all
/// peers in one place, forward them into a bounded channel of your own from `receive`.
///
/// # Example
///
/// The whole echo protocol (the message type is any `prost` message):
///
/// ```
/// use p2p_mconn::ChannelDescriptor;
/// use p2p_switch::{Envelope, Reactor};
///
/// #[derive(Clone, PartialEq, prost::Message)]
/// struct Echo {
///     #[prost(string, tag = "1")]
///     text: String,
/// }
///
/// struct EchoReactor;
///
/// impl Reactor for EchoReactor {
///     type Message = Echo;
///
///     fn channels(&self) -> Vec<ChannelDescriptor> {
///         vec![ChannelDescriptor::new(0x70, 1)]
///     }
///
///     async fn receive(&self, e: Envelope<Echo>) {
///         let _ = e.src.send(e.channel, &e.message).await;
///     }
/// }
/// ```
pub trait Reactor: Send + Sync + 'static {
    /// The message type of this reactor's channels. Every message received on them is decoded
    /// as this type; one that does not decode stops the peer ([`StopReason::Decode`]).
    type Message: prost::Message + Default + Send + 'static;

    /// The channels this reactor owns, with their priorities and capacities, asked once when
    /// the reactor is registered. No other reactor of the switch may own one of them.
    fn channels(&self) -> Vec<ChannelDescriptor>;

    /// Handles a message of one of this reactor's channels. Awaiting here holds up that channel
    /// of that peer (see the trait docs). To drop the peer, call
    /// [`Peer::stop_for_error`](crate::Peer::stop_for_error).
    fn receive(&self, envelope: Envelope<Self::Message>) -> impl Future<Output = ()> + Send;

    /// Called when the switch starts, before it accepts or dials, with a handle to it (for
    /// dialing, looking at peers, broadcasting). An error aborts the start.
    fn start(&self, switch: SwitchHandle) -> impl Future<Output = Result<(), ReactorError>> + Send {
        let _ = switch;
        async { Ok(()) }
    }

    /// Called when the switch stops, after all peers are removed.
    fn stop(&self) -> impl Future<Output = ()> + Send {
        async {}
    }

    /// Called for a new peer before it is added and before any of its messages is delivered;
    /// attach per-peer data here ([`Peer::insert`](crate::Peer::insert)).
    fn init_peer(&self, peer: &Peer) {
        let _ = peer;
    }

    /// Called once the peer is in the peer set; its messages for this reactor are delivered
    /// after this returns.
    fn add_peer(&self, peer: &Peer) -> impl Future<Output = ()> + Send {
        let _ = peer;
        async {}
    }

    /// Called exactly once for every peer `add_peer` was called for, after its last
    /// `receive` has returned, with the reason it was stopped.
    fn remove_peer(&self, peer: &Peer, reason: &StopReason) -> impl Future<Output = ()> + Send {
        let _ = (peer, reason);
        async {}
    }

    /// Inspects a message's raw bytes before they are decoded (the reference's
    /// `MsgBytesFilter`); an error drops the message and stops the peer
    /// ([`StopReason::Filtered`]). Default: accept everything.
    fn filter_bytes(&self, channel: u8, peer: &Peer, bytes: &[u8]) -> Result<(), ReactorError> {
        let _ = (channel, peer, bytes);
        Ok(())
    }

    /// The `message_type` label of the byte metrics for `message`. Default: derived from the
    /// type's name, `module_Type` (e.g. `p2p_Message`), as the reference does. A reactor whose
    /// message type wraps a oneof returns the inner variant's name here (e.g. `p2p_PexAddrs`),
    /// which is what the reference reports for its wrapped messages.
    fn message_label(&self, message: &Self::Message) -> &'static str {
        let _ = message;
        type_label::<Self::Message>()
    }
}

/// What the switch needs of a reactor, without its types.
pub(crate) trait DynReactor: Send + Sync {
    fn start(&self, switch: SwitchHandle) -> BoxFuture<'_, Result<(), ReactorError>>;
    fn stop(&self) -> BoxFuture<'_, ()>;
    fn init_peer(&self, peer: &Peer);
    fn add_peer<'a>(&'a self, peer: &'a Peer) -> BoxFuture<'a, ()>;
    fn remove_peer<'a>(&'a self, peer: &'a Peer, reason: &'a StopReason) -> BoxFuture<'a, ()>;
    /// Filters and decodes one message; on success, the `receive` future and the message's
    /// metric label.
    fn deliver(
        &self,
        name: &str,
        channel: u8,
        peer: &Peer,
        bytes: Bytes,
    ) -> Result<(BoxFuture<'_, ()>, &'static str), StopReason>;
    /// The metric label of an outgoing message, if it is of this reactor's message type.
    fn label_of(&self, message: &dyn Any) -> Option<&'static str>;
    /// The label of this reactor's message type, for encoded messages sent on its channels.
    fn type_label(&self) -> &'static str;
    fn as_any(&self) -> Arc<dyn Any + Send + Sync>;
}

pub(crate) struct Erased<R>(pub(crate) Arc<R>);

impl<R: Reactor> DynReactor for Erased<R> {
    fn start(&self, switch: SwitchHandle) -> BoxFuture<'_, Result<(), ReactorError>> {
        Box::pin(self.0.start(switch))
    }

    fn stop(&self) -> BoxFuture<'_, ()> {
        Box::pin(self.0.stop())
    }

    fn init_peer(&self, peer: &Peer) {
        self.0.init_peer(peer);
    }

    fn add_peer<'a>(&'a self, peer: &'a Peer) -> BoxFuture<'a, ()> {
        Box::pin(self.0.add_peer(peer))
    }

    fn remove_peer<'a>(&'a self, peer: &'a Peer, reason: &'a StopReason) -> BoxFuture<'a, ()> {
        Box::pin(self.0.remove_peer(peer, reason))
    }

    fn deliver(
        &self,
        name: &str,
        channel: u8,
        peer: &Peer,
        bytes: Bytes,
    ) -> Result<(BoxFuture<'_, ()>, &'static str), StopReason> {
        self.0
            .filter_bytes(channel, peer, &bytes)
            .map_err(|error| StopReason::Filtered {
                channel,
                reactor: name.to_owned(),
                error,
            })?;
        let message =
            <R::Message as prost::Message>::decode(bytes).map_err(|error| StopReason::Decode {
                channel,
                reactor: name.to_owned(),
                error,
            })?;
        let label = self.0.message_label(&message);
        let envelope = Envelope {
            src: peer.clone(),
            channel,
            message,
        };
        Ok((Box::pin(self.0.receive(envelope)), label))
    }

    fn label_of(&self, message: &dyn Any) -> Option<&'static str> {
        message
            .downcast_ref::<R::Message>()
            .map(|m| self.0.message_label(m))
    }

    fn type_label(&self) -> &'static str {
        type_label::<R::Message>()
    }

    fn as_any(&self) -> Arc<dyn Any + Send + Sync> {
        Arc::clone(&self.0) as Arc<dyn Any + Send + Sync>
    }
}

/// The registered reactors and who owns which channel.
pub(crate) struct Reactors {
    pub(crate) list: Vec<Registered>,
    /// Channel ID → index in `list`.
    pub(crate) by_channel: [Option<u8>; 256],
    /// Every channel, in registration order.
    pub(crate) channels: Vec<ChannelDescriptor>,
}

pub(crate) struct Registered {
    pub(crate) name: String,
    pub(crate) reactor: Box<dyn DynReactor>,
}

impl Reactors {
    pub(crate) fn new() -> Self {
        Self {
            list: Vec::new(),
            by_channel: [None; 256],
            channels: Vec::new(),
        }
    }

    pub(crate) fn owner(&self, channel: u8) -> Option<&Registered> {
        self.by_channel[usize::from(channel)].and_then(|i| self.list.get(usize::from(i)))
    }

    /// The metric label of an outgoing message on `channel`.
    pub(crate) fn label<M: Any>(&self, channel: u8, message: &M) -> &'static str {
        self.owner(channel)
            .and_then(|r| r.reactor.label_of(message))
            .unwrap_or_else(type_label::<M>)
    }

    /// The metric label of already encoded bytes sent on `channel`: the owning reactor's
    /// message type (what the receiving side decodes them as), `raw` on a channel nobody owns.
    pub(crate) fn bytes_label(&self, channel: u8) -> &'static str {
        self.owner(channel)
            .map_or("raw", |r| r.reactor.type_label())
    }
}

/// `module_Type` from a type's path (`p2p_types::proto::p2p::Message` → `p2p_Message`), as the
/// reference labels message types; computed once per type.
pub fn type_label<M: Any>() -> &'static str {
    static CACHE: OnceLock<Mutex<HashMap<TypeId, &'static str>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let mut cache = cache.lock().unwrap_or_else(PoisonError::into_inner);
    cache.entry(TypeId::of::<M>()).or_insert_with(|| {
        let full = std::any::type_name::<M>();
        let path = full.split('<').next().unwrap_or(full);
        let mut segments = path.rsplit("::");
        let label = match (segments.next(), segments.next()) {
            (Some(ty), Some(module)) => format!("{module}_{ty}"),
            (Some(ty), None) => ty.to_owned(),
            _ => full.to_owned(),
        };
        // Bounded by the number of message types in the program.
        Box::leak(label.into_boxed_str())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_like_the_reference() {
        assert_eq!(
            type_label::<p2p_types::proto::p2p::Message>(),
            "p2p_Message"
        );
        assert_eq!(type_label::<u8>(), "u8");
        assert_eq!(type_label::<Vec<u8>>(), "vec_Vec");
    }
}
