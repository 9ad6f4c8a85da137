//! FLV tag bodies as they arrive in RTMP video (type 9) and audio (type 8) messages: the legacy
//! and enhanced-RTMP video headers, AVC frames with their NAL lengths checked, and every audio
//! header (AAC, the legacy codecs, Opus), as ingest reads them (src/media/flv.rs,
//! src/media/audio_source.rs). Each input is tried as both kinds.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use selfcast::media::flv::{check_avcc_nal_lengths, parse_audio_tag, parse_video_tag, VideoTag};
use selfcast::media::AudioSource;

fuzz_target!(|data: &[u8]| {
    let body = Bytes::copy_from_slice(data);
    if let Ok(VideoTag::Frame { data: frame, .. }) = parse_video_tag(&body) {
        // A frame is only handed on once its lengths were checked: they must still add up.
        let units = check_avcc_nal_lengths(&frame).expect("a parsed frame's NAL lengths");
        assert!(units > 0);
    }
    let _ = parse_audio_tag(&body);
    if let Ok(source) = AudioSource::from_flv_tag(data) {
        let _ = source.describe();
    }
});
