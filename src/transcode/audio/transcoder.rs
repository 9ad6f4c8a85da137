//! [`AudioTranscoder`]: source audio frames in, AAC-LC frames out, through the stages of the
//! module above (MP3 parser, decoder, resampler, sample FIFO, encoder) with the sample clock
//! stamping what comes out.

use bytes::Bytes;
use ffmpeg_next::frame;
use ffmpeg_next::Packet;

use super::aac_encoder::{open_encoder, output_channels, output_sample_rate, AacEncoder};
use super::clock::SampleClock;
use super::mp3::Mp3Parser;
use super::resampler::{InputDefinition, Resampler};
use super::samples::SampleBuffer;
use super::source_decoder::DecoderSpec;
use crate::media::{AudioSource, AudioSpecificConfig, MediaPacket, TrackKind};
use crate::transcode::codec_io::{receive_packets, received, send_packet, PacketTimes};
use crate::transcode::encoder::TranscodeError;

/// Source audio in, AAC-LC frames out; see the module documentation.
pub struct AudioTranscoder {
    decoder: ffmpeg_next::decoder::Audio,
    parser: Option<Mp3Parser>,
    resampler: Option<Resampler>,
    encoder: ffmpeg_next::encoder::audio::Encoder,
    config: AudioSpecificConfig,
    /// Output rate (Hz) and channel count.
    rate: u32,
    channels: u8,
    /// Samples per encoder frame (1024 for AAC-LC).
    frame_size: usize,
    buffer: SampleBuffer,
    clock: SampleClock,
    /// Samples sent to the encoder so far: the pts of the next frame.
    samples_encoded: i64,
    decoded: frame::Audio,
    packet: Packet,
    /// Packets completed while the call that produced them failed; returned by the next call.
    carry: Vec<MediaPacket>,
    finished: bool,
}

impl AudioTranscoder {
    /// Decoder for the source + resampler (swresample) to the AAC encoder's format (fltp), rate
    /// ([`output_sample_rate`]) and channels ([`output_channels`]), + FFmpeg's native `aac`
    /// encoder (AAC-LC) at `bitrate_kbps` (8..=512).
    pub fn new(source: &AudioSource, bitrate_kbps: u32) -> Result<Self, TranscodeError> {
        if !(8..=512).contains(&bitrate_kbps) {
            return Err(TranscodeError::InvalidSettings(format!(
                "audio bitrate {bitrate_kbps} kbps is not in 8..=512"
            )));
        }
        let spec = DecoderSpec::of(source)?;
        let rate = output_sample_rate(spec.sample_rate);
        let channels = output_channels(spec.channels);
        let decoder = spec.open()?;
        let parser = if spec.parse_mp3 {
            Some(Mp3Parser::new()?)
        } else {
            None
        };
        let AacEncoder {
            encoder,
            config,
            frame_size,
        } = open_encoder(rate, channels, bitrate_kbps)?;
        let decoded = frame::Audio::empty();
        // SAFETY: only reads the pointer av_frame_alloc returned.
        if unsafe { decoded.as_ptr().is_null() } {
            return Err(TranscodeError::OutOfMemory(
                "av_frame_alloc (decoded audio)",
            ));
        }
        Ok(AudioTranscoder {
            decoder,
            parser,
            resampler: None,
            encoder,
            config,
            rate,
            channels,
            frame_size,
            buffer: SampleBuffer::new(channels),
            clock: SampleClock::new(rate),
            samples_encoded: 0,
            decoded,
            packet: Packet::empty(),
            carry: Vec::new(),
            finished: false,
        })
    }

    /// The AudioSpecificConfig of the output (from the encoder's extradata), for the muxer's
    /// init segment.
    pub fn config(&self) -> &AudioSpecificConfig {
        &self.config
    }

