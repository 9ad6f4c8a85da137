//! The viewer page's settings: title, summary, tags, offline message, social links and custom
//! CSS, as the console edits them, and the limits every value is held to wherever it comes
//! from (`config.toml` or the console).

use serde::{Deserialize, Serialize};

use super::section::{field_error, FieldError, Section};

pub const MAX_TITLE_CHARS: usize = 100;
pub const MAX_SUMMARY_CHARS: usize = 2000;
pub const MAX_TAGS: usize = 20;
pub const MAX_TAG_CHARS: usize = 32;
pub const MAX_OFFLINE_MESSAGE_CHARS: usize = 500;
pub const MAX_SOCIAL_LINKS: usize = 16;
pub const MAX_PLATFORM_CHARS: usize = 32;
pub const MAX_URL_CHARS: usize = 500;
pub const MAX_CUSTOM_CSS_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SocialLink {
    pub platform: String,
    pub url: String,
}

/// One value of every page setting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PageValues {
    pub stream_title: String,
    pub summary: String,
    pub tags: Vec<String>,
    pub offline_message: String,
    pub social_links: Vec<SocialLink>,
    pub custom_css: String,
}

impl Default for PageValues {
    fn default() -> Self {
        Self {
            stream_title: "selfcast".into(),
            summary: String::new(),
            tags: Vec::new(),
            offline_message: String::new(),
            social_links: Vec::new(),
            custom_css: String::new(),
        }
    }
}

impl Section for PageValues {
    fn cleaned(self) -> Self {
        Self {
            stream_title: self.stream_title.trim().to_owned(),
            summary: self.summary.trim_end().to_owned(),
            tags: clean_tags(self.tags),
            offline_message: self.offline_message.trim().to_owned(),
            social_links: self
                .social_links
                .into_iter()
                .map(|link| SocialLink {
                    platform: link.platform.trim().to_owned(),
                    url: link.url.trim().to_owned(),
                })
                .collect(),
            custom_css: self.custom_css,
        }
    }

    fn check(&self) -> Result<(), FieldError> {
        check(self)
    }
}

/// Tags trimmed, empty ones dropped.
fn clean_tags(tags: Vec<String>) -> Vec<String> {
    tags.into_iter()
        .map(|tag| tag.trim().to_owned())
        .filter(|tag| !tag.is_empty())
        .collect()
}

/// Checks every value against the limits (`config.toml`'s `[page]` is held to the same).
pub fn check(values: &PageValues) -> Result<(), FieldError> {
    let title = &values.stream_title;
    if title.trim().is_empty() {
        return Err(field_error("streamTitle", "give the stream a title"));
    }
    line("streamTitle", title, MAX_TITLE_CHARS)?;
    text("summary", &values.summary, MAX_SUMMARY_CHARS)?;
    if values.tags.len() > MAX_TAGS {
        return Err(field_error(
            "tags",
            format!("at most {MAX_TAGS} tags ({} given)", values.tags.len()),
        ));
    }
    for (index, tag) in values.tags.iter().enumerate() {
        if tag.trim().is_empty() {
            return Err(field_error("tags", "a tag cannot be empty"));
        }
        line("tags", tag, MAX_TAG_CHARS)?;
        if values.tags[..index]
            .iter()
            .any(|other| other.to_lowercase() == tag.to_lowercase())
        {
            return Err(field_error("tags", format!("\"{tag}\" is listed twice")));
        }
    }
    text(
        "offlineMessage",
        &values.offline_message,
        MAX_OFFLINE_MESSAGE_CHARS,
    )?;
    if values.social_links.len() > MAX_SOCIAL_LINKS {
        return Err(field_error(
            "socialLinks",
            format!("at most {MAX_SOCIAL_LINKS} links"),
        ));
    }
    for link in &values.social_links {
        if link.platform.trim().is_empty() {
            return Err(field_error(
                "socialLinks",
                "name the site of every link (\"Mastodon\", \"YouTube\")",
            ));
        }
        line("socialLinks", &link.platform, MAX_PLATFORM_CHARS)?;
        check_url(&link.url)?;
    }
    if values.custom_css.len() > MAX_CUSTOM_CSS_BYTES {
        return Err(field_error(
            "customCss",
            format!(
                "at most {} KiB of CSS ({} bytes given)",
                MAX_CUSTOM_CSS_BYTES / 1024,
                values.custom_css.len()
            ),
        ));
    }
    Ok(())
}

/// One line of text: at most `max` characters, no control characters.
fn line(field: &str, value: &str, max: usize) -> Result<(), FieldError> {
    if value.contains(char::is_control) {
        return Err(field_error(
            field,
            "no line breaks or other control characters",
        ));
    }
    length(field, value, max)
}

