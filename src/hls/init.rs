//! The fMP4 initialization segment (RFC 8216 §3.3, ISO/IEC 14496-12), served as `EXT-X-MAP`.
//!
//! ```text
//! ftyp                       brands
//! moov
//! ├── mvhd                   movie timescale, next_track_ID
//! ├── trak  (video, id 1)    ├── trak (audio, id 2, when the stream has audio)
//! │   ├── tkhd               │   same tree with smhd and an mp4a/esds sample entry
//! │   └── mdia
//! │       ├── mdhd           track timescale (90 kHz video, sample rate audio)
//! │       ├── hdlr           'vide' / 'soun'
//! │       └── minf
//! │           ├── vmhd
//! │           ├── dinf/dref  one self-contained 'url ' entry
//! │           └── stbl       stsd(avc1 → avcC) and empty stts/stsc/stsz/stco:
//! │                          every sample lives in the fragments
//! └── mvex
//!     └── trex per track     defaults for the fragments (§8.8.3)
//! ```

use super::boxes::{unity_matrix, BoxWriter};
use super::{AUDIO_TRACK_ID, VIDEO_TIMESCALE, VIDEO_TRACK_ID};
use crate::media::{AudioSpecificConfig, AvcDecoderConfig};

/// The codec configuration an init segment describes.
#[derive(Debug, Clone)]
pub struct TrackConfigs {
    pub video: AvcDecoderConfig,
    pub audio: Option<AudioSpecificConfig>,
}

/// Write `ftyp` + `moov` for these tracks.
pub fn write_init_segment(tracks: &TrackConfigs) -> Vec<u8> {
    let mut w = BoxWriter::with_capacity(1024);
    // §4.3 ftyp: major brand, minor version, compatible brands. iso6 covers the fragment
    // boxes we use (tfdt, trun version 1); Safari wants a compatible brand listed.
    let ftyp = w.open(b"ftyp");
    w.bytes(b"iso6");
    w.u32(0);
    for brand in [b"iso6", b"mp41"] {
        w.bytes(brand);
    }
    w.close(ftyp);

    let moov = w.open(b"moov");
    write_mvhd(&mut w, if tracks.audio.is_some() { 3 } else { 2 });
    write_video_trak(&mut w, &tracks.video);
    if let Some(audio) = &tracks.audio {
        write_audio_trak(&mut w, audio);
    }
    let mvex = w.open(b"mvex");
    write_trex(&mut w, VIDEO_TRACK_ID);
    if tracks.audio.is_some() {
        write_trex(&mut w, AUDIO_TRACK_ID);
    }
    w.close(mvex);
    w.close(moov);
    w.into_inner()
}

/// §8.2.2 Movie header, version 0. Durations are 0: the movie is fragmented and live.
fn write_mvhd(w: &mut BoxWriter, next_track_id: u32) {
    let mvhd = w.open_full(b"mvhd", 0, 0);
    w.u32(0); // creation_time
    w.u32(0); // modification_time
    w.u32(1000); // timescale
    w.u32(0); // duration
    w.u32(0x0001_0000); // rate 1.0
    w.u16(0x0100); // volume 1.0
    w.zeros(2 + 8); // reserved
    unity_matrix(w);
    w.zeros(24); // pre_defined
    w.u32(next_track_id);
    w.close(mvhd);
}

/// §8.3.2 Track header, version 0, flags track_enabled | track_in_movie.
fn write_tkhd(w: &mut BoxWriter, track_id: u32, volume: u16, width: u32, height: u32) {
    let tkhd = w.open_full(b"tkhd", 0, 0x3);
    w.u32(0); // creation_time
    w.u32(0); // modification_time
    w.u32(track_id);
    w.u32(0); // reserved
    w.u32(0); // duration
    w.zeros(8); // reserved
    w.u16(0); // layer
    w.u16(0); // alternate_group
    w.u16(volume);
    w.u16(0); // reserved
    unity_matrix(w);
    w.u32(width << 16); // 16.16 fixed point
    w.u32(height << 16);
    w.close(tkhd);
}