    /// One source frame in (raw codec data as FLV carries it after the 1- or 2-byte audio tag
    /// header, with its RTMP timestamp in ms); the AAC frames completed out, each a
    /// [`MediaPacket`] (kind Audio, pts_ms == dts_ms, keyframe true) of 1024 samples.
    ///
    /// A corrupt frame is an Err the caller logs and skips: the transcoder keeps going, and the
    /// AAC frames completed by the same call come out of the next one.
    pub fn transcode(
        &mut self,
        data: &[u8],
        pts_ms: i64,
    ) -> Result<Vec<MediaPacket>, TranscodeError> {
        let mut out = std::mem::take(&mut self.carry);
        if self.finished {
            return Err(TranscodeError::InvalidInput(
                "audio frame after the transcoder was flushed",
            ));
        }
        if data.is_empty() {
            // An empty packet would mean end of stream to libavcodec.
            return Ok(out);
        }
        self.clock.input(pts_ms);
        let decoded = self.decode(data);
        let encoded = self.encode_ready(&mut out, false);
        match decoded.and(encoded) {
            Ok(()) => Ok(out),
            Err(error) => {
                self.carry = out;
                Err(error)
            }
        }
    }

    /// End of stream: everything still inside (parser, decoder, resampler, the last partial
    /// frame, the encoder). The transcoder takes no frames after this.
    pub fn flush(&mut self) -> Result<Vec<MediaPacket>, TranscodeError> {
        let mut out = std::mem::take(&mut self.carry);
        if self.finished {
            return Ok(out);
        }
        self.finished = true;
        // Errors in the tail of the source are not worth more than losing its last samples.
        if let Some(parser) = &mut self.parser {
            for frame in parser.parse(&[]) {
                let _ = self.decode_packet(&frame);
            }
        }
        if self.decoder.send_eof().is_ok() {
            let _ = self.receive_decoded();
        }
        if let Some(mut resampler) = self.resampler.take() {
            let _ = self.drain_resampler(&mut resampler);
        }
        self.encode_ready(&mut out, true)?;
        self.encoder
            .send_eof()
            .map_err(|source| TranscodeError::Ffmpeg {
                call: "avcodec_send_frame (aac encoder, end of stream)",
                source,
            })?;
        self.receive_packets(&mut out)?;
        Ok(out)
    }

    /// Decode one input frame into the FIFO (through the MP3 parser for MP3). With several MP3
    /// frames in one input, a corrupt one does not lose the others: the first error is
    /// returned once all are done.
    fn decode(&mut self, data: &[u8]) -> Result<(), TranscodeError> {
        let Some(parser) = &mut self.parser else {
            return self.decode_packet(data);
        };
        let mut result = Ok(());
        for frame in parser.parse(data) {
            let decoded = self.decode_packet(&frame);
            if result.is_ok() {
                result = decoded;
            }
        }
        result
    }

    fn decode_packet(&mut self, data: &[u8]) -> Result<(), TranscodeError> {
        if data.is_empty() {
            return Ok(());
        }
        send_packet(
            &mut self.decoder,
            data,
            PacketTimes::NONE,
            "avcodec_send_packet (audio decoder)",
        )?;
        self.receive_decoded()
    }

    /// Every frame the decoder has ready, resampled into the FIFO.
    fn receive_decoded(&mut self) -> Result<(), TranscodeError> {
        while received(
            self.decoder.receive_frame(&mut self.decoded),
            "avcodec_receive_frame (audio decoder)",
        )? {
            self.resample_decoded()?;
        }
        Ok(())
    }

    /// The decoded frame through the resampler (set up again when the decoded format, rate or
    /// layout changes) into the FIFO.
    fn resample_decoded(&mut self) -> Result<(), TranscodeError> {
        let Some(input) = InputDefinition::of(&self.decoded)? else {
            return Ok(());
        };
        if self.resampler.as_ref().map(|r| r.input) != Some(input) {
            if let Some(mut old) = self.resampler.take() {
                self.drain_resampler(&mut old)?;
            }
            self.resampler = Some(Resampler::new(input, self.rate, self.channels)?);
        }
        let Some(resampler) = &mut self.resampler else {
            return Ok(());
        };
        let converted = resampler.convert(&self.decoded, &mut self.buffer)?;
        self.clock.advance(converted);
        Ok(())
    }

