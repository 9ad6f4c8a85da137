//! One fMP4 fragment: a `moof` describing the samples of each track and the `mdat` holding
//! them (ISO/IEC 14496-12 §8.8). A segment is one or more fragments back to back; Low-Latency
//! HLS parts will be single fragments.
//!
//! ```text
//! moof
//! ├── mfhd                 sequence_number (increases by one per fragment)
//! └── traf per track with samples
//!     ├── tfhd             track_ID, flags default-base-is-moof
//!     ├── tfdt (v1)        baseMediaDecodeTime: decode time of the first sample
//!     └── trun (v1)        data_offset + per sample: duration, size, [flags, composition offset]
//! mdat                     the video samples, then the audio samples
//! ```

use bytes::Bytes;

use super::boxes::BoxWriter;

/// One sample as it goes into a `trun`.
#[derive(Debug, Clone)]
pub struct Sample {
    /// In the track's timescale.
    pub duration: u32,
    /// pts - dts in the track's timescale (signed: `trun` version 1).
    pub composition_offset: i32,
    pub keyframe: bool,
    pub data: Bytes,
}

/// The samples of one track in one fragment.
pub struct TrackRun<'a> {
    pub track_id: u32,
    /// Decode time of the first sample, in the track's timescale.
    pub base_decode_time: u64,
    pub samples: &'a [Sample],
    /// Whether each sample carries its flags and composition offset (video) or not (audio:
    /// every sample is a sync sample per the `trex` default, and pts == dts).
    pub per_sample_flags: bool,
}

// §8.8.8.1 trun flags.
const TRUN_DATA_OFFSET: u32 = 0x000001;
const TRUN_SAMPLE_DURATION: u32 = 0x000100;
const TRUN_SAMPLE_SIZE: u32 = 0x000200;
const TRUN_SAMPLE_FLAGS: u32 = 0x000400;
const TRUN_COMPOSITION_OFFSET: u32 = 0x000800;
// §8.8.7.1 tfhd flag: data offsets are relative to the start of this moof.
const TFHD_DEFAULT_BASE_IS_MOOF: u32 = 0x020000;
// §8.8.3.1 sample flags: sample_depends_on (bits 24-25) = 2: depends on no other (I-frame);
// = 1 with sample_is_non_sync_sample (bit 16) for every other frame.
const SYNC_SAMPLE_FLAGS: u32 = 0x0200_0000;
const NON_SYNC_SAMPLE_FLAGS: u32 = 0x0101_0000;

