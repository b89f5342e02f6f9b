//! VIPs announced by BGP through real BIRD 2 daemons, end to end. A
//! "router" namespace runs BIRD with an eBGP session to the BIRD of the
//! load balancer's namespace, over a veth, and installs what it learns in
//! its kernel table; `mplb` (on a null port) drives the load balancer's
//! BIRD through its control socket and health-checks a backend listening
//! in a third namespace. The router's kernel routes show: nothing before
//! mplb runs, the VIP once mplb forwards with a healthy backend, gone when
//! the backend dies and back when it returns, a VIP removed by a reload
//! withdrawn, BIRD killed (mplb forwards on, reports the speaker down) and
//! restarted (announced again), and `mplb drain --wait` withdrawing at once
//! and exiting 0 once quiet. On a BIRD of their own: the speaker absent or
//! rejecting `configure`, and `mplb withdraw` clearing what a SIGKILLed
//! mplb left announced. Needs root and bird2 (scripts/setup-host.sh).

mod common;

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mplb::testing::{Backend, Vip};

use common::{Running, Scratch, free_port, head, scrape, sh, text, write_config};

const LB_ADDR: &str = "198.18.210.1";
const ROUTER_ADDR: &str = "198.18.210.2";
const BACKEND: &str = "198.18.211.2";
const WEB: &str = "198.18.0.10";
const GONE: &str = "198.18.0.11";

fn ns(ns: &str, args: &[&str]) {
    let mut all = vec!["ip", "netns", "exec", ns];
    all.extend_from_slice(args);
    sh(&all);
}

/// The three namespaces (router, load balancer's BIRD, backend), their
/// veths, the BIRDs and the listener; all removed on drop.
struct Lab {
    router: String,
    lb: String,
    backend: String,
    /// The root namespace's end of the veth to the backend.
    backend_veth: String,
    router_bird: Option<Child>,
    lb_bird: Option<Child>,
    listener: Option<Child>,
}

impl Lab {
    fn new() -> Lab {
        assert!(
            Path::new("/usr/sbin/bird").exists(),
            "bird2 is not installed: run scripts/setup-host.sh"
        );
        let id = std::process::id() % 100_000;
        let lab = Lab {
            router: format!("mplbbgpr{id}"),
            lb: format!("mplbbgpl{id}"),
            backend: format!("mplbbgpb{id}"),
            backend_veth: format!("mplbbgpb{id}"),
            router_bird: None,
            lb_bird: None,
            listener: None,
        };
        for n in [&lab.router, &lab.lb, &lab.backend] {
            let _ = Command::new("ip").args(["netns", "del", n]).status();
            sh(&["ip", "netns", "add", n]);
            ns(n, &["ip", "link", "set", "lo", "up"]);
        }
        // lb <-> router, the BGP session.
        let (a, b) = (format!("mplbbgpl{id}"), format!("mplbbgpr{id}"));
        sh(&["ip", "link", "add", &a, "type", "veth", "peer", "name", &b]);
        sh(&["ip", "link", "set", &a, "netns", &lab.lb]);
        sh(&["ip", "link", "set", &b, "netns", &lab.router]);
        ns(
            &lab.lb,
            &["ip", "addr", "add", &format!("{LB_ADDR}/30"), "dev", &a],
        );
        ns(&lab.lb, &["ip", "link", "set", &a, "up"]);
        ns(
            &lab.router,
            &["ip", "addr", "add", &format!("{ROUTER_ADDR}/30"), "dev", &b],
        );
        ns(&lab.router, &["ip", "link", "set", &b, "up"]);
        // root <-> backend, for the health checks.
        let peer = format!("{}p", lab.backend_veth);
        sh(&[
            "ip",
            "link",
            "add",
            &lab.backend_veth,
            "type",
            "veth",
            "peer",
            "name",
            &peer,
        ]);
        sh(&["ip", "link", "set", &peer, "netns", &lab.backend]);
        sh(&[
            "ip",
            "addr",
            "add",
            "198.18.211.1/24",
            "dev",
            &lab.backend_veth,
        ]);
        sh(&["ip", "link", "set", &lab.backend_veth, "up"]);
        ns(
            &lab.backend,
            &["ip", "addr", "add", &format!("{BACKEND}/24"), "dev", &peer],
        );
        ns(&lab.backend, &["ip", "link", "set", &peer, "up"]);
        lab
    }

