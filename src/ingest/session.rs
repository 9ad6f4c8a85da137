//! One RTMP connection after the handshake, without I/O: feeds received bytes to rml_rtmp's
//! `ServerSession`, answers its events (which app, which stream key, play requests) and owns the
//! [`Publisher`] while the peer is publishing.
//!
//! rml_rtmp contract (see its `ServerSession` docs): every byte after the handshake goes into
//! `handle_input`, and every outbound packet — from `handle_input`, `accept_request` and
//! `reject_request` alike — is sent in the order it was produced, because RTMP chunk headers are
//! compressed against the previous chunk on the same chunk stream. [`RtmpSession::handle_input`]
//! therefore appends the packets of a batch first and then those its event handling produces.
//!
//! [`serve_without_io`] runs the handshake and this session over bytes in memory, as
//! `connection.rs` does over a socket (minus its timeouts and byte caps): the entry point of the
//! RTMP fuzz target (`fuzz/fuzz_targets/rtmp_session.rs`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use rml_rtmp::chunk_io::ChunkSerializer;
use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use rml_rtmp::messages::RtmpMessage;
use rml_rtmp::rml_amf0::Amf0Value;
use rml_rtmp::sessions::{
    ServerSession, ServerSessionConfig, ServerSessionError, ServerSessionEvent, ServerSessionResult,
};
use rml_rtmp::time::RtmpTimestamp;
use tracing::{debug, error, info, trace, warn};

use super::auth::{app_matches, describe_app};
use super::publish::{describe_metadata, metadata_codec_warning, TagConverter};
use super::{IngestContext, IngestSettings, PeerLine};
use crate::pipeline::{Pipeline, PublishRefused, Publisher};

/// Whether the connection should go on after a batch of input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Flow {
    Continue,
    /// Send what was produced, then close: the peer was refused or the stream cannot go on.
    Close,
}

/// A live publish on this connection. Dropping it ends the pipeline session (the `Publisher`
/// goes with it) and logs the end, whatever the cause: the peer's `deleteStream`, a closed
/// socket, a timeout, a server shutdown or a panic.
struct ActivePublish {
    publisher: Publisher,
    converter: TagConverter,
    started: Instant,
    bytes_at_start: u64,
    bytes_now: u64,
    end_reason: &'static str,
}

impl Drop for ActivePublish {
    fn drop(&mut self) {
        let stats = &self.converter.stats;
        let bytes = self.bytes_now.saturating_sub(self.bytes_at_start);
        info!(
            duration_s = self.started.elapsed().as_secs(),
            bytes_received = bytes,
            video_frames = stats.video_frames,
            audio_frames = stats.audio_frames,
            skipped_tags = stats.skipped,
            "publish ended ({}): {} received in {}",
            self.end_reason,
            human_bytes(bytes),
            human_duration(self.started.elapsed().as_secs()),
        );
        if stats.skipped > 0 {
            info!(
                "skipped during this publish: {}",
                self.converter.skipped_summary()
            );
        }
    }
}

/// The protocol side of one connection.
pub(super) struct RtmpSession {
    session: ServerSession,
    peer: SocketAddr,
    context: Arc<IngestContext>,
    publishing: Option<ActivePublish>,
    /// Bytes received since the handshake.
    bytes_in: u64,
    /// The outbound chunk size the session announced to the peer.
    chunk_size: u32,
}

impl RtmpSession {
    /// Start the session; returns the bytes rml_rtmp wants sent first (chunk size, window
    /// acknowledgement size, peer bandwidth, stream begin, onBWDone).
    pub(super) fn new(
        peer: SocketAddr,
        context: Arc<IngestContext>,
    ) -> Result<(Self, Vec<u8>), ServerSessionError> {
        let config = ServerSessionConfig::new();
        let chunk_size = config.chunk_size;
        let (session, results) = ServerSession::new(config)?;
        let mut session = RtmpSession {
            session,
            peer,
            context,
            publishing: None,
            bytes_in: 0,
            chunk_size,
        };
        let mut out = Vec::new();
        // Only outbound packets here; there is no event before the peer speaks.
        session.collect(results, &mut out)?;
        Ok((session, out))
    }

