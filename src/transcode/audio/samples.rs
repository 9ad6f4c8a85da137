//! The sample FIFO between the resampler, which produces any number of samples per call, and
//! the AAC encoder, which takes frames of exactly its frame size: planar float, one plane per
//! output channel, and the encoder's input frames cut from its front.

use std::ptr;

use ffmpeg_next::ffi;
use ffmpeg_next::frame;

use crate::transcode::encoder::TranscodeError;

/// Planar float samples waiting for the encoder (the FIFO between the resampler, which
/// produces any number, and the encoder, which takes exactly `frame_size`).
#[derive(Debug)]
pub(super) struct SampleBuffer {
    planes: Vec<Vec<f32>>,
    /// Samples already taken from the front of every plane.
    read: usize,
}

impl SampleBuffer {
    pub(super) fn new(channels: u8) -> Self {
        SampleBuffer {
            planes: vec![Vec::new(); usize::from(channels)],
            read: 0,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.planes.first().map_or(0, |p| p.len() - self.read)
    }

    /// Appends what `fill` writes: it gets one pointer per plane, each with room for `max`
    /// samples, and returns how many it wrote (or a negative AVERROR).
    pub(super) fn append_with(
        &mut self,
        max: usize,
        fill: impl FnOnce(&mut [*mut u8]) -> i32,
    ) -> Result<usize, i32> {
        if self.read > 0 {
            for plane in &mut self.planes {
                plane.drain(..self.read);
            }
            self.read = 0;
        }
        let start = self.len();
        let mut pointers: Vec<*mut u8> = self
            .planes
            .iter_mut()
            .map(|plane| {
                plane.resize(start + max, 0.0);
                plane[start..].as_mut_ptr().cast()
            })
            .collect();
        let written = fill(&mut pointers);
        let kept = usize::try_from(written).unwrap_or(0).min(max);
        for plane in &mut self.planes {
            plane.truncate(start + kept);
        }
        if written < 0 {
            return Err(written);
        }
        Ok(kept)
    }

    /// The next `n` samples of plane `channel`.
    fn front(&self, channel: usize, n: usize) -> &[f32] {
        &self.planes[channel][self.read..self.read + n]
    }

    pub(super) fn consume(&mut self, n: usize) {
        self.read += n.min(self.len());
    }

    /// A new fltp frame at `rate` Hz holding the next `n` samples (`n` ≤ [`Self::len`]),
    /// stamped `pts`; the samples stay in the buffer.
    pub(super) fn frame(
        &self,
        n: usize,
        rate: u32,
        pts: i64,
    ) -> Result<frame::Audio, TranscodeError> {
        let mut frame = frame::Audio::empty();
        // SAFETY: the frame is ours and blank (checked for null); av_frame_get_buffer gives
        // it `n` fltp samples per channel, into which we copy `n` samples per plane.
        unsafe {
            let f = frame.as_mut_ptr();
            if f.is_null() {
                return Err(TranscodeError::OutOfMemory("av_frame_alloc (aac frame)"));
            }
            (*f).format = ffi::AVSampleFormat::AV_SAMPLE_FMT_FLTP as i32;
            (*f).nb_samples = n as i32;
            (*f).sample_rate = rate as i32;
            ffi::av_channel_layout_default(&mut (*f).ch_layout, self.planes.len() as i32);
            (*f).pts = pts;
            let allocated = ffi::av_frame_get_buffer(f, 0);
            if allocated < 0 {
                return Err(TranscodeError::Ffmpeg {
                    call: "av_frame_get_buffer (aac frame)",
                    source: ffmpeg_next::Error::from(allocated),
                });
            }
            for channel in 0..self.planes.len() {
                let samples = self.front(channel, n);
                let plane = *(*f).extended_data.add(channel) as *mut f32;
                ptr::copy_nonoverlapping(samples.as_ptr(), plane, n);
            }
        }
        Ok(frame)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_buffer_is_a_fifo() {
        let mut buffer = SampleBuffer::new(2);
        let wrote = buffer.append_with(8, |planes| {
            for (c, plane) in planes.iter().enumerate() {
                let plane = *plane as *mut f32;
                for i in 0..5 {
                    unsafe { *plane.add(i) = (c * 100 + i) as f32 };
                }
            }
            5
        });
        assert_eq!(wrote, Ok(5));
        assert_eq!(buffer.len(), 5);
        assert_eq!(buffer.front(1, 3), [100.0, 101.0, 102.0]);
        buffer.consume(3);
        assert_eq!(buffer.front(0, 2), [3.0, 4.0]);
        assert_eq!(buffer.append_with(4, |_| -22), Err(-22));
        assert_eq!(buffer.len(), 2);
        assert_eq!(buffer.append_with(4, |_| 1), Ok(1));
        assert_eq!(buffer.front(0, 3), [3.0, 4.0, 0.0]);
    }
}