    /// Starts BIRD in namespace `netns` on `conf`, in the foreground (so
    /// the child is BIRD itself: `ip netns exec` execs it).
    fn bird(netns: &str, conf: &Path, ctl: &Path) -> Child {
        Command::new("ip")
            .args(["netns", "exec", netns, "bird", "-f", "-c"])
            .arg(conf)
            .arg("-s")
            .arg(ctl)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start bird")
    }

    fn start_lb_bird(&mut self, s: &Scratch) {
        self.lb_bird = Some(Lab::bird(
            &self.lb,
            &s.path("lb-bird.conf"),
            &s.path("lb.ctl"),
        ));
    }

    fn kill_lb_bird(&mut self) {
        if let Some(mut c) = self.lb_bird.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// A TCP listener on the backend's port 8080, bounded in time.
    fn listen(&mut self) {
        let code = format!(
            "import socket\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n\
             s.bind(('{BACKEND}',8080))\ns.listen(64)\nwhile True:\n  c,_=s.accept()\n  c.close()\n"
        );
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.backend,
                "timeout",
                "120",
                "python3",
                "-c",
                &code,
            ])
            .spawn()
            .expect("start listener");
        self.listener = Some(child);
        wait_until("listener up", Duration::from_secs(10), || {
            TcpStream::connect_timeout(
                &format!("{BACKEND}:8080").parse().expect("addr"),
                Duration::from_millis(200),
            )
            .is_ok()
        });
    }

    fn stop_listener(&mut self) {
        if let Some(mut c) = self.listener.take() {
            // SIGTERM: `timeout` passes it on to python.
            let _ = Command::new("kill")
                .args(["-s", "TERM", &c.id().to_string()])
                .status();
            let _ = c.wait();
        }
    }

    /// Whether the router's kernel has a route to `vip` (learnt by BGP).
    fn router_has(&self, vip: &str) -> bool {
        let out = Command::new("ip")
            .args(["-n", &self.router, "route", "show", &format!("{vip}/32")])
            .output()
            .expect("ip route");
        text(&out.stdout).contains(&format!("via {LB_ADDR}"))
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.stop_listener();
        self.kill_lb_bird();
        if let Some(mut c) = self.router_bird.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = Command::new("ip")
            .args(["link", "del", &self.backend_veth])
            .status();
        for n in [&self.router, &self.lb, &self.backend] {
            let _ = Command::new("ip").args(["netns", "del", n]).status();
        }
    }
}

fn wait_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !f() {
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(25));
    }
    started.elapsed()
}

/// The load balancer's bird.conf, as deploy/bird/bird.conf has it: the
/// routes file included, its protocols exported, short timers.
fn lb_bird_conf(routes: &Path) -> String {
    format!(
        r#"router id {LB_ADDR};
protocol device {{}}
include "{}";
protocol bgp uplink {{
  local {LB_ADDR} as 65001;
  neighbor {ROUTER_ADDR} as 65000;
  connect delay time 1; connect retry time 1; error wait time 1, 2;
  ipv4 {{ import none; export where proto = "mplb_vips4"; }};
  ipv6 {{ import none; export where proto = "mplb_vips6"; }};
}}
"#,
        routes.display()
    )
}

fn router_bird_conf() -> String {
    format!(
        r#"router id {ROUTER_ADDR};
protocol device {{}}
protocol kernel {{ ipv4 {{ import none; export all; }}; merge paths on; }}
protocol bgp lb1 {{
  local {ROUTER_ADDR} as 65000;
  neighbor {LB_ADDR} as 65001;
  connect delay time 1; connect retry time 1; error wait time 1, 2;
  ipv4 {{ import all; export none; }};
}}
"#
    )
}

