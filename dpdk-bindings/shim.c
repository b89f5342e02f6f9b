/* Functions for DPDK facilities that are macros (not visible to bindgen). */
#include "wrapper.h"

int mplb_rte_errno(void) { return rte_errno; }

uint16_t mplb_mbuf_headroom(void) { return RTE_PKTMBUF_HEADROOM; }
