//! The security headers on every response (added around the whole service, so errors and
//! rejections get them too):
//!
//! - `X-Content-Type-Options: nosniff`: a browser takes our `Content-Type` as it is.
//! - `Content-Security-Policy`: what the page may load. The built-in policy allows what the
//!   built-in page does: scripts, styles and images from selfcast only (`data:` for the icon),
//!   hls.js's `blob:` worker and the `blob:` URL of its MediaSource, the chat websocket and
//!   `fetch` to selfcast, and video (playlists and segments, by `fetch` or natively) from the
//!   configured storage's origin when viewers are sent there (`[storage]` S3/directory
//!   `public_base_url`, IPFS `gateway_url`). An owner's page that needs more (inline scripts,
//!   a CDN of its own) sets `[http] content_security_policy`.
//! - Framing: the page, the API and everything else may be framed by selfcast's own pages only
//!   (`frame-ancestors 'self'`, `X-Frame-Options: SAMEORIGIN` for older browsers); the embeds
//!   (`/embed/...`) by the origins in `[http] embed_frame_ancestors` (default: anyone). An
//!   embed gets no `X-Frame-Options`: it cannot name a list of sites.

use warp::http::header::{
    HeaderMap, HeaderValue, InvalidHeaderValue, CONTENT_SECURITY_POLICY, X_CONTENT_TYPE_OPTIONS,
    X_FRAME_OPTIONS,
};

use crate::config::{HttpConfig, StorageConfig, StorageKind};

/// The embeds: views of the page meant for other sites' frames.
const EMBED_PREFIX: &str = "/embed/";

/// The headers, built once at start-up.
#[derive(Debug, Clone)]
pub struct SecurityHeaders {
    page_policy: HeaderValue,
    embed_policy: HeaderValue,
}

/// Which framing rule a response gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    Embed,
    SameOrigin,
}

impl Framing {
    pub fn of_path(path: &str) -> Framing {
        if path.starts_with(EMBED_PREFIX) {
            Framing::Embed
        } else {
            Framing::SameOrigin
        }
    }
}

impl SecurityHeaders {
    pub fn new(http: &HttpConfig, storage: &StorageConfig) -> Result<Self, InvalidHeaderValue> {
        let fetch_policy = match &http.content_security_policy {
            Some(policy) => policy.trim().trim_end_matches(';').to_owned(),
            None => default_policy(&storage_origins(storage)),
        };
        let with_frame_ancestors = |sources: &str| {
            let frame_ancestors = format!("frame-ancestors {sources}");
            if fetch_policy.is_empty() {
                HeaderValue::try_from(frame_ancestors)
            } else {
                HeaderValue::try_from(format!("{fetch_policy}; {frame_ancestors}"))
            }
        };
        Ok(SecurityHeaders {
            page_policy: with_frame_ancestors("'self'")?,
            embed_policy: with_frame_ancestors(&http.embed_frame_ancestors.join(" "))?,
        })
    }

    /// Adds the headers a handler did not set itself.
    pub fn apply(&self, framing: Framing, headers: &mut HeaderMap) {
        headers
            .entry(X_CONTENT_TYPE_OPTIONS)
            .or_insert(HeaderValue::from_static("nosniff"));
        let policy = match framing {
            Framing::Embed => &self.embed_policy,
            Framing::SameOrigin => {
                headers
                    .entry(X_FRAME_OPTIONS)
                    .or_insert(HeaderValue::from_static("SAMEORIGIN"));
                &self.page_policy
            }
        };
        headers
            .entry(CONTENT_SECURITY_POLICY)
            .or_insert_with(|| policy.clone());
    }
}

/// The built-in page's policy, without `frame-ancestors`; `media` are the storage origins.
fn default_policy(media: &[String]) -> String {
    let media: String = media.iter().map(|origin| format!(" {origin}")).collect();
    format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         media-src 'self' blob:{media}; connect-src 'self'{media}; worker-src 'self' blob:; \
         object-src 'none'; base-uri 'none'; form-action 'self'"
    )
}

/// Where viewers may be sent for video: the origin of the configured storage's public URL.
fn storage_origins(storage: &StorageConfig) -> Vec<String> {
    let url = match storage.kind {
        StorageKind::Memory => None,
        StorageKind::Directory => storage.directory.public_base_url.as_deref(),
        StorageKind::S3 => Some(storage.s3.public_base_url.as_str()),
        StorageKind::Ipfs => Some(storage.ipfs.gateway_url.as_str()),
    };
    url.and_then(origin_of).into_iter().collect()
}

