//! Outside attack captures (`shared/corpora/pcaps-attacks`, issue 4 item 6) replayed through the
//! lab: every frame rewritten to lab addresses by `rampart_lab::replay` (MACs of the veth,
//! destinations mapped onto the lab victim and its network, sources as captured, VLAN tags kept,
//! checksums kept valid), sent from the attacker namespace into the edge, where the XDP program
//! is attached natively on both veths and the detector loop runs (floor 2000 pps, rule TTL 2 s).
//!
//! - `stopddos/`, real floods: each capture gets a fresh lab. Legitimate traffic runs to the
//!   victim 10.220.0.1 for the whole run (UDP to :8080 at 400 datagrams/s, and one TCP connection
//!   to :8081 carrying 200 messages/s), a calm baseline of 3 s first; then the capture is replayed
//!   in its own order at 20 000 frames/s, looped to 3 s (at least one pass, at most 80 000 frames).
//!   Checked: no rule during the baseline; generated fingerprints whose kernel counters dropped
//!   at least a quarter of the replayed frames; every fingerprint matches frames of the capture
//!   (evaluated on the host); every legitimate datagram delivered, and the TCP connection
//!   complete with no retransmission (a dropped segment would be retransmitted: nothing else
//!   loses packets on a veth). Printed per capture: what the rewrite did, the field distributions
//!   of the capture, frames replayed, each fingerprint with the coverage, collateral and rates the
//!   detector recorded, its kernel counters and when it was made and first dropped. When a check
//!   fails, the detector's victims, statistics and the XDP counters are printed too.
//! - Small samples that are attacks by repetition are looped the same way and checked the same:
//!   the NTP mode 6/7 requests with monlist (the amplification trigger), the teardrop fragment
//!   pair, the DHCP flood (a carpet over four /24s), the THC-IPv6 extension-header DoS and rsmurf6.
//! - Every other sample of `suricata-verify/`, `zeek/` and `wireshark-wiki-teardrop/` is a handful
//!   of protocol, fragment or malformed packets, far below the detector's floor: each is replayed
//!   once through one lab; every frame sent must be counted by the XDP program under exactly one
//!   verdict (none aborted, none lost), and the detector must generate nothing. What the program
//!   decided (verdicts, parse errors, fragment cache and policy) is printed per file.
//! - Without root: over every frame of the outside captures (these and the tcpdump corpus), a
//!   rewrite changes nothing the XDP program reads but the destination.
//!
//! The lab tests need root (namespaces, native XDP). They share the machine's CPUs, so they run
//! one at a time; every sender is bounded in count and time, and they take about 80 s together.
//! `RAMPART_REPLAY_ONLY=substring` replays only the looped or flood captures whose path contains
//! it; `RAMPART_REPLAY_ONSET_MS=n` starts every flood `n` ms into a detector tick (ticks are whole
//! seconds of `CLOCK_MONOTONIC`) instead of wherever the baseline happens to end.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rampart::counters::Snapshot;
use rampart::detection_loop::{DetectionLoop, LoopConfig};
use rampart::detector::{Features, GeneratedRule, Sample, VictimStatus};
use rampart::kernel::{monotonic_ns, AttachMode, Dataplane};
use rampart_common::{
    addr::as_v4,
    config::POLICY_DROP,
    frag::{FRAG_FIRST, FRAG_LATER},
    parsed::{ParsedFields, PF_HAS_L4, PF_IP},
    Reason, RuleCounter,
};
use rampart_lab::attacks::{AttackReport, Background};
use rampart_lab::frames::L2;
use rampart_lab::netns::{enter_thread, veth, End, Netns};
use rampart_lab::replay::{replay, LabTargets, ReplayPlan, RewriteStats, Rewriter};
use rampart_lab::traffic::Receiver;
use rampart_rules::packet::parse_frame;
use rampart_testkit::captures::{read_capture, read_index, ReadError};
use rampart_testkit::{corpora_dir, fresh_dataplane, root_or_skip};