fn mplb_config(s: &Scratch, metrics_port: u16, with_gone: bool) -> String {
    let be = || Backend::new("be-a", BACKEND).mac("02:00:00:00:02:02");
    let mut vips = Vip::new("web", WEB, 8080).backend(be()).to_string();
    if with_gone {
        vips += &Vip::new("gone", GONE, 8080).backend(be()).to_string();
    }
    format!(
        r#"{}[health]
kind = "tcp"
port = 8080
interval_ms = 200
timeout_ms = 100
rise = 1
fall = 2
[bgp]
control_socket = "{}"
routes_file = "{}"
check_interval_ms = 200
[drain]
quiet_secs = 1
deadline_secs = 20
[[port]]
name = "lan"
device = "net_null0"
{vips}"#,
        head(
            s,
            &["--no-huge", "--no-shconf", "--no-pci", "--vdev=net_null0"],
            (2047, 32),
            "",
            &format!("127.0.0.1:{metrics_port}")
        ),
        s.path("lb.ctl").display(),
        s.path("vips.conf").display(),
    )
}

/// [`mplb_config`] for a [`SoloBird`] at `ctl`: no health checks (the
/// backend counts as up), so the VIP is announced as soon as mplb runs.
fn solo_mplb_config(s: &Scratch, metrics_port: u16, ctl: &Path) -> String {
    mplb_config(s, metrics_port, false)
        .replace("kind = \"tcp\"", "kind = \"none\"")
        .replace(
            &s.path("lb.ctl").display().to_string(),
            &ctl.display().to_string(),
        )
}

fn metric(page: &str, series: &str) -> Option<String> {
    page.lines().find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')
            .map(str::to_string)
    })
}

