//! Who is connected: every open chat connection, and how many each address and each user has
//! open. The counts are kept as connections come and go, so the per-address cap, the decision to
//! announce USER_JOINED / USER_PARTED and the viewer count never scan the connections (with
//! thousands of open pages polling `/api/status`, a scan per request would add up).

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::time::SystemTime;

/// One open websocket.
pub struct Connection {
    pub user_id: String,
    pub ip: IpAddr,
    pub connected_at: SystemTime,
    /// Messages its user sent through it.
    pub messages: u64,
}

#[derive(Default)]
pub struct Presence {
    connections: HashMap<u64, Connection>,
    next_id: u64,
    per_ip: HashMap<IpAddr, usize>,
    per_user: HashMap<String, usize>,
}

/// A connection just added.
pub struct Added {
    pub id: u64,
    /// The user had no other connection open.
    pub first_of_user: bool,
}

/// A connection just removed.
pub struct Removed {
    pub connection: Connection,
    /// The user has no other connection open.
    pub last_of_user: bool,
}

impl Presence {
    pub fn add(&mut self, user_id: String, ip: IpAddr) -> Added {
        let id = self.next_id;
        self.next_id += 1;
        *self.per_ip.entry(ip).or_default() += 1;
        let of_user = self.per_user.entry(user_id.clone()).or_default();
        *of_user += 1;
        let first_of_user = *of_user == 1;
        self.connections.insert(
            id,
            Connection {
                user_id,
                ip,
                connected_at: SystemTime::now(),
                messages: 0,
            },
        );
        Added { id, first_of_user }
    }

    /// `None`: no such connection (already removed).
    pub fn remove(&mut self, id: u64) -> Option<Removed> {
        let connection = self.connections.remove(&id)?;
        decrement(&mut self.per_ip, &connection.ip);
        let last_of_user = decrement(&mut self.per_user, &connection.user_id);
        Some(Removed {
            connection,
            last_of_user,
        })
    }

    pub fn get(&self, id: u64) -> Option<&Connection> {
        self.connections.get(&id)
    }

    pub fn get_mut(&mut self, id: u64) -> Option<&mut Connection> {
        self.connections.get_mut(&id)
    }

    pub fn iter(&self) -> impl Iterator<Item = (u64, &Connection)> {
        self.connections.iter().map(|(id, c)| (*id, c))
    }

    /// Open connections in all.
    pub fn total(&self) -> usize {
        self.connections.len()
    }

    /// Open connections from `ip`.
    pub fn from_ip(&self, ip: &IpAddr) -> usize {
        self.per_ip.get(ip).copied().unwrap_or(0)
    }
}

/// One less for `key`; forgets it at zero and returns whether it did.
fn decrement<K: Eq + Hash>(counts: &mut HashMap<K, usize>, key: &K) -> bool {
    let Some(count) = counts.get_mut(key) else {
        return false;
    };
    *count -= 1;
    if *count == 0 {
        counts.remove(key);
        return true;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, last])
    }

    #[test]
    fn counts_follow_connections_per_address_and_per_user() {
        let mut presence = Presence::default();
        let ana_tab1 = presence.add("ana".into(), ip(1));
        let ana_tab2 = presence.add("ana".into(), ip(1));
        let bob = presence.add("bob".into(), ip(1));
        let cy = presence.add("cy".into(), ip(2));
        assert!(ana_tab1.first_of_user && !ana_tab2.first_of_user);
        assert!(bob.first_of_user && cy.first_of_user);
        assert_eq!((presence.total(), presence.from_ip(&ip(1))), (4, 3));
        assert_eq!((presence.from_ip(&ip(2)), presence.from_ip(&ip(3))), (1, 0));

        let gone = presence.remove(ana_tab1.id).unwrap();
        assert!(!gone.last_of_user, "her other tab is still open");
        assert_eq!(gone.connection.user_id, "ana");
        assert!(presence.remove(ana_tab2.id).unwrap().last_of_user);
        assert!(presence.remove(ana_tab2.id).is_none(), "removed once");
        assert_eq!((presence.total(), presence.from_ip(&ip(1))), (2, 1));

        assert!(presence.remove(bob.id).unwrap().last_of_user);
        assert!(presence.remove(cy.id).unwrap().last_of_user);
        assert_eq!(presence.total(), 0);
        assert!(presence.per_ip.is_empty() && presence.per_user.is_empty());
        // A returning user is announced again.
        assert!(presence.add("ana".into(), ip(1)).first_of_user);
    }
}
