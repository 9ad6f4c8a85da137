//! Link previews of the viewer page: the Open Graph (`og:`) and `twitter:` tags that chat apps
//! and social sites read when someone shares the page's address. They run no script, so the
//! tags are written into the HTML as it is served: in place of [`MARKER`] in `index.html` (an
//! owner's own page without the marker gets none). They carry the title, the summary and an
//! image: the stream's preview (`/thumbnail.jpg`) when there is one, else the owner's logo.
//!
//! Those sites need absolute URLs: the page's address is taken from the request (its `Host`,
//! and `X-Forwarded-Proto: https` from a TLS proxy in front). A made-up `Host` only changes the
//! tags of the answer to whoever sent it; every value is escaped for an HTML attribute.

use bytes::Bytes;

use super::WebState;
use crate::settings::images::Slot;

/// Where `index.html` wants the tags.
pub const MARKER: &str = "<!-- selfcast:link-preview -->";

/// The longest description, in characters (previews cut them shorter still).
const MAX_DESCRIPTION_CHARS: usize = 200;

/// The page's address: `http(s)://host`, if the request names a usable host.
pub fn origin(host: Option<&str>, forwarded_proto: Option<&str>) -> Option<String> {
    let host = host?;
    let plain = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
    if !plain {
        return None;
    }
    let scheme = match forwarded_proto.map(str::trim) {
        Some(proto) if proto.eq_ignore_ascii_case("https") => "https",
        _ => "http",
    };
    Some(format!("{scheme}://{host}"))
}

/// `html` with the tags in place of [`MARKER`]; unchanged when it has none.
pub fn insert(html: Bytes, state: &WebState, origin: Option<&str>) -> Bytes {
    let Some(at) = find(&html, MARKER.as_bytes()) else {
        return html;
    };
    let tags = tags(state, origin);
    let mut out = Vec::with_capacity(html.len() + tags.len());
    out.extend_from_slice(&html[..at]);
    out.extend_from_slice(tags.as_bytes());
    out.extend_from_slice(&html[at + MARKER.len()..]);
    Bytes::from(out)
}

fn tags(state: &WebState, origin: Option<&str>) -> String {
    let (page, _) = state.settings.page();
    let description: String = page
        .summary
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(MAX_DESCRIPTION_CHARS)
        .collect();
    let image = if state.pipeline.preview().latest().is_some() {
        Some(("/thumbnail.jpg".to_owned(), "summary_large_image"))
    } else {
        state
            .settings
            .image(Slot::Logo)
            .map(|logo| (logo.url(Slot::Logo), "summary"))
    };
    let mut tags = vec![
        ("property", "og:type", "website".to_owned()),
        ("property", "og:title", page.stream_title.clone()),
        ("name", "twitter:title", page.stream_title.clone()),
    ];
    if !description.is_empty() {
        tags.push(("property", "og:description", description.clone()));
        tags.push(("name", "description", description));
    }
    if let Some(origin) = origin {
        tags.push(("property", "og:url", format!("{origin}/")));
    }
    match (image, origin) {
        (Some((path, card)), Some(origin)) => {
            tags.push(("property", "og:image", format!("{origin}{path}")));
            tags.push(("name", "twitter:card", card.to_owned()));
        }
        _ => tags.push(("name", "twitter:card", "summary".to_owned())),
    }
    tags.iter()
        .map(|(attribute, name, content)| {
            format!(
                "<meta {attribute}=\"{name}\" content=\"{}\">",
                escape_attribute(content)
            )
        })
        .collect::<Vec<_>>()
        .join("\n  ")
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// Text safe inside a double-quoted HTML attribute.
fn escape_attribute(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_origin_comes_from_a_plain_host() {
        assert_eq!(
            origin(Some("live.example.com"), None).as_deref(),
            Some("http://live.example.com")
        );
        assert_eq!(
            origin(Some("127.0.0.1:8080"), Some("HTTPS")).as_deref(),
            Some("https://127.0.0.1:8080")
        );
        assert_eq!(
            origin(Some("[::1]:8080"), Some("ftp")).as_deref(),
            Some("http://[::1]:8080")
        );
        for bad in ["", "a\"b", "evil.example/<script>", "a b", "x@y"] {
            assert_eq!(origin(Some(bad), None), None, "{bad:?}");
        }
        assert_eq!(origin(None, Some("https")), None);
    }

    #[test]
    fn attributes_cannot_be_closed_by_the_text() {
        assert_eq!(
            escape_attribute("\"><script>alert('x')</script>&"),
            "&quot;&gt;&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;"
        );
    }
}
