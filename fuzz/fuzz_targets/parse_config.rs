//! Fuzzes the config parser and what a running mplb does with a config it
//! accepts: any bytes go through `Config::parse` (the pure parser and
//! validator, without the host memory check, which reads /proc), and an
//! accepted config is summarised (`check-config`), compared with itself for
//! a reload, and built into a forwarding snapshot (Maglev tables included).
//!
//! Invariants, for any bytes: no panic and no hang; parsing is deterministic;
//! every rejection names the file; an accepted config reloads onto itself
//! without a blocker; and a forwarding snapshot is built or refused with an
//! error, never a panic. Seeds: the shipped configs and the test fixtures
//! (see fuzz/run-smoke.sh).
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use mplb::config::Config;
use mplb::control::{StableIds, build_forwarding};

/// Larger configs only slow the fuzzer down (the parser is linear).
const MAX_LEN: usize = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    if data.len() > MAX_LEN {
        return;
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let file = Path::new("fuzz.toml");
    let parsed = Config::parse(text, file);
    let again = Config::parse(text, file);
    match (&parsed, &again) {
        (Ok(a), Ok(b)) => assert!(a == b, "parsing is not deterministic"),
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
        _ => panic!("parsing is not deterministic"),
    }
    let config = match parsed {
        Ok(c) => c,
        Err(e) => {
            assert!(e.to_string().starts_with("fuzz.toml"), "{e}");
            return;
        }
    };
    let _ = config.summary();
    assert_eq!(config.reload_blocker(&config), None);
    let ports: Vec<[u8; 6]> = (0..config.ports.len())
        .map(|i| [2, 0, 0, 0, 0, i as u8])
        .collect();
    let mut ids = StableIds::default();
    let _ = build_forwarding(&config, &ports, &mut ids);
});
