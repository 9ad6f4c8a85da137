//! The AudioSpecificConfig of an FLV AAC sequence header (ISO/IEC 14496-3 §1.6.2.1), as ingest
//! parses it before it reaches the muxer's `esds` (src/media/aac.rs).
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use selfcast::media::AudioSpecificConfig;

fuzz_target!(|data: &[u8]| {
    if let Ok(config) = AudioSpecificConfig::parse(Bytes::copy_from_slice(data)) {
        assert!(
            config.sample_rate > 0,
            "a zero sample rate would divide by zero downstream"
        );
        assert!(config.frame_length > 0);
        let _ = config.codecs_string();
    }
});