/// §8.4.2 Media header, version 0, language "und" (ISO 639-2/T packed as 3 × 5 bits).
fn write_mdhd(w: &mut BoxWriter, timescale: u32) {
    let mdhd = w.open_full(b"mdhd", 0, 0);
    w.u32(0); // creation_time
    w.u32(0); // modification_time
    w.u32(timescale);
    w.u32(0); // duration
    w.u16(0x55c4); // 'u'-0x60=21, 'n'-0x60=14, 'd'-0x60=4
    w.u16(0); // pre_defined
    w.close(mdhd);
}

/// §8.4.3 Handler reference.
fn write_hdlr(w: &mut BoxWriter, handler: &[u8; 4], name: &str) {
    let hdlr = w.open_full(b"hdlr", 0, 0);
    w.u32(0); // pre_defined
    w.bytes(handler);
    w.zeros(12); // reserved
    w.bytes(name.as_bytes());
    w.u8(0); // null-terminated
    w.close(hdlr);
}

/// §8.7.1 Data information: one `url ` entry with flag 1 (media is in this file).
fn write_dinf(w: &mut BoxWriter) {
    let dinf = w.open(b"dinf");
    let dref = w.open_full(b"dref", 0, 0);
    w.u32(1); // entry_count
    let url = w.open_full(b"url ", 0, 1);
    w.close(url);
    w.close(dref);
    w.close(dinf);
}

/// The empty sample tables of a fragmented track (§8.8.1: samples are in `moof`s).
fn write_empty_sample_tables(w: &mut BoxWriter) {
    for fourcc in [b"stts", b"stsc", b"stco"] {
        let table = w.open_full(fourcc, 0, 0);
        w.u32(0); // entry_count
        w.close(table);
    }
    let stsz = w.open_full(b"stsz", 0, 0);
    w.u32(0); // sample_size
    w.u32(0); // sample_count
    w.close(stsz);
}

/// What differs between the video and the audio `trak`.
struct TrakLayout<'a> {
    track_id: u32,
    /// tkhd volume: 0 for video, 1.0 (0x0100) for audio.
    volume: u16,
    width: u32,
    height: u32,
    timescale: u32,
    handler: &'a [u8; 4],
    name: &'a str,
}

/// `trak` with the boxes every track has; `media_header` writes vmhd/smhd and `sample_entry`
/// the one entry of `stsd`.
fn write_trak(
    w: &mut BoxWriter,
    layout: &TrakLayout,
    media_header: impl FnOnce(&mut BoxWriter),
    sample_entry: impl FnOnce(&mut BoxWriter),
) {
    let trak = w.open(b"trak");
    write_tkhd(
        w,
        layout.track_id,
        layout.volume,
        layout.width,
        layout.height,
    );
    let mdia = w.open(b"mdia");
    write_mdhd(w, layout.timescale);
    write_hdlr(w, layout.handler, layout.name);
    let minf = w.open(b"minf");
    media_header(w);
    write_dinf(w);
    let stbl = w.open(b"stbl");
    let stsd = w.open_full(b"stsd", 0, 0);
    w.u32(1); // entry_count
    sample_entry(w);
    w.close(stsd);
    write_empty_sample_tables(w);
    w.close(stbl);
    w.close(minf);
    w.close(mdia);
    w.close(trak);
}

