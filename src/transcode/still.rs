//! A still image the owner uploads (the page's logo, the offline image), checked to be what it
//! claims: a PNG, JPEG or WebP by its first bytes (nothing else: no SVG, which can carry
//! script), decoded whole by libavcodec's own decoder for that format, in process. The decoder
//! refuses pictures over [`MAX_PIXELS`] before it allocates them, so a small file that claims
//! a huge picture (a decompression bomb) costs nothing.

use ffmpeg_next::{ffi, frame};

use super::codec_io::{allocated, open_decoder, received, send_packet, PacketTimes};
use super::error::TranscodeError;

/// The largest picture accepted: 4096x4096.
pub const MAX_PIXELS: i64 = 4096 * 4096;

/// The formats accepted, told apart by their signatures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StillFormat {
    Png,
    Jpeg,
    Webp,
}

impl StillFormat {
    pub const ALL: [StillFormat; 3] = [StillFormat::Png, StillFormat::Jpeg, StillFormat::Webp];

    /// The format `bytes` start like, if one of ours.
    pub fn sniff(bytes: &[u8]) -> Option<StillFormat> {
        if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            Some(StillFormat::Png)
        } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(StillFormat::Jpeg)
        } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
            Some(StillFormat::Webp)
        } else {
            None
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            StillFormat::Png => "image/png",
            StillFormat::Jpeg => "image/jpeg",
            StillFormat::Webp => "image/webp",
        }
    }

    pub fn of_content_type(content_type: &str) -> Option<StillFormat> {
        let media_type = content_type.split(';').next().unwrap_or_default().trim();
        StillFormat::ALL
            .into_iter()
            .find(|format| media_type.eq_ignore_ascii_case(format.content_type()))
    }

    /// The file name extension.
    pub fn extension(self) -> &'static str {
        match self {
            StillFormat::Png => "png",
            StillFormat::Jpeg => "jpg",
            StillFormat::Webp => "webp",
        }
    }

    fn decoder(self) -> (ffmpeg_next::codec::Id, &'static str) {
        match self {
            StillFormat::Png => (ffmpeg_next::codec::Id::PNG, "png decoder"),
            StillFormat::Jpeg => (ffmpeg_next::codec::Id::MJPEG, "mjpeg decoder"),
            StillFormat::Webp => (ffmpeg_next::codec::Id::WEBP, "webp decoder"),
        }
    }
}

/// An image that decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Still {
    pub format: StillFormat,
    pub width: u32,
    pub height: u32,
}

