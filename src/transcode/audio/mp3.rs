//! FFmpeg's MPEG audio parser, cutting an MP3 byte stream into whole frames before the decoder:
//! RTMP publishers do not all send exactly one MP3 frame per FLV tag (FFmpeg's FLV demuxer
//! parses MP3 for the same reason).

use std::ptr;

use ffmpeg_next::ffi;

use crate::transcode::codec_io::allocated;
use crate::transcode::encoder::TranscodeError;

/// FFmpeg's MPEG audio parser, cutting an MP3 byte stream into whole frames.
pub(super) struct Mp3Parser {
    parser: *mut ffi::AVCodecParserContext,
    /// The codec context the parser writes what it finds into (rate, channels, frame size):
    /// its own, not the decoder's.
    context: ffmpeg_next::codec::Context,
    /// The input copied with the zeroed padding libavcodec's readers may touch.
    input: Vec<u8>,
}

// SAFETY: as for the Resampler: parser state is plain memory used through `&mut` only.
unsafe impl Send for Mp3Parser {}

impl Mp3Parser {
    pub(super) fn new() -> Result<Self, TranscodeError> {
        let context = allocated(
            ffmpeg_next::codec::Context::new(),
            "avcodec_alloc_context3 (parser)",
        )?;
        // SAFETY: av_parser_init returns an owned parser or null.
        let parser = unsafe { ffi::av_parser_init(ffi::AVCodecID::AV_CODEC_ID_MP3 as i32) };
        if parser.is_null() {
            return Err(TranscodeError::CodecMissing("the MPEG audio parser"));
        }
        Ok(Mp3Parser {
            parser,
            context,
            input: Vec::new(),
        })
    }

    /// The whole frames `data` completes (empty `data`: the end of the stream, whatever is
    /// still buffered).
    pub(super) fn parse(&mut self, data: &[u8]) -> Vec<Vec<u8>> {
        let padding = ffi::AV_INPUT_BUFFER_PADDING_SIZE as usize;
        self.input.clear();
        self.input.extend_from_slice(data);
        self.input.resize(data.len() + padding, 0);
        let mut frames = Vec::new();
        let mut offset = 0;
        // Bounded: every round consumes input or returns a frame, and a flush at most a few.
        for _ in 0..data.len() + 4 {
            let remaining = data.len() - offset;
            let Ok(size) = i32::try_from(remaining) else {
                break;
            };
            let mut out: *mut u8 = ptr::null_mut();
            let mut out_size = 0;
            // SAFETY: `input` holds `remaining` bytes from `offset` plus the padding; the
            // output points into the parser's buffer or our input and is copied at once.
            let used = unsafe {
                ffi::av_parser_parse2(
                    self.parser,
                    self.context.as_mut_ptr(),
                    &mut out,
                    &mut out_size,
                    self.input.as_ptr().add(offset),
                    size,
                    ffi::AV_NOPTS_VALUE,
                    ffi::AV_NOPTS_VALUE,
                    0,
                )
            };
            let used = usize::try_from(used).unwrap_or(0).min(remaining);
            offset += used;
            let produced = !out.is_null() && out_size > 0;
            if produced {
                // SAFETY: the parser returned `out_size` readable bytes at `out`.
                frames.push(unsafe { std::slice::from_raw_parts(out, out_size as usize) }.to_vec());
            }
            let done = if data.is_empty() {
                !produced
            } else {
                offset >= data.len() || (used == 0 && !produced)
            };
            if done {
                break;
            }
        }
        frames
    }
}

impl Drop for Mp3Parser {
    fn drop(&mut self) {
        // SAFETY: we own the parser.
        unsafe { ffi::av_parser_close(self.parser) };
    }
}
