//! The DPDK layer's handles hold the teardown order by themselves: a port
//! stays open while a queue of it lives, a pool outlives its ports, a pool
//! whose mbufs are still out is not freed, and a launched lcore is joined
//! when its handle goes. Runs the EAL in this process on a net_null device.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use mplb::dpdk::{Batch, Eal, Mempool, Port, PortSetup, launch_on_lcore};

fn eal() -> Eal {
    let args: Vec<String> = [
        "dpdk_handles",
        "--no-huge",
        "--no-shconf",
        "--no-pci",
        "--no-telemetry",
        &format!("--file-prefix=mplb-dpdk-handles-{}", std::process::id()),
        "--vdev=net_null0",
        "-l",
        "0,1",
        "--log-level=lib.eal:error",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    Eal::init(&args).expect("EAL init")
}

// One test: the EAL starts once per process.
#[test]
fn handles_keep_teardown_order_whatever_the_drop_order() {
    let eal = eal();
    assert!(Eal::init(&[]).is_err(), "a second EAL is refused");
    let pool = Mempool::new(&eal, "handles", 1023, 0, -1).expect("mempool");
    let setup = PortSetup {
        rx_queues: 1,
        tx_queues: 1,
        rx_descriptors: 256,
        tx_descriptors: 256,
        mtu: None,
        promiscuous: false,
    };
    let id = Port::id_by_name("net_null0").expect("net_null0");
    let port = Port::start(id, &setup, &pool).expect("port");
    let mut rx = port.rx_queue(0).expect("rx queue");
    let mut tx = port.tx_queue(0).expect("tx queue");
    assert!(port.rx_queue(0).is_none(), "a queue is handed out once");
    assert!(
        Port::configure(id, &setup, &pool).is_err(),
        "one Port per device"
    );

    // The port stays open while its queues live.
    drop(port);
    let mut batch = Batch::new();
    assert!(rx.rx_burst(&mut batch) > 0, "net_null answers every burst");
    tx.tx_burst(&mut batch);
    batch.clear();

    // A launched job is joined when its handle goes, and only the main
    // lcore may launch.
    let ran = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&ran);
    let launched = launch_on_lcore(&eal, 1, move || {
        std::thread::sleep(Duration::from_millis(50));
        flag.store(true, Ordering::SeqCst);
        0
    })
    .expect("launch");
    drop(launched);
    assert!(ran.load(Ordering::SeqCst), "dropping the handle waits");
    let other = eal.clone();
    let refused = std::thread::spawn(move || launch_on_lcore(&other, 1, || 0).is_err());
    assert!(refused.join().expect("thread"), "launch off the main lcore");

    // The port is closed (a vdev is released on close) with its last queue,
    // and its rings' buffers are back in the pool.
    drop(rx);
    assert!(
        Port::id_by_name("net_null0").is_ok(),
        "open while a queue lives"
    );
    drop(tx);
    assert!(
        Port::id_by_name("net_null0").is_err(),
        "closed with the last"
    );
    assert_eq!(pool.in_use(), 0);

    // The last handle of a pool with nothing out frees it: its name is free
    // again.
    let spare = Mempool::new(&eal, "spare", 63, 0, -1).expect("mempool");
    drop(spare);
    drop(Mempool::new(&eal, "spare", 63, 0, -1).expect("name free again"));

    // A pool dropped while one of its mbufs is out is leaked, not freed (its
    // name stays taken): the mbuf can still go back to it.
    let mut held = Batch::new();
    assert!(pool.alloc_into(&mut held, 1));
    assert_eq!(pool.in_use(), 1);
    drop(pool);
    assert!(Mempool::new(&eal, "handles", 63, 0, -1).is_err());
    assert_eq!(held.frames_mut().len(), 1);
    drop(held);
    drop(eal);
}
