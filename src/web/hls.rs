//! `/hls/...`: playlists and segments from the in-memory store, with headers that suit live
//! HLS: playlists are revalidated on every load, segments never change once written (their
//! names are unique), and any site may play the stream (CORS).

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use warp::http::{header, Response, StatusCode};
use warp::Filter;

use super::WebState;
use crate::store::{cache_control, content_type, MEDIA_PLAYLIST_NAME};

pub fn routes(
    state: Arc<WebState>,
) -> impl Filter<Extract = (Response<Bytes>,), Error = warp::Rejection> + Clone {
    let master = {
        let state = Arc::clone(&state);
        warp::path!("hls" / "stream.m3u8")
            .and(warp::get())
            .map(move || {
                let name = "stream.m3u8";
                respond(
                    state.store.master_playlist(),
                    content_type(name),
                    cache_control(name),
                )
            })
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
                        content_type(&file),
                        cache_control(&file),
                    );
                }
                respond(
                    state.store.file(&variant, &file),
                    content_type(&file),
                    cache_control(&file),
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