    /// The samples a resampler still holds (its filter delay), into the FIFO.
    fn drain_resampler(&mut self, resampler: &mut Resampler) -> Result<(), TranscodeError> {
        let drained = resampler.drain(&mut self.buffer)?;
        self.clock.advance(drained);
        Ok(())
    }

    /// Every whole frame in the FIFO to the encoder (and at the end of the stream the last,
    /// shorter one); the packets it completes into `out`.
    fn encode_ready(
        &mut self,
        out: &mut Vec<MediaPacket>,
        end_of_stream: bool,
    ) -> Result<(), TranscodeError> {
        while self.buffer.len() >= self.frame_size || (end_of_stream && self.buffer.len() > 0) {
            let n = self.buffer.len().min(self.frame_size);
            let frame = self.buffer.frame(n, self.rate, self.samples_encoded)?;
            self.buffer.consume(n);
            self.samples_encoded += n as i64;
            self.encoder
                .send_frame(&frame)
                .map_err(|source| TranscodeError::Ffmpeg {
                    call: "avcodec_send_frame (aac encoder)",
                    source,
                })?;
            self.receive_packets(out)?;
        }
        Ok(())
    }

    /// Every packet the encoder has ready, stamped from the sample clock.
    fn receive_packets(&mut self, out: &mut Vec<MediaPacket>) -> Result<(), TranscodeError> {
        receive_packets(
            &mut self.encoder,
            &mut self.packet,
            "avcodec_receive_packet (aac encoder)",
            |packet, data| {
                // The encoder's pts: its input frame's, less the priming (1024 samples).
                let sample = packet.pts().unwrap_or(self.samples_encoded);
                let ms = self.clock.ms(sample);
                out.push(MediaPacket {
                    kind: TrackKind::Audio,
                    dts_ms: ms,
                    pts_ms: ms,
                    keyframe: true,
                    data: Bytes::copy_from_slice(data),
                });
            },
        )
    }
}

