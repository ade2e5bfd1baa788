//! The `kiln` command: run this host's exporters in one process ([`up`]), and `scrape` and
//! `check` an exporter's output.
//!
//! [`source`] fetches exposition text from a URL or reads it from a file, [`pretty`] prints
//! it for people or as prom2json's JSON, and [`lint`] checks it the way
//! `promtool check metrics` does, with line numbers. [`safe_text`] escapes what a target
//! sent before it reaches the terminal.

#![forbid(unsafe_code)]

pub mod lint;
pub mod pretty;
pub mod safe_text;
pub mod source;
pub mod top;
pub mod up;
