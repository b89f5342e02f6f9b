//! Each worker's flow-table memory.

use crate::control::log;
use crate::datapath::flow_table::{Bucket, FlowTableConfig};
use crate::dpdk::{Eal, TableMemory, eal_has_hugepages};

/// Worker `w`'s flow-table memory: DPDK hugepage memory on the worker's NUMA
/// socket. When the EAL runs without hugepages (`--no-huge`), or they are too
/// few, ordinary memory instead, with a log line: mplb still starts (a
/// smaller or heap table only costs more TLB misses per packet), and the
/// operator sees why it is slower.
pub(super) fn flow_table_memory(
    eal: &Eal,
    config: &FlowTableConfig,
    w: usize,
    socket: u32,
) -> Result<TableMemory<Bucket>, String> {
    let buckets = config.buckets().map_err(|e| format!("flow table: {e}"))?;
    let mib = config
        .memory_bytes()
        .map_err(|e| format!("flow table: {e}"))?
        .div_ceil(1 << 20);
    if !eal_has_hugepages(eal) {
        log::event(
            "info",
            "flow_table_memory",
            &[
                ("worker", &w),
                ("mib", &mib),
                ("placement", &"ordinary memory"),
                ("reason", &"EAL runs without hugepages (--no-huge)"),
            ],
        );
        return TableMemory::heap(buckets, Bucket::EMPTY).map_err(|e| format!("flow table: {e}"));
    }
    match TableMemory::dpdk(eal, buckets, Bucket::EMPTY, socket) {
        Ok(m) => Ok(m),
        Err(e) => {
            log::event(
                "warn",
                "flow_table_memory",
                &[
                    ("worker", &w),
                    ("mib", &mib),
                    ("placement", &"ordinary memory"),
                    ("reason", &e),
                    (
                        "hint",
                        &"reserve more hugepages (scripts/setup-host.sh) or lower flow_table.capacity",
                    ),
                ],
            );
            TableMemory::heap(buckets, Bucket::EMPTY).map_err(|e| format!("flow table: {e}"))
        }
    }
}
