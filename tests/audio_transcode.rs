//! `AudioTranscoder` against FFmpeg as the judge: FLV files made with the ffmpeg CLI from a
//! 4 s 1 kHz tone (MP3, FLV Linear PCM, AAC 48 kHz stereo, AAC 5.1, and the 8/16 kHz codecs of
//! old Flash publishers) are read tag by tag as RTMP would deliver them, transcoded to AAC, and
//! written as ADTS (headers computed here from the output's AudioSpecificConfig). ffprobe must
//! see AAC-LC at the expected rate and channels, ffmpeg must decode it without a word, the
//! decoded duration must be within 50 ms of the source's, the bitrate within 25 % of the
//! target, and the tone must survive: mean volume within 3 dB of the source's (downmixed the same
//! way), and nearly all of it at 1 kHz.

mod common;

use std::path::Path;
use std::process::Command;

use common::flv::flv_tags;
use common::{ffmpeg_decode, ffprobe_json};
use selfcast::media::flv::{parse_audio_tag, AudioTag};
use selfcast::media::AudioSource;
use selfcast::media::{AudioSpecificConfig, MediaPacket};
use selfcast::transcode::audio::AudioTranscoder;

/// Samples per AAC-LC frame.
const FRAME: f64 = 1024.0;

struct Case {
    name: &'static str,
    /// The lavfi source's rate (the tone is always 1 kHz, 4 s, mono unless `-ac` says).
    source_rate: u32,
    /// ffmpeg output options before `-f flv`.
    codec: &'static [&'static str],
    bitrate_kbps: u32,
    /// What the output must be.
    rate: u32,
    channels: u8,
    /// What the source must be, as `AudioSource::describe` says (starts with).
    describe: &'static str,
    /// Check the bitrate (the encoder cannot reach some targets at 8 kHz).
    check_bitrate: bool,
    /// ffmpeg input options to decode the source FLV right (for the reference).
    source_decoder: &'static [&'static str],
}

struct Fed {
    source: AudioSource,
    config: AudioSpecificConfig,
    packets: Vec<MediaPacket>,
    first_input_ms: i64,
    errors: usize,
}