/// `scheme://host[:port]` of an `http(s)://` URL; `None` for anything that is not plainly one
/// (nothing unexpected goes into the header).
fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let plain = |c: char| c.is_ascii_alphanumeric() || ".-:[]".contains(c);
    (!host.is_empty() && host.chars().all(plain)).then(|| format!("{scheme}://{host}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers_for(http: &HttpConfig, storage: &StorageConfig, path: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        SecurityHeaders::new(http, storage)
            .unwrap()
            .apply(Framing::of_path(path), &mut headers);
        headers
    }

    #[test]
    fn the_page_may_be_framed_by_selfcast_only_and_the_embeds_by_anyone() {
        let http = HttpConfig::default();
        let storage = StorageConfig::default();
        let page = headers_for(&http, &storage, "/");
        assert_eq!(page[X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(page[X_FRAME_OPTIONS], "SAMEORIGIN");
        let policy = page[CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(
            policy.starts_with("default-src 'self'; script-src 'self';"),
            "{policy}"
        );
        assert!(policy.ends_with("; frame-ancestors 'self'"), "{policy}");
        assert!(policy.contains("worker-src 'self' blob:"), "{policy}");
        assert!(policy.contains("media-src 'self' blob:;"), "{policy}");

        let embed = headers_for(&http, &storage, "/embed/video");
        assert_eq!(embed[X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert!(!embed.contains_key(X_FRAME_OPTIONS));
        let policy = embed[CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(policy.ends_with("; frame-ancestors *"), "{policy}");
        // Only the path's start counts.
        assert_eq!(Framing::of_path("/hls/embed/x"), Framing::SameOrigin);
        assert_eq!(Framing::of_path("/embed"), Framing::SameOrigin);
    }

    #[test]
    fn the_storage_origin_may_serve_video() {
        let mut storage = StorageConfig {
            kind: StorageKind::S3,
            ..StorageConfig::default()
        };
        storage.s3.public_base_url = "https://my-stream.s3.amazonaws.com/live/".into();
        let headers = headers_for(&HttpConfig::default(), &storage, "/");
        let policy = headers[CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(
            policy.contains("media-src 'self' blob: https://my-stream.s3.amazonaws.com;"),
            "{policy}"
        );
        assert!(
            policy.contains("connect-src 'self' https://my-stream.s3.amazonaws.com;"),
            "{policy}"
        );
        // Another kind's table is not used.
        storage.kind = StorageKind::Memory;
        let headers = headers_for(&HttpConfig::default(), &storage, "/");
        let policy = headers[CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(!policy.contains("amazonaws"), "{policy}");
    }

    #[test]
    fn origins() {
        assert_eq!(
            origin_of("http://127.0.0.1:9000/bucket").as_deref(),
            Some("http://127.0.0.1:9000")
        );
        assert_eq!(
            origin_of("HTTPS://user:pw@ipfs.example.com?x").as_deref(),
            Some("https://ipfs.example.com")
        );
        assert_eq!(
            origin_of("http://[::1]:8080").as_deref(),
            Some("http://[::1]:8080")
        );
        for bad in [
            "ftp://x",
            "https://",
            "https://a b",
            "https://a;script-src *",
            "x",
        ] {
            assert_eq!(origin_of(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_owner_may_replace_the_policy_and_choose_who_embeds() {
        let http = HttpConfig {
            content_security_policy: Some("default-src 'self' 'unsafe-inline';".into()),
            embed_frame_ancestors: vec!["https://example.com".into(), "'self'".into()],
            ..HttpConfig::default()
        };
        let storage = StorageConfig::default();
        let page = headers_for(&http, &storage, "/about");
        assert_eq!(
            page[CONTENT_SECURITY_POLICY],
            "default-src 'self' 'unsafe-inline'; frame-ancestors 'self'"
        );
        let embed = headers_for(&http, &storage, "/embed/chat");
        assert_eq!(
            embed[CONTENT_SECURITY_POLICY],
            "default-src 'self' 'unsafe-inline'; frame-ancestors https://example.com 'self'"
        );
        // An empty policy: framing rules only.
        let http = HttpConfig {
            content_security_policy: Some(String::new()),
            ..HttpConfig::default()
        };
        let page = headers_for(&http, &storage, "/");
        assert_eq!(page[CONTENT_SECURITY_POLICY], "frame-ancestors 'self'");
    }

    #[test]
    fn a_header_the_handler_set_is_kept() {
        let mut headers = HeaderMap::new();
        headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        SecurityHeaders::new(&HttpConfig::default(), &StorageConfig::default())
            .unwrap()
            .apply(Framing::SameOrigin, &mut headers);
        assert_eq!(headers[X_FRAME_OPTIONS], "DENY");
    }
}
