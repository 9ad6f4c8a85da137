//! How many threads the codecs of one ladder run behind its own threads.
//!
//! The ladder already runs its decoder and every rendition's encoder in parallel, one thread each.
//! Threads inside the codecs (libavcodec's frame threads, x264's slice threads) only pay where
//! cores would otherwise sit idle; beyond that each one costs a hand-off and a wake-up per
//! picture, cache misses, and (for x264's slices) a little quality per bit. Measured with
//! `ci/bench transcode` (BENCHMARKS.md): three renditions on two cores spend less CPU with one
//! thread per codec than with libavcodec's and x264's automatic choices.

/// Codec-internal threads for one session's ladder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThreadPlan {
    /// H.264 decoder frame threads.
    pub decoder: u32,
    /// libx264 threads per rendition.
    pub encoder: u32,
}

impl ThreadPlan {
    /// For `renditions` transcoded variants on a machine with `cores` cores: each encoder gets
    /// its share of the cores, and the decoder what the encoders leave, never less than one.
    pub fn for_ladder(cores: usize, renditions: usize) -> Self {
        let cores = cores.max(1);
        let renditions = renditions.max(1);
        let count = |n: usize| u32::try_from(n.max(1)).unwrap_or(u32::MAX);
        ThreadPlan {
            decoder: count(cores.saturating_sub(renditions)),
            encoder: count(cores / renditions),
        }
    }

    /// The plan for this machine.
    pub fn here(renditions: usize) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        Self::for_ladder(cores, renditions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codec_threads_fill_the_cores_the_ladder_leaves() {
        let plan = |cores, renditions| {
            let p = ThreadPlan::for_ladder(cores, renditions);
            (p.decoder, p.encoder)
        };
        // The benchmark's machine: 3 renditions on 2 cores, everything single-threaded.
        assert_eq!(plan(2, 3), (1, 1));
        // The default ladder (one rendition) on 2 cores: x264 gets both, the decoder one.
        assert_eq!(plan(2, 1), (1, 2));
        assert_eq!(plan(1, 1), (1, 1));
        assert_eq!(plan(8, 3), (5, 2));
        assert_eq!(plan(16, 2), (14, 8));
        assert_eq!(plan(0, 0), (1, 1), "never zero, which would mean automatic");
    }
}