    pub(super) fn is_publishing(&self) -> bool {
        self.publishing.is_some()
    }

    /// While publishing: set when the admin disconnects the publisher.
    pub(super) fn disconnect_requested(&self) -> Option<tokio::sync::watch::Receiver<bool>> {
        self.publishing
            .as_ref()
            .map(|publish| publish.publisher.disconnect_requested())
    }

    /// Feed bytes received from the peer; append the bytes to send back to `out`.
    pub(super) fn handle_input(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<Flow, ServerSessionError> {
        self.bytes_in += input.len() as u64;
        if let Some(publish) = &mut self.publishing {
            publish.bytes_now = self.bytes_in;
        }
        let results = self.session.handle_input(input)?;
        self.collect(results, out)
    }

    /// Why the publish (if any) ends when the connection ends for another reason than the
    /// peer's own `deleteStream`.
    pub(super) fn set_end_reason(&mut self, reason: &'static str) {
        if let Some(publish) = &mut self.publishing {
            publish.end_reason = reason;
        }
    }

    /// Packets first (they were serialized before anything the events produce), then events.
    fn collect(
        &mut self,
        results: Vec<ServerSessionResult>,
        out: &mut Vec<u8>,
    ) -> Result<Flow, ServerSessionError> {
        let mut events = Vec::new();
        for result in results {
            match result {
                ServerSessionResult::OutboundResponse(packet) => {
                    out.extend_from_slice(&packet.bytes)
                }
                ServerSessionResult::RaisedEvent(event) => events.push(event),
                ServerSessionResult::UnhandleableMessageReceived(payload) => {
                    debug!(
                        type_id = payload.type_id,
                        "ignoring RTMP message rml_rtmp does not handle"
                    );
                }
            }
        }
        for event in events {
            if self.handle_event(event, out)? == Flow::Close {
                return Ok(Flow::Close);
            }
        }
        Ok(Flow::Continue)
    }

    fn handle_event(
        &mut self,
        event: ServerSessionEvent,
        out: &mut Vec<u8>,
    ) -> Result<Flow, ServerSessionError> {
        match event {
            ServerSessionEvent::ConnectionRequested {
                request_id,
                app_name,
            } => self.connection_requested(request_id, &app_name, out),
            ServerSessionEvent::PublishStreamRequested {
                request_id,
                stream_key,
                ..
            } => self.publish_requested(request_id, &stream_key, out),
            ServerSessionEvent::PublishStreamFinished { .. } => {
                if let Some(mut publish) = self.publishing.take() {
                    publish.end_reason = "the publisher stopped";
                }
                Ok(Flow::Continue)
            }
            ServerSessionEvent::PlayStreamRequested { request_id, .. } => {
                if let Some(suppressed) = self
                    .context
                    .log_allowed(self.peer.ip(), PeerLine::PlayRefused)
                {
                    info!(
                        suppressed,
                        "play request refused: no RTMP playback here (viewers watch over HLS)"
                    );
                }
                self.reject(
                    request_id,
                    "NetStream.Play.Failed",
                    "RTMP playback is not supported by this server: \
                     watch the stream on its web page (HLS)",
                    out,
                )?;
                Ok(Flow::Close)
            }
            ServerSessionEvent::StreamMetadataChanged { metadata, .. } => {
                info!("stream metadata: {}", describe_metadata(&metadata));
                if let Some(warning) = metadata_codec_warning(&metadata) {
                    warn!("{warning}");
                }
                Ok(Flow::Continue)
            }
            ServerSessionEvent::VideoDataReceived {
                data, timestamp, ..
            } => {
                let Some(publish) = &mut self.publishing else {
                    return Ok(Flow::Continue);
                };
                match publish.converter.video(timestamp.value, &data) {
                    Ok(Some(event)) => publish.publisher.send(event),
                    Ok(None) => {}
                    Err(fatal) => {
                        error!("ending the publish: {fatal}");
                        publish.end_reason = "unsupported video";
                        self.publishing = None;
                        self.publish_failed_status(&fatal.to_string(), out);
                        return Ok(Flow::Close);
                    }
                }
                Ok(Flow::Continue)
            }
            ServerSessionEvent::AudioDataReceived {
                data, timestamp, ..
            } => {
                if let Some(publish) = &mut self.publishing {
                    for event in publish.converter.audio(timestamp.value, &data) {
                        publish.publisher.send(event);
                    }
                }
                Ok(Flow::Continue)
            }
            ServerSessionEvent::UnhandleableAmf0Command { command_name, .. } => {
                // releaseStream, FCPublish, FCUnpublish, getStreamLength...: no answer needed.
                let command: String = command_name.chars().take(40).collect();
                debug!(command, "ignoring RTMP command");
                Ok(Flow::Continue)
            }
            other => {
                trace!(event = ?other, "RTMP event");
                Ok(Flow::Continue)
            }
        }
    }

    fn connection_requested(
        &mut self,
        request_id: u32,
        app: &str,
        out: &mut Vec<u8>,
    ) -> Result<Flow, ServerSessionError> {
        let settings = &self.context.settings;
        if app_matches(app, &settings.app) {
            debug!(app, "RTMP connect accepted");
            self.accept(request_id, out)?;
            return Ok(Flow::Continue);
        }
        let shown = describe_app(app, &settings.stream_keys);
        let hint = if shown.contains("<stream key>") {
            " (the stream key belongs in the stream key field, not in the server URL)"
        } else {
            ""
        };
        if let Some(suppressed) = self
            .context
            .log_allowed(self.peer.ip(), PeerLine::UnknownApp)
        {
            warn!(
                suppressed,
                "unknown app {shown:?}, expected {:?}: connection refused{hint}", settings.app
            );
        }
        let description = format!(
            "unknown app: publish to rtmp://<this server>/{}/<stream key>",
            settings.app.trim_matches('/')
        );
        self.reject(
            request_id,
            "NetConnection.Connect.Rejected",
            &description,
            out,
        )?;
        Ok(Flow::Close)
    }

    fn publish_requested(
        &mut self,
        request_id: u32,
        stream_key: &str,
        out: &mut Vec<u8>,
    ) -> Result<Flow, ServerSessionError> {
        if self.publishing.is_some() {
            warn!("second publish on the same connection refused");
            self.reject(
                request_id,
                "NetStream.Publish.BadName",
                "this connection is already publishing",
                out,
            )?;
            return Ok(Flow::Continue);
        }
        let keys = &self.context.settings.stream_keys;
        if keys.is_empty() {
            error!("publish refused: there is no stream key (add one in the console, /admin)");
            self.reject(
                request_id,
                "NetStream.Publish.BadName",
                "publishing is disabled on this server",
                out,
            )?;
            return Ok(Flow::Close);
        }
        // Before the key is compared: an address that guessed wrong too often waits, even
        // with the right key.
        let (guard, from) = (&self.context.stream_key_guard, self.peer.ip());
        if let Err(refused) = guard.check(from, Instant::now()) {
            let retry_after_s = refused.retry_after_secs();
            if let Some(suppressed) = self.context.log_allowed(from, PeerLine::TooManyWrongKeys) {
                warn!(
                    retry_after_s,
                    suppressed, "publish refused: too many wrong stream keys"
                );
            }
            self.reject(
                request_id,
                "NetStream.Publish.BadName",
                &format!(
                    "too many wrong stream keys from this address, try again in {retry_after_s} s"
                ),
                out,
            )?;
            return Ok(Flow::Close);
        }
        let Some(key_id) = keys.find(stream_key) else {
            // The same wrong key again (an encoder reconnecting by itself) counts once.
            let next_attempt_s = guard
                .failed_guess(from, stream_key, Instant::now())
                .map(|r| r.retry_after_secs());
            // Never the key itself, not even a wrong one: it may be a near miss.
            if let Some(suppressed) = self.context.log_allowed(from, PeerLine::WrongKey) {
                warn!(
                    key_length = stream_key.len(),
                    next_attempt_s, suppressed, "publish refused: wrong stream key"
                );
            }
            self.reject(
                request_id,
                "NetStream.Publish.BadName",
                "publish refused: wrong stream key",
                out,
            )?;
            return Ok(Flow::Close);
        };
        guard.succeeded(from);
        let publisher = match self.context.pipeline.begin_publish(self.peer, &key_id) {
            Ok(publisher) => publisher,
            Err(PublishRefused::AlreadyLive(live)) => {
                warn!(
                    live_publisher = %live,
                    "publish refused: a stream is already live (the live stream is left alone)"
                );
                self.reject(
                    request_id,
                    "NetStream.Publish.BadName",
                    "a stream is already live on this server: stop it before publishing again",
                    out,
                )?;
                return Ok(Flow::Close);
            }
            Err(refused) => {
                warn!("publish refused: {refused}");
                self.reject(
                    request_id,
                    "NetStream.Publish.BadName",
                    &format!("publish refused: {refused}"),
                    out,
                )?;
                return Ok(Flow::Close);
            }
        };
        // If accepting fails the publisher is dropped here and the session ends at once.
        self.accept(request_id, out)?;
        info!("publish started");
        self.publishing = Some(ActivePublish {
            publisher,
            converter: TagConverter::default(),
            started: Instant::now(),
            bytes_at_start: self.bytes_in,
            bytes_now: self.bytes_in,
            end_reason: "connection closed",
        });
        Ok(Flow::Continue)
    }

    fn accept(&mut self, request_id: u32, out: &mut Vec<u8>) -> Result<(), ServerSessionError> {
        let results = self.session.accept_request(request_id)?;
        self.outbound_only(results, out);
        Ok(())
    }

    /// Answer a request with an `_error` whose `description` the client shows (ffmpeg prints
    /// "Server error: <description>").
    fn reject(
        &mut self,
        request_id: u32,
        code: &str,
        description: &str,
        out: &mut Vec<u8>,
    ) -> Result<(), ServerSessionError> {
        let results = self.session.reject_request(request_id, code, description)?;
        self.outbound_only(results, out);
        Ok(())
    }

    /// Tell a publisher whose publish was already accepted why it is being ended: an
    /// `onStatus` with level `error` (ffmpeg prints "Server error: <description>"; OBS closes).
    ///
    /// rml_rtmp can only answer requests, so this message is serialized by a fresh chunk
    /// serializer, with a type 0 (uncompressed) chunk header that the peer decodes whatever came
    /// before on that chunk stream, and with the chunk size the session announced. The
    /// connection closes right after: the session's own serializer never sends a compressed
    /// header relative to a message it did not write. Stream id 1 is the first (and for
    /// encoders the only) stream rml_rtmp creates; clients do not check it for `onStatus`.
    fn publish_failed_status(&self, description: &str, out: &mut Vec<u8>) {
        let mut serializer = ChunkSerializer::new();
        // The SetChunkSize packet this returns was already sent by the session: discard it.
        if serializer
            .set_max_chunk_size(self.chunk_size, RtmpTimestamp::new(0))
            .is_err()
        {
            return;
        }
        let status = HashMap::from([
            ("level".to_string(), Amf0Value::Utf8String("error".into())),
            (
                "code".to_string(),
                Amf0Value::Utf8String("NetStream.Failed".into()),
            ),
            (
                "description".to_string(),
                Amf0Value::Utf8String(description.into()),
            ),
        ]);
        let message = RtmpMessage::Amf0Command {
            command_name: "onStatus".into(),
            transaction_id: 0.0,
            command_object: Amf0Value::Null,
            additional_arguments: vec![Amf0Value::Object(status)],
        };
        let packet = message
            .into_message_payload(RtmpTimestamp::new(0), 1)
            .ok()
            .and_then(|payload| serializer.serialize(&payload, true, false).ok());
        match packet {
            Some(packet) => out.extend_from_slice(&packet.bytes),
            None => debug!("could not serialize the onStatus error"),
        }
    }

    /// `accept_request`/`reject_request` only ever produce packets.
    fn outbound_only(&self, results: Vec<ServerSessionResult>, out: &mut Vec<u8>) {
        for result in results {
            match result {
                ServerSessionResult::OutboundResponse(packet) => {
                    out.extend_from_slice(&packet.bytes)
                }
                other => debug!(result = ?other, "unexpected result from accept/reject"),
            }
        }
    }
}

/// The server side of one RTMP connection over bytes in memory: `reads` are what the peer sent,
/// one item per socket read; returns everything the server wrote back. The handshake, then
/// [`RtmpSession`] with the real `settings` checks and a real `pipeline` (a publish with the
/// right key is accepted and its tags reach it), stopping where the connection would close: a
/// handshake or protocol error, or a refusal. No timeouts, and none of the connection's byte
/// caps: the caller bounds the input.
#[doc(hidden)]
pub fn serve_without_io<'a>(
    peer: SocketAddr,
    settings: IngestSettings,
    pipeline: Arc<Pipeline>,
    reads: impl IntoIterator<Item = &'a [u8]>,
) -> Vec<u8> {
    let mut written = Vec::new();
    let mut reads = reads.into_iter();
    let mut handshake = Handshake::new(PeerType::Server);
    let leftover = loop {
        let Some(read) = reads.next() else {
            return written;
        };
        match handshake.process_bytes(read) {
            Ok(HandshakeProcessResult::InProgress { response_bytes }) => {
                written.extend_from_slice(&response_bytes);
            }
            Ok(HandshakeProcessResult::Completed {
                response_bytes,
                remaining_bytes,
            }) => {
                written.extend_from_slice(&response_bytes);
                break remaining_bytes;
            }
            Err(_) => return written,
        }
    };
    let context = Arc::new(IngestContext::new(settings, pipeline));
    let Ok((mut session, greeting)) = RtmpSession::new(peer, context) else {
        return written;
    };
    written.extend_from_slice(&greeting);
    // Whether the connection stays open after this read (an empty one is not fed).
    let mut goes_on = |read: &[u8]| {
        read.is_empty() || matches!(session.handle_input(read, &mut written), Ok(Flow::Continue))
    };
    if goes_on(&leftover) {
        for read in reads {
            if !goes_on(read) {
                break;
            }
        }
    }
    written
}

fn human_bytes(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 => format!("{:.2} GiB", b as f64 / f64::from(1u32 << 30)),
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / f64::from(1u32 << 20)),
        b if b >= 1 << 10 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{b} bytes"),
    }
}

fn human_duration(seconds: u64) -> String {
    let (h, m, s) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    if h > 0 {
        format!("{h}h{m:02}m{s:02}s")
    } else if m > 0 {
        format!("{m}m{s:02}s")
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_units() {
        assert_eq!(human_bytes(512), "512 bytes");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(5 << 20), "5.0 MiB");
        assert_eq!(human_bytes(3 << 30), "3.00 GiB");
        assert_eq!(human_duration(7), "7s");
        assert_eq!(human_duration(125), "2m05s");
        assert_eq!(human_duration(3 * 3600 + 61), "3h01m01s");
    }
}
