//! One rung of the adaptive-bitrate ladder: decoded pictures in, H.264 access units out, ready
//! for the HLS segmenter (AVCC framing, millisecond timestamps, the stream's avcC).
//!
//! Per picture: the frame-rate cap (drop by pts), swscale (bilinear, to yuv420p, only when the
//! size or pixel format differs from the output), then libx264 through libavcodec, set up as
//! self-hosted live servers run it: `tune=zerolatency` (no B-frames, no lookahead: a packet out
//! for every picture in), ABR with a VBV cap, a fixed GOP without scene cuts, and IDRs forced by
//! the caller at the segment boundaries so that every rung cuts at the same timestamps.
//!
//! Threading: a [`VideoEncoder`] is owned and driven by one thread (one encoder thread per
//! variant); it is `Send`. libx264 may run worker threads of its own behind it
//! ([`EncoderSettings::threads`]). The
//! [`DecodedFrame`]s it reads are shared with the other variants' encoders and are never written:
//! scaling writes into this encoder's own picture, and a picture passed through unscaled is sent
//! through a new reference whose properties (pts, picture type) are this encoder's own.

use std::fmt::Write as _;

use bytes::Bytes;
use ffmpeg_next::ffi;
use ffmpeg_next::format::Pixel;
use ffmpeg_next::frame;
use ffmpeg_next::picture;
use ffmpeg_next::software::scaling;
use ffmpeg_next::{Dictionary, Packet, Rational};

use super::codec_io::{encoder_context, extradata, receive_packets};
use super::decoder::DecodedFrame;
use crate::media::avc::{annexb_nal_units, annexb_to_avcc, AvcError};
use crate::media::{AvcDecoderConfig, MediaPacket, TrackKind};

