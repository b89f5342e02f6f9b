//! The resolver against a simulated clock, with answers written into its
//! table as a worker would.

use super::*;

const MAC: [u8; 6] = [2, 0, 0, 0, 1, 0x11];
const MOVED: [u8; 6] = [2, 0, 0, 0, 1, 0x99];

fn addr(last: u8) -> IpAddr {
    IpAddr::from([198, 18, 1, last])
}

fn want(last: u8) -> Want {
    Want {
        port: 0,
        port_name: "seg".into(),
        addr: addr(last),
        backends: vec![format!("be{last}")],
    }
}

/// One poll: the questions and the reports.
fn poll(r: &mut Resolver, now: Instant) -> (bool, Vec<Solicit>, Vec<Happened>) {
    let (mut ask, mut reports) = (Vec::new(), Vec::new());
    let changed = r.poll(now, &mut ask, &mut reports);
    (changed, ask, reports.into_iter().map(|r| r.what).collect())
}

/// Polls every 20 ms from `from` for `secs` seconds; when questions were
/// asked (seconds since `from`), and every report.
fn run(r: &mut Resolver, from: Instant, secs: u64) -> (Vec<f64>, Vec<Happened>) {
    let (mut asked, mut reports) = (Vec::new(), Vec::new());
    for tick in 0..secs * 50 {
        let now = from + Duration::from_millis(20 * tick);
        let (_, ask, rep) = poll(r, now);
        asked.extend(ask.iter().map(|_| (20 * tick) as f64 / 1000.0));
        reports.extend(rep);
    }
    (asked, reports)
}

#[test]
fn an_address_that_never_answers_is_asked_with_backoff_and_reported_once() {
    let mut r = Resolver::default();
    r.watch(vec![want(11)]);
    let t0 = Instant::now();
    let (asked, reports) = run(&mut r, t0, 600);
    assert_eq!(
        &asked[..8],
        &[0.0, 1.0, 2.0, 3.0, 5.0, 9.0, 17.0, 33.0],
        "every second, then doubling"
    );
    let gaps: Vec<f64> = asked.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps.iter().all(|g| *g <= 30.0), "{gaps:?}");
    assert_eq!(reports, [Happened::NoAnswer { asked: 3 }], "one report");
    assert_eq!(r.resolution(0, addr(11)), Some(Resolution::Unresolved));
    let c = r.counters();
    assert_eq!(
        (c.failures, c.resolved, c.requested),
        (1, 0, asked.len() as u64)
    );
}

#[test]
fn an_answer_resolves_is_refreshed_by_unicast_and_a_new_mac_replaces_it() {
    let mut r = Resolver::default();
    r.watch(vec![want(11)]);
    let t0 = Instant::now();
    let (changed, ask, _) = poll(&mut r, t0);
    assert!(!changed);
    assert_eq!(
        ask,
        [Solicit {
            port: 0,
            target: addr(11),
            unicast: None
        }]
    );
    // A worker records the answer.
    assert!(r.table().record(0, addr(11), MAC));
    let t1 = t0 + Duration::from_millis(20);
    let (changed, ask, reports) = poll(&mut r, t1);
    assert!(changed && ask.is_empty());
    assert_eq!(
        reports,
        [Happened::Resolved {
            mac: MacAddr(MAC),
            asked: 1
        }]
    );
    assert_eq!(r.mac(0, addr(11)), Some(MAC));
    assert_eq!(r.resolution(0, addr(11)), Some(Resolution::Reachable));

    // Nothing asked until the answer is REACHABLE old; then the known MAC.
    let (asked, _) = run(&mut r, t1 + Duration::from_millis(20), 29);
    assert!(asked.is_empty());
    let (_, ask, _) = poll(&mut r, t1 + REACHABLE);
    assert_eq!(ask[0].unicast, Some(MAC));
    // The same MAC again: nothing to rebuild, nothing to log.
    r.table().record(0, addr(11), MAC);
    let (changed, _, reports) = poll(&mut r, t1 + REACHABLE + RETRY / 2);
    assert!(!changed && reports.is_empty());
    // A new MAC (the backend's NIC was replaced): rebuilt, logged, counted.
    r.table().record(0, addr(11), MOVED);
    let (changed, _, reports) = poll(&mut r, t1 + REACHABLE + RETRY);
    assert!(changed);
    assert_eq!(
        reports,
        [Happened::Changed {
            from: MacAddr(MAC),
            to: MacAddr(MOVED)
        }]
    );
    assert_eq!(r.mac(0, addr(11)), Some(MOVED));
    assert_eq!(r.counters().mac_changes, 1);
}

