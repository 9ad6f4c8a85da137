//! The H.264 parameters a publisher sends: the AVCDecoderConfigurationRecord of an FLV sequence
//! header (with the SPS inside it), a bare SPS NAL unit, and Annex B parameter sets as an
//! encoder's extradata carries them (src/media/avc.rs). Each input is tried as all three.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use selfcast::media::{AvcDecoderConfig, Sps};

fuzz_target!(|data: &[u8]| {
    if let Ok(config) = AvcDecoderConfig::parse(Bytes::copy_from_slice(data)) {
        assert_eq!(
            config.nal_length_size, 4,
            "only 4-byte NAL lengths are accepted"
        );
        let _ = config.codecs_string();
    }
    if let Ok(sps) = Sps::parse(data) {
        let _ = (sps.width, sps.height, sps.frame_rate);
    }
    if let Ok(config) = AvcDecoderConfig::from_annexb_parameter_sets(data) {
        // What it builds is a record that parses back to the same thing.
        let again = AvcDecoderConfig::parse(config.record.clone()).expect("its own record");
        assert_eq!(again.record, config.record);
    }
});
