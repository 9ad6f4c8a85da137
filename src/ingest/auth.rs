//! Who may connect and publish: the RTMP app name and the stream key.
//!
//! The stream key is the only secret of the ingest side. It is compared in constant time and
//! never logged, not even a wrong one (a typo of the right key is nearly the key). A common
//! mistake is to paste the key into the server URL (`rtmp://host/live/KEY`), which makes it part
//! of the app name: [`describe_app`] blanks it out before the app name is logged.

use crate::secrets::constant_time_eq;

/// Whether the app a client connects to is the configured one, ignoring leading and trailing
/// slashes (`live`, `live/` and `/live` are the same app).
pub(super) fn app_matches(requested: &str, configured: &str) -> bool {
    requested.trim_matches('/') == configured.trim_matches('/')
}

/// An app name fit for a log line: path segments equal to the stream key are replaced by
/// `<stream key>`, and the result is cut to 64 characters.
pub(super) fn describe_app(app: &str, stream_key: &str) -> String {
    let described = app
        .split('/')
        .map(|segment| {
            if !stream_key.is_empty() && constant_time_eq(segment.as_bytes(), stream_key.as_bytes())
            {
                "<stream key>"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/");
    if described.chars().count() > 64 {
        format!("{}...", described.chars().take(64).collect::<String>())
    } else {
        described
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_names() {
        assert!(app_matches("live", "live"));
        assert!(app_matches("live/", "live"));
        assert!(app_matches("/live//", "live/"));
        assert!(!app_matches("Live", "live"));
        assert!(!app_matches("live/extra", "live"));
        assert!(!app_matches("", "live"));
    }

    #[test]
    fn the_key_never_appears_in_a_described_app() {
        assert_eq!(describe_app("live/abc123", "abc123"), "live/<stream key>");
        assert_eq!(describe_app("abc123", "abc123"), "<stream key>");
        assert_eq!(describe_app("lvie", "abc123"), "lvie");
        assert_eq!(describe_app("live", ""), "live");
        let long = "x".repeat(100);
        assert_eq!(describe_app(&long, "k"), format!("{}...", "x".repeat(64)));
    }
}