impl std::fmt::Debug for AudioTranscoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AudioTranscoder")
            .field("codecs", &self.config.codecs_string())
            .field("rate", &self.rate)
            .field("channels", &self.channels)
            .field("resampler_input", &self.resampler.as_ref().map(|r| r.input))
            .field("buffered", &self.buffer.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::ptr;

    use ffmpeg_next::ffi;

    use super::*;
    use crate::media::audio_source::FLV_PCM_LE;
    use crate::transcode::codec_io::extradata;

    /// `n` samples of a 1 kHz sine at `rate`, interleaved s16le, `channels` channels.
    fn sine_s16le(rate: u32, channels: usize, from: usize, n: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(n * channels * 2);
        for i in from..from + n {
            let t = i as f64 / f64::from(rate);
            let v = ((t * 1000.0 * std::f64::consts::TAU).sin() * 8000.0) as i16;
            for _ in 0..channels {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
        out
    }

    /// PCM in frames of `frame` samples, stamped as RTMP would (ms, rounded down).
    fn feed_pcm(
        transcoder: &mut AudioTranscoder,
        rate: u32,
        channels: usize,
        frame: usize,
        frames: usize,
    ) -> Vec<MediaPacket> {
        let mut packets = Vec::new();
        for k in 0..frames {
            let data = sine_s16le(rate, channels, k * frame, frame);
            let ms = (k * frame * 1000 / rate as usize) as i64;
            packets.extend(transcoder.transcode(&data, 500 + ms).expect("transcode"));
        }
        packets.extend(transcoder.flush().expect("flush"));
        packets
    }

    fn pcm(rate: u32, channels: u8) -> AudioSource {
        AudioSource::Flv {
            sound_format: FLV_PCM_LE,
            sample_rate: rate,
            channels,
            sample_size_bits: 16,
        }
    }

    fn check_timestamps(packets: &[MediaPacket], rate: u32, first_input_ms: i64) {
        let frame_ms = 1024.0 * 1000.0 / f64::from(rate);
        assert!(packets.iter().all(|p| p.kind == TrackKind::Audio
            && p.keyframe
            && p.pts_ms == p.dts_ms
            && !p.data.is_empty()));
        for (k, p) in packets.iter().enumerate() {
            let expected = first_input_ms as f64 + (k as f64 - 1.0) * frame_ms;
            assert!(
                (p.dts_ms as f64 - expected).abs() <= 1.0,
                "packet {k} at {} ms, expected {expected:.1}",
                p.dts_ms
            );
        }
        assert!(packets.windows(2).all(|w| w[0].dts_ms < w[1].dts_ms));
    }

    #[test]
    fn pcm_to_aac_and_aac_to_aac() {
        // 2 s of 44.1 kHz stereo PCM in 1152-sample frames.
        let mut first = AudioTranscoder::new(&pcm(44100, 2), 128).expect("opens");
        let config = first.config().clone();
        assert_eq!(
            (
                config.object_type,
                config.sample_rate,
                config.channels,
                config.frame_length
            ),
            (2, 44100, 2, 1024)
        );
        // The native encoder's config: AAC-LC 44.1 kHz stereo + "no SBR" sync extension.
        assert_eq!(&config.raw[..2], &[0x12, 0x10]);
        let packets = feed_pcm(&mut first, 44100, 2, 1152, 77); // 88 704 samples
                                                                // Priming frame + ceil(88 704 / 1024) = 1 + 87, and the encoder's tail.
        assert!((88..=89).contains(&packets.len()), "{}", packets.len());
        check_timestamps(&packets, 44100, 500);
        let bytes: usize = packets.iter().map(|p| p.data.len()).sum();
        let kbps = bytes as f64 * 8.0 / (packets.len() as f64 * 1024.0 / 44100.0) / 1000.0;
        assert!((90.0..=160.0).contains(&kbps), "{kbps} kbps for 128");

        // Its output, re-encoded at 64 kbps: AAC in, AAC out.
        let mut second =
            AudioTranscoder::new(&AudioSource::Aac(config.clone()), 64).expect("opens");
        assert_eq!(second.config().raw, config.raw);
        let mut again = Vec::new();
        for p in &packets {
            again.extend(second.transcode(&p.data, p.dts_ms).expect("aac decodes"));
        }
        again.extend(second.flush().expect("flush"));
        // One more priming frame.
        assert_eq!(again.len(), packets.len() + 1, "{}", again.len());
        check_timestamps(&again, 44100, packets[0].dts_ms);
        let bytes: usize = again.iter().map(|p| p.data.len()).sum();
        assert!(bytes < packets.iter().map(|p| p.data.len()).sum::<usize>() * 3 / 4);
    }

    #[test]
    fn low_rates_mono_and_the_48k_fallback() {
        // 8 kHz mono (G.711, Nellymoser, MP3 8 kHz): kept, the encoder takes it.
        let mut t = AudioTranscoder::new(&pcm(8000, 1), 32).expect("opens at 8 kHz");
        assert_eq!((t.config().sample_rate, t.config().channels), (8000, 1));
        let packets = feed_pcm(&mut t, 8000, 1, 256, 40); // 10 240 samples
        assert!((11..=12).contains(&packets.len()), "{}", packets.len());
        check_timestamps(&packets, 8000, 500);

        // 16 kHz (Speex): kept.
        let t = AudioTranscoder::new(&pcm(16000, 1), 32).expect("opens at 16 kHz");
        assert_eq!(t.config().sample_rate, 16000);

        // FLV's 5 512 Hz is no AAC rate: 48 kHz, resampled (8.7 times as many samples).
        let mut t = AudioTranscoder::new(&pcm(5512, 2), 96).expect("opens");
        assert_eq!((t.config().sample_rate, t.config().channels), (48000, 2));
        let packets = feed_pcm(&mut t, 5512, 2, 512, 22); // 11 264 samples = 2.04 s
        let expected = 11264.0 * 48000.0 / 5512.0 / 1024.0;
        assert!(
            (packets.len() as f64 - expected - 1.0).abs() <= 1.5,
            "{} packets, {expected:.1} + priming expected",
            packets.len()
        );
        check_timestamps(&packets, 48000, 500);
    }

    #[test]
    fn corrupt_frames_are_errors_and_the_transcoder_goes_on() {
        let mut source = AudioTranscoder::new(&pcm(48000, 2), 128).expect("opens");
        let aac = feed_pcm(&mut source, 48000, 2, 1024, 60);
        let mut t =
            AudioTranscoder::new(&AudioSource::Aac(source.config().clone()), 96).expect("opens");
        let mut out = Vec::new();
        let mut errors = 0;
        for (i, p) in aac.iter().enumerate() {
            let data: &[u8] = match i {
                10 => &[0xff; 300],
                11 => &[0x00, 0x01],
                12 => &p.data[..p.data.len() / 3],
                _ => &p.data,
            };
            match t.transcode(data, p.dts_ms) {
                Ok(packets) => out.extend(packets),
                Err(_) => errors += 1,
            }
        }
        out.extend(t.flush().expect("flush"));
        assert!((1..=3).contains(&errors), "{errors} errors");
        // The lost frames are missing (fewer than 100 ms: no re-anchoring), everything else
        // came out, in order.
        assert!(out.len() >= aac.len() - 3, "{} of {}", out.len(), aac.len());
        assert!(out.windows(2).all(|w| w[0].dts_ms < w[1].dts_ms));
        assert!(matches!(
            t.transcode(&aac[20].data, 0),
            Err(TranscodeError::InvalidInput(_))
        ));
    }

    #[test]
    fn garbage_never_panics() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut noise = |n: usize| -> Vec<u8> {
            (0..n)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                })
                .collect()
        };
        let sources = [
            AudioSource::from_flv_tag(&[0x2f]).unwrap(), // MP3
            AudioSource::from_flv_tag(&[0x1f]).unwrap(), // ADPCM
            AudioSource::from_flv_tag(&[0x52]).unwrap(), // Nellymoser 8 kHz
            AudioSource::from_flv_tag(&[0x72]).unwrap(), // A-law
            AudioSource::from_flv_tag(&[0x3e]).unwrap(), // 8-bit PCM
            AudioSource::from_flv_tag(&[0xb2]).unwrap(), // Speex
            AudioSource::Aac(
                AudioSpecificConfig::parse(Bytes::from_static(&[0x11, 0x90])).unwrap(),
            ),
        ];
        for source in &sources {
            let mut t = AudioTranscoder::new(source, 64)
                .unwrap_or_else(|e| panic!("{}: {e}", source.describe()));
            for i in 0..40 {
                let len = [1, 2, 7, 64, 417, 1500][i % 6];
                let _ = t.transcode(&noise(len), i as i64 * 20);
            }
            // Garbage stamped every 20 ms decodes to any number of samples: the timeline
            // re-anchors back and forth, which is not what is checked here.
            let packets = t.flush().unwrap_or_default();
            assert!(packets.iter().all(|p| !p.data.is_empty()));
        }
    }

    #[test]
    fn bad_sources_and_settings_are_refused() {
        assert!(matches!(
            AudioTranscoder::new(&pcm(44100, 2), 4),
            Err(TranscodeError::InvalidSettings(_))
        ));
        assert!(AudioTranscoder::new(&pcm(0, 2), 64).is_err());
        assert!(AudioTranscoder::new(&pcm(44100, 0), 64).is_err());
        let pcm24 = AudioSource::Flv {
            sound_format: FLV_PCM_LE,
            sample_rate: 44100,
            channels: 2,
            sample_size_bits: 24,
        };
        assert!(matches!(
            AudioTranscoder::new(&pcm24, 64),
            Err(TranscodeError::UnsupportedAudio(_))
        ));
        let opus = AudioSource::Opus {
            id_header: Bytes::from_static(b"OpusTags"),
        };
        assert!(AudioTranscoder::new(&opus, 64).is_err());
    }

    #[test]
    fn opus_through_libopus() {
        // Opus encoded here with libopus (20 ms frames), its OpusHead as the sequence header.
        let Some(codec) = ffmpeg_next::encoder::find_by_name("libopus") else {
            eprintln!("no libopus encoder: skipped");
            return;
        };
        let context = ffmpeg_next::codec::Context::new_with_codec(codec);
        let mut audio = context.encoder().audio().expect("audio encoder");
        unsafe {
            let ctx = audio.as_mut_ptr();
            (*ctx).sample_fmt = ffi::AVSampleFormat::AV_SAMPLE_FMT_S16;
            (*ctx).sample_rate = 48000;
            ffi::av_channel_layout_default(&mut (*ctx).ch_layout, 2);
            (*ctx).bit_rate = 96_000;
            (*ctx).time_base = ffi::AVRational { num: 1, den: 48000 };
            assert!(ffi::avcodec_open2(ctx, codec.as_ptr(), ptr::null_mut()) >= 0);
        }
        let mut encoder = ffmpeg_next::encoder::audio::Encoder(audio);
        let head = extradata(&encoder);
        let mut opus_packets = Vec::new();
        let mut packet = Packet::empty();
        for k in 0..100 {
            let mut frame = frame::Audio::empty();
            unsafe {
                let f = frame.as_mut_ptr();
                (*f).format = ffi::AVSampleFormat::AV_SAMPLE_FMT_S16 as i32;
                (*f).nb_samples = 960;
                (*f).sample_rate = 48000;
                ffi::av_channel_layout_default(&mut (*f).ch_layout, 2);
                (*f).pts = k * 960;
                assert!(ffi::av_frame_get_buffer(f, 0) >= 0);
                let pcm = sine_s16le(48000, 2, k as usize * 960, 960);
                ptr::copy_nonoverlapping(pcm.as_ptr(), (*f).data[0], pcm.len());
            }
            encoder.send_frame(&frame).expect("libopus takes the frame");
            while encoder.receive_packet(&mut packet).is_ok() {
                opus_packets.push(packet.data().unwrap_or_default().to_vec());
            }
        }
        encoder.send_eof().expect("eof");
        while encoder.receive_packet(&mut packet).is_ok() {
            opus_packets.push(packet.data().unwrap_or_default().to_vec());
        }

        let source = AudioSource::Opus {
            id_header: Bytes::from(head),
        };
        assert_eq!(source.describe(), "Opus 2 ch");
        let mut t = AudioTranscoder::new(&source, 128).expect("opens");
        assert_eq!((t.config().sample_rate, t.config().channels), (48000, 2));
        let mut out = Vec::new();
        for (k, data) in opus_packets.iter().enumerate() {
            out.extend(
                t.transcode(data, 1000 + k as i64 * 20)
                    .expect("opus decodes"),
            );
        }
        out.extend(t.flush().expect("flush"));
        // ~2 s = 96 000 samples (less the pre-skip) = 93-94 AAC frames + priming.
        assert!((92..=97).contains(&out.len()), "{}", out.len());
        check_timestamps(&out, 48000, 1000);
    }

    #[test]
    fn transcoder_moves_between_threads() {
        fn send<T: Send>() {}
        send::<AudioTranscoder>();
    }
}