const TARGETS: LabTargets = LabTargets {
    victim_v4: Ipv4Addr::new(10, 220, 0, 1),
    victim_v6: Ipv6Addr::new(0xfd00, 0x220, 0, 0, 0, 0, 0, 1),
};
const LEGIT_FROM: &str = "10.221.0.2:40000";
const LEGIT_TO: &str = "10.220.0.1:8080";
const LEGIT_PPS: u32 = 400;
/// A legitimate TCP connection to the victim: 100-byte messages, one segment each.
const TCP_TO: &str = "10.220.0.1:8081";
const TCP_MSGS_PER_SEC: u32 = 200;
const TCP_MSG: usize = 100;
const BASELINE: Duration = Duration::from_secs(3);
const FLOOD: ReplayPlan = ReplayPlan {
    rate_pps: 20_000,
    duration: Duration::from_secs(3),
    max_frames: 80_000,
};
/// One pass of a small sample, well under the detector's floor.
const ONCE: ReplayPlan = ReplayPlan {
    rate_pps: 1_000,
    duration: Duration::ZERO,
    max_frames: 5_000,
};
const FLOOR_PPS: f64 = 2_000.0;
/// Generated rules must drop at least this share of the replayed frames. A rule appears within
/// about a second of a 3 s replay, and a capture's own non-attack traffic (the DNS capture's
/// TCP, the SYN-ACK capture's RSTs and ICMP) need not be covered: a fingerprinted flood loses 40
/// to 90 % of its frames. A quarter tells it from one that was only nibbled at.
const MIN_DROPPED_SHARE: f64 = 0.25;
/// Small samples looped at flood rate, which frames of them, and why.
const LOOPED: [(&str, Select, &str); 5] = [
    (
        "zeek/ntp-mode6-mode7.pcap",
        Select::All,
        "NTP mode 6/7 requests with MON_GETLIST_1 (monlist), the amplification trigger, as a request flood",
    ),
    (
        "wireshark-wiki-teardrop/teardrop.pcap",
        Select::Ipv4Fragments,
        "the teardrop pair only (overlapping UDP fragments); the other 15 frames are ARP, CDP, loopback and one DNS exchange",
    ),
    (
        "zeek/dhcp-flood.pcap",
        Select::All,
        "a DHCP flood from 500 sources to 500 destinations over four /24s (a carpet)",
    ),
    (
        "suricata-verify/ipv6-dos-with-ext-headers-5.pcap",
        Select::All,
        "THC-IPv6 denial6 test 5: ICMPv6 echo behind an AH header from one source",
    ),
    (
        "suricata-verify/ipv6-rsmurf.pcap",
        Select::All,
        "THC-IPv6 rsmurf6: ICMPv6 echo requests to ff02::1 from ff02::1 (multicast destination kept)",
    ),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Select {
    All,
    /// IPv4 frames with MF set or a fragment offset.
    Ipv4Fragments,
}

static SERIAL: Mutex<()> = Mutex::new(());
static NEXT_LAB: AtomicUsize = AtomicUsize::new(0);

/// One lab at a time: floods and timing need the CPUs.
fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// `RAMPART_REPLAY_ONLY=substring` replays only the captures whose path contains it (to look at
/// one capture again); the checks are the same.
fn wanted(file: &str) -> bool {
    std::env::var("RAMPART_REPLAY_ONLY").map_or(true, |only| file.contains(&only))
}

/// `RAMPART_REPLAY_ONSET_MS=n` starts each flood `n` ms into a detector tick (a whole second of
/// `CLOCK_MONOTONIC`) instead of wherever the baseline ends, to reproduce a phase.
fn onset_phase() -> Option<u64> {
    let v = std::env::var("RAMPART_REPLAY_ONSET_MS").ok()?;
    Some(
        v.parse::<u64>()
            .expect("RAMPART_REPLAY_ONSET_MS: milliseconds")
            % 1_000,
    )
}

fn attacks_dir() -> PathBuf {
    let dir = corpora_dir().join("pcaps-attacks");
    assert!(
        dir.join("index.tsv").is_file(),
        "{}/index.tsv is missing: the outside corpus must be present (set RAMPART_CORPORA)",
        dir.display()
    );
    dir
}

// ---- Reading ----

/// The frames of a capture; when a record is broken, the frames before it and why it stopped.
fn read_frames(path: &Path) -> (Vec<Vec<u8>>, Option<String>) {
    match read_capture(path) {
        Ok(c) if c.unchecked.is_empty() => (c.frames, None),
        Ok(c) => {
            let note = format!("{} records fail pcap-file's checks", c.unchecked.len());
            (c.frames, Some(note))
        }
        Err(ReadError::Unsupported(why)) => panic!("{}: unsupported: {why}", path.display()),
        Err(ReadError::Broken(why)) => {
            let file = File::open(path).unwrap();
            let mut r = pcap_file::pcap::PcapReader::new(BufReader::new(file))
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let mut frames = Vec::new();
            while let Some(Ok(p)) = r.next_raw_packet() {
                frames.push(p.data.into_owned());
            }
            (frames, Some(format!("reader stopped: {why}")))
        }
    }
}

fn select(frames: Vec<Vec<u8>>, sel: Select) -> Vec<Vec<u8>> {
    match sel {
        Select::All => frames,
        Select::Ipv4Fragments => frames
            .into_iter()
            .filter(|f| {
                let p = parse_frame(f).0;
                p.ip_version == 4 && (p.frag_offset != 0 || p.frag == FRAG_FIRST)
            })
            .collect(),
    }
}

// ---- What a capture contains ----

fn addr(a: &[u8; 16]) -> String {
    match as_v4(a) {
        Some(v4) => Ipv4Addr::from(v4).to_string(),
        None => Ipv6Addr::from(*a).to_string(),
    }
}

/// Field distributions of a capture, as the kernel-equivalent parser reads it.
#[derive(Default)]
struct Dist {
    frames: usize,
    kind: BTreeMap<String, usize>,
    proto: HashMap<u8, usize>,
    dst: HashMap<String, usize>,
    src: HashSet<[u8; 16]>,
    sport: HashMap<u16, usize>,
    dport: HashMap<u16, usize>,
    flags: HashMap<String, usize>,
    len: HashMap<u16, usize>,
    ttl: HashMap<u8, usize>,
    frag: BTreeMap<&'static str, usize>,
    errors: BTreeMap<&'static str, usize>,
}

fn top<K: std::fmt::Display + Ord>(m: &HashMap<K, usize>, n: usize) -> String {
    let mut v: Vec<(&K, &usize)> = m.iter().collect();
    v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let shown: Vec<String> = v.iter().take(n).map(|(k, c)| format!("{k}:{c}")).collect();
    format!("{} ({} distinct)", shown.join(" "), m.len())
}

impl Dist {
    fn of(frames: &[Vec<u8>]) -> Dist {
        let mut d = Dist::default();
        for f in frames {
            d.frames += 1;
            let (p, err) = parse_frame(f);
            if let Some(r) = err {
                *d.errors.entry(r.name()).or_default() += 1;
            }
            if p.flags & PF_IP == 0 {
                *d.kind
                    .entry(format!("ethertype {:#06x}", p.ethertype))
                    .or_default() += 1;
                continue;
            }
            *d.kind.entry(format!("ipv{}", p.ip_version)).or_default() += 1;
            *d.proto.entry(p.proto).or_default() += 1;
            *d.dst.entry(addr(&p.dst)).or_default() += 1;
            d.src.insert(p.src);
            *d.len.entry(p.ip_len).or_default() += 1;
            *d.ttl.entry(p.ttl).or_default() += 1;
            let frag = match p.frag {
                FRAG_FIRST => "first",
                FRAG_LATER => "later",
                _ => "none",
            };
            *d.frag.entry(frag).or_default() += 1;
            if p.flags & PF_HAS_L4 != 0 && (p.proto == 6 || p.proto == 17) {
                *d.sport.entry(p.sport).or_default() += 1;
                *d.dport.entry(p.dport).or_default() += 1;
            }
            if p.flags & PF_HAS_L4 != 0 && p.proto == 6 {
                *d.flags.entry(format!("{:#04x}", p.tcp_flags)).or_default() += 1;
            }
        }
        d
    }

    fn render(&self) -> String {
        format!(
            "{:?}; proto {}; dst {}; src {} distinct; sport {}; dport {}; tcp.flags {}; ip.len {}; ttl {}; fragments {:?}; parse errors {:?}",
            self.kind,
            top(&self.proto, 4),
            top(&self.dst, 3),
            self.src.len(),
            top(&self.sport, 4),
            top(&self.dport, 4),
            top(&self.flags, 4),
            top(&self.len, 4),
            top(&self.ttl, 4),
            self.frag,
            self.errors
        )
    }
}

/// Frames of a capture a fingerprint matches, evaluated on the host as the detector does, and how
/// many of those are later fragments (which the kernel decides by its fragment cache or policy,
/// never by rules).
fn capture_share(rule: &GeneratedRule, features: &[(Option<Features>, bool)]) -> (usize, usize) {
    let hits: Vec<bool> = features
        .iter()
        .filter_map(|(f, later)| f.as_ref().map(|f| (f, *later)))
        .filter(|(f, _)| rule.fingerprint.matches(f))
        .map(|(_, later)| later)
        .collect();
    (hits.len(), hits.iter().filter(|l| **l).count())
}

fn features(frames: &[Vec<u8>]) -> Vec<(Option<Features>, bool)> {
    frames
        .iter()
        .map(|f| {
            let parsed: ParsedFields = parse_frame(f).0;
            let later = parsed.frag == FRAG_LATER;
            let sample = Sample {
                ts_ns: 0,
                wire_len: f.len() as u32,
                sample_every: 1,
                dropped: false,
                rule_id: None,
                parsed,
                head: f.clone(),
            };
            (Features::extract(&sample), later)
        })
        .collect()
}

// ---- Legitimate TCP ----

/// One legitimate TCP connection from the client to the victim for the whole run, so a
/// fingerprint like "all TCP to the victim" has a cost the detector can see. Lost segments show
/// as retransmissions (nothing else loses packets on a veth).
struct TcpLegit {
    server: JoinHandle<Result<u64, String>>,
    client: JoinHandle<Result<(u64, u32), String>>,
}

fn io_err(what: &'static str) -> impl Fn(std::io::Error) -> String {
    move |e| format!("{what}: {e}")
}

/// Retransmitted segments of a connection (`TCP_INFO`).
fn total_retrans(s: &TcpStream) -> Result<u32, String> {
    // SAFETY: tcp_info is plain integers; all zeroes is a valid value.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: a valid socket, and a buffer of `len` bytes that outlives the call.
    let rc = unsafe {
        libc::getsockopt(
            s.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut libc::tcp_info).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(format!("TCP_INFO: {}", std::io::Error::last_os_error()));
    }
    Ok(info.tcpi_total_retrans)
}

impl TcpLegit {
    fn start(edge: &Netns, client: &Netns, msgs: u32) -> TcpLegit {
        let (ready_tx, ready_rx) = mpsc::channel();
        let edge_name = edge.name.clone();
        let server = std::thread::spawn(move || -> Result<u64, String> {
            let bound = enter_thread(&edge_name)
                .map_err(|e| e.to_string())
                .and_then(|()| TcpListener::bind(TCP_TO).map_err(io_err("bind")));
            let _ = ready_tx.send(());
            let listener = bound?;
            listener
                .set_nonblocking(true)
                .map_err(io_err("nonblocking"))?;
            let end = Instant::now() + Duration::from_secs(40);
            let mut conn = loop {
                match listener.accept() {
                    Ok((c, _)) => break c,
                    Err(_) if Instant::now() < end => std::thread::sleep(Duration::from_millis(5)),
                    Err(e) => return Err(format!("accept: {e}")),
                }
            };
            conn.set_nonblocking(false).map_err(io_err("blocking"))?;
            conn.set_read_timeout(Some(Duration::from_millis(200)))
                .map_err(io_err("timeout"))?;
            let mut buf = [0u8; 4096];
            let mut got = 0u64;
            while Instant::now() < end {
                match conn.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => got += n as u64,
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) => {}
                    Err(e) => return Err(format!("read: {e}")),
                }
            }
            Ok(got)
        });
        let _ = ready_rx.recv_timeout(Duration::from_secs(5));
        let client_name = client.name.clone();
        let client = std::thread::spawn(move || -> Result<(u64, u32), String> {
            enter_thread(&client_name).map_err(|e| e.to_string())?;
            let mut s = TcpStream::connect_timeout(&sa(TCP_TO), Duration::from_secs(5))
                .map_err(io_err("connect"))?;
            s.set_nodelay(true).map_err(io_err("nodelay"))?;
            let start = Instant::now();
            let msg = [0x42u8; TCP_MSG];
            let mut sent = 0u64;
            for i in 0..msgs {
                let due =
                    start + Duration::from_secs_f64(f64::from(i) / f64::from(TCP_MSGS_PER_SEC));
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                s.write_all(&msg).map_err(io_err("write"))?;
                sent += TCP_MSG as u64;
            }
            // Let the last segments be acknowledged before reading the retransmission count.
            std::thread::sleep(Duration::from_millis(300));
            let retrans = total_retrans(&s)?;
            s.shutdown(Shutdown::Write).map_err(io_err("shutdown"))?;
            Ok((sent, retrans))
        });
        TcpLegit { server, client }
    }

    /// (bytes sent, bytes received, retransmitted segments).
    fn finish(self) -> (u64, u64, u32) {
        let (sent, retrans) = self.client.join().unwrap().unwrap();
        let got = self.server.join().unwrap().unwrap();
        (sent, got, retrans)
    }
}

