//! The libavcodec calls every codec here makes the same way, through `ffmpeg-next`'s ffi: an
//! encoder's context found and checked for allocation, a decoder opened, extradata set before
//! opening (a decoder's configuration) or read after it (an encoder's global headers), a packet
//! sent from borrowed bytes, what a `receive_frame` / `receive_packet` call means, and an
//! encoder's packets received until it wants more input.
//!
//! Used by the video decoder ([`super::decoder`]), the video encoder ([`super::encoder`]) and
//! the audio transcoder ([`super::audio`]).

use std::ptr;

use ffmpeg_next::codec::Context;
use ffmpeg_next::ffi;
use ffmpeg_next::util::error::EAGAIN;
use ffmpeg_next::Codec;
use ffmpeg_next::Packet;

use super::encoder::TranscodeError;

/// `context` as `Context::new*` returned it, unless avcodec_alloc_context3 ran out of memory
/// (ffmpeg-next does not check): `call` names the allocation in the error.
pub(crate) fn allocated(context: Context, call: &'static str) -> Result<Context, TranscodeError> {
    // SAFETY: only reads the pointer avcodec_alloc_context3 returned.
    if unsafe { context.as_ptr().is_null() } {
        return Err(TranscodeError::OutOfMemory(call));
    }
    Ok(context)
}

/// A new context for libavcodec's encoder `name` (`CodecMissing(missing)` when it has none), as
/// `kind` (`Encoder::audio` or `Encoder::video`), ready to be set up; `call` names the
/// allocation in errors.
pub(crate) fn encoder_context<T>(
    name: &str,
    missing: &'static str,
    call: &'static str,
    kind: impl FnOnce(ffmpeg_next::encoder::Encoder) -> Result<T, ffmpeg_next::Error>,
) -> Result<(Codec, T), TranscodeError> {
    let codec =
        ffmpeg_next::encoder::find_by_name(name).ok_or(TranscodeError::CodecMissing(missing))?;
    let context = allocated(Context::new_with_codec(codec), call)?;
    let encoder =
        kind(context.encoder()).map_err(|source| TranscodeError::Ffmpeg { call, source })?;
    Ok((codec, encoder))
}

/// Opens `context` (set up, not opened yet) as the decoder `codec`, as `kind`
/// (`Opened::audio` or `Opened::video`); `call` names the opening in errors.
pub(crate) fn open_decoder<T>(
    context: Context,
    codec: Codec,
    call: &'static str,
    kind: impl FnOnce(ffmpeg_next::decoder::Opened) -> Result<T, ffmpeg_next::Error>,
) -> Result<T, TranscodeError> {
    context
        .decoder()
        .open_as(codec)
        .and_then(kind)
        .map_err(|source| TranscodeError::Ffmpeg { call, source })
}

/// Gives a context that is not opened yet a copy of `data` as its extradata (a decoder's
/// `avcC`, AudioSpecificConfig or OpusHead), in a buffer allocated with av_mallocz: zeroed
/// padding included, as libavcodec requires, and freed with the context.
pub(crate) fn set_extradata(context: &mut Context, data: &[u8]) -> Result<(), TranscodeError> {
    let size = i32::try_from(data.len())
        .map_err(|_| TranscodeError::InvalidInput("codec extradata larger than 2 GiB"))?;
    let padding = ffi::AV_INPUT_BUFFER_PADDING_SIZE as usize;
    // SAFETY: the context is allocated (checked for null) and not opened, which is when
    // extradata may be set; the buffer holds `data.len()` bytes plus the padding, and the
    // context owns it from here on.
    unsafe {
        let ctx = context.as_mut_ptr();
        if ctx.is_null() {
            return Err(TranscodeError::OutOfMemory("avcodec_alloc_context3"));
        }
        let buffer = ffi::av_mallocz(data.len() + padding) as *mut u8;
        if buffer.is_null() {
            return Err(TranscodeError::OutOfMemory("av_mallocz (codec extradata)"));
        }
        ptr::copy_nonoverlapping(data.as_ptr(), buffer, data.len());
        (*ctx).extradata = buffer;
        (*ctx).extradata_size = size;
    }
    Ok(())
}

