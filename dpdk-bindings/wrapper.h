/* The DPDK 22.11 API surface mplb binds. bindgen reads this file; the C
 * wrappers for static inline functions are generated from it too. */
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_launch.h>
#include <rte_cycles.h>
#include <rte_malloc.h>
#include <rte_memory.h>
#include <rte_mempool.h>
#include <rte_mbuf.h>
#include <rte_ring.h>
#include <rte_ethdev.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_tcp.h>
#include <rte_udp.h>

/* Helpers for what DPDK exposes only as macros or thread-local variables. */
int mplb_rte_errno(void);
uint16_t mplb_mbuf_headroom(void);