#[test]
fn vips_follow_health_reloads_bird_restarts_and_drain() {
    let t0 = Instant::now();
    let mut lab = Lab::new();
    let s = Scratch::new("bgp");
    let routes = s.path("vips.conf");
    // As the package does: the included file exists (empty) before BIRD starts.
    std::fs::write(&routes, "").expect("routes file");
    std::fs::write(s.path("lb-bird.conf"), lb_bird_conf(&routes)).expect("lb bird.conf");
    std::fs::write(s.path("router-bird.conf"), router_bird_conf()).expect("router bird.conf");
    lab.router_bird = Some(Lab::bird(
        &lab.router,
        &s.path("router-bird.conf"),
        &s.path("router.ctl"),
    ));
    lab.start_lb_bird(&s);
    lab.listen();
    let session_up = |lab: &Lab| {
        let out = Command::new("birdc")
            .args([
                "-s",
                s.path("router.ctl").to_str().expect("utf-8"),
                "show",
                "protocols",
                "lb1",
            ])
            .output()
            .expect("birdc");
        let _ = lab;
        text(&out.stdout).contains("Established")
    };
    wait_until("BGP session up", Duration::from_secs(10), || {
        session_up(&lab)
    });
    assert!(!lab.router_has(WEB), "no route before mplb runs");

    let metrics_port = free_port();
    let cfg = s.path("mplb.toml");
    write_config(&cfg, &mplb_config(&s, metrics_port, true));
    let child = common::spawn(&cfg);
    let pid = child.id();
    let mut running = Running(Some(child));
    let took = wait_until("VIPs announced", Duration::from_secs(10), || {
        lab.router_has(WEB) && lab.router_has(GONE)
    });
    println!("announced {took:?} after mplb started");
    let page = scrape(metrics_port);
    assert_eq!(
        metric(&page, "mplb_bgp_speaker_up").as_deref(),
        Some("1"),
        "{page}"
    );
    assert_eq!(
        metric(&page, "mplb_bgp_session_up{protocol=\"uplink\"}").as_deref(),
        Some("1"),
        "{page}"
    );
    assert_eq!(
        metric(&page, "mplb_vip_announced{vip=\"web\"}").as_deref(),
        Some("1"),
        "{page}"
    );
    assert_eq!(metric(&page, "mplb_draining").as_deref(), Some("0"));
    let file = std::fs::read_to_string(&routes).expect("routes file");
    assert!(
        file.contains(&format!("route {WEB}/32 blackhole;")),
        "{file}"
    );

    // The only backend dies: withdrawn; back: announced.
    lab.stop_listener();
    let took = wait_until(
        "withdrawn when the backend died",
        Duration::from_secs(5),
        || !lab.router_has(WEB),
    );
    println!("withdrawn {took:?} after the backend stopped (fall 2 x 200 ms)");
    let stats = text(&common::control(&s, "stats").stdout);
    assert!(
        stats
            .lines()
            .any(|l| l.contains("web") && l.contains("no (no healthy backend)")),
        "{stats}"
    );
    lab.listen();
    wait_until(
        "announced when the backend came back",
        Duration::from_secs(5),
        || lab.router_has(WEB),
    );

    // A reload that removes a VIP withdraws it; the other stays.
    write_config(&cfg, &mplb_config(&s, metrics_port, false));
    let out = common::control(&s, "reload");
    assert!(out.status.success(), "{}", text(&out.stderr));
    wait_until("removed VIP withdrawn", Duration::from_secs(5), || {
        !lab.router_has(GONE)
    });
    assert!(lab.router_has(WEB));

    // BIRD dies: mplb forwards on and says so; BIRD back: announced again.
    lab.kill_lb_bird();
    wait_until("speaker reported down", Duration::from_secs(5), || {
        metric(&scrape(metrics_port), "mplb_bgp_speaker_up").as_deref() == Some("0")
    });
    assert!(!lab.router_has(WEB), "the session went with BIRD");
    assert!(
        common::control(&s, "stats").status.success(),
        "mplb still answers"
    );
    lab.start_lb_bird(&s);
    wait_until(
        "announced after BIRD's restart",
        Duration::from_secs(10),
        || {
            lab.router_has(WEB)
                && metric(&scrape(metrics_port), "mplb_bgp_speaker_up").as_deref() == Some("1")
        },
    );
    assert!(
        !lab.router_has(GONE),
        "BIRD restarted with mplb's file, not a stale one"
    );

    // Drain: withdrawn at once, exits 0 once quiet (nothing to forward on a
    // null port: after quiet_secs).
    let sock = s.path("ctl.sock");
    let drain_started = Instant::now();
    let waiter = common::mplb()
        .args(["drain", "--wait", "--socket", sock.to_str().expect("utf-8")])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mplb drain");
    let took = wait_until("withdrawn by the drain", Duration::from_secs(2), || {
        !lab.router_has(WEB)
    });
    println!("drain: withdrawn from the router in {took:?}");
    let out = waiter.wait_with_output().expect("drain --wait");
    let said = text(&out.stdout);
    assert!(out.status.success(), "{said}{}", text(&out.stderr));
    assert!(said.contains(&format!("draining (pid {pid})")), "{said}");
    assert!(
        said.contains("drained: no packet forwarded to a VIP for 1 s"),
        "{said}"
    );
    assert!(said.contains(&format!("mplb (pid {pid}) exited")), "{said}");
    let drained_in = drain_started.elapsed();
    assert!(
        drained_in >= Duration::from_secs(1),
        "not before quiet_secs: {drained_in:?}"
    );
    let child = running.0.take().expect("mplb");
    let out = child.wait_with_output().expect("mplb output");
    let stderr = text(&out.stderr);
    assert!(
        out.status.success(),
        "mplb exit after the drain: {:?}\n{stderr}",
        out.status
    );
    for line in [
        "event=bgp_speaker to=down",
        "event=bgp_speaker to=up",
        "event=vip_withdrawn vip=web",
        "reason=\"no healthy backend\"",
        "event=vip_withdrawn vip=gone address=198.18.0.11 reason=\"removed from the config\"",
        "event=drain_started",
        "event=drain_done outcome=quiet",
    ] {
        assert!(stderr.contains(line), "no {line:?} in:\n{stderr}");
    }
    let down_lines = stderr.matches("event=bgp_speaker to=down").count();
    assert_eq!(
        down_lines, 1,
        "one line per transition, not per check:\n{stderr}"
    );
    let file = std::fs::read_to_string(&routes).expect("routes file");
    assert!(!file.contains("route "), "emptied at exit: {file}");
    println!("whole test: {:?}", t0.elapsed());
}

/// A BIRD without sessions in a namespace of its own, for the speaker's
/// failures; killed and the namespace removed on drop.
struct SoloBird {
    netns: String,
    bird: Option<Child>,
}

