//! `/hls/...`: playlists and segments from the in-memory store, with headers that suit live
//! HLS: playlists are revalidated on every load, segments never change once written (their
//! names are unique), and any site may play the stream (CORS).

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use warp::http::{header, Response, StatusCode};
use warp::Filter;

use super::WebState;
use crate::store::MEDIA_PLAYLIST_NAME;

const PLAYLIST_TYPE: &str = "application/vnd.apple.mpegurl";
/// Playlists change every segment: caches must not keep them beyond a second.
const PLAYLIST_CACHE: &str = "public, max-age=1";
/// Segment and init names are never reused (they carry the server's run id).
const SEGMENT_CACHE: &str = "public, max-age=31536000, immutable";

pub fn routes(
    state: Arc<WebState>,
) -> impl Filter<Extract = (Response<Bytes>,), Error = warp::Rejection> + Clone {
    let master = {
        let state = Arc::clone(&state);
        warp::path!("hls" / "stream.m3u8")
            .and(warp::get())
            .map(move || respond(state.store.master_playlist(), PLAYLIST_TYPE, PLAYLIST_CACHE))
    };
    let variant_file = warp::path!("hls" / String / String)
        .and(warp::get())
        .and(warp::addr::remote())
        .map(
            move |variant: String, file: String, client: Option<SocketAddr>| {
                if file == MEDIA_PLAYLIST_NAME {
                    if let Some(client) = client {
                        state.viewers.saw(client.ip());
                    }
                    return respond(
                        state.store.media_playlist(&variant),
                        PLAYLIST_TYPE,
                        PLAYLIST_CACHE,
                    );
                }
                let content_type = if file.ends_with(".m4s") {
                    "video/iso.segment"
                } else {
                    "video/mp4"
                };
                respond(
                    state.store.file(&variant, &file),
                    content_type,
                    SEGMENT_CACHE,
                )
            },
        );
    master.or(variant_file).unify()
}

fn respond(body: Option<Bytes>, content_type: &str, cache: &str) -> Response<Bytes> {
    let builder = Response::builder().header(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*");
    let response = match body {
        Some(body) => builder
            .header(header::CONTENT_TYPE, content_type)
            .header(header::CACHE_CONTROL, cache)
            .body(body),
        // Not there (yet): a player retries; caches must not remember the miss.
        None => builder
            .status(StatusCode::NOT_FOUND)
            .header(header::CACHE_CONTROL, "no-store")
            .body(Bytes::new()),
    };
    response.unwrap_or_else(|_| Response::new(Bytes::new()))
}
