//! Readiness as systemd sees it: the real `mplb run` on DPDK's net_null, with
//! `NOTIFY_SOCKET` pointing at a datagram socket this test bound (a path,
//! then an abstract name), sends `READY=1` once it forwards,
//! `RELOADING=1`/`READY=1` around `mplb reload` and SIGHUP, and `STOPPING=1`
//! on SIGTERM, then stops cleanly; `mplb drain` shows in its status.

mod common;

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::process::Stdio;
use std::time::Duration;

use common::{Running, Scratch, control, counter, head, mplb, port, stopped_cleanly, write_config};

fn config(s: &Scratch) -> std::path::PathBuf {
    let cfg = s.path("mplb.toml");
    let eal = ["--no-huge", "--no-shconf", "--no-pci", "--vdev=net_null0"];
    write_config(
        &cfg,
        &format!(
            "{}{}[health]\nkind = \"none\"\n[[vip]]\nname = \"web\"\naddress = \"198.18.0.10\"\nport = 80\n\
             [[vip.backend]]\nname = \"a\"\naddress = \"198.18.1.11\"\nmac = \"02:00:00:00:01:11\"\n",
            head(s, &eal, (2047, 32), "", "127.0.0.1:0"),
            port("lan", "net_null0", "ipv4 = [\"198.18.0.1\"]\n"),
        ),
    );
    cfg
}

/// The next datagram's text; fails the test after 20 s of silence.
fn next_state(socket: &UnixDatagram) -> String {
    let mut buf = [0u8; 512];
    let n = socket.recv(&mut buf).expect("a notification within 20 s");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

fn lifecycle(socket: &UnixDatagram, notify_socket: &str) {
    socket
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let s = Scratch::new("sd-notify");
    let cfg = config(&s);
    let child = mplb()
        .args(["run", "--config", cfg.to_str().expect("utf-8")])
        .env("NOTIFY_SOCKET", notify_socket)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn mplb");
    let mut running = Running(Some(child));

    let ready = next_state(socket);
    assert!(ready.starts_with("READY=1\n"), "{ready:?}");
    assert!(
        ready.contains("STATUS=forwarding with 1 worker(s)"),
        "{ready:?}"
    );
    // Ready means the control socket answers and the worker runs.
    let stats = control(&s, "stats");
    assert!(stats.status.success());

    let reload = control(&s, "reload");
    assert!(reload.status.success());
    assert_eq!(next_state(socket), "RELOADING=1");
    assert_eq!(next_state(socket), "READY=1\nSTATUS=reload applied");

    // A broken file: rejected, mplb stays ready with the running config.
    std::fs::write(&cfg, "[dpdk\n").expect("break the config");
    running.signal("HUP");
    assert_eq!(next_state(socket), "RELOADING=1");
    let after = next_state(socket);
    assert!(
        after.starts_with("READY=1\nSTATUS=reload rejected: "),
        "{after:?}"
    );

    running.signal("TERM");
    let stopping = next_state(socket);
    assert!(stopping.starts_with("STOPPING=1\n"), "{stopping:?}");
    let out = running
        .0
        .take()
        .expect("running")
        .wait_with_output()
        .expect("wait");
    let (stdout, _) = stopped_cleanly(&out);
    assert!(counter(&stdout, "rx_packets") > 0, "the worker forwarded");
}

#[test]
fn ready_reloading_and_stopping_reach_a_path_socket() {
    let s = Scratch::new("notify-listener");
    let path = s.path("notify.sock");
    let socket = UnixDatagram::bind(&path).expect("bind");
    lifecycle(&socket, path.to_str().expect("utf-8"));
}

#[test]
fn ready_reaches_an_abstract_socket() {
    let name = format!("mplb-test-notify-{}", std::process::id());
    let addr = SocketAddr::from_abstract_name(name.as_bytes()).expect("name");
    let socket = UnixDatagram::bind_addr(&addr).expect("bind abstract");
    lifecycle(&socket, &format!("@{name}"));
}

/// `mplb drain --wait` without `[bgp]`: systemd's status says draining,
/// the instance exits 0 once no packet went to a VIP for `quiet_secs`
/// (net_null's frames are not for the VIP), and the client returns 0 once
/// the process is gone.
#[test]
fn drain_shows_in_the_status_and_exits_0_once_quiet() {
    let s = Scratch::new("notify-drain");
    let path = s.path("notify.sock");
    let socket = UnixDatagram::bind(&path).expect("bind");
    socket
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let cfg = config(&s);
    let text = std::fs::read_to_string(&cfg).expect("config");
    write_config(
        &cfg,
        &format!("{text}[drain]\nquiet_secs = 1\ndeadline_secs = 10\n"),
    );
    let child = mplb()
        .args(["run", "--config", cfg.to_str().expect("utf-8")])
        .env("NOTIFY_SOCKET", &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn mplb");
    let pid = child.id();
    let mut running = Running(Some(child));
    assert!(next_state(&socket).starts_with("READY=1\n"));
    let started = std::time::Instant::now();
    let drain = mplb()
        .args(["drain", "--wait", "--socket"])
        .arg(s.path("ctl.sock"))
        .output()
        .expect("mplb drain");
    let said = String::from_utf8_lossy(&drain.stdout).into_owned();
    assert!(
        drain.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&drain.stderr)
    );
    assert!(said.contains("no [bgp]: nothing was announced"), "{said}");
    assert!(said.contains(&format!("mplb (pid {pid}) exited")), "{said}");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "not before quiet_secs"
    );
    assert_eq!(
        next_state(&socket),
        "STATUS=draining: VIPs withdrawn, forwarding until quiet"
    );
    assert!(next_state(&socket).starts_with("STOPPING=1\n"));
    let out = running
        .0
        .take()
        .expect("running")
        .wait_with_output()
        .expect("wait");
    let (_, stderr) = stopped_cleanly(&out);
    assert!(
        stderr.contains("event=drain_done outcome=quiet"),
        "{stderr}"
    );
}
