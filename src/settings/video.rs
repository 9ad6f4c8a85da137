//! The video settings the console edits: the ladder (the renditions viewers switch between),
//! the segment length and the live playlist's window. The first values are `config.toml`'s
//! `[[video.variants]]` and `[hls]`, held to the same limits ([`VideoValues::check`] is the
//! one check of both). They apply at the next publish; the console's "apply now" restarts the
//! live pipeline with them ([`crate::pipeline::Pipeline::set_video`]).

use serde::{Deserialize, Serialize};

use super::section::{field_error, FieldError, Section};
use crate::config::{Config, HlsConfig, VariantConfig};

/// The most renditions in a ladder.
pub const MAX_RENDITIONS: usize = 8;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VideoValues {
    pub variants: Vec<Rendition>,
    /// Target segment length; segments are cut on the first keyframe at or after it.
    pub segment_seconds: u32,
    /// Segments in the rolling live playlist.
    pub playlist_segments: usize,
}

/// One rendition, as the API spells it (`config.toml`'s `[[video.variants]]` in camelCase).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rendition {
    pub name: String,
    #[serde(default)]
    pub passthrough: bool,
    #[serde(default)]
    pub height: Option<u32>,
    #[serde(default)]
    pub video_bitrate_kbps: Option<u32>,
    #[serde(default)]
    pub framerate: Option<f64>,
    #[serde(default = "default_cpu_usage_level")]
    pub cpu_usage_level: u8,
    #[serde(default)]
    pub audio_bitrate_kbps: Option<u32>,
}

fn default_cpu_usage_level() -> u8 {
    VariantConfig::default().cpu_usage_level
}

impl From<&VariantConfig> for Rendition {
    fn from(v: &VariantConfig) -> Self {
        Rendition {
            name: v.name.clone(),
            passthrough: v.passthrough,
            height: v.height,
            video_bitrate_kbps: v.video_bitrate_kbps,
            framerate: v.framerate,
            cpu_usage_level: v.cpu_usage_level,
            audio_bitrate_kbps: v.audio_bitrate_kbps,
        }
    }
}

impl From<&Rendition> for VariantConfig {
    fn from(r: &Rendition) -> Self {
        VariantConfig {
            name: r.name.clone(),
            passthrough: r.passthrough,
            height: r.height,
            video_bitrate_kbps: r.video_bitrate_kbps,
            framerate: r.framerate,
            cpu_usage_level: r.cpu_usage_level,
            audio_bitrate_kbps: r.audio_bitrate_kbps,
        }
    }
}

impl VideoValues {
    pub fn of_config(config: &Config) -> Self {
        VideoValues {
            variants: config.video.variants.iter().map(Rendition::from).collect(),
            segment_seconds: config.hls.segment_seconds,
            playlist_segments: config.hls.playlist_segments,
        }
    }

    /// The ladder as the pipeline takes it.
    pub fn ladder(&self) -> Vec<VariantConfig> {
        self.variants.iter().map(VariantConfig::from).collect()
    }

    pub fn hls(&self) -> HlsConfig {
        HlsConfig {
            segment_seconds: self.segment_seconds,
            playlist_segments: self.playlist_segments,
        }
    }
}

impl Default for VideoValues {
    fn default() -> Self {
        VideoValues::of_config(&Config::default())
    }
}

impl Section for VideoValues {
    fn cleaned(self) -> Self {
        VideoValues {
            variants: self
                .variants
                .into_iter()
                .map(|r| Rendition {
                    name: r.name.trim().to_owned(),
                    ..r
                })
                .collect(),
            ..self
        }
    }

    fn check(&self) -> Result<(), FieldError> {
        if !(1..=30).contains(&self.segment_seconds) {
            return Err(field_error(
                "segmentSeconds",
                format!(
                    "{} is out of range: use 1 to 30 (2 is usual)",
                    self.segment_seconds
                ),
            ));
        }
        if !(3..=100).contains(&self.playlist_segments) {
            return Err(field_error(
                "playlistSegments",
                format!(
                    "{} is out of range: use 3 to 100 (RFC 8216 asks for at least 3 segments)",
                    self.playlist_segments
                ),
            ));
        }
        check_ladder(&self.variants)
    }
}

fn check_ladder(variants: &[Rendition]) -> Result<(), FieldError> {
    if variants.is_empty() {
        return Err(field_error(
            "variants",
            "list at least one rendition (the source, or one to encode)",
        ));
    }
    if variants.len() > MAX_RENDITIONS {
        return Err(field_error(
            "variants",
            format!("at most {MAX_RENDITIONS} renditions"),
        ));
    }
    if variants.iter().filter(|v| v.passthrough).count() > 1 {
        return Err(field_error(
            "variants",
            "at most one rendition can be passthrough",
        ));
    }
    for (index, variant) in variants.iter().enumerate() {
        check_rendition(index, variant, &variants[..index])?;
    }
    Ok(())
}

