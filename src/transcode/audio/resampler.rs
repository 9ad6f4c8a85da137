//! swresample from what a decoder gives (any sample format, rate and channel layout) to what
//! the AAC encoder takes (planar float at the output rate, mono or stereo), written into the
//! [`SampleBuffer`]. More than two channels are downmixed with swresample's default matrix.

use std::ptr;

use ffmpeg_next::ffi;
use ffmpeg_next::frame;

use super::samples::SampleBuffer;
use crate::transcode::encoder::TranscodeError;

/// The sample format, rate and channel layout of decoded audio, which the resampler is set up
/// for. Layouts are kept as native-order masks (a decoder's unspecified order becomes the
/// default layout of its channel count).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct InputDefinition {
    format: ffi::AVSampleFormat,
    rate: i32,
    channels: i32,
    mask: u64,
}

impl InputDefinition {
    /// What `decoded` (a frame the decoder just returned) is; None when it holds no samples.
    pub(super) fn of(decoded: &frame::Audio) -> Result<Option<Self>, TranscodeError> {
        // SAFETY: `decoded` wraps a valid AVFrame; we read its properties only.
        let (samples, rate, layout) = unsafe {
            let f = decoded.as_ptr();
            ((*f).nb_samples, (*f).sample_rate, (*f).ch_layout)
        };
        if samples <= 0 {
            return Ok(None);
        }
        if rate <= 0 || layout.nb_channels <= 0 {
            return Err(TranscodeError::InvalidInput(
                "decoded audio without a sample rate or channels",
            ));
        }
        let mask = if layout.order == ffi::AVChannelOrder::AV_CHANNEL_ORDER_NATIVE {
            // SAFETY: `mask` is the member a native-order layout uses.
            unsafe { layout.u.mask }
        } else {
            default_mask(layout.nb_channels)
        };
        Ok(Some(InputDefinition {
            format: decoded.format().into(),
            rate,
            channels: layout.nb_channels,
            mask,
        }))
    }
}

/// swresample from one input definition to the encoder's fltp, rate and layout.
pub(super) struct Resampler {
    swr: *mut ffi::SwrContext,
    pub(super) input: InputDefinition,
}

// SAFETY: an SwrContext is plain memory owned by this value and used through `&mut` only (one
// thread at a time); nothing in it is tied to the thread that created it.
unsafe impl Send for Resampler {}

impl Resampler {
    pub(super) fn new(
        input: InputDefinition,
        rate: u32,
        channels: u8,
    ) -> Result<Self, TranscodeError> {
        let describe = || {
            TranscodeError::UnsupportedAudio(format!(
            "swresample cannot convert {:?} {} Hz {} ch (layout {:#x}) to fltp {rate} Hz {channels} ch",
            input.format, input.rate, input.channels, input.mask
        ))
        };
        let mut swr = ptr::null_mut();
        // SAFETY: the layouts are native-order (no allocation, nothing to uninit);
        // swr_alloc_set_opts2 copies them. On failure it leaves `swr` null or frees it.
        let allocated = unsafe {
            let mut in_layout: ffi::AVChannelLayout = std::mem::zeroed();
            if ffi::av_channel_layout_from_mask(&mut in_layout, input.mask) < 0 {
                return Err(describe());
            }
            let mut out_layout: ffi::AVChannelLayout = std::mem::zeroed();
            ffi::av_channel_layout_default(&mut out_layout, i32::from(channels));
            ffi::swr_alloc_set_opts2(
                &mut swr,
                &mut out_layout,
                ffi::AVSampleFormat::AV_SAMPLE_FMT_FLTP,
                rate as i32,
                &mut in_layout,
                input.format,
                input.rate,
                0,
                ptr::null_mut(),
            )
        };
        if allocated < 0 || swr.is_null() {
            return Err(describe());
        }
        let resampler = Resampler { swr, input };
        // SAFETY: swr is a fully configured, not yet initialised context.
        if unsafe { ffi::swr_init(resampler.swr) } < 0 {
            return Err(describe());
        }
        Ok(resampler)
    }

    /// The samples of `decoded` (a frame of this resampler's input definition), converted and
    /// appended to `buffer`; returns how many were appended.
    pub(super) fn convert(
        &mut self,
        decoded: &frame::Audio,
        buffer: &mut SampleBuffer,
    ) -> Result<usize, TranscodeError> {
        let swr = self.swr;
        // SAFETY: swr is initialised; nb_samples input samples at extended_data (one pointer
        // per plane, or one for packed audio), as the decoder returned them.
        let (samples, input_planes) = unsafe {
            let f = decoded.as_ptr();
            ((*f).nb_samples, (*f).extended_data as *mut *const u8)
        };
        // SAFETY: as above.
        let max = unsafe { ffi::swr_get_out_samples(swr, samples) };
        if max < 0 {
            return Err(TranscodeError::Ffmpeg {
                call: "swr_get_out_samples",
                source: ffmpeg_next::Error::from(max),
            });
        }
        buffer
            .append_with(usize::try_from(max).unwrap_or(0) + 16, |out| {
                // SAFETY: one pointer per output plane with room for the count given.
                unsafe { ffi::swr_convert(swr, out.as_mut_ptr(), max + 16, input_planes, samples) }
            })
            .map_err(|code| TranscodeError::Ffmpeg {
                call: "swr_convert",
                source: ffmpeg_next::Error::from(code),
            })
    }

    /// The samples the resampler still holds (its filter delay), appended to `buffer`; returns
    /// how many were appended.
    pub(super) fn drain(&mut self, buffer: &mut SampleBuffer) -> Result<usize, TranscodeError> {
        let swr = self.swr;
        // SAFETY: swr is initialised; a null input flushes it.
        let max = unsafe { ffi::swr_get_out_samples(swr, 0) }.max(0) + 16;
        buffer
            .append_with(max as usize, |out| unsafe {
                ffi::swr_convert(swr, out.as_mut_ptr(), max, ptr::null_mut(), 0)
            })
            .map_err(|code| TranscodeError::Ffmpeg {
                call: "swr_convert (flush)",
                source: ffmpeg_next::Error::from(code),
            })
    }
}

impl Drop for Resampler {
    fn drop(&mut self) {
        // SAFETY: we own the context; swr_free nulls our pointer.
        unsafe { ffi::swr_free(&mut self.swr) };
    }
}

/// The mask of the default native layout for `channels` (0 when there is none).
fn default_mask(channels: i32) -> u64 {
    // SAFETY: av_channel_layout_default writes a native (or unspecified-order) layout, which
    // owns no memory.
    unsafe {
        let mut layout: ffi::AVChannelLayout = std::mem::zeroed();
        ffi::av_channel_layout_default(&mut layout, channels);
        if layout.order == ffi::AVChannelOrder::AV_CHANNEL_ORDER_NATIVE {
            layout.u.mask
        } else {
            0
        }
    }
}
