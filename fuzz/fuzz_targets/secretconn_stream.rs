//! The receive path of an established secret connection, through both IO adapters: a peer's
//! frames (honest, forged, malformed, replayed, out of order, interleaved with garbage, cut
//! anywhere) arrive in arbitrary pieces, with `Pending`/`Interrupted` anywhere, and are read
//! into buffers of arbitrary sizes.
//!
//! Properties: no panic; the adapter never reads into a full buffer (`Stalled`) nor returns
//! `Pending` on its own (`Hung`); the data read is exactly the data of the frames that
//! authenticate, in order, up to the first one that does not; the stream then ends the way the
//! model says (clean end only on a frame boundary, `Crypto`, `FrameLength`, or
//! `UnexpectedEof`), and a failed stream keeps failing.

#![no_main]

mod common;

use common::scripted::{self, Driver, Script};
use common::{Frame, Wire, backend, buffer_frames, check_stream};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use p2p_secretconn::Config;
use p2p_secretconn::fuzzing;

#[derive(Arbitrary, Debug)]
struct Input {
    tokio: bool,
    /// The peer seals with ring, we open with ring (each independently).
    seal_ring: bool,
    open_ring: bool,
    key: u8,
    buffer_frames: u8,
    frames: Vec<Frame>,
    /// Where the wire is cut (modulo its length plus one).
    cut: Option<u32>,
    reads: Vec<u8>,
    outs: Vec<u8>,
}

fuzz_target!(|input: Input| {
    let key = [input.key; 32];
    let mut sealer = fuzzing::sealer(backend(input.seal_ring), &key).expect("sealer");
    let opener = fuzzing::opener(backend(input.open_ring), &key).expect("opener");
    let mut wire = Wire::default();
    for frame in &input.frames {
        wire.push(&mut sealer, frame);
    }
    let end = match input.cut {
        Some(cut) => cut as usize % (wire.bytes.len() + 1),
        None => wire.bytes.len(),
    };

    let mut config = Config::default();
    config.backend(backend(input.open_ring));
    if let Some(frames) = buffer_frames(input.buffer_frames) {
        config.read_buffer_frames(frames);
    }
    let driver = if input.tokio {
        Driver::Tokio
    } else {
        Driver::Blocking
    };
    let script = Script {
        reads: &input.reads,
        writes: &[],
        outs: &input.outs,
    };
    let out = scripted::stream(driver, opener, &config, &wire.bytes[..end], &script);

    let (frames, stop) = wire.model(0, end);
    check_stream(&out, &frames.concat(), stop);
    assert!(out.written.is_empty(), "reading wrote to the transport");
});