/// Why an upload is not an image we take.
#[derive(Debug, thiserror::Error)]
pub enum StillError {
    #[error("not a PNG, JPEG or WebP image")]
    UnknownFormat,
    #[error("the file starts like a {found} image, not the {declared} it was sent as")]
    WrongType {
        declared: &'static str,
        found: &'static str,
    },
    #[error("the image does not decode (a damaged or unsupported {0} file, or one larger than 4096x4096)")]
    Undecodable(&'static str),
    #[error("cannot check images here: {0}")]
    Decoder(#[source] TranscodeError),
}

/// Checks `bytes`, sent as `declared` (a Content-Type), by decoding them.
pub fn check(bytes: &[u8], declared: StillFormat) -> Result<Still, StillError> {
    let format = StillFormat::sniff(bytes).ok_or(StillError::UnknownFormat)?;
    if format != declared {
        return Err(StillError::WrongType {
            declared: declared.content_type(),
            found: format.content_type(),
        });
    }
    let undecodable = || StillError::Undecodable(format.content_type());
    let (width, height) = decode(bytes, format)
        .map_err(StillError::Decoder)?
        .ok_or_else(undecodable)?;
    Ok(Still {
        format,
        width,
        height,
    })
}

/// The decoded size; `Ok(None)` when the decoder refused the data.
fn decode(bytes: &[u8], format: StillFormat) -> Result<Option<(u32, u32)>, TranscodeError> {
    let (id, name) = format.decoder();
    let codec = ffmpeg_next::decoder::find(id).ok_or(TranscodeError::CodecMissing(name))?;
    let mut context = allocated(
        ffmpeg_next::codec::Context::new_with_codec(codec),
        "avcodec_alloc_context3 (still image decoder)",
    )?;
    // SAFETY: the context is allocated (checked above) and not opened yet, which is when these
    // may be set. One thread: one picture, no frame threading.
    unsafe {
        let ctx = context.as_mut_ptr();
        (*ctx).max_pixels = MAX_PIXELS;
        (*ctx).thread_count = 1;
        // Damage is an error, not a picture concealed around it.
        (*ctx).err_recognition |= ffi::AV_EF_EXPLODE as i32;
    }
    let mut decoder = open_decoder(
        context,
        codec,
        "avcodec_open2 (still image decoder)",
        ffmpeg_next::decoder::Opened::video,
    )?;
    let sent = send_packet(
        &mut decoder,
        bytes,
        PacketTimes::NONE,
        "avcodec_send_packet (still image decoder)",
    );
    if sent.is_err() {
        return Ok(None);
    }
    if decoder.send_eof().is_err() {
        return Ok(None);
    }
    let mut picture = frame::Video::empty();
    match received(
        decoder.receive_frame(&mut picture),
        "avcodec_receive_frame (still image decoder)",
    ) {
        Ok(true) if picture.width() > 0 && picture.height() > 0 => {
            Ok(Some((picture.width(), picture.height())))
        }
        Ok(_) | Err(_) => Ok(None),
    }
}

/// A 2x1 RGB PNG (one red pixel, one black), chunk by chunk: signature; IHDR (width 2,
/// height 1, 8-bit truecolour) and its CRC; IDAT (zlib: filter 0, ff 00 00, 00 00 00);
/// IEND. ffprobe reads it as png 2x1.
#[cfg(test)]
pub(crate) const TWO_PIXELS_PNG: [u8; 70] = [
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, // \x89PNG\r\n\x1a\n
    0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52, // 13 bytes of IHDR
    0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x01, // width 2, height 1
    0x08, 0x02, 0x00, 0x00, 0x00, 0x7b, 0x40, 0xe8, 0xdd, // depth 8, RGB; CRC
    0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, // 13 bytes of IDAT
    0x78, 0x9c, 0x63, 0xf8, 0xcf, 0x00, 0x04, 0xff, 0x01, 0x07, 0x00, 0x01, 0xff, // zlib
    0xe2, 0x23, 0x9e, 0x59, // CRC
    0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82, // IEND
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_told_by_their_signatures() {
        assert_eq!(
            StillFormat::sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"),
            Some(StillFormat::Png)
        );
        assert_eq!(
            StillFormat::sniff(&[0xFF, 0xD8, 0xFF, 0xE0]),
            Some(StillFormat::Jpeg)
        );
        assert_eq!(
            StillFormat::sniff(b"RIFF\x24\0\0\0WEBPVP8 "),
            Some(StillFormat::Webp)
        );
        // RIFF, but a WAV file; an SVG; GIF; too short to tell.
        assert_eq!(StillFormat::sniff(b"RIFF\x24\0\0\0WAVEfmt "), None);
        assert_eq!(
            StillFormat::sniff(b"<svg xmlns=\"http://www.w3.org/2000/svg\">"),
            None
        );
        assert_eq!(StillFormat::sniff(b"GIF89a"), None);
        assert_eq!(StillFormat::sniff(b"\x89PN"), None);
    }

    #[test]
    fn content_types_name_the_formats() {
        assert_eq!(
            StillFormat::of_content_type("image/PNG"),
            Some(StillFormat::Png)
        );
        assert_eq!(
            StillFormat::of_content_type("image/webp; q=1"),
            Some(StillFormat::Webp)
        );
        assert_eq!(StillFormat::of_content_type("image/svg+xml"), None);
        assert_eq!(StillFormat::of_content_type("text/html"), None);
    }

    #[test]
    fn a_real_png_decodes_to_its_size() {
        assert_eq!(
            check(&TWO_PIXELS_PNG, StillFormat::Png).unwrap(),
            Still {
                format: StillFormat::Png,
                width: 2,
                height: 1
            }
        );
        // Cut short: the picture's data is missing.
        assert!(matches!(
            check(&TWO_PIXELS_PNG[..45], StillFormat::Png),
            Err(StillError::Undecodable(_))
        ));
    }

    #[test]
    fn a_signature_alone_is_not_an_image() {
        assert!(matches!(
            check(b"\x89PNG\r\n\x1a\nnot really", StillFormat::Png),
            Err(StillError::Undecodable("image/png"))
        ));
        assert!(matches!(
            check(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10], StillFormat::Jpeg),
            Err(StillError::Undecodable("image/jpeg"))
        ));
        assert!(matches!(
            check(b"<svg onload=alert(1)>", StillFormat::Png),
            Err(StillError::UnknownFormat)
        ));
        assert!(matches!(
            check(b"\x89PNG\r\n\x1a\n", StillFormat::Jpeg),
            Err(StillError::WrongType { .. })
        ));
    }
}
