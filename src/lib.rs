//! flowsnap: the elastic.io platform API v2 for users, workspaces, flows and step snapshots, served
//! by one binary from one SQLite file. See ARCHITECTURE.md for the map of the code.

pub mod access;
pub mod alloc;
pub mod api;
pub mod auth;
pub mod cli;
pub mod config;
pub mod db;
pub mod ephemeral;
pub mod error;
pub mod fixture;
pub mod gate;
pub mod graph;
pub mod metrics;
pub mod probe;
pub mod rawjson;
pub mod reqlog;
pub mod rules;
pub mod server;
pub mod sockets;
pub mod util;
