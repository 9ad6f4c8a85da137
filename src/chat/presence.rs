//! Who is connected: every open chat connection, how many each address and each user has open,
//! and the names connected users hold (by their look-alike [`Skeletons`]). All are kept as
//! connections come and go, so the per-address cap, the decision to announce USER_JOINED /
//! USER_PARTED, the viewer count and the check that a new name does not look like a connected
//! user's never scan the connections (with thousands of open pages polling `/api/status`, or
//! thousands of chatters, a scan per request would add up).

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::time::SystemTime;

use super::names::Skeletons;

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
    /// The name of each connected user, and how many connected users hold each skeleton key.
    names: HashMap<String, Skeletons>,
    held_keys: HashMap<String, usize>,
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
    /// A connection of `user_id`, whose name looks like `name`.
    pub fn add(&mut self, user_id: String, ip: IpAddr, name: Skeletons) -> Added {
        let id = self.next_id;
        self.next_id += 1;
        *self.per_ip.entry(ip).or_default() += 1;
        let of_user = self.per_user.entry(user_id.clone()).or_default();
        *of_user += 1;
        let first_of_user = *of_user == 1;
        if first_of_user {
            self.hold(user_id.clone(), name);
        }
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
        if last_of_user {
            self.release(&connection.user_id);
        }
        Some(Removed {
            connection,
            last_of_user,
        })
    }

    /// A connected user took a new name (a user who is not connected is not tracked).
    pub fn rename(&mut self, user_id: &str, name: Skeletons) {
        if self.names.contains_key(user_id) {
            self.release(user_id);
            self.hold(user_id.to_owned(), name);
        }
    }

    /// Whether a connected user other than `user_id` holds a name that looks like `name`.
    pub fn held_by_another(&self, name: &Skeletons, user_id: &str) -> bool {
        let own = self.names.get(user_id);
        name.keys().iter().any(|key| {
            let holders = self.held_keys.get(key).copied().unwrap_or(0);
            let mine = own.is_some_and(|own| own.keys().contains(key));
            holders > usize::from(mine)
        })
    }

    fn hold(&mut self, user_id: String, name: Skeletons) {
        for key in name.keys() {
            *self.held_keys.entry(key.clone()).or_default() += 1;
        }
        self.names.insert(user_id, name);
    }

    fn release(&mut self, user_id: &str) {
        if let Some(name) = self.names.remove(user_id) {
            for key in name.keys() {
                decrement(&mut self.held_keys, key);
            }
        }
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

    fn add(presence: &mut Presence, user: &str, ip: IpAddr) -> Added {
        presence.add(user.into(), ip, Skeletons::of(user))
    }

    #[test]
    fn counts_follow_connections_per_address_and_per_user() {
        let mut presence = Presence::default();
        let ana_tab1 = add(&mut presence, "ana", ip(1));
        let ana_tab2 = add(&mut presence, "ana", ip(1));
        let bob = add(&mut presence, "bob", ip(1));
        let cy = add(&mut presence, "cy", ip(2));
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
        assert!(presence.names.is_empty() && presence.held_keys.is_empty());
        // A returning user is announced again.
        assert!(add(&mut presence, "ana", ip(1)).first_of_user);
    }

    #[test]
    fn names_are_held_while_their_user_is_connected() {
        let mut presence = Presence::default();
        let looks = |name: &str| Skeletons::of(name);
        let tab1 = presence.add("u-ana".into(), ip(1), looks("Ana"));
        let tab2 = presence.add("u-ana".into(), ip(1), looks("Ana"));
        // Another user cannot take it, or a look-alike (Cyrillic А); its holder can (new case).
        assert!(presence.held_by_another(&looks("ANA"), "u-bob"));
        assert!(presence.held_by_another(&looks("\u{410}na"), "u-bob"));
        assert!(!presence.held_by_another(&looks("ANA"), "u-ana"));
        assert!(!presence.held_by_another(&looks("Anna"), "u-bob"));
        // Renamed: the old name is free, the new one held.
        presence.rename("u-ana", looks("Ada"));
        assert!(!presence.held_by_another(&looks("Ana"), "u-bob"));
        assert!(presence.held_by_another(&looks("ada"), "u-bob"));
        // Two users may hold look-alikes (one renamed while the other was away): each blocks
        // the name for the others, and it stays held while one of them is connected.
        let bob = presence.add("u-bob".into(), ip(2), looks("ADA"));
        assert!(presence.held_by_another(&looks("Ada"), "u-ana"));
        assert!(presence.held_by_another(&looks("Ada"), "u-cy"));
        presence.remove(bob.id);
        assert!(!presence.held_by_another(&looks("Ada"), "u-ana"));
        // Released when the user's last connection closes, not before.
        presence.remove(tab1.id);
        assert!(presence.held_by_another(&looks("Ada"), "u-bob"));
        presence.remove(tab2.id);
        assert!(!presence.held_by_another(&looks("Ada"), "u-bob"));
        // A user who is not connected is not tracked.
        presence.rename("u-ana", looks("Zed"));
        assert!(!presence.held_by_another(&looks("Zed"), "u-bob"));
        assert!(presence.held_keys.is_empty());
    }
}