#[test]
fn a_known_address_that_stops_answering_goes_stale_and_keeps_its_mac() {
    let mut r = Resolver::default();
    r.watch(vec![want(11)]);
    let t0 = Instant::now();
    poll(&mut r, t0);
    r.table().record(0, addr(11), MAC);
    poll(&mut r, t0);
    let mut asks = Vec::new();
    let mut reports = Vec::new();
    for s in 30..=33 {
        let (_, ask, rep) = poll(&mut r, t0 + Duration::from_secs(s));
        asks.extend(ask.into_iter().map(|a| a.unicast));
        reports.extend(rep);
    }
    assert_eq!(
        asks,
        [Some(MAC), Some(MAC), Some(MAC), None],
        "unicast, then broadcast"
    );
    assert_eq!(reports, [Happened::Stale { mac: MacAddr(MAC) }]);
    assert_eq!(r.resolution(0, addr(11)), Some(Resolution::Stale));
    assert_eq!(r.mac(0, addr(11)), Some(MAC), "the last MAC is still used");
    assert_eq!(r.counters().failures, 1);
    // It answers again.
    r.table().record(0, addr(11), MAC);
    let (changed, _, reports) = poll(&mut r, t0 + Duration::from_secs(34));
    assert!(!changed);
    assert_eq!(reports, [Happened::Reachable { mac: MacAddr(MAC) }]);
    assert_eq!(r.resolution(0, addr(11)), Some(Resolution::Reachable));
}

#[test]
fn watching_a_new_set_keeps_what_is_known_and_asks_for_the_new() {
    let mut r = Resolver::default();
    r.watch(vec![want(11), want(12)]);
    let first = Arc::clone(r.table());
    let t0 = Instant::now();
    poll(&mut r, t0);
    r.table().record(0, addr(11), MAC);
    poll(&mut r, t0);
    // The same set: the same table, nothing forgotten.
    r.watch(vec![want(12), want(11)]);
    assert!(Arc::ptr_eq(&first, r.table()));
    // 12 goes, 13 comes: a new table; 11 keeps its MAC and is not asked.
    r.watch(vec![want(11), want(13)]);
    assert!(!Arc::ptr_eq(&first, r.table()));
    assert_eq!(r.mac(0, addr(11)), Some(MAC));
    assert_eq!(r.resolution(0, addr(12)), None);
    let (_, ask, _) = poll(&mut r, t0 + Duration::from_millis(20));
    assert_eq!(ask.iter().map(|a| a.target).collect::<Vec<_>>(), [addr(13)]);
    // Answers land in the new table.
    assert!(!first.record(0, addr(13), MOVED));
    assert!(r.table().record(0, addr(13), MOVED));
    let (changed, _, _) = poll(&mut r, t0 + Duration::from_millis(40));
    assert!(changed);
    assert_eq!(r.mac(0, addr(13)), Some(MOVED));
}

#[test]
fn questions_are_paced_per_poll() {
    let mut r = Resolver::default();
    r.watch((1..=40).map(want).collect());
    let t0 = Instant::now();
    let (_, ask, _) = poll(&mut r, t0);
    assert_eq!(ask.len(), ASK_PER_POLL);
    let (_, ask, _) = poll(&mut r, t0 + Duration::from_millis(20));
    assert_eq!(ask.len(), ASK_PER_POLL);
    let (_, ask, _) = poll(&mut r, t0 + Duration::from_millis(40));
    assert_eq!(ask.len(), 40 - 2 * ASK_PER_POLL);
}