/// Make the FLV, transcode it, check everything; panics with every problem found.
fn run(case: &Case) {
    let dir = tempfile::tempdir().expect("tempdir");
    let flv = dir.path().join(format!("{}.flv", case.name));
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-nostdin", "-y", "-f", "lavfi", "-i"])
        .arg(format!(
            "sine=frequency=1000:sample_rate={}",
            case.source_rate
        ))
        .args(["-t", "4"])
        .args(case.codec)
        .args(["-f", "flv"])
        .arg(&flv)
        .status()
        .expect("ffmpeg runs");
    assert!(
        status.success(),
        "{}: ffmpeg could not make the FLV",
        case.name
    );

    let started = std::time::Instant::now();
    let fed = feed(&flv, case.bitrate_kbps);
    let took = started.elapsed();
    let out = dir.path().join(format!("{}.aac", case.name));
    write_adts(&out, &fed.config, &fed.packets);

    let mut problems = Vec::new();
    let mut note = |ok: bool, what: String| {
        if !ok {
            problems.push(what);
        }
    };
    let described = fed.source.describe();
    note(
        described.starts_with(case.describe),
        format!("source seen as {described:?}, expected {:?}", case.describe),
    );
    note(fed.errors == 0, format!("{} transcode errors", fed.errors));
    note(
        (
            fed.config.object_type,
            fed.config.sample_rate,
            fed.config.channels,
        ) == (2, case.rate, case.channels),
        format!("output config {:?}", fed.config),
    );

    // Timestamps: one frame apart (±1 ms of rounding), the priming frame one frame before the
    // first input. (So the timeline never re-anchored: that moves it by more than 100 ms.)
    let frame_ms = FRAME * 1000.0 / f64::from(case.rate);
    for (k, p) in fed.packets.iter().enumerate() {
        let expected = fed.first_input_ms as f64 + (k as f64 - 1.0) * frame_ms;
        if (p.dts_ms as f64 - expected).abs() > 1.0 || p.pts_ms != p.dts_ms || !p.keyframe {
            note(
                false,
                format!(
                    "packet {k}: dts {} pts {}, expected {expected:.1}",
                    p.dts_ms, p.pts_ms
                ),
            );
            break;
        }
    }

    // ffprobe's view of the ADTS stream.
    match ffprobe_json(&out, &["-show_streams"]) {
        Ok(v) => {
            let s = &v["streams"][0];
            note(
                s["codec_name"] == "aac",
                format!("codec {}", s["codec_name"]),
            );
            note(s["profile"] == "LC", format!("profile {}", s["profile"]));
            note(
                s["sample_rate"] == case.rate.to_string().as_str(),
                format!("sample_rate {}", s["sample_rate"]),
            );
            note(
                s["channels"] == u64::from(case.channels),
                format!("channels {}", s["channels"]),
            );
        }
        Err(e) => note(false, e),
    }
    let (status, stderr) = ffmpeg_decode(&out);
    note(
        status.success() && stderr.trim().is_empty(),
        format!("ffmpeg decode: {status}, {stderr:?}"),
    );

    // Durations as decoded.
    let (source_rate, source_samples) = decoded_samples(&flv, case.source_decoder);
    let (out_rate, out_samples) = decoded_samples(&out, &[]);
    let source_s = source_samples as f64 / f64::from(source_rate);
    let out_s = out_samples as f64 / f64::from(out_rate);
    // The output has the encoder's priming frame in front and the last frame padded: between
    // one and two AAC frames more than the source, within 50 ms at 44.1/48 kHz. (At 8 kHz a
    // frame alone is 128 ms.)
    let frame_s = FRAME / f64::from(case.rate);
    let longer = out_s - source_s;
    note(
        (-0.005..=(2.0 * frame_s).max(0.050)).contains(&longer),
        format!("duration {out_s:.3} s, source {source_s:.3} s"),
    );

    // Bitrate: the AAC payload over its duration.
    let bytes: usize = fed.packets.iter().map(|p| p.data.len()).sum();
    let kbps = bytes as f64 * 8.0 / out_s / 1000.0;
    let target = f64::from(case.bitrate_kbps);
    if case.check_bitrate {
        note(
            (kbps - target).abs() <= target * 0.25,
            format!("{kbps:.1} kbps for a {target} kbps target"),
        );
    }

    // The tone: as loud as the source downmixed to the output layout, and at 1 kHz.
    let layout = if case.channels == 1 { "mono" } else { "stereo" };
    // (In float, as the transcoder downmixes: swresample does not normalise a downmix matrix
    // to float, so 5.1 → stereo keeps the centre at −3 dB, as `ffmpeg -ac 2 -c:a aac` does.)
    let source_db = mean_volume(
        &flv,
        case.source_decoder,
        &format!("aformat=sample_fmts=fltp:channel_layouts={layout},"),
    );
    let out_db = mean_volume(&out, &[], "");
    let rest_db = mean_volume(&out, &[], "bandreject=f=1000:width_type=h:w=100,");
    note(
        (out_db - source_db).abs() <= 3.0,
        format!("mean volume {out_db:.1} dB, source {source_db:.1} dB"),
    );
    note(
        out_db - rest_db >= 20.0,
        format!(
            "only {:.1} dB of the {out_db:.1} dB are at 1 kHz",
            out_db - rest_db
        ),
    );

    eprintln!(
        "{}: {} -> {} Hz {} ch, {} packets, {out_s:.3} s (source {source_s:.3} s), \
         {kbps:.1} kbps (target {target}), {out_db:.1} dB (source {source_db:.1} dB, \
         {rest_db:.1} dB without 1 kHz), transcoded in {took:.2?}",
        case.name,
        described,
        fed.config.sample_rate,
        fed.config.channels,
        fed.packets.len()
    );
    assert!(problems.is_empty(), "{}: {problems:#?}", case.name);
}

