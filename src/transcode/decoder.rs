//! H.264 decoding of a live source, once per stream, for the adaptive-bitrate ladder: the
//! publisher's [`MediaPacket`]s (AVCC framing, as FLV carries them) in, raw pictures out.
//!
//! Threading: a [`VideoDecoder`] is owned and driven by one thread (the pipeline's decoder
//! thread); it is `Send` but not meant to be shared. With more than one thread libavcodec runs
//! frame-threading workers behind it, so decoding a packet returns the pictures it completes a
//! few packets later; [`VideoDecoder::flush`] returns the rest.
//! The [`DecodedFrame`]s it hands out are reference-counted (`av_frame_clone`): each encoder
//! thread gets its own clone of the same picture buffers, which nobody writes after decoding.

use ffmpeg_next::ffi;
use ffmpeg_next::frame;

use super::codec_io::{allocated, open_decoder, received, send_packet, set_extradata, PacketTimes};
use super::encoder::TranscodeError;
use crate::media::{AvcDecoderConfig, MediaPacket};

/// One decoded picture and its presentation time.
pub struct DecodedFrame {
    /// The picture as libavcodec returned it (shared, reference-counted buffers: read only).
    pub frame: frame::Video,
    /// Presentation timestamp in milliseconds (the source packet's time base).
    pub pts_ms: i64,
}

impl DecodedFrame {
    /// The decoder had to patch this picture over (concealment) or flags it as corrupt: the
    /// source's video data was damaged, although it was framed correctly.
    pub fn is_damaged(&self) -> bool {
        // SAFETY: `self.frame` wraps a valid AVFrame for its whole life; these are plain reads.
        let (error_flags, flags) = unsafe {
            let frame = &*self.frame.as_ptr();
            (frame.decode_error_flags, frame.flags)
        };
        error_flags != 0 || flags & ffi::AV_FRAME_FLAG_CORRUPT != 0
    }

    /// A new reference to the same picture buffers: no pixels are copied. (ffmpeg-next's
    /// `frame::Video::clone` allocates new buffers and copies every plane.)
    pub fn try_clone(&self) -> Result<Self, TranscodeError> {
        // SAFETY: `self.frame` wraps a valid AVFrame for its whole life. av_frame_clone returns
        // a newly allocated AVFrame (or null) referencing the same buffers; Frame::wrap takes
        // ownership (ffmpeg-next frees every wrapped frame on drop).
        let clone = unsafe { ffi::av_frame_clone(self.frame.as_ptr()) };
        if clone.is_null() {
            return Err(TranscodeError::OutOfMemory("av_frame_clone"));
        }
        Ok(DecodedFrame {
            frame: unsafe { frame::Video::wrap(clone) },
            pts_ms: self.pts_ms,
        })
    }
}

impl Clone for DecodedFrame {
    /// See [`DecodedFrame::try_clone`]. Like every Rust allocation, running out of memory here
    /// is fatal.
    fn clone(&self) -> Self {
        match self.try_clone() {
            Ok(frame) => frame,
            Err(error) => panic!("{error}"),
        }
    }
}

impl std::fmt::Debug for DecodedFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecodedFrame")
            .field("pts_ms", &self.pts_ms)
            .field("format", &self.frame.format())
            .field("width", &self.frame.width())
            .field("height", &self.frame.height())
            .finish()
    }
}

/// The H.264 decoder of one stream.
pub struct VideoDecoder {
    decoder: ffmpeg_next::decoder::Video,
    /// Frames completed while the call that produced them failed; returned by the next call.
    carry: Vec<DecodedFrame>,
    last_pts_ms: Option<i64>,
}

impl VideoDecoder {
    /// H.264 decoder opened with the avcC record as extradata (so AVCC packets decode as is),
    /// with `threads` frame threads (0: libavcodec picks, cores + 1, as the `ffmpeg` CLI asks).
    pub fn new(config: &AvcDecoderConfig, threads: u32) -> Result<Self, TranscodeError> {
        let codec = ffmpeg_next::decoder::find(ffmpeg_next::codec::Id::H264)
            .ok_or(TranscodeError::CodecMissing("h264 decoder"))?;
        let mut context = allocated(
            ffmpeg_next::codec::Context::new_with_codec(codec),
            "avcodec_alloc_context3 (h264 decoder)",
        )?;
        set_extradata(&mut context, &config.record)?;
        // SAFETY: the context is allocated (checked above) and not opened yet, which is when
        // the packet time base and threading may be set.
        unsafe {
            let ctx = context.as_mut_ptr();
            // Packets and frames carry milliseconds.
            (*ctx).pkt_timebase = ffi::AVRational { num: 1, den: 1000 };
            (*ctx).thread_count = i32::try_from(threads).unwrap_or(0);
        }
        let decoder = open_decoder(
            context,
            codec,
            "avcodec_open2 (h264 decoder)",
            ffmpeg_next::decoder::Opened::video,
        )?;
        Ok(VideoDecoder {
            decoder,
            carry: Vec::new(),
            last_pts_ms: None,
        })
    }

    /// One source packet in; the frames it completes out (presentation order), each with its
    /// pts in ms. A corrupt packet is an Err the caller logs and skips (the decoder keeps going;
    /// frames completed by the same call are returned by the next one).
    pub fn decode(&mut self, packet: &MediaPacket) -> Result<Vec<DecodedFrame>, TranscodeError> {
        let mut frames = std::mem::take(&mut self.carry);
        if packet.data.is_empty() {
            // An empty packet would mean end of stream to libavcodec.
            return Ok(frames);
        }
        let times = PacketTimes {
            pts: packet.pts_ms,
            dts: packet.dts_ms,
            keyframe: packet.keyframe,
        };
        let result = send_packet(
            &mut self.decoder,
            &packet.data,
            times,
            "avcodec_send_packet (h264 decoder)",
        )
        .and_then(|()| self.receive(&mut frames));
        match result {
            Ok(()) => Ok(frames),
            Err(error) => {
                self.carry = frames;
                Err(error)
            }
        }
    }

    /// End of stream: the frames still inside (B-frame delay, frame threads). The decoder is
    /// reset afterwards and accepts a new stream starting with a keyframe.
    pub fn flush(&mut self) -> Vec<DecodedFrame> {
        let mut frames = std::mem::take(&mut self.carry);
        if self.decoder.send_eof().is_ok() {
            // Errors of the last pictures are not worth more than losing them.
            let _ = self.receive(&mut frames);
        }
        self.decoder.flush();
        frames
    }

    /// Everything the decoder has ready, until it wants input (EAGAIN) or is drained (EOF).
    fn receive(&mut self, frames: &mut Vec<DecodedFrame>) -> Result<(), TranscodeError> {
        loop {
            let mut frame = frame::Video::empty();
            if !received(
                self.decoder.receive_frame(&mut frame),
                "avcodec_receive_frame (h264 decoder)",
            )? {
                return Ok(());
            }
            // best_effort_timestamp (what the CLI uses), else pts, else right after the
            // previous picture. Jumps are passed on as they are: the encoder and the segmenter
            // re-anchor them.
            let pts_ms = frame
                .timestamp()
                .or_else(|| frame.pts())
                .unwrap_or_else(|| self.last_pts_ms.map_or(0, |last| last + 1));
            self.last_pts_ms = Some(pts_ms);
            frames.push(DecodedFrame { frame, pts_ms });
        }
    }
}