// ---- The lab ----

struct Lab {
    attacker: Netns,
    client: Netns,
    edge: Netns,
    dp: Dataplane,
    det: DetectionLoop,
    /// Addresses of frames sent on the attacker's `a0`.
    l2: L2,
}

impl Lab {
    /// Attacker `a0` 10.220.0.2 — edge `ea0` 10.220.0.1 (the victim), client `c0` 10.221.0.2 —
    /// edge `ec0` 10.221.0.1 (routing 10.220.0.0/16 to the edge); XDP natively on both edge
    /// ends; the detector with a 2000 pps floor and 2 s rule TTL.
    fn new() -> Lab {
        let n = NEXT_LAB.fetch_add(1, Ordering::SeqCst);
        let tag = format!("{}-{n}", std::process::id());
        let attacker = Netns::create(&format!("rc-att-{tag}")).unwrap();
        let client = Netns::create(&format!("rc-cli-{tag}")).unwrap();
        let edge = Netns::create(&format!("rc-edge-{tag}")).unwrap();
        let end = |ns, ifname, addr| End { ns, ifname, addr };
        veth(
            end(&attacker, "a0", "10.220.0.2/24"),
            end(&edge, "ea0", "10.220.0.1/24"),
        )
        .unwrap();
        veth(
            end(&client, "c0", "10.221.0.2/24"),
            end(&edge, "ec0", "10.221.0.1/24"),
        )
        .unwrap();
        client
            .ip(&["route", "add", "10.220.0.0/16", "via", "10.221.0.1"])
            .unwrap();
        let mut dp = fresh_dataplane();
        for iface in ["ea0", "ec0"] {
            let r = edge
                .enter(|| dp.attach(iface, AttachMode::Native, None))
                .unwrap()
                .unwrap();
            assert_eq!(r.mode, "native", "{iface}: veth takes native XDP");
        }
        let mut cfg = LoopConfig {
            sample_budget: 5_000,
            ..LoopConfig::default()
        };
        cfg.detector.floor_pps = FLOOR_PPS;
        cfg.detector.min_ttl_ns = 2_000_000_000;
        let det = DetectionLoop::start(&mut dp, cfg, Vec::new()).unwrap();
        let l2 = L2::resolve(&attacker, "a0", TARGETS.victim_v4).unwrap();
        Lab {
            attacker,
            client,
            edge,
            dp,
            det,
            l2,
        }
    }
}

