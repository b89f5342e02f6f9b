//! Snapshot hand-off (work in progress).
