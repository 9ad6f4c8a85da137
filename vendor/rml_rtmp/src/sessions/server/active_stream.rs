use super::PublishMode;

pub enum StreamState {
    Created,

    Publishing {
        stream_key: String,
        // selfcast patch: silences the one warning a path dependency shows in our builds.
        #[allow(dead_code)]
        mode: PublishMode,
    },

    Playing {
        stream_key: String,
    },

    Completed,
}

pub struct ActiveStream {
    pub current_state: StreamState,
}