/// Highest counters seen per generated rule (a rule's counters vanish with it when it expires),
/// and when each first dropped.
#[derive(Default)]
struct Seen {
    rules: BTreeMap<u32, RuleCounter>,
    first_drop_ns: BTreeMap<u32, u64>,
}

impl Seen {
    fn update(&mut self, dp: &Dataplane, det: &DetectionLoop) {
        let snap = dp.counters().unwrap();
        let now = monotonic_ns().unwrap();
        for r in det.manager.rules() {
            let Some(c) = snap.rule(r.id) else { continue };
            let e = self.rules.entry(r.id).or_default();
            e.matched.packets = e.matched.packets.max(c.matched.packets);
            e.dropped.packets = e.dropped.packets.max(c.dropped.packets);
            if c.dropped.packets > 0 {
                self.first_drop_ns.entry(r.id).or_insert(now);
            }
        }
    }

    fn dropped(&self, id: u32) -> u64 {
        self.rules.get(&id).map_or(0, |c| c.dropped.packets)
    }
}

/// Active and expired generated rules, oldest first.
fn all_rules(det: &DetectionLoop) -> Vec<GeneratedRule> {
    let mut v: Vec<GeneratedRule> = det
        .manager
        .history()
        .chain(det.manager.rules())
        .cloned()
        .collect();
    v.sort_by_key(|r| r.id);
    v
}

