//! selfcast: a self-hosted live streaming server. RTMP in, HLS and chat out, one binary.
//! See docs/DESIGN.md for the data flow and the module map.

pub mod brute_force;
pub mod chat;
pub mod config;
pub mod hls;
pub mod ingest;
pub mod log_limit;
pub mod media;
pub mod open_files;
pub mod owner_file;
pub mod panics;
pub mod pipeline;
pub mod process_usage;
pub mod queue;
pub mod secrets;
pub mod settings;
pub mod sink;
pub mod store;
pub mod stream_keys;
pub mod transcode;
pub mod web;