/// A copy of an opened encoder's extradata: its global headers (with
/// `AV_CODEC_FLAG_GLOBAL_HEADER`), empty when it has none.
pub(crate) fn extradata(context: &Context) -> Vec<u8> {
    // SAFETY: after a successful open, extradata holds extradata_size bytes (or is null); we
    // copy them out at once.
    unsafe {
        let ctx = context.as_ptr();
        if (*ctx).extradata.is_null() {
            Vec::new()
        } else {
            let size = usize::try_from((*ctx).extradata_size).unwrap_or(0);
            std::slice::from_raw_parts((*ctx).extradata, size).to_vec()
        }
    }
}

/// Timestamps and flags of a packet sent with [`send_packet`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct PacketTimes {
    /// In the decoder's `pkt_timebase`; `AV_NOPTS_VALUE` for none.
    pub pts: i64,
    pub dts: i64,
    pub keyframe: bool,
}

impl PacketTimes {
    /// No timestamps: the caller keeps the time itself.
    pub(crate) const NONE: PacketTimes = PacketTimes {
        pts: ffi::AV_NOPTS_VALUE,
        dts: ffi::AV_NOPTS_VALUE,
        keyframe: false,
    };
}

/// Sends `data` (not empty: an empty packet means end of stream) to an opened decoder as one
/// packet; `call` names the decoder in the error.
pub(crate) fn send_packet(
    decoder: &mut Context,
    data: &[u8],
    times: PacketTimes,
    call: &'static str,
) -> Result<(), TranscodeError> {
    let size = i32::try_from(data.len())
        .map_err(|_| TranscodeError::InvalidInput("packet larger than 2 GiB"))?;
    // SAFETY: a zeroed AVPacket is a valid blank packet; it borrows `data` only for this call
    // (not reference-counted: avcodec_send_packet copies the data into a padded buffer of its
    // own) and owns nothing, so it needs no unref.
    let sent = unsafe {
        let mut packet: ffi::AVPacket = std::mem::zeroed();
        packet.data = data.as_ptr() as *mut u8;
        packet.size = size;
        packet.pts = times.pts;
        packet.dts = times.dts;
        packet.pos = -1;
        if times.keyframe {
            packet.flags = ffi::AV_PKT_FLAG_KEY;
        }
        ffi::avcodec_send_packet(decoder.as_mut_ptr(), &packet)
    };
    if sent < 0 {
        return Err(TranscodeError::Ffmpeg {
            call,
            source: ffmpeg_next::Error::from(sent),
        });
    }
    Ok(())
}

/// What one `receive_frame` / `receive_packet` call returned: `Ok(true)` when a frame or packet
/// came out, `Ok(false)` when the codec wants more input (EAGAIN) or is drained (EOF), an error
/// naming `call` otherwise. Callers loop `while received(...)? { ... }`.
pub(crate) fn received(
    result: Result<(), ffmpeg_next::Error>,
    call: &'static str,
) -> Result<bool, TranscodeError> {
    match result {
        Ok(()) => Ok(true),
        Err(ffmpeg_next::Error::Other { errno: EAGAIN }) | Err(ffmpeg_next::Error::Eof) => {
            Ok(false)
        }
        Err(source) => Err(TranscodeError::Ffmpeg { call, source }),
    }
}

/// Every packet `encoder` has ready, each handed to `each` with its data (packets without data
/// are skipped), into `packet` (reused), until the encoder wants more input or is drained.
pub(crate) fn receive_packets(
    encoder: &mut ffmpeg_next::encoder::Encoder,
    packet: &mut Packet,
    call: &'static str,
    mut each: impl FnMut(&Packet, &[u8]),
) -> Result<(), TranscodeError> {
    while received(encoder.receive_packet(packet), call)? {
        if let Some(data) = packet.data().filter(|data| !data.is_empty()) {
            each(packet, data);
        }
    }
    Ok(())
}