/// Write `moof` + `mdat` for the given runs (runs without samples are left out).
pub fn write_fragment(sequence_number: u32, runs: &[TrackRun]) -> Vec<u8> {
    let runs: Vec<&TrackRun> = runs.iter().filter(|run| !run.samples.is_empty()).collect();
    let data_len: usize = runs
        .iter()
        .flat_map(|run| run.samples)
        .map(|s| s.data.len())
        .sum();
    let sample_count: usize = runs.iter().map(|run| run.samples.len()).sum();
    // Headers: a few boxes per run plus at most 16 bytes of trun entry per sample.
    let mut w = BoxWriter::with_capacity(data_len + 64 + 64 * runs.len() + 16 * sample_count);

    let moof = w.open(b"moof");
    let mfhd = w.open_full(b"mfhd", 0, 0);
    w.u32(sequence_number);
    w.close(mfhd);
    let mut data_offset_fields = Vec::with_capacity(runs.len());
    for run in &runs {
        let traf = w.open(b"traf");
        let tfhd = w.open_full(b"tfhd", 0, TFHD_DEFAULT_BASE_IS_MOOF);
        w.u32(run.track_id);
        w.close(tfhd);
        let tfdt = w.open_full(b"tfdt", 1, 0);
        w.u64(run.base_decode_time);
        w.close(tfdt);
        let mut flags = TRUN_DATA_OFFSET | TRUN_SAMPLE_DURATION | TRUN_SAMPLE_SIZE;
        if run.per_sample_flags {
            flags |= TRUN_SAMPLE_FLAGS | TRUN_COMPOSITION_OFFSET;
        }
        let trun = w.open_full(b"trun", 1, flags);
        w.u32(run.samples.len() as u32);
        data_offset_fields.push(w.position());
        w.i32(0); // data_offset, patched below once the moof size is known
        for sample in run.samples {
            w.u32(sample.duration);
            w.u32(sample.data.len() as u32);
            if run.per_sample_flags {
                w.u32(if sample.keyframe {
                    SYNC_SAMPLE_FLAGS
                } else {
                    NON_SYNC_SAMPLE_FLAGS
                });
                w.i32(sample.composition_offset);
            }
        }
        w.close(trun);
        w.close(traf);
    }
    w.close(moof);

    // Each run's data starts after the moof, the 8-byte mdat header and the runs before it.
    let mut offset = w.position() + 8;
    for (run, field) in runs.iter().zip(data_offset_fields) {
        w.patch_u32(field, offset as u32);
        offset += run.samples.iter().map(|s| s.data.len()).sum::<usize>();
    }
    let mdat = w.open(b"mdat");
    for sample in runs.iter().flat_map(|run| run.samples) {
        w.bytes(&sample.data);
    }
    w.close(mdat);
    w.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragment_bytes_by_hand() {
        let video = [
            Sample {
                duration: 3000,
                composition_offset: 6000,
                keyframe: true,
                data: Bytes::from_static(&[0xaa, 0xbb]),
            },
            Sample {
                duration: 3000,
                composition_offset: -3000,
                keyframe: false,
                data: Bytes::from_static(&[0xcc]),
            },
        ];
        let audio = [Sample {
            duration: 1024,
            composition_offset: 0,
            keyframe: true,
            data: Bytes::from_static(&[0xdd]),
        }];
        let bytes = write_fragment(
            5,
            &[
                TrackRun {
                    track_id: 1,
                    base_decode_time: 0x1_0000_0002,
                    samples: &video,
                    per_sample_flags: true,
                },
                TrackRun {
                    track_id: 2,
                    base_decode_time: 48000,
                    samples: &audio,
                    per_sample_flags: false,
                },
            ],
        );
        #[rustfmt::skip]
        let expected: Vec<u8> = [
            &[0, 0, 0, 0xc0][..], b"moof",                 // 192 = 8 + 16 + 96 + 72
            &[0, 0, 0, 16], b"mfhd", &[0, 0, 0, 0], &[0, 0, 0, 5],
            &[0, 0, 0, 0x60], b"traf",                      // 96 = 8 + 16 + 20 + 52
            &[0, 0, 0, 16], b"tfhd", &[0, 0x02, 0, 0], &[0, 0, 0, 1],
            &[0, 0, 0, 20], b"tfdt", &[1, 0, 0, 0], &[0, 0, 0, 1, 0, 0, 0, 2],
            &[0, 0, 0, 52], b"trun", &[1, 0, 0x0f, 0x01],   // v1, offset|duration|size|flags|cto
            &[0, 0, 0, 2],                                  // sample_count
            &[0, 0, 0, 0xc8],                               // data_offset = 192 + 8
            &[0, 0, 0x0b, 0xb8], &[0, 0, 0, 2], &[0x02, 0, 0, 0], &[0, 0, 0x17, 0x70],
            &[0, 0, 0x0b, 0xb8], &[0, 0, 0, 1], &[0x01, 0x01, 0, 0], &[0xff, 0xff, 0xf4, 0x48],
            &[0, 0, 0, 0x48], b"traf",                      // 72 = 8 + 16 + 20 + 28
            &[0, 0, 0, 16], b"tfhd", &[0, 0x02, 0, 0], &[0, 0, 0, 2],
            &[0, 0, 0, 20], b"tfdt", &[1, 0, 0, 0], &[0, 0, 0, 0, 0, 0, 0xbb, 0x80],
            &[0, 0, 0, 28], b"trun", &[1, 0, 0x03, 0x01],   // v1, offset|duration|size
            &[0, 0, 0, 1],
            &[0, 0, 0, 0xcb],                               // 200 + the 3 video bytes
            &[0, 0, 0x04, 0], &[0, 0, 0, 1],
            &[0, 0, 0, 12], b"mdat", &[0xaa, 0xbb, 0xcc, 0xdd],
        ].concat();
        assert_eq!(bytes, expected);
    }

    #[test]
    fn empty_runs_are_left_out() {
        let audio = [Sample {
            duration: 1024,
            composition_offset: 0,
            keyframe: true,
            data: Bytes::from_static(&[1]),
        }];
        let bytes = write_fragment(
            1,
            &[
                TrackRun {
                    track_id: 1,
                    base_decode_time: 0,
                    samples: &[],
                    per_sample_flags: true,
                },
                TrackRun {
                    track_id: 2,
                    base_decode_time: 0,
                    samples: &audio,
                    per_sample_flags: false,
                },
            ],
        );
        // moof(8) + mfhd(16) + one traf(8 + 16 + 20 + 28) = 96, then mdat.
        assert_eq!(&bytes[0..4], &[0, 0, 0, 96]);
        assert_eq!(bytes.len(), 96 + 9);
    }
}
