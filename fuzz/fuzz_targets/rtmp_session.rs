//! The RTMP input path as a whole: what a peer sends on a fresh connection (handshake C0/C1/C2,
//! then the chunk stream: connect, createStream, publish, metadata, FLV audio and video tags)
//! through rml_rtmp's `Handshake` and `ServerSession`, our answers to its events (app and stream
//! key checks, play refused) and, for a publish with the right key, the FLV tag conversion and a
//! real pipeline with a passthrough variant into the HLS store
//! (`selfcast::ingest::serve_without_io`, src/ingest/session.rs).
//!
//! The input is the byte stream as a socket would deliver it (the corpus holds real publishes
//! recorded at the socket), fed in reads of `READ` bytes. Seeds publish to app `live` with the
//! stream key `key`.
#![no_main]

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use selfcast::config::VariantConfig;
use selfcast::ingest::{serve_without_io, ConnectionLimits, IngestSettings};
use selfcast::pipeline::{Pipeline, StreamStatus};
use selfcast::store::HlsStore;
use selfcast::stream_keys::StreamKeys;

/// Bytes per simulated socket read: small enough that messages straddle reads.
const READ: usize = 1500;

/// The key the recorded seeds publish with, as `[rtmp] stream_key` (no file is read or written
/// for it after the first call).
fn stream_keys() -> Arc<StreamKeys> {
    static KEYS: OnceLock<Arc<StreamKeys>> = OnceLock::new();
    let keys = KEYS.get_or_init(|| {
        let nowhere = std::path::Path::new("/nonexistent/selfcast-fuzz");
        Arc::new(StreamKeys::load(nowhere, Some("key".into())).expect("a configured key").0)
    });
    Arc::clone(keys)
}

fuzz_target!(|data: &[u8]| {
    let store = Arc::new(HlsStore::new(6, 2));
    let source = VariantConfig {
        name: "source".into(),
        passthrough: true,
        ..VariantConfig::default()
    };
    let pipeline = Arc::new(Pipeline::new(
        store,
        Arc::new(StreamStatus::default()),
        2,
        &[source],
    ));
    let settings = IngestSettings {
        app: "live".into(),
        stream_keys: stream_keys(),
        // Connection slots are the accept loop's; a connection in memory holds none.
        limits: ConnectionLimits {
            max_connections: 32,
            max_per_address: 4,
        },
    };
    let peer = SocketAddr::from((Ipv4Addr::LOCALHOST, 40000));
    serve_without_io(peer, settings, Arc::clone(&pipeline), data.chunks(READ));
    // Waits for the session thread: every input is done with when the next one starts.
    pipeline.shutdown();
});
