//! What a chat client sends over its websocket: text frames parsed as Owncast-shaped JSON
//! events (src/chat/events.rs `ClientEvent`), then handled by the hub as the connection task
//! does (messages, name changes), for one client of a fresh hub. The input is a sequence of
//! frames separated by NUL bytes (never valid inside JSON text); a frame that is not UTF-8
//! stands for a binary frame.
#![no_main]

use std::net::{IpAddr, Ipv4Addr};

use libfuzzer_sys::fuzz_target;
use selfcast::chat::events::ClientEvent;
use selfcast::chat::hub::Hub;
use selfcast::config::ChatConfig;

const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fuzz_target!(|data: &[u8]| {
    let hub = Hub::in_memory(ChatConfig::default())
        .expect("the default streamer name is valid");
    let Ok(joined) = hub.connect(None, CLIENT) else {
        panic!("a fresh hub refused its first client");
    };
    for frame in data.split(|&b| b == 0) {
        let event = std::str::from_utf8(frame)
            .ok()
            .and_then(|text| serde_json::from_str::<ClientEvent>(text).ok());
        let _ = match event {
            Some(ClientEvent::Chat { body }) => hub.chat(joined.connection, &body),
            Some(ClientEvent::NameChange { new_name }) => hub.rename(joined.connection, &new_name),
            Some(ClientEvent::Ping | ClientEvent::Pong) | None => Ok(()),
        };
    }
    // Whatever the client sent, what the hub keeps for newcomers is JSON they can read.
    for event in hub.history() {
        serde_json::from_str::<serde_json::Value>(&event).expect("history holds JSON");
    }
    hub.disconnect(joined.connection);
});
