//! The viewer page's settings: title, summary, tags, offline message, social links and custom
//! CSS, as the console edits them, and the limits every value is held to wherever it comes
//! from (`config.toml` or the console).

use serde::{Deserialize, Serialize};

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

/// The page settings the console has set; the others come from `config.toml`. What
/// `settings.json` holds under `"page"`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PageOverrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offline_message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub social_links: Option<Vec<SocialLink>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custom_css: Option<String>,
}

/// A change from the console: a field left out stays as it is, `null` drops the console's
/// value, anything else sets it.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PagePatch {
    #[serde(default, deserialize_with = "present")]
    pub stream_title: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub summary: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub tags: Option<Option<Vec<String>>>,
    #[serde(default, deserialize_with = "present")]
    pub offline_message: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub social_links: Option<Option<Vec<SocialLink>>>,
    #[serde(default, deserialize_with = "present")]
    pub custom_css: Option<Option<String>>,
}

/// A field given, as `null` or a value (serde maps an absent one to the `default`, `None`).
fn present<'de, T, D>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: serde::Deserializer<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// Where a setting's value comes from, as the console shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Default,
    Config,
    Console,
}

/// Where each page value comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PageSources {
    pub stream_title: Source,
    pub summary: Source,
    pub tags: Source,
    pub offline_message: Source,
    pub social_links: Source,
    pub custom_css: Source,
}

/// A value that breaks a limit: which field (as the API names it), and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

fn field_error(field: &'static str, message: impl Into<String>) -> FieldError {
    FieldError {
        field,
        message: message.into(),
    }
}

impl PageOverrides {
    /// The values shown: the console's where it set one, else `config`'s.
    pub fn apply_to(&self, config: &PageValues) -> PageValues {
        fn pick<T: Clone>(console: &Option<T>, config: &T) -> T {
            console.as_ref().unwrap_or(config).clone()
        }
        PageValues {
            stream_title: pick(&self.stream_title, &config.stream_title),
            summary: pick(&self.summary, &config.summary),
            tags: pick(&self.tags, &config.tags),
            offline_message: pick(&self.offline_message, &config.offline_message),
            social_links: pick(&self.social_links, &config.social_links),
            custom_css: pick(&self.custom_css, &config.custom_css),
        }
    }

    /// Where each value of [`Self::apply_to`] comes from: the console, `config.toml` where it
    /// differs from the built-in default, else the default.
    pub fn sources(&self, config: &PageValues) -> PageSources {
        let default = PageValues::default();
        fn source<T: PartialEq>(console: &Option<T>, config: &T, default: &T) -> Source {
            match console {
                Some(_) => Source::Console,
                None if config != default => Source::Config,
                None => Source::Default,
            }
        }
        PageSources {
            stream_title: source(
                &self.stream_title,
                &config.stream_title,
                &default.stream_title,
            ),
            summary: source(&self.summary, &config.summary, &default.summary),
            tags: source(&self.tags, &config.tags, &default.tags),
            offline_message: source(
                &self.offline_message,
                &config.offline_message,
                &default.offline_message,
            ),
            social_links: source(
                &self.social_links,
                &config.social_links,
                &default.social_links,
            ),
            custom_css: source(&self.custom_css, &config.custom_css, &default.custom_css),
        }
    }

    /// These overrides with `patch` applied, each new value cleaned up ([`clean`]) and
    /// checked; the first value that breaks a limit is the error, and nothing changes.
    pub fn patched(&self, patch: PagePatch) -> Result<PageOverrides, FieldError> {
        fn set<T>(field: &mut Option<T>, change: Option<Option<T>>) {
            if let Some(change) = change {
                *field = change;
            }
        }
        let mut next = self.clone();
        set(&mut next.stream_title, patch.stream_title);
        set(&mut next.summary, patch.summary);
        set(&mut next.tags, patch.tags);
        set(&mut next.offline_message, patch.offline_message);
        set(&mut next.social_links, patch.social_links);
        set(&mut next.custom_css, patch.custom_css);
        let next = next.cleaned();
        next.check()?;
        Ok(next)
    }