/// The FLV's audio tags through an AudioTranscoder, as the pipeline would: AAC by its sequence
/// header, anything else by its first tag's header byte.
fn feed(flv: &Path, bitrate_kbps: u32) -> Fed {
    let data = std::fs::read(flv).expect("read FLV");
    let mut transcoder: Option<AudioTranscoder> = None;
    let mut source = None;
    let mut packets = Vec::new();
    let mut first_input_ms = None;
    let mut errors = 0;
    for (kind, ts, body) in flv_tags(&data) {
        if kind != 8 || body.is_empty() {
            continue;
        }
        let payload = if body[0] >> 4 == 10 {
            match parse_audio_tag(&body).expect("valid AAC tag") {
                AudioTag::SequenceHeader(raw) => {
                    let config = AudioSpecificConfig::parse(raw).expect("valid ASC");
                    let s = AudioSource::Aac(config);
                    transcoder = Some(AudioTranscoder::new(&s, bitrate_kbps).expect("opens"));
                    source = Some(s);
                    continue;
                }
                AudioTag::Frame(data) => data,
                other => panic!("not AAC: {other:?}"),
            }
        } else {
            if transcoder.is_none() {
                let s = AudioSource::from_flv_tag(&body).expect("known FLV audio");
                transcoder = Some(AudioTranscoder::new(&s, bitrate_kbps).expect("opens"));
                source = Some(s);
            }
            body.slice(1..)
        };
        let t = transcoder.as_mut().expect("a sequence header first");
        first_input_ms.get_or_insert(ts);
        match t.transcode(&payload, ts) {
            Ok(out) => packets.extend(out),
            Err(e) => {
                eprintln!("transcode at {ts} ms: {e}");
                errors += 1;
            }
        }
    }
    let mut t = transcoder.expect("audio in the FLV");
    packets.extend(t.flush().expect("flush"));
    Fed {
        source: source.expect("a source"),
        config: t.config().clone(),
        packets,
        first_input_ms: first_input_ms.expect("audio frames"),
        errors,
    }
}

/// ADTS header (ISO/IEC 13818-7 6.2 / 14496-3 1.A.2.2.1), 7 bytes, no CRC:
///
/// ```text
/// syncword 12 = fff | ID 1 = 0 (MPEG-4) | layer 2 = 0 | protection_absent 1 = 1
/// profile 2 (object type − 1) | sampling_frequency_index 4 | private_bit 1
/// | channel_configuration 3 | original_copy 1 | home 1
/// copyright_identification_bit 1 | copyright_identification_start 1
/// | aac_frame_length 13 (header included) | adts_buffer_fullness 11 = 7ff (VBR)
/// | number_of_raw_data_blocks_in_frame 2 = 0
/// ```
///
/// Profile, frequency index and channel configuration are read from the first two bytes of the
/// AudioSpecificConfig: `audioObjectType 5 | samplingFrequencyIndex 4 | channelConfiguration 4`.
fn adts_header(config: &AudioSpecificConfig, payload_len: usize) -> [u8; 7] {
    let raw = &config.raw;
    let object_type = raw[0] >> 3;
    let frequency_index = ((raw[0] & 0x07) << 1) | (raw[1] >> 7);
    let channel_configuration = (raw[1] >> 3) & 0x0f;
    assert!((1..=4).contains(&object_type) && frequency_index < 13);
    let len = payload_len + 7;
    assert!(len < 1 << 13);
    [
        0xff,
        0xf1,
        ((object_type - 1) << 6) | (frequency_index << 2) | (channel_configuration >> 2),
        ((channel_configuration & 0x03) << 6) | (len >> 11) as u8,
        (len >> 3) as u8,
        (((len & 0x07) as u8) << 5) | 0x1f,
        0xfc,
    ]
}

