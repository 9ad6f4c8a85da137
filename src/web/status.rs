//! `GET /api/status`: whether the stream is live, how many watch, and what is being served.

use std::sync::Arc;

use serde::Serialize;
use warp::Filter;

use super::WebState;
use crate::chat::events::rfc3339;
use crate::pipeline::{StatusSnapshot, Variant};
use crate::sink::SinkStatus;
use crate::store::VariantSummary;
use crate::web::Routes;
use warp::Reply;

/// The master playlist as selfcast serves it.
const LOCAL_MASTER_URL: &str = "/hls/stream.m3u8";

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Status {
    online: bool,
    viewer_count: usize,
    last_connect_time: Option<String>,
    last_disconnect_time: Option<String>,
    stream_title: String,
    /// Changes whenever a page setting changes: the page then reloads `/api/config`.
    page_revision: u64,
    version: &'static str,
    /// Where players fetch the master playlist: the storage's public URL while it works,
    /// else selfcast's own.
    hls_url: String,
    dropped_packets: u64,
    /// Whether viewers can chat now (config `[chat] enabled`, or the admin switch).
    chat_enabled: bool,
    /// `[chat] max_message_chars`, for the page's input.
    chat_max_message_chars: usize,
    input: Input,
    variants: Vec<VariantStatus>,
    /// The storage sink (absent with `kind = "memory"`).
    #[serde(skip_serializing_if = "Option::is_none")]
    storage: Option<SinkStatus>,
}

/// What the publisher sends.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Input {
    video_codec: Option<String>,
    width: u32,
    height: u32,
    audio_codec: Option<String>,
    bitrate_kbps: u64,
    /// Frames per second over the publish, by the source's timestamps.
    frame_rate: Option<f64>,
}

/// One rendition: its configuration, what is being served, and how its encoder keeps up.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct VariantStatus {
    id: String,
    name: String,
    passthrough: bool,
    target_bitrate_kbps: Option<u32>,
    frames_out: u64,
    frames_dropped: u64,
    queue_depth: usize,
    /// Why this session does not encode it (the source is no bigger); `null` when it does.
    skipped: Option<String>,
    /// Size, codecs, measured bitrate and frame rate of what is served (absent until the first
    /// segment).
    #[serde(flatten)]
    served: Option<VariantSummary>,
}

fn variant_status(variant: &Variant, served: &[VariantSummary]) -> VariantStatus {
    use std::sync::atomic::Ordering::Relaxed;
    VariantStatus {
        id: variant.id.clone(),
        name: variant.config.name.clone(),
        passthrough: variant.config.passthrough,
        target_bitrate_kbps: variant.config.video_bitrate_kbps,
        frames_out: variant.stats.frames_out.load(Relaxed),
        frames_dropped: variant.stats.frames_dropped.load(Relaxed),
        queue_depth: variant.stats.queue_depth.load(Relaxed),
        skipped: variant.skipped(),
        served: served.iter().find(|s| s.id == variant.id).cloned(),
    }
}

fn input(stream: &StatusSnapshot) -> Input {
    Input {
        video_codec: stream.input.video_codec.clone(),
        width: stream.input.width,
        height: stream.input.height,
        audio_codec: stream.input.audio_codec.clone(),
        bitrate_kbps: stream.input.bitrate_kbps(),
        frame_rate: stream.input.frame_rate(),
    }
}

pub fn routes(state: Arc<WebState>) -> Routes {
    warp::path!("api" / "status")
        .and(warp::get())
        .map(move || {
            let stream = state.pipeline.status().snapshot();
            let served = state.store.summaries();
            let (page, page_revision) = state.settings.page();
            let status = Status {
                online: stream.online,
                viewer_count: viewer_count(&state),
                chat_enabled: state.chat.chat_enabled(),
                chat_max_message_chars: state.chat.config().max_message_chars,
                last_connect_time: stream.last_connect_time.map(rfc3339),
                last_disconnect_time: stream.last_disconnect_time.map(rfc3339),
                stream_title: page.stream_title.clone(),
                page_revision,
                version: env!("CARGO_PKG_VERSION"),
                hls_url: state
                    .sink
                    .as_ref()
                    .and_then(|sink| sink.viewer_url())
                    .unwrap_or_else(|| LOCAL_MASTER_URL.to_owned()),
                dropped_packets: stream.dropped_packets,
                input: input(&stream),
                variants: state
                    .pipeline
                    .variants()
                    .iter()
                    .map(|v| variant_status(v, &served))
                    .collect(),
                storage: state.sink.as_ref().map(|sink| sink.status()),
            };
            warp::reply::with_header(
                warp::reply::json(&status),
                "access-control-allow-origin",
                "*",
            )
            .into_response()
        })
        .boxed()
}

/// Open pages plus HLS-only clients ([`super::viewers`]).
pub fn viewer_count(state: &WebState) -> usize {
    state.chat.with_presence(|pages| {
        state
            .viewers
            .count(pages.total(), |ip| pages.from_ip(ip) > 0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::VariantConfig;
    use crate::hls::Segmenter;

    #[test]
    fn a_served_variant_has_one_id() {
        let variant = Variant::new(
            "1".into(),
            VariantConfig::default(),
            std::sync::Arc::new(std::sync::Mutex::new(Segmenter::new(2))),
        );
        let served = VariantSummary {
            id: "1".into(),
            width: 854,
            height: 480,
            frame_rate: Some(30.0),
            codecs: "avc1.64001e,mp4a.40.2".into(),
            bitrate_kbps: 1200,
            segments: 3,
        };
        let json = serde_json::to_string(&variant_status(&variant, &[served])).unwrap();
        assert_eq!(json.matches("\"id\"").count(), 1, "{json}");
        assert!(json.contains("\"width\":854"), "{json}");
    }
}
