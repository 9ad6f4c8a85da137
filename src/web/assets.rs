//! The viewer page and vendored libraries, embedded in the binary. An owner's `static_dir`
//! overrides the built-in page file by file, so a custom `index.html` can still use the
//! built-in `player.js`. A path without an extension is served from `<path>.html` when there is
//! no file by that exact name (an owner's `about.html` is `/about`); `/` and the embeds
//! (`/embed/video`, `/embed/chat`) are `index.html`, which shows one part for an embed
//! (`static/view.js`).
//!
//! Only files inside `static_dir` are served from it: a symlink there whose target is outside
//! (the data directory, `/etc`) is treated as absent, with a warning for the owner.

use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex, PoisonError};
use std::time::Instant;

use bytes::Bytes;
use rust_embed::RustEmbed;
use tracing::warn;
use warp::http::{header, Response, StatusCode};
use warp::path::Tail;
use warp::Filter;

use super::{link_preview, WebState};
use crate::log_limit::{LogLimiter, LOG_EVERY};
use crate::web::Routes;
use warp::Reply;

#[derive(RustEmbed)]
#[folder = "static/"]
struct Page;

#[derive(RustEmbed)]
#[folder = "vendor/"]
struct Vendor;

pub fn routes(state: Arc<WebState>) -> Routes {
    let vendor = warp::path("vendor")
        .and(warp::path::tail())
        .and(warp::get())
        .map(|tail: Tail| {
            respond(
                tail.as_str(),
                Vendor::get(tail.as_str()).map(|f| Bytes::from(f.data.into_owned())),
            )
        });
    let page = warp::path::tail()
        .and(warp::get())
        .and(warp::header::optional::<String>("host"))
        .and(warp::header::optional::<String>("x-forwarded-proto"))
        .map(
            move |tail: Tail, host: Option<String>, proto: Option<String>| {
                let dir = state.static_dir.as_deref();
                let names = candidates(tail.as_str());
                let Some((name, body)) = names
                    .iter()
                    .find_map(|name| Some((name, page_file(dir, name)?)))
                else {
                    return respond(tail.as_str(), None);
                };
                if name != "index.html" {
                    return respond(name, Some(body));
                }
                let origin = link_preview::origin(host.as_deref(), proto.as_deref());
                respond(
                    name,
                    Some(link_preview::insert(body, &state, origin.as_deref())),
                )
            },
        );
    vendor.or(page).unify().map(Reply::into_response).boxed()
}

/// A page file: the owner's copy if there is one, else the built-in one.
fn page_file(static_dir: Option<&Path>, name: &str) -> Option<Bytes> {
    if !is_safe_relative_path(name) {
        return None;
    }
    if let Some(path) = static_dir.and_then(|dir| owner_file(dir, name)) {
        if let Ok(data) = std::fs::read(path) {
            return Some(Bytes::from(data));
        }
    }
    Page::get(name).map(|file| Bytes::from(file.data.into_owned()))
}

/// The real path of `name` in `static_dir`, if it is there and stays there once symlinks are
/// followed.
fn owner_file(static_dir: &Path, name: &str) -> Option<PathBuf> {
    let path = static_dir.join(name).canonicalize().ok()?;
    let dir = static_dir.canonicalize().ok()?;
    if path.starts_with(&dir) {
        return Some(path);
    }
    static ESCAPES: LazyLock<Mutex<LogLimiter<()>>> =
        LazyLock::new(|| Mutex::new(LogLimiter::new(LOG_EVERY)));
    let allowed = ESCAPES
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .allow((), Instant::now());
    if let Some(suppressed) = allowed {
        warn!(
            suppressed,
            "not serving static_dir/{name}: it leads outside static_dir ({})",
            dir.display()
        );
    }
    None
}

/// The files that may answer a request for `path`, first found wins: the file itself;
/// `<path>.html` for a path without an extension; `index.html` for `/` and for the embeds, which
/// are views of the same page.
fn candidates(path: &str) -> Vec<String> {
    let mut names = Vec::new();
    if !path.is_empty() {
        names.push(path.to_owned());
    }
    let last = path.rsplit('/').next().unwrap_or(path);
    if !last.is_empty() && !last.contains('.') {
        names.push(format!("{path}.html"));
    }
    if matches!(path, "" | "embed/video" | "embed/chat") {
        names.push("index.html".to_owned());
    }
    names
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
    fn which_files_answer_a_path() {
        assert_eq!(candidates(""), ["index.html"]);
        assert_eq!(candidates("about"), ["about", "about.html"]);
        // An owner's own embed page would win over the built-in view of index.html.
        assert_eq!(
            candidates("embed/chat"),
            ["embed/chat", "embed/chat.html", "index.html"]
        );
        for has_extension in ["style.css", "embed/chat.html", "a.b/c.js"] {
            assert_eq!(
                candidates(has_extension),
                [has_extension],
                "{has_extension}"
            );
        }
        assert_eq!(candidates("embed/"), ["embed/"]);
        // The built-in embeds are the page, with its content type.
        for path in ["embed/chat", "embed/video"] {
            let names = candidates(path);
            let (name, body) = names
                .iter()
                .find_map(|name| Some((name, page_file(None, name)?)))
                .expect("a built-in file");
            assert_eq!(name, "index.html");
            let response = respond(name, Some(body));
            assert_eq!(
                response.headers()[header::CONTENT_TYPE],
                "text/html",
                "{path}"
            );
        }
        assert!(page_file(None, "embed/nothing.html").is_none());
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_are_followed_inside_static_dir_only() {
        use std::os::unix::fs::symlink;
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("admin_password"), "hunter22").unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("img")).unwrap();
        std::fs::write(dir.path().join("img/logo.svg"), "<svg/>").unwrap();
        symlink("img/logo.svg", dir.path().join("logo.svg")).unwrap();
        symlink(
            outside.path().join("admin_password"),
            dir.path().join("secret.txt"),
        )
        .unwrap();
        symlink(outside.path(), dir.path().join("data")).unwrap();
        // A symlinked index.html that leads out: the built-in page, not the file.
        symlink(
            outside.path().join("admin_password"),
            dir.path().join("index.html"),
        )
        .unwrap();

        let static_dir = Some(dir.path());
        assert_eq!(page_file(static_dir, "logo.svg").unwrap(), "<svg/>");
        assert!(page_file(static_dir, "secret.txt").is_none());
        assert!(page_file(static_dir, "data/admin_password").is_none());
        let index = page_file(static_dir, "index.html").unwrap();
        assert_ne!(index, "hunter22");
        assert!(index.starts_with(b"<!doctype html>"));
    }
}