/// One rendition; `earlier` are the ones before it (names are unique).
fn check_rendition(
    index: usize,
    variant: &Rendition,
    earlier: &[Rendition],
) -> Result<(), FieldError> {
    let field = |name: &str| format!("variants[{index}].{name}");
    let out_of_range = |name: &str, message: String| Err(field_error(&field(name), message));
    if variant.name.trim().is_empty() {
        return out_of_range("name", "give every rendition a name, like \"480p\"".into());
    }
    if variant.name.chars().count() > 32 || variant.name.contains(char::is_control) {
        return out_of_range("name", "at most 32 characters, one line".into());
    }
    if earlier.iter().any(|other| other.name == variant.name) {
        return out_of_range("name", format!("\"{}\" is used twice", variant.name));
    }
    if variant.cpu_usage_level > 4 {
        return out_of_range(
            "cpuUsageLevel",
            format!(
                "{} is out of range: 0 (ultrafast) to 4 (fast)",
                variant.cpu_usage_level
            ),
        );
    }
    if let Some(kbps) = variant.audio_bitrate_kbps {
        if !(32..=512).contains(&kbps) {
            return out_of_range(
                "audioBitrateKbps",
                format!("{kbps} is out of range: 32 to 512 (AAC-LC)"),
            );
        }
    }
    if variant.passthrough {
        for (name, set) in [
            ("height", variant.height.is_some()),
            ("videoBitrateKbps", variant.video_bitrate_kbps.is_some()),
            ("framerate", variant.framerate.is_some()),
        ] {
            if set {
                return out_of_range(
                    name,
                    "a passthrough rendition copies the source: remove this or passthrough".into(),
                );
            }
        }
        return Ok(());
    }
    match variant.height {
        Some(height) if (64..=4320).contains(&height) => {}
        Some(height) => {
            return out_of_range("height", format!("{height} is out of range: 64 to 4320"))
        }
        None => return out_of_range("height", "missing: set the output height, like 480".into()),
    }
    match variant.video_bitrate_kbps {
        Some(kbps) if (100..=100_000).contains(&kbps) => {}
        Some(kbps) => {
            return out_of_range(
                "videoBitrateKbps",
                format!("{kbps} is out of range: 100 to 100000"),
            )
        }
        None => {
            return out_of_range(
                "videoBitrateKbps",
                "missing: set the video bitrate, like 1200".into(),
            )
        }
    }
    if let Some(rate) = variant.framerate {
        if !(1.0..=120.0).contains(&rate) {
            return out_of_range("framerate", format!("{rate} is out of range: 1 to 120"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::section::Overrides;
    use super::*;

    fn patched(json: &str) -> Result<VideoValues, FieldError> {
        let patch = serde_json::from_str(json).unwrap();
        Overrides::default()
            .patched(&VideoValues::default(), patch)
            .map(|(_, values)| values)
    }

    #[test]
    fn the_default_ladder_is_config_tomls_and_passes() {
        let values = VideoValues::default();
        assert_eq!(values.variants.len(), 2);
        assert_eq!(values.segment_seconds, 2);
        assert!(values.check().is_ok());
        let ladder = values.ladder();
        assert_eq!(ladder[1].height, Some(480));
    }

    #[test]
    fn a_new_ladder_is_taken_whole_with_names_trimmed() {
        let values = patched(
            r#"{"variants": [{"name": " source ", "passthrough": true},
                             {"name": "360p", "height": 360, "videoBitrateKbps": 800,
                              "framerate": 30, "cpuUsageLevel": 0}],
                "segmentSeconds": 4}"#,
        )
        .unwrap();
        assert_eq!(values.variants[0].name, "source");
        assert_eq!(values.variants[1].cpu_usage_level, 0);
        assert_eq!(values.segment_seconds, 4);
        assert_eq!(values.playlist_segments, 6, "not sent: config.toml's");
    }

    #[test]
    fn bad_ladders_are_refused_at_the_field() {
        for (json, field, says) in [
            (r#"{"variants": []}"#, "variants", "at least one"),
            (
                r#"{"variants": [{"name": "a", "height": 9000, "videoBitrateKbps": 800}]}"#,
                "variants[0].height",
                "9000 is out of range: 64 to 4320",
            ),
            (
                r#"{"variants": [{"name": "a", "passthrough": true}, {"name": "a", "passthrough": true}]}"#,
                "variants",
                "at most one rendition can be passthrough",
            ),
            (
                r#"{"variants": [{"name": "a", "passthrough": true}, {"name": "a", "height": 360, "videoBitrateKbps": 800}]}"#,
                "variants[1].name",
                "used twice",
            ),
            (
                r#"{"variants": [{"name": "a", "height": 360}]}"#,
                "variants[0].videoBitrateKbps",
                "missing",
            ),
            (
                r#"{"variants": [{"name": "a", "passthrough": true, "height": 360}]}"#,
                "variants[0].height",
                "copies the source",
            ),
            (r#"{"segmentSeconds": 0}"#, "segmentSeconds", "1 to 30"),
            (r#"{"playlistSegments": 2}"#, "playlistSegments", "3 to 100"),
        ] {
            let error = patched(json).unwrap_err();
            assert_eq!(error.field, field, "{json}: {error}");
            assert!(error.message.contains(says), "{json}: {error}");
        }
    }
}