fn ms_after(t: u64, start: Option<u64>) -> String {
    start.map_or("?".into(), |s| {
        format!("{:.0} ms", t.saturating_sub(s) as f64 / 1e6)
    })
}

/// Replays one capture as a flood in a fresh lab; prints what happened and returns the
/// failed checks.
fn flood(name: &str, capture: &[Vec<u8>], why: &str) -> Vec<String> {
    let Lab {
        attacker,
        client,
        edge,
        mut dp,
        mut det,
        l2,
    } = Lab::new();
    let rw = Rewriter::new(l2, TARGETS, capture);
    let (frames, rstats) = rw.rewrite_all(capture);
    let dist = Dist::of(&frames);
    let feats = features(&frames);
    println!("\n== {name}: {why}");
    println!("   rewrite: {rstats}");
    println!("   mapping: {}", rw.map());
    println!("   contains: {}", dist.render());
    let mut failures = Vec::new();
    let mut fail = |what: String| {
        println!("   FAIL: {what}");
        failures.push(format!("{name}: {what}"));
    };

    let count = FLOOD.frame_count(frames.len());
    let legit_secs = BASELINE.as_secs_f64() + f64::from(count) / f64::from(FLOOD.rate_pps) + 1.0;
    let legit = (f64::from(LEGIT_PPS) * legit_secs) as u32;
    let rx = Receiver::start(&edge, sa(LEGIT_TO), legit, Duration::from_secs(40)).unwrap();
    let bg =
        Background::start(&client, sa(LEGIT_FROM), sa(LEGIT_TO), legit, LEGIT_PPS, 200).unwrap();
    let tcp_msgs = (f64::from(TCP_MSGS_PER_SEC) * legit_secs) as u32;
    let tcp = TcpLegit::start(&edge, &client, tcp_msgs);
    let legit_start = Instant::now();
    while legit_start.elapsed() < BASELINE {
        det.pass(&mut dp, Duration::from_millis(20)).unwrap();
    }
    if !det.manager.rules().is_empty() {
        let e: Vec<String> = det.manager.rules().iter().map(|r| r.expression()).collect();
        fail(format!("rules during the calm baseline: {e:?}"));
    }
    if let Some(phase) = onset_phase() {
        // Start the replay at this point of a detector tick (ticks are whole seconds of
        // CLOCK_MONOTONIC).
        let end = Instant::now() + Duration::from_millis(1_100);
        while Instant::now() < end && monotonic_ns().unwrap() % 1_000_000_000 / 1_000_000 != phase {
            std::thread::sleep(Duration::from_micros(200));
        }
        println!(
            "   onset at {} ms into a detector tick",
            monotonic_ns().unwrap() % 1_000_000_000 / 1_000_000
        );
    }
    let before = dp.counters().unwrap();
    let mut seen = Seen::default();
    let report: AttackReport = std::thread::scope(|s| {
        let sender = s.spawn(|| replay(&attacker, "a0", &FLOOD, frames.clone()));
        let t = Instant::now();
        while !sender.is_finished() && t.elapsed() < Duration::from_secs(35) {
            det.pass(&mut dp, Duration::from_millis(20)).unwrap();
            seen.update(&dp, &det);
        }
        sender.join().unwrap().unwrap()
    });
    // The rest of the legitimate traffic, the last samples of the flood.
    let legit_end = Duration::from_secs_f64(legit_secs + 0.5);
    while legit_start.elapsed() < legit_end {
        det.pass(&mut dp, Duration::from_millis(20)).unwrap();
        seen.update(&dp, &det);
    }
    let sent_legit = bg.finish().unwrap();
    let got_legit = rx.finish().unwrap();
    let (tcp_sent, tcp_got, tcp_retrans) = tcp.finish();
    let d = before.delta(&dp.counters().unwrap());

    println!(
        "   replayed: {report}; legitimate UDP {got_legit}/{sent_legit} datagrams delivered (of {legit}), TCP {tcp_got}/{tcp_sent} bytes with {tcp_retrans} retransmissions"
    );
    let rules = all_rules(&det);
    let mut dropped_total = 0;
    for r in &rules {
        let c = &r.created;
        let (share, later) = capture_share(r, &feats);
        let dropped = seen.dropped(r.id);
        dropped_total += dropped;
        println!(
            "   rule {:#x} `{}`\n     coverage {:.3}, collateral {:.4} ({:?}); victim {} at {:.0} pps (baseline {:.0}), fingerprint {:.0} pps; left out: {:?}\n     kernel: matched {}, dropped {}; matches {share} of the {} capture frames ({later} of them later fragments); created {} and first drop {} after the first replayed frame; {}",
            r.id,
            r.expression(),
            c.coverage,
            c.collateral,
            c.reference,
            c.victim,
            c.victim_pps,
            c.baseline_pps,
            c.attack_pps,
            c.excluded_fields,
            seen.rules.get(&r.id).map_or(0, |k| k.matched.packets),
            dropped,
            frames.len(),
            ms_after(c.at_ns, report.first_frame_ns),
            seen.first_drop_ns
                .get(&r.id)
                .map_or("never".into(), |t| ms_after(*t, report.first_frame_ns)),
            match &r.expired {
                Some(e) => format!("expired: {:?}", e.reason),
                None => "active".into(),
            }
        );
        if share > 0 && later == share {
            println!(
                "     NOTE: every capture frame this fingerprint matches is a later fragment; the kernel decides those by its fragment cache or policy, never by rules, so it cannot drop anything"
            );
        }
        if share == 0 {
            fail(format!(
                "rule `{}` matches no frame of the capture",
                r.expression()
            ));
        }
    }
    println!(
        "   result: {} fingerprint(s); generated rules dropped {dropped_total} of {} replayed frames ({:.1}%); XDP drop_rule {}, drop_frag_cached {}",
        rules.len(),
        report.frames,
        100.0 * dropped_total as f64 / f64::from(report.frames.max(1)),
        d.reason(Reason::DropRule).packets,
        d.reason(Reason::DropFragCached).packets
    );
    if rules.is_empty() {
        fail("no fingerprint was generated".into());
    } else if dropped_total == 0 {
        fail("no generated rule dropped a replayed packet".into());
    } else if (dropped_total as f64) < MIN_DROPPED_SHARE * f64::from(report.frames) {
        fail(format!(
            "the generated rules dropped only {dropped_total} of {} replayed frames",
            report.frames
        ));
    }
    if got_legit != sent_legit || sent_legit != legit {
        fail(format!(
            "legitimate UDP lost: {got_legit} of {sent_legit} delivered ({legit} planned)"
        ));
    }
    if tcp_got != tcp_sent || tcp_retrans != 0 {
        fail(format!(
            "legitimate TCP: {tcp_got} of {tcp_sent} bytes delivered, {tcp_retrans} segments retransmitted"
        ));
    }
    if !failures.is_empty() {
        // Prefixes, anomalous or counting victims, and the busiest few addresses.
        let mut victims = det.manager.victims();
        victims.sort_by(|a, b| b.pps.total_cmp(&a.pps));
        let host = |v: &VictimStatus| v.key.len == 128;
        let (mut shown, mut busy) = (Vec::new(), 0);
        for v in &victims {
            if !host(v) || v.anomalous || v.counting_since_ns.is_some() || busy < 5 {
                busy += usize::from(host(v));
                shown.push(v);
            }
        }
        println!(
            "   detector victims ({} of {}: prefixes, anomalous or counting ones, the busiest addresses):",
            shown.len(),
            victims.len()
        );
        for v in shown {
            println!(
                "     {} {:.0} pps / {:.0} bit/s, baseline {:.0} pps / {:.0} bit/s, anomalous {}, counting since {:?}, left out {:?}, {} baseline samples",
                v.key,
                v.pps,
                v.bps,
                v.baseline_pps,
                v.baseline_bps,
                v.anomalous,
                v.counting_since_ns,
                v.excluded_fields,
                v.baseline_samples
            );
        }
        println!("   detector stats: {:?}", det.manager.stats());
        println!("   XDP counters of the replay:\n{}", d.render());
    }
    failures
}