/// Text that may have line breaks (and tabs), no other control characters.
fn text(field: &str, value: &str, max: usize) -> Result<(), FieldError> {
    if value
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(field_error(field, "no control characters"));
    }
    length(field, value, max)
}

fn length(field: &str, value: &str, max: usize) -> Result<(), FieldError> {
    let count = value.chars().count();
    if count > max {
        return Err(field_error(
            field,
            format!("at most {max} characters ({count} given)"),
        ));
    }
    Ok(())
}

/// A link the page can show: an absolute `http://` or `https://` URL with a host, so never
/// `javascript:` or `data:`.
fn check_url(url: &str) -> Result<(), FieldError> {
    let bad = |why: &str| field_error("socialLinks", format!("{why}: {url:?}"));
    let lower = url.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))
        .ok_or_else(|| bad("a link must start with https:// or http://"))?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.is_empty() {
        return Err(bad("a link needs a site name after https://"));
    }
    if url.contains(|c: char| c.is_control() || c.is_whitespace()) {
        return Err(bad("a link cannot contain spaces"));
    }
    length("socialLinks", url, MAX_URL_CHARS)
}

#[cfg(test)]
mod tests {
    use super::super::section::{Overrides, Source};
    use super::*;

    fn patched(overrides: &Overrides, json: &str) -> Result<(Overrides, PageValues), FieldError> {
        let patch = serde_json::from_str(json).unwrap();
        overrides.patched(&PageValues::default(), patch)
    }

    #[test]
    fn a_title_from_the_console_wins_and_falls_back_to_the_config() {
        let config = PageValues {
            stream_title: "From config".into(),
            ..PageValues::default()
        };
        let patch = serde_json::from_str(r#"{"streamTitle": "  Live now "}"#).unwrap();
        let (overrides, values) = Overrides::default().patched(&config, patch).unwrap();
        assert_eq!(values.stream_title, "Live now");
        assert_eq!(overrides.sources(&config)["streamTitle"], Source::Console);
        assert_eq!(overrides.sources(&config)["tags"], Source::Default);
        let reset = serde_json::from_str(r#"{"streamTitle": null}"#).unwrap();
        let (overrides, values) = overrides.patched(&config, reset).unwrap();
        assert_eq!(values.stream_title, "From config");
        assert_eq!(overrides.sources(&config)["streamTitle"], Source::Config);
    }

    #[test]
    fn values_over_a_limit_are_refused_by_field() {
        let overrides = Overrides::default();
        let long_title = format!(r#"{{"streamTitle": "{}"}}"#, "x".repeat(101));
        for (json, field) in [
            (long_title.as_str(), "streamTitle"),
            (r#"{"streamTitle": "   "}"#, "streamTitle"),
            (r#"{"streamTitle": "a\nb"}"#, "streamTitle"),
            (r#"{"summary": "a\u0007"}"#, "summary"),
            (r#"{"tags": ["Music", "music"]}"#, "tags"),
            (
                r#"{"socialLinks": [{"platform": "x", "url": "javascript:alert(1)"}]}"#,
                "socialLinks",
            ),
            (
                r#"{"socialLinks": [{"platform": "x", "url": "https://"}]}"#,
                "socialLinks",
            ),
            (
                r#"{"socialLinks": [{"platform": "", "url": "https://a.example"}]}"#,
                "socialLinks",
            ),
            (r#"{"title": "x"}"#, "title"),
            (r#"{"streamTitle": 7}"#, "streamTitle"),
            (r#"{"tags": "a,b"}"#, "tags"),
        ] {
            let error = patched(&overrides, json).unwrap_err();
            assert_eq!(error.field, field, "{json}: {error}");
        }
        let many_tags: Vec<String> = (0..21).map(|n| format!("t{n}")).collect();
        let json = serde_json::json!({ "tags": many_tags }).to_string();
        assert_eq!(patched(&overrides, &json).unwrap_err().field, "tags");
        let css = serde_json::json!({ "customCss": "a".repeat(MAX_CUSTOM_CSS_BYTES + 1) });
        assert_eq!(
            patched(&overrides, &css.to_string()).unwrap_err().field,
            "customCss"
        );
    }

    #[test]
    fn good_values_pass_cleaned() {
        let (_, values) = patched(
            &Overrides::default(),
            r#"{"tags": [" music ", "", "live"], "summary": "Line one\nhttps://x.example\n\n",
                "socialLinks": [{"platform": " Mastodon ", "url": "https://social.example/@me"}],
                "offlineMessage": "Back on Friday", "customCss": "h1 { color: red }"}"#,
        )
        .unwrap();
        assert_eq!(values.tags, ["music", "live"]);
        assert_eq!(values.summary, "Line one\nhttps://x.example");
        assert_eq!(values.social_links[0].platform, "Mastodon");
    }
}