impl SoloBird {
    /// `tag` tells apart the tests of this process that run at once.
    fn new(tag: &str) -> SoloBird {
        let netns = format!("mplbbgp{tag}{}", std::process::id() % 100_000);
        let _ = Command::new("ip").args(["netns", "del", &netns]).status();
        sh(&["ip", "netns", "add", &netns]);
        SoloBird { netns, bird: None }
    }

    /// A bird.conf with no session that announces the routes file.
    fn conf(routes: &Path) -> String {
        format!(
            "router id 198.18.212.1;\nprotocol device {{}}\ninclude \"{}\";\n",
            routes.display()
        )
    }

    /// Writes [`SoloBird::conf`] to `conf` and starts BIRD on it.
    fn start(&mut self, conf: &Path, routes: &Path, ctl: &Path) {
        std::fs::write(conf, SoloBird::conf(routes)).expect("bird.conf");
        self.bird = Some(Lab::bird(&self.netns, conf, ctl));
    }

    fn has_route(&self, ctl: &Path, vip: &str) -> bool {
        let out = Command::new("birdc")
            .arg("-s")
            .arg(ctl)
            .args(["show", "route", &format!("{vip}/32")])
            .output()
            .expect("birdc");
        text(&out.stdout).contains("mplb_vips4")
    }
}

impl Drop for SoloBird {
    fn drop(&mut self) {
        if let Some(mut c) = self.bird.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.netns])
            .status();
    }
}

