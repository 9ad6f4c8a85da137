//! One decoded picture → a JPEG, for the stream's preview image (`/thumbnail.jpg`): scaled to
//! at most [`MAX_WIDTH`] wide (the aspect ratio kept, never scaled up) by swscale into full-range
//! YUV 4:2:0, and encoded by libavcodec's `mjpeg` encoder, in process.

use ffmpeg_next::format::Pixel;
use ffmpeg_next::software::scaling;
use ffmpeg_next::{frame, Packet, Rational};

use super::codec_io::{encoder_context, receive_packets};
use super::decoder::DecodedFrame;
use super::error::TranscodeError;

/// Preview images are at most this wide.
pub const MAX_WIDTH: u32 = 640;
/// mjpeg's quantizer scale: 2 (best) to 31; 4 looks clean at a few tens of KiB for 640x360.
const QUALITY: i32 = 4;

/// The size a `width`x`height` picture is shown at: at most [`MAX_WIDTH`] wide, both even.
pub fn preview_size(width: u32, height: u32) -> (u32, u32) {
    if width <= MAX_WIDTH {
        return (width & !1, height & !1);
    }
    let scaled = (u64::from(height) * u64::from(MAX_WIDTH) / u64::from(width).max(1)) as u32;
    (MAX_WIDTH, (scaled & !1).max(2))
}

/// The picture as a JPEG file.
pub fn encode(picture: &DecodedFrame) -> Result<Vec<u8>, TranscodeError> {
    let source = &picture.frame;
    let (width, height) = preview_size(source.width(), source.height());
    if width < 2 || height < 2 {
        return Err(TranscodeError::InvalidInput(
            "a picture too small to preview",
        ));
    }
    let mut scaler = scaling::Context::get(
        source.format(),
        source.width(),
        source.height(),
        Pixel::YUVJ420P,
        width,
        height,
        scaling::Flags::BILINEAR,
    )
    .map_err(|_| TranscodeError::Scaler {
        from: format!(
            "{:?} {}x{}",
            source.format(),
            source.width(),
            source.height()
        ),
        to: format!("YUVJ420P {width}x{height}"),
    })?;
    let mut scaled = frame::Video::new(Pixel::YUVJ420P, width, height);
    // SAFETY: reading the pointer of a frame we own.
    if unsafe { scaled.is_empty() } {
        return Err(TranscodeError::OutOfMemory("av_frame_get_buffer (preview)"));
    }
    scaler
        .run(source, &mut scaled)
        .map_err(|source| TranscodeError::Ffmpeg {
            call: "sws_scale (preview)",
            source,
        })?;
    scaled.set_pts(Some(0));

    let (codec, mut video) = encoder_context(
        "mjpeg",
        "the mjpeg encoder",
        "avcodec_alloc_context3 (mjpeg)",
        ffmpeg_next::encoder::Encoder::video,
    )?;
    video.set_width(width);
    video.set_height(height);
    video.set_format(Pixel::YUVJ420P);
    video.set_time_base(Rational::new(1, 25));
    // SAFETY: the context is allocated (checked by encoder_context) and not opened; fixed
    // quantizer fields mjpeg reads when it opens.
    unsafe {
        let ctx = video.as_mut_ptr();
        (*ctx).flags |= ffmpeg_next::ffi::AV_CODEC_FLAG_QSCALE as i32;
        (*ctx).global_quality = QUALITY * ffmpeg_next::ffi::FF_QP2LAMBDA as i32;
        (*ctx).qmin = QUALITY;
        (*ctx).qmax = QUALITY;
    }
    let mut encoder = video
        .open_as(codec)
        .map_err(|source| TranscodeError::Ffmpeg {
            call: "avcodec_open2 (mjpeg)",
            source,
        })?;
    // SAFETY: the frame is ours; mjpeg reads the quality of the picture it encodes.
    unsafe {
        (*scaled.as_mut_ptr()).quality = QUALITY * ffmpeg_next::ffi::FF_QP2LAMBDA as i32;
    }
    encoder
        .send_frame(&scaled)
        .and_then(|()| encoder.send_eof())
        .map_err(|source| TranscodeError::Ffmpeg {
            call: "avcodec_send_frame (mjpeg)",
            source,
        })?;
    let mut jpeg = Vec::new();
    let mut packet = Packet::empty();
    receive_packets(
        &mut encoder,
        &mut packet,
        "avcodec_receive_packet (mjpeg)",
        |_, data| jpeg.extend_from_slice(data),
    )?;
    if jpeg.is_empty() {
        return Err(TranscodeError::InvalidInput(
            "the mjpeg encoder produced nothing",
        ));
    }
    Ok(jpeg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn previews_are_at_most_640_wide_and_even() {
        assert_eq!(preview_size(1280, 720), (640, 360));
        assert_eq!(preview_size(1920, 1080), (640, 360));
        assert_eq!(preview_size(640, 360), (640, 360));
        assert_eq!(preview_size(426, 240), (426, 240));
        assert_eq!(preview_size(853, 480), (640, 360));
        assert_eq!(preview_size(321, 241), (320, 240));
        assert_eq!(preview_size(4000, 2), (640, 2));
    }
}