fn report_failures(failures: &[String]) {
    assert!(
        failures.is_empty(),
        "{} check(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn stopddos_floods_are_fingerprinted_and_dropped() {
    if !root_or_skip("stopddos_floods_are_fingerprinted_and_dropped") {
        return;
    }
    let _serial = serial();
    let dir = attacks_dir();
    let index = read_index(&dir);
    let mut files: Vec<String> = std::fs::read_dir(dir.join("stopddos"))
        .unwrap()
        .map(|e| format!("stopddos/{}", e.unwrap().file_name().to_string_lossy()))
        .filter(|f| f.ends_with(".pcap") || f.ends_with(".pcapng"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 4, "the four StopDDoS captures: {files:?}");
    let mut failures = Vec::new();
    for file in files.iter().filter(|f| wanted(f)) {
        let (frames, note) = read_frames(&dir.join(file));
        assert_eq!(note, None, "{file} reads cleanly");
        assert_eq!(
            Some(&frames.len()),
            index.get(file),
            "{file}: index.tsv count"
        );
        failures.extend(flood(file, &frames, "real attack capture"));
    }
    report_failures(&failures);
}

#[test]
fn small_attack_samples_looped_at_flood_rate_are_fingerprinted() {
    if !root_or_skip("small_attack_samples_looped_at_flood_rate_are_fingerprinted") {
        return;
    }
    let _serial = serial();
    let dir = attacks_dir();
    let mut failures = Vec::new();
    for (file, sel, why) in LOOPED.into_iter().filter(|(f, _, _)| wanted(f)) {
        let (frames, note) = read_frames(&dir.join(file));
        assert_eq!(note, None, "{file} reads cleanly");
        let frames = select(frames, sel);
        assert!(!frames.is_empty(), "{file}: frames selected");
        failures.extend(flood(file, &frames, why));
    }
    report_failures(&failures);
}

/// Waits for the XDP program to count `expected` packets since `before` (it runs from the
/// peer's queue, a moment after the send), passing the detector meanwhile; at most 3 s.
fn settle(lab: &mut Lab, before: &Snapshot, expected: u64) -> Snapshot {
    let end = Instant::now() + Duration::from_secs(3);
    loop {
        lab.det
            .pass(&mut lab.dp, Duration::from_millis(10))
            .unwrap();
        let d = before.delta(&lab.dp.counters().unwrap());
        if d.packets() >= expected || Instant::now() >= end {
            return d;
        }
    }
}

fn reasons(d: &Snapshot, errors: bool) -> String {
    let v: Vec<String> = d
        .reasons
        .iter()
        .filter(|(r, c)| {
            c.packets != 0
                && (*r as u32 >= Reason::ErrTruncEthernet as u32) == errors
                && !matches!(r, Reason::EvSampled | Reason::EvSampleDropped)
        })
        .map(|(r, c)| format!("{} {}", r.name(), c.packets))
        .collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

#[test]
fn small_samples_replayed_once_are_counted_frame_for_frame() {
    if !root_or_skip("small_samples_replayed_once_are_counted_frame_for_frame") {
        return;
    }
    let _serial = serial();
    let dir = attacks_dir();
    let index = read_index(&dir);
    let looped: HashSet<&str> = LOOPED.iter().map(|(f, _, _)| *f).collect();
    let mut files: Vec<String> = index
        .keys()
        .filter(|f| !f.starts_with("stopddos/") && !looped.contains(f.as_str()))
        .cloned()
        .collect();
    files.sort();
    for folder in ["suricata-verify", "zeek", "wireshark-wiki-teardrop"] {
        let on_disk = std::fs::read_dir(dir.join(folder)).unwrap().count();
        let listed = index.keys().filter(|f| f.starts_with(folder)).count();
        assert_eq!(on_disk, listed, "{folder}: every file is in index.tsv");
    }
    let mut lab = Lab::new();
    let cfg = lab.dp.config().unwrap();
    let policy = |p| if p == POLICY_DROP { "drop" } else { "pass" };
    let largest = files.iter().map(|f| index[f]).max().unwrap_or(0);
    assert!(
        (largest as f64) < FLOOR_PPS / 2.0,
        "a sample of {largest} packets could reach the detector's floor in one second"
    );
    println!(
        "\nsmall samples, each replayed once at {} frames/s: the largest has {largest} packets, so no victim comes near the \
         {FLOOR_PPS} pps floor (nor half of it, where counting starts) and no fingerprint is expected; \
         fragment policy {} (a later fragment whose first was never seen), error policy {} (a frame that fails to parse)",
        ONCE.rate_pps,
        policy(cfg.frag_policy),
        policy(cfg.error_policy)
    );
    let mut failures = Vec::new();
    let mut totals = RewriteStats::default();
    let mut all = Snapshot::default();
    for file in &files {
        let (capture, note) = read_frames(&dir.join(file));
        let listed = index[file];
        if note.is_none() && capture.len() != listed {
            failures.push(format!(
                "{file}: read {} frames, index.tsv says {listed}",
                capture.len()
            ));
        }
        let rw = Rewriter::new(lab.l2, TARGETS, &capture);
        let (frames, rstats) = rw.rewrite_all(&capture);
        let before = lab.dp.counters().unwrap();
        let report = if frames.is_empty() {
            AttackReport::default()
        } else {
            replay(&lab.attacker, "a0", &ONCE, frames.clone()).unwrap()
        };
        let sent = u64::from(report.frames);
        let d = settle(&mut lab, &before, sent);
        let skipped = rstats.runt + rstats.oversize;
        println!(
            "{file}: read {}/{listed}{}; sent {sent}{}; XDP counted {}: {}; errors: {}",
            capture.len(),
            note.map_or(String::new(), |n| format!(" ({n})")),
            if skipped > 0 {
                format!(
                    " ({} runt, {} oversize not sent)",
                    rstats.runt, rstats.oversize
                )
            } else {
                String::new()
            },
            d.packets(),
            reasons(&d, false),
            reasons(&d, true)
        );
        if sent != frames.len() as u64 {
            failures.push(format!("{file}: sent {sent} of {} frames", frames.len()));
        }
        if d.packets() != sent {
            failures.push(format!(
                "{file}: XDP counted {} verdicts for {sent} frames\n{}",
                d.packets(),
                d.render()
            ));
        }
        totals.frames += rstats.frames;
        totals.kept += rstats.kept;
        totals.runt += rstats.runt;
        totals.oversize += rstats.oversize;
        totals.ip_unreadable += rstats.ip_unreadable;
        totals.not_ip += rstats.not_ip;
        totals.vlan_tagged += rstats.vlan_tagged;
        all = Snapshot {
            reasons: d
                .reasons
                .iter()
                .map(|(r, c)| {
                    let mut t = all.reason(*r);
                    t.packets += c.packets;
                    t.bytes += c.bytes;
                    (*r, t)
                })
                .collect(),
            rules: Vec::new(),
        };
    }
    // A last look for late samples.
    for _ in 0..10 {
        lab.det
            .pass(&mut lab.dp, Duration::from_millis(20))
            .unwrap();
    }
    let rules = all_rules(&lab.det);
    println!(
        "all {} files: {} frames read, {} sent ({} runt, {} oversize not sent; {} VLAN-tagged, {} non-IP, {} with an unreadable IP header); \
         XDP verdicts: {}; errors: {}; detector: {} samples, {} rules",
        files.len(),
        totals.frames,
        totals.kept,
        totals.runt,
        totals.oversize,
        totals.vlan_tagged,
        totals.not_ip,
        totals.ip_unreadable,
        reasons(&all, false),
        reasons(&all, true),
        lab.det.manager.stats().detector.samples,
        rules.len()
    );
    if !rules.is_empty() {
        let e: Vec<String> = rules.iter().map(|r| r.expression()).collect();
        failures.push(format!(
            "fingerprints for a handful of packets below the floor: {e:?}"
        ));
    }
    report_failures(&failures);
}

/// Every capture file under `dir` (one level of folders), sorted.
fn capture_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(capture_files(&p));
        } else if p.extension().is_some_and(|x| x == "pcap" || x == "pcapng") {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// Without root: over every frame of the outside captures (attack samples and the tcpdump
/// corpus, malformed frames included), a rewrite keeps the frame's length and changes nothing
/// the XDP program reads (`parse_frame`: VLANs, addresses, ports, flags, lengths, fragment
/// fields, the error it stops at) but the destination, which becomes the mapped one.
#[test]
fn a_rewrite_changes_nothing_the_program_reads_but_the_destination() {
    let l2 = L2 {
        src: [2, 0, 0, 0, 0, 1],
        dst: [2, 0, 0, 0, 0, 2],
    };
    let mut totals = RewriteStats::default();
    let (mut files, mut unsupported) = (0, Vec::new());
    for corpus in ["pcaps-attacks", "pcaps-tcpdump"] {
        for path in capture_files(&corpora_dir().join(corpus)) {
            let frames = match read_capture(&path) {
                Ok(c) => c.frames,
                Err(ReadError::Unsupported(why)) => {
                    unsupported.push(format!("{}: {why}", path.display()));
                    continue;
                }
                Err(ReadError::Broken(_)) if path.extension().is_some_and(|x| x == "pcap") => {
                    read_frames(&path).0
                }
                Err(ReadError::Broken(why)) => {
                    unsupported.push(format!("{}: {why}", path.display()));
                    continue;
                }
            };
            files += 1;
            let rw = Rewriter::new(l2, TARGETS, &frames);
            for (i, f) in frames.iter().enumerate() {
                let what = format!("{} frame {i}", path.display());
                let Some(out) = rw.rewrite(f, &mut totals) else {
                    assert!(f.len() < 14 || f.len() > 1514, "{what}: skipped");
                    continue;
                };
                assert_eq!(out.len(), f.len(), "{what}: length");
                let (a, ea) = parse_frame(f);
                let (mut b, eb) = parse_frame(&out);
                assert_eq!(ea, eb, "{what}: error reason");
                if a.flags & PF_IP != 0 {
                    let mapped: [u8; 16] = match as_v4(&a.dst) {
                        Some(v4) => rampart_common::addr::v4_mapped(
                            rw.map().map_v4(Ipv4Addr::from(v4)).octets(),
                        ),
                        None => rw.map().map_v6(Ipv6Addr::from(a.dst)).octets(),
                    };
                    assert_eq!(addr(&b.dst), addr(&mapped), "{what}: destination");
                    b.dst = a.dst;
                }
                assert_eq!(a, b, "{what}: parse");
            }
        }
    }
    println!("{files} capture files rewritten: {totals}");
    if !unsupported.is_empty() {
        println!("not read (link type or format): {unsupported:?}");
    }
    assert!(
        files > 150,
        "the outside corpora are present ({files} files)"
    );
}
