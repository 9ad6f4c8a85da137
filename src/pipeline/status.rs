//! Whether the stream is live and since when: written by the pipeline, read by `/api/status`.

use std::sync::Mutex;
use std::time::SystemTime;

#[derive(Debug, Clone, Default)]
pub struct StatusSnapshot {
    pub online: bool,
    pub last_connect_time: Option<SystemTime>,
    pub last_disconnect_time: Option<SystemTime>,
    /// Packets dropped because the pipeline could not keep up, this session.
    pub dropped_packets: u64,
}

#[derive(Default)]
pub struct StreamStatus {
    inner: Mutex<StatusSnapshot>,
}

impl StreamStatus {
    pub fn snapshot(&self) -> StatusSnapshot {
        self.lock().clone()
    }

    /// A publisher was accepted (the stream is online once its first segment is listed).
    pub(super) fn publisher_connected(&self) {
        let mut status = self.lock();
        status.last_connect_time = Some(SystemTime::now());
        status.dropped_packets = 0;
    }

    pub(super) fn went_online(&self) {
        self.lock().online = true;
    }

    pub(super) fn went_offline(&self) {
        let mut status = self.lock();
        status.online = false;
        status.last_disconnect_time = Some(SystemTime::now());
    }

    pub(super) fn count_dropped(&self) {
        self.lock().dropped_packets += 1;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, StatusSnapshot> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
