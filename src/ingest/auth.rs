//! Who may connect and publish: the RTMP app name and the stream key.
//!
//! The stream keys ([`StreamKeys`]) are the only secrets of the ingest side. They are compared
//! in constant time and never logged, not even a wrong one (a typo of the right key is nearly the key). A common
//! mistake is to paste the key into the server URL (`rtmp://host/live/KEY`), which makes it part
//! of the app name: [`describe_app`] blanks it out before the app name is logged.

use crate::stream_keys::StreamKeys;

/// Whether the app a client connects to is the configured one, ignoring leading and trailing
/// slashes (`live`, `live/` and `/live` are the same app).
pub(super) fn app_matches(requested: &str, configured: &str) -> bool {
    requested.trim_matches('/') == configured.trim_matches('/')
}

/// An app name fit for a log line: path segments equal to a stream key are replaced by
/// `<stream key>`, and the result is cut to 64 characters.
pub(super) fn describe_app(app: &str, stream_keys: &StreamKeys) -> String {
    let described = app
        .split('/')
        .map(|segment| {
            if stream_keys.is_a_key(segment) {
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
    fn no_key_ever_appears_in_a_described_app() {
        let dir = tempfile::tempdir().unwrap();
        let (keys, _) = StreamKeys::load(dir.path(), Some("abc123-config".into())).unwrap();
        let guest = keys.add("guest").unwrap().key;
        assert_eq!(
            describe_app("live/abc123-config", &keys),
            "live/<stream key>"
        );
        assert_eq!(describe_app("abc123-config", &keys), "<stream key>");
        assert_eq!(
            describe_app(&format!("live/{guest}"), &keys),
            "live/<stream key>"
        );
        assert_eq!(describe_app("lvie", &keys), "lvie");
        assert_eq!(describe_app("live//", &keys), "live//");
        let long = "x".repeat(100);
        assert_eq!(describe_app(&long, &keys), format!("{}...", "x".repeat(64)));
    }
}