fn write_video_trak(w: &mut BoxWriter, avc: &AvcDecoderConfig) {
    let (width, height) = (avc.sps.width, avc.sps.height);
    let layout = TrakLayout {
        track_id: VIDEO_TRACK_ID,
        volume: 0,
        width,
        height,
        timescale: VIDEO_TIMESCALE,
        handler: b"vide",
        name: "selfcast video",
    };
    let media_header = |w: &mut BoxWriter| {
        let vmhd = w.open_full(b"vmhd", 0, 1); // §12.1.2, flags 1 by definition
        w.u16(0); // graphicsmode: copy
        w.zeros(6); // opcolor
        w.close(vmhd);
    };
    // §12.1.3 VisualSampleEntry 'avc1' (ISO/IEC 14496-15 §5.4.2.1): parameter sets in avcC only.
    let sample_entry = |w: &mut BoxWriter| {
        let avc1 = w.open(b"avc1");
        w.zeros(6); // SampleEntry reserved
        w.u16(1); // data_reference_index
        w.zeros(2 + 2 + 12); // pre_defined, reserved, pre_defined[3]
        w.u16(width as u16);
        w.u16(height as u16);
        w.u32(0x0048_0000); // horizresolution 72 dpi
        w.u32(0x0048_0000); // vertresolution 72 dpi
        w.u32(0); // reserved
        w.u16(1); // frame_count
        w.zeros(32); // compressorname: empty Pascal string
        w.u16(0x0018); // depth: colour, no alpha
        w.u16(0xffff); // pre_defined = -1
        let avcc = w.open(b"avcC");
        w.bytes(&avc.record); // AVCDecoderConfigurationRecord as the encoder sent it
        w.close(avcc);
        w.close(avc1);
    };
    write_trak(w, &layout, media_header, sample_entry);
}

fn write_audio_trak(w: &mut BoxWriter, aac: &AudioSpecificConfig) {
    let layout = TrakLayout {
        track_id: AUDIO_TRACK_ID,
        volume: 0x0100,
        width: 0,
        height: 0,
        timescale: aac.sample_rate,
        handler: b"soun",
        name: "selfcast audio",
    };
    let media_header = |w: &mut BoxWriter| {
        let smhd = w.open_full(b"smhd", 0, 0); // §12.2.2
        w.u16(0); // balance: centre
        w.u16(0); // reserved
        w.close(smhd);
    };
    // §12.2.3 AudioSampleEntry 'mp4a' (ISO/IEC 14496-14 §6.7).
    let sample_entry = |w: &mut BoxWriter| {
        let mp4a = w.open(b"mp4a");
        w.zeros(6); // SampleEntry reserved
        w.u16(1); // data_reference_index
        w.zeros(8); // reserved
        w.u16(u16::from(aac.channels));
        w.u16(16); // samplesize
        w.u16(0); // pre_defined
        w.u16(0); // reserved
                  // 16.16 fixed point; rates above 65535 Hz do not fit and decoders take the rate from esds.
        w.u32(aac.sample_rate.min(0xffff) << 16);
        write_esds(w, aac);
        w.close(mp4a);
    };
    write_trak(w, &layout, media_header, sample_entry);
}

/// ISO/IEC 14496-1 §7.2.6.5 ES_Descriptor inside an `esds` full box (14496-14 §5.6).
fn write_esds(w: &mut BoxWriter, aac: &AudioSpecificConfig) {
    let asc = &aac.raw[..];
    // DecoderSpecificInfo (tag 5) = the AudioSpecificConfig.
    let decoder_specific_len = asc.len();
    // DecoderConfigDescriptor (tag 4): 13 fixed bytes + DecoderSpecificInfo.
    let decoder_config_len =
        13 + descriptor_header_len(decoder_specific_len) + decoder_specific_len;
    // SLConfigDescriptor (tag 6) with predefined = 2: 3 bytes.
    let es_len = 3 + descriptor_header_len(decoder_config_len) + decoder_config_len + 3;

    let esds = w.open_full(b"esds", 0, 0);
    write_descriptor_header(w, 0x03, es_len);
    w.u16(0); // ES_ID: 0, the track is identified by its trak
    w.u8(0); // no stream dependence, no URL, no OCR, streamPriority 0
    write_descriptor_header(w, 0x04, decoder_config_len);
    w.u8(0x40); // objectTypeIndication: Audio ISO/IEC 14496-3
    w.u8((0x05 << 2) | 1); // streamType AudioStream (5), upStream 0, reserved 1
    w.u24(0); // bufferSizeDB: unknown
    w.u32(0); // maxBitrate: unknown
    w.u32(0); // avgBitrate: variable
    write_descriptor_header(w, 0x05, asc.len());
    w.bytes(asc);
    write_descriptor_header(w, 0x06, 1);
    w.u8(0x02); // SLConfigDescriptor predefined = 2 (MP4 files)
    w.close(esds);
}

