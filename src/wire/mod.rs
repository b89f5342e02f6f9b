//! Zero-copy packet views. Owned by the wire work; see issue 3.
#![forbid(unsafe_code)]
