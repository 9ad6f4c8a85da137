//! Counts the people watching now: open pages (their chat websocket) plus HLS-only clients,
//! distinct addresses that fetched a media playlist in the last 30 seconds (a playing HLS client
//! reloads it every target duration) and have no page open.

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

    /// Open `pages` (chat websockets) plus the addresses seen within the window that have no
    /// page open (`has_page`); forgets addresses gone quiet.
    pub fn count(&self, pages: usize, has_page: impl Fn(&IpAddr) -> bool) -> usize {
        let mut last_seen = self.lock();
        last_seen.retain(|_, seen| seen.elapsed() < ACTIVE_WINDOW);
        let hls_only = last_seen.keys().filter(|ip| !has_page(ip)).count();
        pages + hls_only
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
        assert_eq!(counter.count(0, |_| false), 2);
        // Two pages open from 10.0.0.1 (whose players also fetch playlists) and one from
        // 10.0.0.3: three pages, plus 10.0.0.2 playing HLS elsewhere.
        let with_pages: [IpAddr; 2] = [[10, 0, 0, 1].into(), [10, 0, 0, 3].into()];
        assert_eq!(counter.count(3, |ip| with_pages.contains(ip)), 4);
    }
}
