//! What the viewer page shows besides the video and the chat, as the console sets it
//! ([`crate::settings`]): `GET /api/config` (Owncast's path) with the title, summary, tags,
//! offline message and social links, and `GET /customstyles.css`, the owner's CSS added after
//! the page's own. The page reloads both when `/api/status` reports a new `pageRevision`.
//! `GET /logo` and `GET /offline-image`, the images the owner uploaded
//! ([`crate::settings::images`]). And `GET /thumbnail.jpg`, the stream's preview image ([`crate::pipeline::Preview`]), for
//! the page's offline poster and link previews (`og:image`).

use std::sync::Arc;

use serde::Serialize;
use warp::http::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use warp::http::StatusCode;
use warp::{Filter, Reply};

use super::WebState;
use crate::settings::images::Slot;
use crate::settings::page::SocialLink;
use crate::web::Routes;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PageConfig<'a> {
    stream_title: &'a str,
    summary: &'a str,
    tags: &'a [String],
    offline_message: &'a str,
    /// Owncast's name for the links.
    social_handles: &'a [SocialLink],
    /// The custom CSS, named by revision so a change is fetched anew; `null` when there is none.
    custom_styles_url: Option<String>,
    /// The owner's logo and offline image, named by version; `null` when there is none.
    logo_url: Option<String>,
    offline_image_url: Option<String>,
    page_revision: u64,
}

pub fn routes(state: Arc<WebState>) -> Routes {
    let config = {
        let state = Arc::clone(&state);
        warp::path!("api" / "config").and(warp::get()).map(move || {
            let (page, revision) = state.settings.page();
            let body = PageConfig {
                stream_title: &page.stream_title,
                summary: &page.summary,
                tags: &page.tags,
                offline_message: &page.offline_message,
                social_handles: &page.social_links,
                custom_styles_url: (!page.custom_css.is_empty())
                    .then(|| format!("/customstyles.css?v={revision}")),
                logo_url: image_url(&state, Slot::Logo),
                offline_image_url: image_url(&state, Slot::Offline),
                page_revision: revision,
            };
            let mut response = warp::reply::json(&body).into_response();
            let headers = response.headers_mut();
            headers.insert("access-control-allow-origin", HeaderValue::from_static("*"));
            headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            response
        })
    };
    let thumbnail = {
        let state = Arc::clone(&state);
        warp::path!("thumbnail.jpg").and(warp::get()).map(move || {
            let Some(image) = state.pipeline.preview().latest() else {
                let mut response =
                    warp::reply::with_status("no preview image yet", StatusCode::NOT_FOUND)
                        .into_response();
                response
                    .headers_mut()
                    .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
                return response;
            };
            // A new one comes every few seconds while live.
            image_response(image.jpeg, "image/jpeg", "public, max-age=5")
        })
    };
    let logo = image(Arc::clone(&state), Slot::Logo);
    let offline = image(Arc::clone(&state), Slot::Offline);
    let styles = warp::path!("customstyles.css")
        .and(warp::get())
        .map(move || {
            let (page, _) = state.settings.page();
            let mut response = page.custom_css.clone().into_response();
            let headers = response.headers_mut();
            headers.insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/css; charset=utf-8"),
            );
            headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            response
        });
    config
        .or(styles)
        .unify()
        .or(thumbnail)
        .unify()
        .or(logo)
        .unify()
        .or(offline)
        .unify()
        .boxed()
}

fn image_url(state: &WebState, slot: Slot) -> Option<String> {
    state.settings.image(slot).map(|image| image.url(slot))
}

/// `GET /logo` or `/offline-image`: the image as uploaded, with its type; 404 when none is set.
fn image(state: Arc<WebState>, slot: Slot) -> Routes {
    let path = slot.path().trim_start_matches('/');
    warp::path(path)
        .and(warp::path::end())
        .and(warp::get())
        .map(move || {
            let Some(image) = state.settings.image(slot) else {
                return warp::reply::with_status("no such image", StatusCode::NOT_FOUND)
                    .into_response();
            };
            // The page asks for ?v=<version>, new for every new image.
            image_response(
                image.bytes.clone(),
                image.still.format.content_type(),
                "public, max-age=300",
            )
        })
        .boxed()
}

/// An image any site may load (link previews, embeds), with its type and how long to keep it.
fn image_response(
    bytes: bytes::Bytes,
    content_type: &'static str,
    cache_control: &'static str,
) -> warp::reply::Response {
    let mut response = warp::reply::Response::new(bytes.into());
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static(cache_control));
    headers.insert("access-control-allow-origin", HeaderValue::from_static("*"));
    response
}
