//! Open connections counted per client address, with a cap: a claim is taken when a connection
//! is accepted and given back when it is dropped, however the connection ends.
//!
//! IPv4 addresses count one by one. IPv6 addresses count by their /64 prefix: one subscriber
//! (a household, a phone) is usually given a whole /64, so counting single IPv6 addresses would
//! let one machine open as many connections as it has addresses (2^64). IPv4-mapped IPv6
//! addresses (`::ffff:a.b.c.d`, what a dual-stack socket reports) count as their IPv4 address.
//! (`brute_force::address_key`, the unit every per-address limit counts by.)

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

use crate::brute_force::address_key;

/// Open connections per address (addresses with none are not kept).
type OpenCounts = Arc<Mutex<HashMap<IpAddr, usize>>>;

/// The open connections of every address; cheap to clone (shared).
#[derive(Debug, Clone)]
pub struct PerAddress {
    /// `None`: no cap (counting is skipped too).
    cap: Option<usize>,
    open: OpenCounts,
}

/// One open connection of an address; dropping it gives the place back.
#[derive(Debug)]
pub struct Claim {
    /// `None` when nothing is counted (no cap).
    counted: Option<(IpAddr, OpenCounts)>,
}

impl PerAddress {
    /// At most `cap` connections per address; `0` means no cap.
    pub fn new(cap: usize) -> PerAddress {
        PerAddress {
            cap: (cap > 0).then_some(cap),
            open: Arc::default(),
        }
    }

    /// A place for one more connection from `ip`; `None` when it already has `cap` open.
    pub fn claim(&self, ip: IpAddr) -> Option<Claim> {
        let Some(cap) = self.cap else {
            return Some(Claim { counted: None });
        };
        let key = address_key(ip);
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let count = open.entry(key).or_insert(0);
        if *count >= cap {
            return None;
        }
        *count += 1;
        Some(Claim {
            counted: Some((key, Arc::clone(&self.open))),
        })
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        let Some((key, open)) = &self.counted else {
            return;
        };
        let mut open = open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = open.get_mut(key) {
            *count -= 1;
            if *count == 0 {
                open.remove(key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn an_address_gets_its_cap_and_its_places_back() {
        let limits = PerAddress::new(2);
        let first = limits.claim(ip("192.0.2.1")).unwrap();
        let _second = limits.claim(ip("192.0.2.1")).unwrap();
        assert!(limits.claim(ip("192.0.2.1")).is_none());
        // Another address is counted apart.
        let _other = limits.claim(ip("192.0.2.2")).unwrap();
        drop(first);
        let _again = limits.claim(ip("192.0.2.1")).unwrap();
        assert!(limits.claim(ip("192.0.2.1")).is_none());
    }

    #[test]
    fn the_map_forgets_addresses_with_nothing_open() {
        let limits = PerAddress::new(1);
        drop(limits.claim(ip("192.0.2.1")).unwrap());
        assert!(limits.open.lock().unwrap().is_empty());
    }

    #[test]
    fn ipv6_counts_by_its_64_bit_prefix_and_mapped_ipv4_as_ipv4() {
        assert_eq!(
            address_key(ip("2001:db8:1:2::1")),
            address_key(ip("2001:db8:1:2:ffff:ffff:ffff:ffff"))
        );
        assert_ne!(
            address_key(ip("2001:db8:1:2::1")),
            address_key(ip("2001:db8:1:3::1"))
        );
        assert_eq!(
            address_key(ip("::ffff:192.0.2.7")),
            address_key(ip("192.0.2.7"))
        );
        let limits = PerAddress::new(1);
        let _held = limits.claim(ip("2001:db8::1")).unwrap();
        assert!(limits.claim(ip("2001:db8::2")).is_none());
    }

    #[test]
    fn zero_means_no_cap() {
        let limits = PerAddress::new(0);
        let claims: Vec<_> = (0..1000)
            .map(|_| limits.claim(ip("192.0.2.1")).unwrap())
            .collect();
        assert!(claims.iter().all(|claim| claim.counted.is_none()));
        assert!(limits.open.lock().unwrap().is_empty());
    }
}
