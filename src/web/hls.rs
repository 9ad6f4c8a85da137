//! `/hls/...`: playlists and segments from the in-memory store, with headers that suit live
//! HLS: playlists are revalidated on every load, segments never change once written (their
//! names are unique), and any site may play the stream (CORS). With an IPFS sink, its playlists
//! (which name the segments by their gateway URLs) are served the same way at `/hls-ipfs/`.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use warp::http::{header, Response, StatusCode};
use warp::Filter;

use super::WebState;
use crate::hls::files::{cache_control, content_type, MEDIA_PLAYLIST_NAME};
use crate::sink::IPFS_PLAYLISTS_ROOT;
use crate::web::Routes;
use warp::Reply;

pub fn routes(state: Arc<WebState>) -> Routes {
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
    let variant_file = {
        let state = Arc::clone(&state);
        warp::path!("hls" / String / String)
            .and(warp::get())
            .and(super::client_addr())
            .map(
                move |variant: String, file: String, client: Option<SocketAddr>| {
                    if file == MEDIA_PLAYLIST_NAME {
                        count_viewer(&state, client);
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
            )
    };
    let ipfs_playlist = warp::path(IPFS_PLAYLISTS_ROOT)
        .and(warp::path::tail())
        .and(warp::get())
        .and(super::client_addr())
        .map(move |key: warp::path::Tail, client: Option<SocketAddr>| {
            let key = key.as_str();
            // `<variant>/stream.m3u8`, not the master.
            let variant_dir = key.strip_suffix(MEDIA_PLAYLIST_NAME);
            if variant_dir.is_some_and(|dir| dir.ends_with('/')) {
                count_viewer(&state, client);
            }
            let playlist = state.ipfs_playlists.as_ref().and_then(|p| p.get(key));
            respond(playlist, content_type(key), cache_control(key))
        });
    master
        .or(variant_file)
        .unify()
        .or(ipfs_playlist)
        .unify()
        .map(Reply::into_response)
        .boxed()
}

/// A media playlist load marks a viewer (players reload it every few seconds).
fn count_viewer(state: &WebState, client: Option<SocketAddr>) {
    if let Some(client) = client {
        state.viewers.saw(client.ip());
    }
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