fn write_adts(path: &Path, config: &AudioSpecificConfig, packets: &[MediaPacket]) {
    let mut data = Vec::new();
    for p in packets {
        data.extend_from_slice(&adts_header(config, p.data.len()));
        data.extend_from_slice(&p.data);
    }
    std::fs::write(path, data).expect("write ADTS");
}

/// (sample rate, samples per channel) of the first audio stream, decoded by ffmpeg.
fn decoded_samples(path: &Path, decoder: &[&str]) -> (u32, u64) {
    let v = ffprobe_json(path, &["-select_streams", "a:0", "-show_streams"]).expect("ffprobe");
    let rate: u32 = v["streams"][0]["sample_rate"]
        .as_str()
        .and_then(|r| r.parse().ok())
        .expect("sample_rate");
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-nostdin"])
        .args(decoder)
        .arg("-i")
        .arg(path)
        .args(["-map", "0:a:0", "-ac", "1", "-f", "s16le", "-"])
        .output()
        .expect("ffmpeg runs");
    assert!(out.status.success(), "decode {}", path.display());
    (rate, out.stdout.len() as u64 / 2)
}

/// `volumedetect`'s mean volume (dB) after the filters in `filters` (each ending with a comma).
fn mean_volume(path: &Path, decoder: &[&str], filters: &str) -> f64 {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin"])
        .args(decoder)
        .arg("-i")
        .arg(path)
        .args(["-map", "0:a:0", "-af"])
        .arg(format!("{filters}volumedetect"))
        .args(["-f", "null", "-"])
        .output()
        .expect("ffmpeg runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    stderr
        .lines()
        .find_map(|line| {
            let rest = line.split("mean_volume:").nth(1)?;
            rest.trim().trim_end_matches("dB").trim().parse().ok()
        })
        .unwrap_or_else(|| panic!("no mean_volume for {}: {stderr}", path.display()))
}

#[test]
fn adts_header_by_hand() {
    // AAC-LC 44.1 kHz stereo (ASC 12 10), 100-byte frame: length 107 = 0b000_0000_1101_011
    //   ff f1 | 01 0100 0 0|10 0 0 0 0 00|00001101|011 11111|111111 00
    //   = ff f1 50 80 0d 7f fc
    let config = AudioSpecificConfig::parse(bytes::Bytes::from_static(&[0x12, 0x10])).unwrap();
    assert_eq!(
        adts_header(&config, 100),
        [0xff, 0xf1, 0x50, 0x80, 0x0d, 0x7f, 0xfc]
    );
    // AAC-LC 48 kHz mono (ASC 11 88: index 3, channels 1), 1000-byte frame: length 1007 =
    //   0b00_0111_1110_1111 → 4c 40 | 1007 >> 3 = 0x7d | (1007 & 7 = 7) << 5 | 1f = ff
    let config = AudioSpecificConfig::parse(bytes::Bytes::from_static(&[0x11, 0x88])).unwrap();
    assert_eq!(
        adts_header(&config, 1000),
        [0xff, 0xf1, 0x4c, 0x40, 0x7d, 0xff, 0xfc]
    );
}

#[test]
fn mp3_44100_stereo_to_aac_128k() {
    run(&Case {
        name: "mp3",
        source_rate: 44100,
        codec: &["-ac", "2", "-c:a", "libmp3lame", "-b:a", "128k"],
        bitrate_kbps: 128,
        rate: 44100,
        channels: 2,
        describe: "MP3 44100 Hz stereo",
        check_bitrate: true,
        source_decoder: &[],
    });
}

#[test]
fn mp3_48000_flv_header_says_44k_to_aac() {
    // FLV's SoundRate cannot say 48 kHz: ffmpeg writes 44 kHz, the MP3 frames say 48.
    run(&Case {
        name: "mp3-48k",
        source_rate: 48000,
        codec: &["-ac", "2", "-c:a", "libmp3lame", "-b:a", "128k"],
        bitrate_kbps: 96,
        rate: 48000,
        channels: 2,
        describe: "MP3 48000 Hz stereo",
        check_bitrate: true,
        source_decoder: &[],
    });
}

#[test]
fn flv_pcm_44100_mono_to_aac_64k() {
    run(&Case {
        name: "pcm",
        source_rate: 44100,
        codec: &["-c:a", "pcm_s16le"],
        bitrate_kbps: 64,
        rate: 44100,
        channels: 1,
        describe: "Linear PCM (little endian) 44100 Hz mono",
        check_bitrate: true,
        source_decoder: &[],
    });
}

#[test]
fn aac_48000_stereo_reencoded_at_64k() {
    run(&Case {
        name: "aac",
        source_rate: 48000,
        codec: &["-ac", "2", "-c:a", "aac", "-b:a", "160k"],
        bitrate_kbps: 64,
        rate: 48000,
        channels: 2,
        describe: "AAC mp4a.40.2 48000 Hz 2 ch",
        check_bitrate: true,
        source_decoder: &[],
    });
}

#[test]
fn aac_5_1_downmixed_to_stereo() {
    // The mono tone upmixed by ffmpeg to 5.1 is in the centre channel only; the stereo
    // downmix has it at −3 dB in both.
    run(&Case {
        name: "aac-5.1",
        source_rate: 48000,
        codec: &["-ac", "6", "-c:a", "aac", "-b:a", "256k"],
        bitrate_kbps: 128,
        rate: 48000,
        channels: 2,
        describe: "AAC mp4a.40.2 48000 Hz 6 ch",
        check_bitrate: true,
        source_decoder: &[],
    });
}

#[test]
fn flash_era_codecs() {
    for case in [
        Case {
            name: "nellymoser-8k",
            source_rate: 8000,
            codec: &["-c:a", "nellymoser"],
            bitrate_kbps: 32,
            rate: 8000,
            channels: 1,
            describe: "Nellymoser 8 kHz mono 8000 Hz mono",
            check_bitrate: false,
            source_decoder: &[],
        },
        Case {
            name: "mulaw",
            source_rate: 8000,
            codec: &["-c:a", "pcm_mulaw"],
            bitrate_kbps: 32,
            rate: 8000,
            channels: 1,
            describe: "G.711 mu-law 8000 Hz mono",
            check_bitrate: false,
            source_decoder: &[],
        },
        Case {
            name: "alaw",
            source_rate: 8000,
            codec: &["-c:a", "pcm_alaw"],
            bitrate_kbps: 32,
            rate: 8000,
            channels: 1,
            describe: "G.711 A-law 8000 Hz mono",
            check_bitrate: false,
            source_decoder: &[],
        },
        Case {
            name: "speex",
            source_rate: 16000,
            codec: &["-c:a", "libspeex"],
            bitrate_kbps: 48,
            rate: 16000,
            channels: 1,
            describe: "Speex 16000 Hz mono",
            check_bitrate: false,
            // FFmpeg 5.1's native Speex decoder cannot decode it (see audio.rs).
            source_decoder: &["-c:a", "libspeex"],
        },
        Case {
            name: "adpcm",
            source_rate: 22050,
            codec: &["-ac", "2", "-c:a", "adpcm_swf"],
            bitrate_kbps: 96,
            rate: 22050,
            channels: 2,
            describe: "ADPCM 22050 Hz stereo",
            check_bitrate: true,
            source_decoder: &[],
        },
        Case {
            name: "pcm-u8-11k",
            source_rate: 11025,
            codec: &["-c:a", "pcm_u8"],
            bitrate_kbps: 32,
            rate: 11025,
            channels: 1,
            describe: "Linear PCM",
            check_bitrate: false,
            source_decoder: &[],
        },
    ] {
        run(&case);
    }
}
