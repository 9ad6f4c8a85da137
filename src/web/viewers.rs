//! Counts the people watching now: distinct client addresses that fetched a media playlist in
//! the last 30 seconds (a playing HLS client reloads it every target duration).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const ACTIVE_WINDOW: Duration = Duration::from_secs(30);

#[derive(Default)]
pub struct ViewerCounter {
    last_seen: Mutex<HashMap<IpAddr, Instant>>,
}

impl ViewerCounter {
    pub fn saw(&self, client: IpAddr) {
        self.lock().insert(client, Instant::now());
    }

    /// Clients seen within the window; forgets the others.
    pub fn count(&self) -> usize {
        let mut last_seen = self.lock();
        last_seen.retain(|_, seen| seen.elapsed() < ACTIVE_WINDOW);
        last_seen.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Instant>> {
        self.last_seen
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_client_counts_once() {
        let counter = ViewerCounter::default();
        counter.saw([10, 0, 0, 1].into());
        counter.saw([10, 0, 0, 1].into());
        counter.saw([10, 0, 0, 2].into());
        assert_eq!(counter.count(), 2);
    }
}