/// Descriptor tag + length, §8.3.3 expandable size: one byte when it fits in 7 bits.
fn write_descriptor_header(w: &mut BoxWriter, tag: u8, len: usize) {
    w.u8(tag);
    if len < 0x80 {
        w.u8(len as u8);
    } else {
        // Four 7-bit groups, continuation bit set on all but the last.
        w.u8(0x80 | ((len >> 21) & 0x7f) as u8);
        w.u8(0x80 | ((len >> 14) & 0x7f) as u8);
        w.u8(0x80 | ((len >> 7) & 0x7f) as u8);
        w.u8((len & 0x7f) as u8);
    }
}

fn descriptor_header_len(len: usize) -> usize {
    if len < 0x80 {
        2
    } else {
        5
    }
}

/// §8.8.3 Track extends: fragments name their track; no defaults beyond the sample entry.
fn write_trex(w: &mut BoxWriter, track_id: u32) {
    let trex = w.open_full(b"trex", 0, 0);
    w.u32(track_id);
    w.u32(1); // default_sample_description_index
    w.u32(0); // default_sample_duration
    w.u32(0); // default_sample_size
    w.u32(0); // default_sample_flags
    w.close(trex);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hls::segmenter::tests::{audio_config, video_config, AVCC_720P};

    /// Walks a box tree; returns (path, payload) of every box, checking that sizes nest exactly.
    fn walk<'a>(data: &'a [u8], path: &str, out: &mut Vec<(String, &'a [u8])>) {
        const CONTAINERS: [&str; 9] = [
            "moov", "trak", "mdia", "minf", "dinf", "stbl", "mvex", "moof", "traf",
        ];
        let mut rest = data;
        while !rest.is_empty() {
            let size = u32::from_be_bytes(rest[0..4].try_into().unwrap()) as usize;
            assert!(
                size >= 8 && size <= rest.len(),
                "{path}: bad box size {size}"
            );
            let kind = std::str::from_utf8(&rest[4..8]).unwrap();
            let here = format!("{path}/{kind}");
            let payload = &rest[8..size];
            out.push((here.clone(), payload));
            if CONTAINERS.contains(&kind) {
                walk(payload, &here, out);
            }
            rest = &rest[size..];
        }
    }

    fn find<'a>(boxes: &[(String, &'a [u8])], path: &str) -> &'a [u8] {
        boxes
            .iter()
            .find(|(p, _)| p == path)
            .unwrap_or_else(|| panic!("no {path}"))
            .1
    }

    #[test]
    fn init_segment_tree_and_sample_entries() {
        let init = write_init_segment(&TrackConfigs {
            video: video_config(),
            audio: Some(audio_config()),
        });
        let mut boxes = Vec::new();
        walk(&init, "", &mut boxes);
        let paths: Vec<&str> = boxes.iter().map(|(p, _)| p.as_str()).collect();
        for expected in [
            "/ftyp",
            "/moov/mvhd",
            "/moov/trak/tkhd",
            "/moov/trak/mdia/mdhd",
            "/moov/trak/mdia/hdlr",
            "/moov/trak/mdia/minf/vmhd",
            "/moov/trak/mdia/minf/smhd",
            "/moov/trak/mdia/minf/dinf/dref",
            "/moov/trak/mdia/minf/stbl/stsd",
            "/moov/trak/mdia/minf/stbl/stts",
            "/moov/mvex/trex",
        ] {
            assert!(paths.contains(&expected), "missing {expected} in {paths:?}");
        }
        assert_eq!(find(&boxes, "/ftyp"), b"iso6\0\0\0\0iso6mp41");

        // Video stsd: version/flags, entry_count 1, then the avc1 entry; 1280x720 at bytes
        // 24..28 of the VisualSampleEntry payload; the avcC carries the record verbatim.
        let stsd = find(&boxes, "/moov/trak/mdia/minf/stbl/stsd");
        assert_eq!(&stsd[0..8], &[0, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(&stsd[12..16], b"avc1");
        assert_eq!(&stsd[16 + 24..16 + 28], &[0x05, 0x00, 0x02, 0xd0]);
        let avcc_at = stsd.windows(4).position(|w| w == b"avcC").unwrap();
        assert_eq!(
            &stsd[avcc_at + 4..avcc_at + 4 + AVCC_720P.len()],
            &AVCC_720P
        );

        // Audio: mdhd timescale 48000, then mp4a with 2 channels, 16 bits, 48000 << 16, and
        // an esds whose descriptors are sized by hand below.
        let mdhd_audio = boxes
            .iter()
            .filter(|(p, _)| p == "/moov/trak/mdia/mdhd")
            .nth(1)
            .unwrap()
            .1;
        assert_eq!(&mdhd_audio[12..16], &48_000u32.to_be_bytes());
        let audio_stsd = boxes
            .iter()
            .filter(|(p, _)| p == "/moov/trak/mdia/minf/stbl/stsd")
            .nth(1)
            .unwrap()
            .1;
        let esds_at = audio_stsd.windows(4).position(|w| w == b"esds").unwrap();
        #[rustfmt::skip]
        let esds: &[u8] = &[
            0, 0, 0, 0,                 // version 0, flags 0
            0x03, 25, 0, 0, 0,          // ES_Descriptor, 25 bytes: ES_ID 0, flags 0
            0x04, 17,                   // DecoderConfigDescriptor, 17 bytes
            0x40, 0x15,                 // Audio ISO/IEC 14496-3; AudioStream, reserved bit
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // bufferSizeDB, maxBitrate, avgBitrate
            0x05, 2, 0x11, 0x90,        // DecoderSpecificInfo: the AudioSpecificConfig
            0x06, 1, 0x02,              // SLConfigDescriptor predefined 2
        ];
        assert_eq!(
            &audio_stsd[esds_at - 4..esds_at],
            &(8 + esds.len() as u32).to_be_bytes()
        );
        assert_eq!(&audio_stsd[esds_at + 4..esds_at + 4 + esds.len()], esds);
        let mp4a_at = audio_stsd.windows(4).position(|w| w == b"mp4a").unwrap();
        assert_eq!(
            &audio_stsd[mp4a_at + 4 + 16..mp4a_at + 4 + 20],
            &[0, 2, 0, 16]
        );
        assert_eq!(
            &audio_stsd[mp4a_at + 4 + 24..mp4a_at + 4 + 28],
            &[0xbb, 0x80, 0, 0]
        );

        // Two trex, for track 1 and 2.
        let trex: Vec<&[u8]> = boxes
            .iter()
            .filter(|(p, _)| p == "/moov/mvex/trex")
            .map(|(_, b)| *b)
            .collect();
        assert_eq!(trex.len(), 2);
        assert_eq!(&trex[1][4..8], &[0, 0, 0, 2]);
    }

    #[test]
    fn video_only_init_has_one_track() {
        let init = write_init_segment(&TrackConfigs {
            video: video_config(),
            audio: None,
        });
        let mut boxes = Vec::new();
        walk(&init, "", &mut boxes);
        assert_eq!(boxes.iter().filter(|(p, _)| p == "/moov/trak").count(), 1);
        assert_eq!(
            &find(&boxes, "/moov/mvhd")[96..100],
            &[0, 0, 0, 2],
            "next_track_ID"
        );
    }
}