    fn cleaned(self) -> Self {
        Self {
            stream_title: self.stream_title.map(|t| t.trim().to_owned()),
            summary: self.summary.map(|s| s.trim_end().to_owned()),
            tags: self.tags.map(clean_tags),
            offline_message: self.offline_message.map(|m| m.trim().to_owned()),
            social_links: self.social_links.map(|links| {
                links
                    .into_iter()
                    .map(|link| SocialLink {
                        platform: link.platform.trim().to_owned(),
                        url: link.url.trim().to_owned(),
                    })
                    .collect()
            }),
            custom_css: self.custom_css,
        }
    }

    /// Checks the values set here against the limits.
    pub fn check(&self) -> Result<(), FieldError> {
        let default = PageValues::default();
        let values = self.apply_to(&default);
        check(&values)
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
fn line(field: &'static str, value: &str, max: usize) -> Result<(), FieldError> {
    if value.contains(char::is_control) {
        return Err(field_error(
            field,
            "no line breaks or other control characters",
        ));
    }
    length(field, value, max)
}

/// Text that may have line breaks (and tabs), no other control characters.
fn text(field: &'static str, value: &str, max: usize) -> Result<(), FieldError> {
    if value
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(field_error(field, "no control characters"));
    }
    length(field, value, max)
}

fn length(field: &'static str, value: &str, max: usize) -> Result<(), FieldError> {
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
    use super::*;

    fn patch(json: &str) -> PagePatch {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn a_patch_sets_resets_and_leaves_fields() {
        let config = PageValues {
            stream_title: "From config".into(),
            ..PageValues::default()
        };
        let overrides = PageOverrides::default()
            .patched(patch(r#"{"streamTitle": "  Live now ", "summary": "Hi"}"#))
            .unwrap();
        let values = overrides.apply_to(&config);
        assert_eq!(values.stream_title, "Live now");
        assert_eq!(values.summary, "Hi");
        let sources = overrides.sources(&config);
        assert_eq!(sources.stream_title, Source::Console);
        assert_eq!(sources.tags, Source::Default);

        let overrides = overrides
            .patched(patch(r#"{"streamTitle": null}"#))
            .unwrap();
        assert_eq!(overrides.apply_to(&config).stream_title, "From config");
        assert_eq!(overrides.sources(&config).stream_title, Source::Config);
        assert_eq!(overrides.apply_to(&config).summary, "Hi", "left as it was");
    }

    #[test]
    fn values_over_a_limit_are_refused_by_field() {
        let overrides = PageOverrides::default();
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
        ] {
            let error = overrides.patched(patch(json)).unwrap_err();
            assert_eq!(error.field, field, "{json}: {error}");
        }
        let many_tags: Vec<String> = (0..21).map(|n| format!("t{n}")).collect();
        let json = serde_json::json!({ "tags": many_tags }).to_string();
        assert_eq!(overrides.patched(patch(&json)).unwrap_err().field, "tags");
        let css = serde_json::json!({ "customCss": "a".repeat(MAX_CUSTOM_CSS_BYTES + 1) });
        assert_eq!(
            overrides
                .patched(patch(&css.to_string()))
                .unwrap_err()
                .field,
            "customCss"
        );
    }

    #[test]
    fn good_values_pass_cleaned() {
        let overrides = PageOverrides::default()
            .patched(patch(
                r#"{"tags": [" music ", "", "live"], "summary": "Line one\nhttps://x.example\n\n",
                    "socialLinks": [{"platform": " Mastodon ", "url": "https://social.example/@me"}],
                    "offlineMessage": "Back on Friday", "customCss": "h1 { color: red }"}"#,
            ))
            .unwrap();
        assert_eq!(
            overrides.tags.as_deref(),
            Some(&["music".to_owned(), "live".to_owned()][..])
        );
        assert_eq!(
            overrides.summary.as_deref(),
            Some("Line one\nhttps://x.example")
        );
        assert_eq!(
            overrides.social_links.as_ref().unwrap()[0].platform,
            "Mastodon"
        );
    }

    #[test]
    fn unknown_fields_and_wrong_types_are_not_a_patch() {
        assert!(serde_json::from_str::<PagePatch>(r#"{"title": "x"}"#).is_err());
        assert!(serde_json::from_str::<PagePatch>(r#"{"streamTitle": 7}"#).is_err());
        assert!(serde_json::from_str::<PagePatch>(r#"{"tags": "a,b"}"#).is_err());
    }
}
