//! `GET /api/status`: whether the stream is live, how many watch, and what is being served.

use std::sync::Arc;
use std::time::SystemTime;

use serde::Serialize;
use warp::Filter;

use super::WebState;
use crate::store::VariantSummary;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Status {
    online: bool,
    viewer_count: usize,
    last_connect_time: Option<String>,
    last_disconnect_time: Option<String>,
    stream_title: String,
    version: &'static str,
    /// Where players fetch the master playlist.
    hls_url: &'static str,
    dropped_packets: u64,
    variants: Vec<VariantSummary>,
}

pub fn routes(
    state: Arc<WebState>,
) -> impl Filter<Extract = (warp::reply::WithHeader<warp::reply::Json>,), Error = warp::Rejection> + Clone
{
    warp::path!("api" / "status").and(warp::get()).map(move || {
        let stream = state.status.snapshot();
        let status = Status {
            online: stream.online,
            viewer_count: state.viewers.count(),
            last_connect_time: stream.last_connect_time.map(rfc3339),
            last_disconnect_time: stream.last_disconnect_time.map(rfc3339),
            stream_title: state.title.clone(),
            version: env!("CARGO_PKG_VERSION"),
            hls_url: "/hls/stream.m3u8",
            dropped_packets: stream.dropped_packets,
            variants: state.store.summaries(),
        };
        warp::reply::with_header(
            warp::reply::json(&status),
            "access-control-allow-origin",
            "*",
        )
    })
}

fn rfc3339(time: SystemTime) -> String {
    humantime::format_rfc3339_millis(time).to_string()
}