#[test]
fn bird_absent_then_rejecting_configure_never_stops_mplb() {
    let mut solo = SoloBird::new("s");
    let s = Scratch::new("bgp-solo");
    let (ctl, routes, conf) = (s.path("solo.ctl"), s.path("vips.conf"), s.path("bird.conf"));
    let metrics_port = free_port();
    let cfg = s.path("mplb.toml");
    let config = solo_mplb_config(&s, metrics_port, &ctl);
    write_config(&cfg, &config);
    let mut running = Running(Some(common::spawn(&cfg)));
    let page = || scrape(metrics_port);
    wait_until("mplb up, speaker down", Duration::from_secs(20), || {
        s.path("ctl.sock").exists()
            && metric(&page(), "mplb_bgp_speaker_up").as_deref() == Some("0")
    });
    let stats = text(&common::control(&s, "stats").stdout);
    assert!(stats.contains("no (speaker down)"), "{stats}");
    let lookup = run_cli(&s, &["lookup", "tcp", "198.18.2.2", "40000", WEB, "8080"]);
    assert!(
        text(&lookup.stdout).contains("backend be-a"),
        "forwarding goes on without BIRD: {}",
        text(&lookup.stdout)
    );
    // The file is kept current while BIRD is away: it reads it at start.
    wait_until("routes file written", Duration::from_secs(5), || {
        std::fs::read_to_string(&routes).is_ok_and(|f| f.contains(&format!("route {WEB}/32")))
    });
    solo.start(&conf, &routes, &ctl);
    wait_until("BIRD up and announcing", Duration::from_secs(10), || {
        solo.has_route(&ctl, WEB)
            && metric(&page(), "mplb_vip_announced{vip=\"web\"}").as_deref() == Some("1")
    });

    // The operator breaks bird.conf: mplb's next `configure` is rejected;
    // BIRD keeps announcing, and mplb says so.
    let mut broken = std::fs::read_to_string(&conf).expect("bird.conf");
    broken += "this is not bird;\n";
    std::fs::write(&conf, broken).expect("broken bird.conf");
    let out = run_cli(&s, &["backend", "disable", "be-a"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    wait_until("configure failures counted", Duration::from_secs(5), || {
        metric(&page(), "mplb_bgp_configure_failures_total")
            .and_then(|v| v.parse::<u64>().ok())
            .is_some_and(|n| n >= 2)
    });
    assert!(
        solo.has_route(&ctl, WEB),
        "a rejected configure leaves BIRD as it was"
    );
    let stats = text(&common::control(&s, "stats").stdout);
    assert!(
        stats.contains("yes (configure failed: still announced)"),
        "{stats}"
    );

    // Fixed: the retry at the next check withdraws it.
    std::fs::write(&conf, SoloBird::conf(&routes)).expect("bird.conf");
    wait_until(
        "withdrawn once BIRD accepts",
        Duration::from_secs(5),
        || !solo.has_route(&ctl, WEB),
    );
    let (_, stderr) = common::stopped_cleanly(&running.interrupt());
    assert_eq!(
        stderr.matches("event=bgp_configure").count(),
        1,
        "one line for the same failure, however many retries:\n{stderr}"
    );
    assert!(
        stderr.contains("BIRD rejected `configure`: 8002"),
        "{stderr}"
    );
    assert_eq!(
        stderr.matches("event=bgp_speaker to=down").count(),
        1,
        "{stderr}"
    );
    assert!(stderr.contains("event=bgp_speaker to=up"), "{stderr}");
}

fn run_cli(s: &Scratch, args: &[&str]) -> std::process::Output {
    let sock = s.path("ctl.sock");
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--socket", sock.to_str().expect("utf-8")]);
    common::run(&all)
}

/// An mplb killed with SIGKILL cannot withdraw: BIRD keeps announcing what
/// the routes file last said (what a session over a management NIC would
/// carry on into a dead instance). `mplb withdraw`, which the Debian unit
/// runs after every exit (`ExecStopPost`), empties the file and has BIRD
/// drop the routes; with BIRD dead too it still empties the file (BIRD
/// announces nothing when it starts); without `[bgp]` it has nothing to do.
#[test]
fn mplb_withdraw_clears_what_a_killed_mplb_left_announced() {
    let mut solo = SoloBird::new("w");
    let s = Scratch::new("bgp-withdraw");
    let (ctl, routes, conf) = (s.path("solo.ctl"), s.path("vips.conf"), s.path("bird.conf"));
    let cfg = s.path("mplb.toml");
    let config = solo_mplb_config(&s, free_port(), &ctl);
    write_config(&cfg, &config);
    let mut running = Running(Some(common::spawn(&cfg)));
    wait_until("routes file written", Duration::from_secs(20), || {
        std::fs::read_to_string(&routes).is_ok_and(|f| f.contains(&format!("route {WEB}/32")))
    });
    solo.start(&conf, &routes, &ctl);
    wait_until("BIRD announcing", Duration::from_secs(10), || {
        solo.has_route(&ctl, WEB)
    });

    let mut mplb = running.0.take().expect("running");
    mplb.kill().expect("SIGKILL mplb");
    let _ = mplb.wait();
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        solo.has_route(&ctl, WEB),
        "a killed mplb leaves its routes in BIRD"
    );

    withdraw_says(&cfg, "every VIP withdrawn");
    assert!(!solo.has_route(&ctl, WEB), "withdrawn from BIRD");
    let file = std::fs::read_to_string(&routes).expect("routes file");
    assert!(
        !file.contains("route ") && file.contains("mplb_vips4"),
        "{file}"
    );

    // BIRD gone as well (its socket file left behind): the file is emptied
    // all the same, and that is success.
    std::fs::write(
        &routes,
        format!("protocol static mplb_vips4 {{ ipv4; route {WEB}/32 blackhole; }}\n"),
    )
    .expect("stale routes file");
    if let Some(mut b) = solo.bird.take() {
        let _ = b.kill();
        let _ = b.wait();
    }
    withdraw_says(&cfg, "BIRD is not running");
    let file = std::fs::read_to_string(&routes).expect("routes file");
    assert!(!file.contains("route "), "{file}");

    // No [bgp]: nothing announced, nothing to do.
    let start = config.find("[bgp]").expect("[bgp]");
    let end = config.find("[drain]").expect("[drain]");
    let plain = s.path("plain.toml");
    write_config(&plain, &format!("{}{}", &config[..start], &config[end..]));
    withdraw_says(&plain, "nothing to withdraw");
}

/// Runs `mplb withdraw --config cfg`: it must succeed and say `says`.
fn withdraw_says(cfg: &Path, says: &str) {
    let out = common::run(&["withdraw", "--config", cfg.to_str().expect("utf-8")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains(says), "{}", text(&out.stdout));
}
