//! The viewer page and vendored libraries, embedded in the binary. An owner's `static_dir`
//! overrides the built-in page file by file, so a custom `index.html` can still use the
//! built-in `player.js`. A path without an extension is served from `<path>.html` when there is
//! no file by that exact name, so `/embed/chat` is `embed/chat.html`.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use rust_embed::RustEmbed;
use warp::http::{header, Response, StatusCode};
use warp::path::Tail;
use warp::Filter;

use super::WebState;

#[derive(RustEmbed)]
#[folder = "static/"]
struct Page;

#[derive(RustEmbed)]
#[folder = "vendor/"]
struct Vendor;

pub fn routes(
    state: Arc<WebState>,
) -> impl Filter<Extract = (Response<Bytes>,), Error = warp::Rejection> + Clone {
    let vendor = warp::path("vendor")
        .and(warp::path::tail())
        .and(warp::get())
        .map(|tail: Tail| {
            respond(
                tail.as_str(),
                Vendor::get(tail.as_str()).map(|f| Bytes::from(f.data.into_owned())),
            )
        });
    let page = warp::path::tail().and(warp::get()).map(move |tail: Tail| {
        let name = match tail.as_str() {
            "" => "index.html",
            other => other,
        };
        let dir = state.static_dir.as_deref();
        match page_file(dir, name) {
            Some(body) => respond(name, Some(body)),
            None => match html_fallback(name) {
                Some(html) => respond(&html, page_file(dir, &html)),
                None => respond(name, None),
            },
        }
    });
    vendor.or(page).unify()
}

/// A page file: the owner's copy if there is one, else the built-in one.
fn page_file(static_dir: Option<&Path>, name: &str) -> Option<Bytes> {
    if !is_safe_relative_path(name) {
        return None;
    }
    if let Some(dir) = static_dir {
        if let Ok(data) = std::fs::read(dir.join(name)) {
            return Some(Bytes::from(data));
        }
    }
    Page::get(name).map(|file| Bytes::from(file.data.into_owned()))
}

/// `embed/chat` → `embed/chat.html`: the name of the page for a path without an extension.
fn html_fallback(name: &str) -> Option<String> {
    let last = name.rsplit('/').next().unwrap_or(name);
    (!last.is_empty() && !last.contains('.')).then(|| format!("{name}.html"))
}

/// Only plain relative names: no `..`, no hidden files, no absolute paths or escapes.
fn is_safe_relative_path(name: &str) -> bool {
    !name.is_empty()
        && name
            .split('/')
            .all(|part| !part.is_empty() && !part.starts_with('.') && !part.contains(['\\', '%']))
}

fn respond(name: &str, body: Option<Bytes>) -> Response<Bytes> {
    let response = match body {
        Some(body) => Response::builder()
            .header(
                header::CONTENT_TYPE,
                mime_guess::from_path(name).first_or_octet_stream().as_ref(),
            )
            // The page may be edited by the owner at any time: revalidate.
            .header(header::CACHE_CONTROL, "no-cache")
            .body(body),
        None => Response::builder()
            .status(StatusCode::NOT_FOUND)
            .body(Bytes::from_static(b"not found\n")),
    };
    response.unwrap_or_else(|_| Response::new(Bytes::new()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_relative_paths_are_served() {
        assert!(is_safe_relative_path("index.html"));
        assert!(is_safe_relative_path("img/logo.png"));
        for bad in [
            "",
            "../config.toml",
            "a/../../etc/passwd",
            ".env",
            "a//b",
            "%2e%2e/x",
            "/etc/passwd",
        ] {
            assert!(!is_safe_relative_path(bad), "{bad}");
        }
    }

    #[test]
    fn a_path_without_extension_is_its_html_page() {
        assert_eq!(
            html_fallback("embed/chat").as_deref(),
            Some("embed/chat.html")
        );
        assert_eq!(
            html_fallback("embed/video").as_deref(),
            Some("embed/video.html")
        );
        assert_eq!(html_fallback("about").as_deref(), Some("about.html"));
        for has_extension in ["style.css", "embed/chat.html", "a.b/c.js", "embed/"] {
            assert_eq!(html_fallback(has_extension), None, "{has_extension}");
        }
        // The built-in embeds, with the page's content type.
        for path in ["embed/chat", "embed/video"] {
            let html = html_fallback(path).expect("a fallback name");
            let body = page_file(None, &html);
            assert!(body.is_some(), "{html} is not built in");
            let response = respond(&html, body);
            assert_eq!(response.status(), StatusCode::OK);
            assert_eq!(
                response.headers()[header::CONTENT_TYPE],
                "text/html",
                "{path}"
            );
        }
        assert!(page_file(None, "embed/nothing.html").is_none());
    }
}