/// Why a decoder or an encoder could not do its job.
#[derive(thiserror::Error, Debug)]
pub enum TranscodeError {
    #[error("{0} is not available in the libavcodec this program is linked with")]
    CodecMissing(&'static str),
    #[error("{call} failed: {source}")]
    Ffmpeg {
        call: &'static str,
        #[source]
        source: ffmpeg_next::Error,
    },
    #[error("opening libx264 ({settings}) failed: {source}")]
    OpenEncoder {
        settings: String,
        #[source]
        source: ffmpeg_next::Error,
    },
    #[error("libx264 did not accept the option {key}={value} ({settings})")]
    OptionNotAccepted {
        key: String,
        value: String,
        settings: String,
    },
    #[error("libx264's global headers are not a usable SPS + PPS: {0}")]
    EncoderHeaders(#[source] AvcError),
    #[error("invalid encoder settings: {0}")]
    InvalidSettings(String),
    #[error("swscale cannot convert {from} to {to}")]
    Scaler { from: String, to: String },
    #[error("invalid input: {0}")]
    InvalidInput(&'static str),
    #[error("out of memory in {0}")]
    OutOfMemory(&'static str),
    #[error("unsupported source audio: {0}")]
    UnsupportedAudio(String),
    #[error("the aac encoder's extradata is not a usable AudioSpecificConfig: {0}")]
    AudioEncoderConfig(#[source] crate::media::aac::AacError),
}

/// What one variant of the ladder encodes to.
#[derive(Debug, Clone, PartialEq)]
pub struct EncoderSettings {
    /// Output size in pixels: even numbers (4:2:0); the caller computes the width from the
    /// source aspect ratio.
    pub width: u32,
    pub height: u32,
    pub video_bitrate_kbps: u32,
    /// Pictures above this rate are dropped before encoding (by pts).
    pub max_framerate: Option<f64>,
    /// x264 preset, "ultrafast" ..= "fast". "ultrafast" turns CABAC and the 8x8 transform off,
    /// so x264 then signals (Constrained) Baseline even though the profile cap is High.
    pub preset: &'static str,
    /// Keyframe interval in pictures: frame rate × segment seconds.
    pub gop_frames: u32,
    /// Frames per second for rate control: the source's, or the capped rate.
    pub frame_rate_hint: f64,
    /// libx264's own worker threads (slice threads under zerolatency); 0 lets x264 pick
    /// (1.5 × cores). See [`super::threads`].
    pub threads: u32,
}

impl EncoderSettings {
    fn check(&self) -> Result<(), TranscodeError> {
        let bad = |what: String| Err(TranscodeError::InvalidSettings(what));
        if self.width == 0 || self.height == 0 || self.width % 2 == 1 || self.height % 2 == 1 {
            return bad(format!(
                "output size {}x{} must be even and non-zero (4:2:0 chroma)",
                self.width, self.height
            ));
        }
        if self.width > 8192 || self.height > 8192 {
            return bad(format!(
                "output size {}x{} is beyond 8192",
                self.width, self.height
            ));
        }
        if self.video_bitrate_kbps == 0 || self.video_bitrate_kbps > 1_000_000 {
            return bad(format!(
                "video bitrate {} kbps is not in 1..=1000000",
                self.video_bitrate_kbps
            ));
        }
        if self.gop_frames == 0 {
            return bad("gop_frames must be at least 1".into());
        }
        let rate_ok = |r: f64| r.is_finite() && (0.1..=1000.0).contains(&r);
        if !rate_ok(self.frame_rate_hint) {
            return bad(format!(
                "frame_rate_hint {} is not in 0.1..=1000",
                self.frame_rate_hint
            ));
        }
        if let Some(max) = self.max_framerate.filter(|&r| !rate_ok(r)) {
            return bad(format!("max_framerate {max} is not in 0.1..=1000"));
        }
        if !["ultrafast", "superfast", "veryfast", "faster", "fast"].contains(&self.preset) {
            return bad(format!(
                "preset {:?} is not one of ultrafast, superfast, veryfast, faster, fast",
                self.preset
            ));
        }
        Ok(())
    }

    fn describe(&self) -> String {
        format!(
            "{}x{} {} kbps preset {} gop {}",
            self.width, self.height, self.video_bitrate_kbps, self.preset, self.gop_frames
        )
    }
}

/// One encoded access unit.
#[derive(Debug, Clone)]
pub struct EncodedVideo {
    pub pts_ms: i64,
    pub dts_ms: i64,
    /// An IDR picture.
    pub keyframe: bool,
    /// AVCC framing (4-byte NAL lengths).
    pub data: Bytes,
}

impl EncodedVideo {
    /// As the packet the segmenter takes.
    pub fn into_media_packet(self) -> MediaPacket {
        MediaPacket {
            kind: TrackKind::Video,
            dts_ms: self.dts_ms,
            pts_ms: self.pts_ms,
            keyframe: self.keyframe,
            data: self.data,
        }
    }
}

impl From<EncodedVideo> for MediaPacket {
    fn from(video: EncodedVideo) -> Self {
        video.into_media_packet()
    }
}

/// swscale from one input definition to the encoder's size and yuv420p.
struct Scaler {
    context: scaling::Context,
    /// This encoder's picture, reused: scaled into, then sent.
    picture: frame::Video,
}

// SAFETY: an SwsContext is plain memory owned by this value and used through `&mut` only (one
// thread at a time); nothing in it is tied to the thread that created it. ffmpeg-next does not
// mark it Send only because it holds a raw pointer.
unsafe impl Send for Scaler {}

/// The input definition a scaler (or the pass-through) was set up for.
type Definition = (Pixel, u32, u32);

/// The libx264 encoder of one variant.
pub struct VideoEncoder {
    encoder: ffmpeg_next::encoder::video::Encoder,
    config: AvcDecoderConfig,
    settings: EncoderSettings,
    /// What the pictures coming in look like, and the scaler for them (None: sent as they are).
    input: Definition,
    scaler: Option<Scaler>,
    /// A blank AVFrame that references the caller's picture while it is being sent.
    passthrough: frame::Video,
    packet: Packet,
    cap: Option<FrameRateCap>,
    dropped_by_cap: u64,
    /// A keyframe asked for on a picture the cap dropped: the next picture sent gets it.
    keyframe_pending: bool,
    timeline: Timeline,
    x264_settings: Option<String>,
}

impl VideoEncoder {
    pub fn new(
        settings: &EncoderSettings,
        source_width: u32,
        source_height: u32,
        source_format: Pixel,
    ) -> Result<Self, TranscodeError> {
        settings.check()?;
        let (codec, mut video) = encoder_context(
            "libx264",
            "the libx264 encoder",
            "avcodec_alloc_context3 (libx264)",
            ffmpeg_next::encoder::Encoder::video,
        )?;
        let bitrate = i64::from(settings.video_bitrate_kbps) * 1000;
        let frame_rate = Rational::from(settings.frame_rate_hint);
        video.set_width(settings.width);
        video.set_height(settings.height);
        video.set_format(Pixel::YUV420P);
        video.set_time_base(Rational::new(1, 1000));
        video.set_frame_rate(Some(frame_rate));
        video.set_gop(settings.gop_frames);
        // SAFETY: the context is allocated (checked above) and not opened; these are plain fields libx264 reads when it opens.
        unsafe {
            let ctx = video.as_mut_ptr();
            (*ctx).bit_rate = bitrate;
            (*ctx).rc_max_rate = bitrate * 106 / 100;
            (*ctx).rc_buffer_size = i32::try_from(bitrate * 12 / 10).unwrap_or(i32::MAX);
            (*ctx).keyint_min = settings.gop_frames as i32;
            (*ctx).sample_aspect_ratio = ffi::AVRational { num: 1, den: 1 };
            // The avcC comes from the global headers; keyframes carry no SPS/PPS in band.
            (*ctx).flags |= ffi::AV_CODEC_FLAG_GLOBAL_HEADER as i32;
            // thread_count 0 is X264_THREADS_AUTO; thread_type 0 leaves sliced threads to the
            // tune (libx264.c sets b_sliced_threads from a non-zero thread_type, which would
            // override zerolatency's choice).
            (*ctx).thread_count = i32::try_from(settings.threads).unwrap_or(0);
            (*ctx).thread_type = 0;
        }
        let gop = settings.gop_frames;
        let options = [
            ("preset", settings.preset.to_string()),
            ("tune", "zerolatency".to_string()),
            ("profile", "high".to_string()),
            ("forced-idr", "1".to_string()),
            (
                "x264-params",
                format!("scenecut=0:open_gop=0:keyint={gop}:min-keyint={gop}"),
            ),
        ];
        let mut dictionary = Dictionary::new();
        for (key, value) in &options {
            dictionary.set(key, value);
        }
        // SAFETY: avcodec_open2 takes the dictionary by pointer and leaves in it the options
        // it did not use; we take ownership back in every case.
        let (opened, leftover) = unsafe {
            let mut raw = dictionary.disown();
            let ret = ffi::avcodec_open2(video.as_mut_ptr(), codec.as_ptr(), &mut raw);
            (ret, Dictionary::own(raw))
        };
        if opened < 0 {
            return Err(TranscodeError::OpenEncoder {
                settings: settings.describe(),
                source: ffmpeg_next::Error::from(opened),
            });
        }
        if let Some((key, value)) = leftover.iter().next() {
            return Err(TranscodeError::OptionNotAccepted {
                key: key.to_string(),
                value: value.to_string(),
                settings: settings.describe(),
            });
        }
        let encoder = ffmpeg_next::encoder::video::Encoder(video);
        let config = AvcDecoderConfig::from_annexb_parameter_sets(&extradata(&encoder))
            .map_err(TranscodeError::EncoderHeaders)?;

        let mut this = VideoEncoder {
            encoder,
            config,
            settings: settings.clone(),
            input: (Pixel::None, 0, 0),
            scaler: None,
            passthrough: frame::Video::empty(),
            packet: Packet::empty(),
            cap: settings.max_framerate.map(FrameRateCap::new),
            dropped_by_cap: 0,
            keyframe_pending: false,
            timeline: Timeline::new(settings.frame_rate_hint),
            x264_settings: None,
        };
        this.set_input((source_format, source_width, source_height))?;
        Ok(this)
    }

    /// The avcC of the stream this encoder produces (from x264's global headers).
    pub fn config(&self) -> &AvcDecoderConfig {
        &self.config
    }

    pub fn settings(&self) -> &EncoderSettings {
        &self.settings
    }

    /// The options string x264 writes into its first keyframe ("cabac=1 ref=1 ... threads=N
    /// lookahead_threads=N sliced_threads=1 ... keyint=60 keyint_min=31 ..."): the settings as
    /// x264 applied them, for the log. Known once the first packet is out.
    pub fn x264_settings(&self) -> Option<&str> {
        self.x264_settings.as_deref()
    }

    /// Pictures dropped by the frame-rate cap.
    pub fn dropped_by_cap(&self) -> u64 {
        self.dropped_by_cap
    }

    /// Scale + encode one picture; `force_keyframe` makes it an IDR (or the next picture sent,
    /// if the cap drops this one). Returns the packets x264 completes, in AVCC framing, with
    /// pts/dts in ms and the keyframe flag.
    pub fn encode(
        &mut self,
        frame: &DecodedFrame,
        force_keyframe: bool,
    ) -> Result<Vec<EncodedVideo>, TranscodeError> {
        self.keyframe_pending |= force_keyframe;
        if let Some(cap) = &mut self.cap {
            if !cap.admit(frame.pts_ms) {
                self.dropped_by_cap += 1;
                return Ok(Vec::new());
            }
        }
        let picture = &frame.frame;
        let definition = (picture.format(), picture.width(), picture.height());
        if definition != self.input {
            self.set_input(definition)?;
        }
        let pts = self.timeline.map(frame.pts_ms);
        let kind = if self.keyframe_pending {
            picture::Type::I
        } else {
            // Decoded pictures carry the source's I/P/B types, and libx264.c turns a frame's
            // pict_type into x264's frame type: pass them on and the source's GOP would leak.
            picture::Type::None
        };

        let sent = match &mut self.scaler {
            Some(scaler) => {
                // SAFETY: make_writable gives the picture buffers of its own if libavcodec
                // still held a reference (it does not, once send_frame returned; cheap check).
                let writable = unsafe { ffi::av_frame_make_writable(scaler.picture.as_mut_ptr()) };
                if writable < 0 {
                    return Err(TranscodeError::Ffmpeg {
                        call: "av_frame_make_writable (scaled picture)",
                        source: ffmpeg_next::Error::from(writable),
                    });
                }
                scaler
                    .context
                    .run(picture, &mut scaler.picture)
                    .map_err(|source| TranscodeError::Ffmpeg {
                        call: "sws_scale",
                        source,
                    })?;
                scaler.picture.set_pts(Some(pts));
                scaler.picture.set_kind(kind);
                self.encoder.send_frame(&scaler.picture)
            }
            None => {
                // SAFETY: `passthrough` is a blank AVFrame (unreferenced after every use below);
                // av_frame_ref makes it a new reference to the caller's buffers and copies the
                // properties, which we then change on our AVFrame only.
                let referenced =
                    unsafe { ffi::av_frame_ref(self.passthrough.as_mut_ptr(), picture.as_ptr()) };
                if referenced < 0 {
                    return Err(TranscodeError::Ffmpeg {
                        call: "av_frame_ref",
                        source: ffmpeg_next::Error::from(referenced),
                    });
                }
                self.passthrough.set_pts(Some(pts));
                self.passthrough.set_kind(kind);
                let sent = self.encoder.send_frame(&self.passthrough);
                // SAFETY: libavcodec took its own reference (or copy) in send_frame.
                unsafe { ffi::av_frame_unref(self.passthrough.as_mut_ptr()) };
                sent
            }
        };
        sent.map_err(|source| TranscodeError::Ffmpeg {
            call: "avcodec_send_frame (libx264)",
            source,
        })?;
        self.keyframe_pending = false;
        let mut out = Vec::new();
        self.receive(&mut out)?;
        Ok(out)
    }

    /// End of stream: the packets x264 still holds. The encoder takes no pictures after this.
    pub fn flush(&mut self) -> Result<Vec<EncodedVideo>, TranscodeError> {
        self.encoder
            .send_eof()
            .map_err(|source| TranscodeError::Ffmpeg {
                call: "avcodec_send_frame (libx264, end of stream)",
                source,
            })?;
        let mut out = Vec::new();
        self.receive(&mut out)?;
        Ok(out)
    }

    /// Set up for pictures of `definition`: pass-through when it is already the output.
    fn set_input(&mut self, definition: Definition) -> Result<(), TranscodeError> {
        let (format, width, height) = definition;
        let output = (Pixel::YUV420P, self.settings.width, self.settings.height);
        self.scaler = if definition == output {
            None
        } else {
            let context = scaling::Context::get(
                format,
                width,
                height,
                output.0,
                output.1,
                output.2,
                scaling::Flags::BILINEAR,
            )
            .map_err(|_| TranscodeError::Scaler {
                from: format!("{format:?} {width}x{height}"),
                to: format!("{:?} {}x{}", output.0, output.1, output.2),
            })?;
            let picture = frame::Video::new(output.0, output.1, output.2);
            // SAFETY: reading the pointer of a frame we own.
            if unsafe { picture.is_empty() } {
                return Err(TranscodeError::OutOfMemory(
                    "av_frame_get_buffer (scaled picture)",
                ));
            }
            Some(Scaler { context, picture })
        };
        self.input = definition;
        Ok(())
    }

    /// Every packet x264 has ready.
    fn receive(&mut self, out: &mut Vec<EncodedVideo>) -> Result<(), TranscodeError> {
        receive_packets(
            &mut self.encoder,
            &mut self.packet,
            "avcodec_receive_packet (libx264)",
            |packet, data| {
                if self.x264_settings.is_none() {
                    self.x264_settings = Some(x264_sei_settings(data).unwrap_or_default());
                }
                let pts_ms = packet.pts().unwrap_or(0);
                out.push(EncodedVideo {
                    pts_ms,
                    dts_ms: packet.dts().unwrap_or(pts_ms),
                    keyframe: packet.is_key(),
                    data: annexb_to_avcc(data),
                });
            },
        )
    }
}

impl std::fmt::Debug for VideoEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VideoEncoder")
            .field("settings", &self.settings)
            .field("codecs", &self.config.codecs_string())
            .field("input", &self.input)
            .field("scaling", &self.scaler.is_some())
            .field("dropped_by_cap", &self.dropped_by_cap)
            .finish()
    }
}

/// The options string of x264's "user data unregistered" SEI (H.264 D.1.6: a 16-byte UUID,
/// then "x264 - core N rX - H.264/MPEG-4 AVC codec - Copyleft ... - options: ...", NUL ended),
/// which libx264.c puts in front of the first packet.
fn x264_sei_settings(annexb: &[u8]) -> Option<String> {
    const MARK: &[u8] = b"options: ";
    for nal in annexb_nal_units(annexb).filter(|nal| nal[0] & 0x1f == 6) {
        let Some(at) = nal.windows(MARK.len()).position(|w| w == MARK) else {
            continue;
        };
        let text = &nal[at + MARK.len()..];
        let end = text.iter().position(|&b| b == 0).unwrap_or(text.len());
        let mut s = String::new();
        for &b in &text[..end] {
            // The string is ASCII and has no 00 00 0x runs, so no emulation prevention in it.
            if b.is_ascii_graphic() || b == b' ' {
                s.push(char::from(b));
            } else {
                let _ = write!(s, "\\x{b:02x}");
            }
        }
        return Some(s);
    }
    None
}

/// Drops pictures that come faster than a maximum rate, by pts.
///
/// Picture slots are spaced by the interval of the maximum rate; a picture is taken when it
/// reaches the next slot (with a quarter interval of tolerance for millisecond rounding and
/// jitter), and the slot after it is at least one interval (less the tolerance) after the
/// picture, so a slower source never banks slots for a burst later. A pts going backwards (a
/// new timeline) starts over.
#[derive(Debug, Clone)]
struct FrameRateCap {
    interval: f64,
    tolerance: f64,
    next: Option<f64>,
    last: f64,
}

impl FrameRateCap {
    fn new(max_framerate: f64) -> Self {
        let interval = 1000.0 / max_framerate;
        FrameRateCap {
            interval,
            tolerance: interval / 4.0,
            next: None,
            last: f64::NEG_INFINITY,
        }
    }

    fn admit(&mut self, pts_ms: i64) -> bool {
        let pts = pts_ms as f64;
        let slot = match self.next {
            Some(next) if pts >= self.last => {
                if pts < next - self.tolerance {
                    return false;
                }
                next
            }
            _ => pts, // the first picture, or the timeline went backwards
        };
        self.next = Some((slot + self.interval).max(pts + self.interval - self.tolerance));
        self.last = pts;
        true
    }
}

/// Keeps the pts sent to x264 strictly increasing: a picture at or before the previous one
/// (timestamps that went backwards) moves the rest of the stream to one frame interval after it.
#[derive(Debug, Clone)]
struct Timeline {
    offset: i64,
    last: Option<i64>,
    interval: i64,
}

impl Timeline {
    fn new(frame_rate: f64) -> Self {
        Timeline {
            offset: 0,
            last: None,
            interval: ((1000.0 / frame_rate).round() as i64).max(1),
        }
    }

    fn map(&mut self, pts_ms: i64) -> i64 {
        let mut pts = pts_ms.saturating_add(self.offset);
        if let Some(last) = self.last {
            if pts <= last {
                let wanted = last + self.interval;
                self.offset += wanted - pts;
                pts = wanted;
            }
        }
        self.last = Some(pts);
        pts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admitted(cap: &mut FrameRateCap, pts: impl IntoIterator<Item = i64>) -> Vec<i64> {
        pts.into_iter().filter(|&p| cap.admit(p)).collect()
    }

    /// Millisecond pts of `n` pictures at `fps` from `start`, rounded as RTMP carries them.
    fn times(fps: f64, start: i64, n: usize) -> Vec<i64> {
        (0..n)
            .map(|i| start + (i as f64 * 1000.0 / fps).round() as i64)
            .collect()
    }

    #[test]
    fn cap_halves_60_to_30_and_keeps_30_at_30() {
        let mut cap = FrameRateCap::new(30.0);
        let kept = admitted(&mut cap, times(60.0, 0, 120));
        assert_eq!(kept.len(), 60);
        assert_eq!(&kept[..4], &[0, 33, 67, 100]);

        // A 30 fps source with ms rounding and ±3 ms jitter under a 30 fps cap: nothing lost.
        let mut cap = FrameRateCap::new(30.0);
        let jittered: Vec<i64> = times(30.0, 1000, 300)
            .iter()
            .enumerate()
            .map(|(i, t)| t + [0, 3, -3, 2, -2][i % 5])
            .collect();
        assert_eq!(admitted(&mut cap, jittered).len(), 300);

        // 29.97 under a 30 cap: nothing lost either.
        let mut cap = FrameRateCap::new(30.0);
        assert_eq!(
            admitted(&mut cap, times(30000.0 / 1001.0, 0, 600)).len(),
            600
        );
    }

    #[test]
    fn cap_50_to_30_keeps_30_per_second() {
        let mut cap = FrameRateCap::new(30.0);
        let kept = admitted(&mut cap, times(50.0, 0, 500)); // 10 s
        assert!((299..=301).contains(&kept.len()), "{}", kept.len());
        for pair in kept.windows(2) {
            assert!((20..=40).contains(&(pair[1] - pair[0])), "{pair:?}");
        }
    }

    #[test]
    fn cap_banks_no_slots_and_restarts_on_a_new_timeline() {
        let mut cap = FrameRateCap::new(30.0);
        // 10 s at 20 fps (all kept), then 60 fps: still only 30 per second.
        assert_eq!(admitted(&mut cap, times(20.0, 0, 200)).len(), 200);
        let burst = admitted(&mut cap, times(60.0, 10_000, 60));
        assert!((29..=31).contains(&burst.len()), "{}", burst.len());
        // Timestamps back to 0: the first picture is taken at once.
        assert!(cap.admit(0));
        assert!(!cap.admit(17));
        assert!(cap.admit(33));
    }

    #[test]
    fn timeline_only_grows() {
        let mut t = Timeline::new(30.0);
        assert_eq!(
            [0, 33, 67, 67, 100, 5, 38].map(|p| t.map(p)),
            [0, 33, 67, 100, 133, 166, 199]
        );
    }

    #[test]
    fn settings_are_checked() {
        let good = EncoderSettings {
            width: 640,
            height: 360,
            video_bitrate_kbps: 600,
            max_framerate: None,
            preset: "veryfast",
            gop_frames: 60,
            frame_rate_hint: 30.0,
            threads: 1,
        };
        assert!(good.check().is_ok());
        for bad in [
            EncoderSettings {
                width: 641,
                ..good.clone()
            },
            EncoderSettings {
                height: 0,
                ..good.clone()
            },
            EncoderSettings {
                video_bitrate_kbps: 0,
                ..good.clone()
            },
            EncoderSettings {
                gop_frames: 0,
                ..good.clone()
            },
            EncoderSettings {
                frame_rate_hint: f64::NAN,
                ..good.clone()
            },
            EncoderSettings {
                max_framerate: Some(0.0),
                ..good.clone()
            },
            EncoderSettings {
                preset: "placebo",
                ..good.clone()
            },
        ] {
            let err = bad.check().unwrap_err();
            assert!(matches!(err, TranscodeError::InvalidSettings(_)), "{err}");
        }
    }

    #[test]
    fn x264_options_from_its_sei() {
        let mut data = vec![0, 0, 0, 1, 0x06, 0x05, 0x2e];
        data.extend_from_slice(&[0xdc; 16]); // UUID
        data.extend_from_slice(b"x264 - core 164 - options: cabac=1 ref=1 threads=2\0");
        data.extend_from_slice(&[0x80, 0, 0, 0, 1, 0x65, 0x88]);
        assert_eq!(
            x264_sei_settings(&data).as_deref(),
            Some("cabac=1 ref=1 threads=2")
        );
        assert_eq!(x264_sei_settings(&[0, 0, 1, 0x65, 0x88]), None);
    }

    // ---- with libavcodec: x264 and the H.264 decoder, on small synthetic pictures ----

    use crate::transcode::decoder::VideoDecoder;

    /// A moving gradient, `kind` as a decoder would have left it.
    fn picture(width: u32, height: u32, n: usize, kind: picture::Type) -> frame::Video {
        let mut frame = frame::Video::new(Pixel::YUV420P, width, height);
        for plane in 0..3 {
            let stride = frame.stride(plane);
            let (w, h) = if plane == 0 {
                (width, height)
            } else {
                (width / 2, height / 2)
            };
            let data = frame.data_mut(plane);
            for y in 0..h as usize {
                for x in 0..w as usize {
                    data[y * stride + x] = (x + 2 * y + 3 * n + 40 * plane) as u8;
                }
            }
        }
        frame.set_kind(kind);
        frame
    }

    fn settings(width: u32, height: u32) -> EncoderSettings {
        EncoderSettings {
            width,
            height,
            video_bitrate_kbps: 300,
            max_framerate: None,
            preset: "ultrafast",
            gop_frames: 30,
            frame_rate_hint: 30.0,
            threads: 1,
        }
    }

    /// Encode `n` pictures of `source` size at 30 fps, forcing keyframes at `forced`.
    fn encode(
        encoder: &mut VideoEncoder,
        source: (u32, u32),
        n: usize,
        forced: &[usize],
    ) -> Vec<EncodedVideo> {
        let mut packets = Vec::new();
        for i in 0..n {
            // Decoded pictures come with the source's picture types: x264 must not follow them.
            let kind = if i % 3 == 0 {
                picture::Type::I
            } else {
                picture::Type::B
            };
            let frame = DecodedFrame {
                frame: picture(source.0, source.1, i, kind),
                pts_ms: (i as i64 * 1000 + 15) / 30,
            };
            packets.extend(encoder.encode(&frame, forced.contains(&i)).expect("encode"));
        }
        packets.extend(encoder.flush().expect("flush"));
        packets
    }

    #[test]
    fn x264_round_trip_through_our_decoder() {
        ffmpeg_next::init().expect("ffmpeg init");
        for source in [(320, 240), (640, 480)] {
            let mut encoder =
                VideoEncoder::new(&settings(320, 240), source.0, source.1, Pixel::YUV420P)
                    .expect("libx264 opens");
            assert_eq!(encoder.scaler.is_some(), source != (320, 240));
            let config = encoder.config().clone();
            assert_eq!((config.sps.width, config.sps.height), (320, 240));
            let packets = encode(&mut encoder, source, 45, &[0, 20]);
            assert_eq!(packets.len(), 45, "zerolatency: one packet per picture");
            let keyframes: Vec<i64> = packets
                .iter()
                .filter(|p| p.keyframe)
                .map(|p| p.pts_ms)
                .collect();
            // Forced at 20, and x264's own keyint (30) after it: 20 + 30 = 50 > 44.
            assert_eq!(keyframes, [0, 667], "source picture types leaked into x264");
            assert!(packets.windows(2).all(|w| w[0].dts_ms < w[1].dts_ms));
            let settings = encoder.x264_settings().expect("x264 SEI");
            for option in ["keyint=30", "scenecut=0", "bframes=0", "vbv_maxrate=318"] {
                assert!(settings.contains(option), "{option} not in {settings}");
            }

            // Every packet is AVCC with 4-byte lengths that add up.
            for packet in &packets {
                let mut rest = &packet.data[..];
                while !rest.is_empty() {
                    let len = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
                    rest = &rest[4 + len..];
                }
            }

            let mut decoder = VideoDecoder::new(&config, 1).expect("decoder opens");
            let mut frames = Vec::new();
            for packet in &packets {
                let packet = packet.clone().into_media_packet();
                frames.extend(decoder.decode(&packet).expect("decodes"));
            }
            frames.extend(decoder.flush());
            let pts: Vec<i64> = frames.iter().map(|f| f.pts_ms).collect();
            let sent: Vec<i64> = packets.iter().map(|p| p.pts_ms).collect();
            assert_eq!(pts, sent);
            assert!(frames
                .iter()
                .all(|f| (f.frame.width(), f.frame.height()) == (320, 240)));
        }
    }

    #[test]
    fn decoder_skips_a_corrupt_packet_and_keeps_going() {
        ffmpeg_next::init().expect("ffmpeg init");
        let mut encoder = VideoEncoder::new(&settings(160, 120), 160, 120, Pixel::YUV420P)
            .expect("libx264 opens");
        let packets = encode(&mut encoder, (160, 120), 20, &[0, 10]);
        let mut decoder = VideoDecoder::new(encoder.config(), 1).expect("decoder opens");
        let mut frames = Vec::new();
        let mut errors = 0;
        for (i, packet) in packets.into_iter().enumerate() {
            let mut packet = packet.into_media_packet();
            if i == 4 {
                // A NAL length far beyond the packet, then garbage.
                packet.data = Bytes::from_static(&[0x7f, 0xff, 0xff, 0xff, 0x65, 1, 2, 3]);
            }
            match decoder.decode(&packet) {
                Ok(decoded) => frames.extend(decoded),
                Err(_) => errors += 1,
            }
        }
        frames.extend(decoder.flush());
        assert!(errors <= 1);
        // The pictures from the next keyframe on are all there.
        let from_10: Vec<i64> = frames
            .iter()
            .map(|f| f.pts_ms)
            .filter(|&p| p >= 333)
            .collect();
        assert_eq!(from_10.len(), 10, "{from_10:?}");
    }

    #[test]
    fn cap_drops_before_encoding_and_moves_a_forced_keyframe_on() {
        ffmpeg_next::init().expect("ffmpeg init");
        let mut encoder = VideoEncoder::new(
            &EncoderSettings {
                max_framerate: Some(15.0),
                ..settings(160, 120)
            },
            160,
            120,
            Pixel::YUV420P,
        )
        .expect("libx264 opens");
        // 30 fps in, keyframe asked for on picture 7 (pts 233), which the 15 fps cap drops.
        let packets = encode(&mut encoder, (160, 120), 30, &[0, 7]);
        assert_eq!(encoder.dropped_by_cap(), 15);
        assert_eq!(packets.len(), 15);
        let keyframes: Vec<i64> = packets
            .iter()
            .filter(|p| p.keyframe)
            .map(|p| p.pts_ms)
            .collect();
        assert_eq!(keyframes, [0, 267]);
    }

    #[test]
    fn codec_objects_move_between_threads() {
        fn send<T: Send>() {}
        fn sync<T: Sync>() {}
        send::<VideoEncoder>();
        send::<VideoDecoder>();
        send::<DecodedFrame>();
        sync::<DecodedFrame>();
    }

    #[test]
    fn decoded_frame_clones_share_the_picture() {
        let frame = DecodedFrame {
            frame: picture(64, 32, 0, picture::Type::None),
            pts_ms: 7,
        };
        let clone = frame.clone();
        assert_eq!(clone.pts_ms, 7);
        assert_eq!(clone.frame.data(0).as_ptr(), frame.frame.data(0).as_ptr());
        assert_eq!(clone.frame.data(0), frame.frame.data(0));
    }
}
