//! Attack generators for the lab: crafted frames with spoofed sources, sent through an
//! `AF_PACKET` socket on an interface inside one of the lab's namespaces, paced, and bounded in
//! count and in time. [`Background`] sends legitimate UDP at the same time through an ordinary
//! socket.
//!
//! Frames go out on the veth's own end, so they only ever reach its peer in the other namespace.

use std::ffi::CString;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::str::FromStr;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::frames::{Crafter, DnsName, Ipv4Prefix, L2, MAX_FRAGMENT_DATA, MAX_UDP_PAYLOAD};
use super::netns::{enter_thread, LabError, Netns};
use rampart::kernel::monotonic_ns;

/// No attack runs longer than this, whatever its plan says.
pub const HARD_TIME_LIMIT: Duration = Duration::from_secs(30);

fn io_err(what: impl Into<String>, source: std::io::Error) -> LabError {
    LabError::Io {
        what: what.into(),
        source,
    }
}

fn invalid(what: String) -> LabError {
    io_err(
        "checking the attack plan",
        std::io::Error::new(std::io::ErrorKind::InvalidInput, what),
    )
}

fn panicked(what: &str) -> LabError {
    io_err(what, std::io::Error::other("the thread panicked"))
}

/// The attacks the lab can generate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AttackKind {
    /// TCP SYNs from spoofed sources to one port.
    SynFlood,
    /// Large UDP "responses" from a fixed service port (NTP, DNS, SNMP, SSDP, …).
    UdpReflection,
    /// Bare TCP ACKs from spoofed sources to one port.
    AckFlood,
    /// DNS queries for one fixed name.
    DnsQueryFlood,
    /// Non-first IPv4 fragments of datagrams that never started (random IDs).
    FragmentFlood,
    /// Reflection-style UDP spread over a destination prefix.
    CarpetBomb,
}

impl AttackKind {
    pub const ALL: [AttackKind; 6] = [
        AttackKind::SynFlood,
        AttackKind::UdpReflection,
        AttackKind::AckFlood,
        AttackKind::DnsQueryFlood,
        AttackKind::FragmentFlood,
        AttackKind::CarpetBomb,
    ];

    pub fn name(self) -> &'static str {
        match self {
            AttackKind::SynFlood => "syn-flood",
            AttackKind::UdpReflection => "udp-reflection",
            AttackKind::AckFlood => "ack-flood",
            AttackKind::DnsQueryFlood => "dns-query-flood",
            AttackKind::FragmentFlood => "fragment-flood",
            AttackKind::CarpetBomb => "carpet-bomb",
        }
    }
}

impl fmt::Display for AttackKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown attack `{0}` (expected one of: syn-flood, udp-reflection, ack-flood, dns-query-flood, fragment-flood, carpet-bomb)")]
pub struct UnknownAttack(String);

impl FromStr for AttackKind {
    type Err = UnknownAttack;

    fn from_str(s: &str) -> Result<AttackKind, UnknownAttack> {
        AttackKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| UnknownAttack(s.to_string()))
    }
}

/// One bounded attack. [`AttackPlan::new`] fills in the usual shape of each kind; every field can
/// be changed afterwards.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttackPlan {
    pub kind: AttackKind,
    /// Exactly this many frames are sent (unless the time limit comes first).
    pub packets: u32,
    /// Frames per second; 0 sends as fast as the interface takes them.
    pub rate_pps: u32,
    /// Spoofed sources are drawn uniformly from this prefix.
    pub src_prefix: Ipv4Prefix,
    /// The victim, and the next hop whose neighbour entry gives the destination MAC.
    pub dst: Ipv4Addr,
    /// Destinations of a carpet bomb.
    pub dst_prefix: Ipv4Prefix,
    /// Destination port of SYN and ACK floods and of DNS queries; for reflection, 0 means a
    /// random ephemeral port per frame (as reflected replies reach them). Unused by fragment
    /// floods and carpet bombs (random).
    pub dport: u16,
    /// Service port reflection and carpet-bomb frames come from (123 NTP, 53 DNS, 161 SNMP, 1900
    /// SSDP, …); 0 means random. Other kinds always use random source ports.
    pub sport: u16,
    /// UDP payload of reflection and carpet-bomb frames; data bytes of each fragment.
    pub payload_len: usize,
    /// The name every DNS query asks for.
    pub qname: String,
    /// Stop after this long even if frames remain (capped at [`HARD_TIME_LIMIT`]).
    pub time_limit: Duration,
    pub seed: u64,
}

impl AttackPlan {
    /// 1000 frames at 10 000 per second from `src_prefix` to `dst`, with each kind's usual ports
    /// and sizes: SYN to :80, ACK to :443, NTP reflection (source port 123, 468-byte payload, as
    /// a monlist reply), DNS queries for `www.example.com` to :53, 1480-byte later fragments,
    /// and a carpet bomb of 512-byte DNS-sourced datagrams over `dst`'s /24.
    pub fn new(kind: AttackKind, src_prefix: Ipv4Prefix, dst: Ipv4Addr) -> AttackPlan {
        let (dport, sport, payload_len) = match kind {
            AttackKind::SynFlood => (80, 0, 0),
            AttackKind::AckFlood => (443, 0, 0),
            AttackKind::UdpReflection => (0, 123, 468),
            AttackKind::DnsQueryFlood => (53, 0, 0),
            AttackKind::FragmentFlood => (0, 0, MAX_FRAGMENT_DATA),
            AttackKind::CarpetBomb => (0, 53, 512),
        };
        AttackPlan {
            kind,
            packets: 1_000,
            rate_pps: 10_000,
            src_prefix,
            dst,
            dst_prefix: Ipv4Prefix::new(dst, 24).unwrap_or(Ipv4Prefix::host(dst)),
            dport,
            sport,
            payload_len,
            qname: "www.example.com".into(),
            time_limit: HARD_TIME_LIMIT,
            seed: 1,
        }
    }

    /// Refuses sizes that do not fit one frame on the veth MTU and names that are not DNS names.
    pub fn check(&self) -> Result<(), LabError> {
        let max = match self.kind {
            AttackKind::UdpReflection | AttackKind::CarpetBomb => MAX_UDP_PAYLOAD,
            AttackKind::FragmentFlood => MAX_FRAGMENT_DATA,
            _ => usize::MAX,
        };
        if self.payload_len > max {
            return Err(invalid(format!(
                "{}: payload of {} bytes does not fit one frame (at most {max})",
                self.kind, self.payload_len
            )));
        }
        if self.kind == AttackKind::FragmentFlood && self.payload_len < 8 {
            return Err(invalid(
                "fragment-flood: fragments carry at least 8 bytes".into(),
            ));
        }
        if self.kind == AttackKind::DnsQueryFlood && DnsName::new(&self.qname).is_none() {
            return Err(invalid(format!("`{}` is not a DNS name", self.qname)));
        }
        Ok(())
    }

    /// The plan's frames for an interface with addresses `l2` (same seed, same frames).
    pub fn frames(&self, l2: L2) -> Result<AttackFrames, LabError> {
        self.check()?;
        Ok(AttackFrames {
            crafter: Crafter::new(l2, self.seed),
            qname: DnsName::new(&self.qname),
            plan: self.clone(),
            remaining: self.packets,
        })
    }
}

/// The frames of one [`AttackPlan`], generated on demand: exactly `plan.packets` of them.
#[derive(Clone, Debug)]
pub struct AttackFrames {
    crafter: Crafter,
    plan: AttackPlan,
    qname: Option<DnsName>,
    remaining: u32,
}

impl AttackFrames {
    fn port_or_random(&mut self, port: u16) -> u16 {
        match port {
            0 => self.crafter.rng().ephemeral_port(),
            p => p,
        }
    }
}

impl Iterator for AttackFrames {
    type Item = Vec<u8>;

    fn next(&mut self) -> Option<Vec<u8>> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        let p = &self.plan;
        let (src, dst) = (p.src_prefix, p.dst);
        let frame = match p.kind {
            AttackKind::SynFlood => {
                let dport = p.dport;
                self.crafter.syn(&src, dst, dport)
            }
            AttackKind::AckFlood => {
                let dport = p.dport;
                self.crafter.ack(&src, dst, dport)
            }
            AttackKind::UdpReflection => {
                let (sport, dport, len) = (p.sport, p.dport, p.payload_len);
                let (sport, dport) = (self.port_or_random(sport), self.port_or_random(dport));
                self.crafter.udp_reflection(&src, dst, sport, dport, len)
            }
            AttackKind::DnsQueryFlood => match &self.qname {
                Some(name) => self.crafter.dns_query(&src, dst, p.dport, name),
                None => return None,
            },
            AttackKind::FragmentFlood => {
                let len = p.payload_len;
                self.crafter.later_fragment(&src, dst, len)
            }
            AttackKind::CarpetBomb => {
                let (dsts, sport, len) = (p.dst_prefix, p.sport, p.payload_len);
                let sport = self.port_or_random(sport);
                self.crafter.carpet(&src, &dsts, sport, len)
            }
        };
        Some(frame)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining as usize, Some(self.remaining as usize))
    }
}

impl ExactSizeIterator for AttackFrames {}

/// How fast and how long [`send_frames`] sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pacing {
    /// Frames per second; 0 is unpaced.
    pub rate_pps: u32,
    /// Capped at [`HARD_TIME_LIMIT`].
    pub time_limit: Duration,
}

impl Pacing {
    pub fn of(plan: &AttackPlan) -> Pacing {
        Pacing {
            rate_pps: plan.rate_pps,
            time_limit: plan.time_limit,
        }
    }
}

/// What a sender did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AttackReport {
    /// Frames the interface accepted.
    pub frames: u32,
    /// Their bytes, Ethernet header included.
    pub bytes: u64,
    pub elapsed: Duration,
    /// `CLOCK_MONOTONIC` (the clock `bpf_ktime_get_ns` reads) just before the first accepted
    /// frame was handed to the kernel: the start of time-to-mitigate.
    pub first_frame_ns: Option<u64>,
    /// The same clock before the last accepted frame.
    pub last_frame_ns: Option<u64>,
    /// Sends the interface refused for lack of room (`ENOBUFS`) and that were retried.
    pub retries: u32,
    /// The time limit stopped the sender before its last frame.
    pub timed_out: bool,
}

impl AttackReport {
    /// Achieved frames per second.
    pub fn rate_pps(&self) -> f64 {
        let s = self.elapsed.as_secs_f64();
        if s > 0.0 {
            f64::from(self.frames) / s
        } else {
            0.0
        }
    }
}

impl fmt::Display for AttackReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} frames, {} bytes in {:.3} s ({:.0}/s, {} retried{})",
            self.frames,
            self.bytes,
            self.elapsed.as_secs_f64(),
            self.rate_pps(),
            self.retries,
            if self.timed_out { ", timed out" } else { "" }
        )
    }
}

/// Sends `plan`'s frames on `ifname` inside `ns` from a thread that entered it, and waits for the
/// end: after `plan.packets` frames or `plan.time_limit` (at most [`HARD_TIME_LIMIT`]), whichever
/// comes first. The destination MAC is the neighbour entry of `plan.dst` on `ifname`.
pub fn send_attack(ns: &Netns, ifname: &str, plan: &AttackPlan) -> Result<AttackReport, LabError> {
    let frames = plan.frames(L2::resolve(ns, ifname, plan.dst)?)?;
    send_frames(ns, ifname, Pacing::of(plan), frames)
}

/// Sends any frames (e.g. [`Crafter::fragmented_udp`]'s) on `ifname` inside `ns`, paced and
/// bounded in time like [`send_attack`]; stops at the end of `frames` or the time limit.
pub fn send_frames<I>(
    ns: &Netns,
    ifname: &str,
    pacing: Pacing,
    frames: I,
) -> Result<AttackReport, LabError>
where
    I: IntoIterator<Item = Vec<u8>>,
    I::IntoIter: Send,
{
    let frames = frames.into_iter();
    ns.enter(move || send_loop(ifname, pacing, frames))?
}

/// An attack running on its own thread (so background traffic can run beside it).
pub struct AttackHandle {
    handle: JoinHandle<Result<AttackReport, LabError>>,
}

impl AttackHandle {
    pub fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }

    /// Waits for the attack's end (bounded by its time limit).
    pub fn finish(self) -> Result<AttackReport, LabError> {
        self.handle
            .join()
            .unwrap_or_else(|_| Err(panicked("attack thread")))
    }
}

/// Like [`send_attack`], on a thread of its own; returns once the thread has started.
pub fn spawn_attack(ns: &Netns, ifname: &str, plan: &AttackPlan) -> Result<AttackHandle, LabError> {
    let frames = plan.frames(L2::resolve(ns, ifname, plan.dst)?)?;
    let (name, ifname, pacing) = (ns.name.clone(), ifname.to_string(), Pacing::of(plan));
    let handle = std::thread::Builder::new()
        .name(format!("attack-{}", plan.kind))
        .spawn(move || {
            enter_thread(&name)?;
            send_loop(&ifname, pacing, frames)
        })
        .map_err(|e| io_err("starting the attack thread", e))?;
    Ok(AttackHandle { handle })
}

/// Spaces frames `1/rate` apart, sleeping once per batch of about a millisecond's worth.
struct Pacer {
    start: Instant,
    deadline: Instant,
    rate: u64,
    batch: u64,
}

impl Pacer {
    fn new(pacing: Pacing) -> Pacer {
        let start = Instant::now();
        let rate = u64::from(pacing.rate_pps);
        Pacer {
            start,
            deadline: start + pacing.time_limit.min(HARD_TIME_LIMIT),
            rate,
            batch: (rate / 1_000).max(1),
        }
    }

    fn expired(&self) -> bool {
        Instant::now() >= self.deadline
    }

    /// Waits until frame `i` is due; false once the deadline has passed.
    fn wait(&self, i: u64) -> bool {
        if self.rate != 0 && i.is_multiple_of(self.batch) {
            let due = self.start + Duration::from_nanos(i * 1_000_000_000 / self.rate);
            let until = due.min(self.deadline);
            let now = Instant::now();
            if until > now {
                std::thread::sleep(until - now);
            }
        }
        !self.expired()
    }
}

/// An `AF_PACKET` raw socket bound to one interface, for sending only (protocol 0: it receives
/// nothing).
struct PacketSocket(OwnedFd);

impl PacketSocket {
    fn bind(ifname: &str) -> Result<PacketSocket, LabError> {
        let name = CString::new(ifname)
            .map_err(|_| invalid(format!("interface name {ifname:?} contains a NUL byte")))?;
        // SAFETY: `name` is a NUL-terminated string that outlives the call.
        let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) };
        if ifindex == 0 {
            return Err(io_err(
                format!("finding interface {ifname}"),
                std::io::Error::last_os_error(),
            ));
        }
        // SAFETY: plain socket(2); the result is checked before use.
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(io_err(
                "opening an AF_PACKET socket",
                std::io::Error::last_os_error(),
            ));
        }
        // SAFETY: `fd` is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let sll = libc::sockaddr_ll {
            sll_family: libc::AF_PACKET as u16,
            sll_protocol: 0,
            sll_ifindex: ifindex as i32,
            sll_hatype: 0,
            sll_pkttype: 0,
            sll_halen: 0,
            sll_addr: [0; 8],
        };
        // SAFETY: a valid socket and a pointer to a sockaddr_ll of the length passed.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&sll as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(io_err(
                format!("binding an AF_PACKET socket to {ifname}"),
                std::io::Error::last_os_error(),
            ));
        }
        Ok(PacketSocket(fd))
    }

    fn send(&self, frame: &[u8]) -> std::io::Result<()> {
        // SAFETY: a valid socket, and the pointer and length of a live slice.
        let n = unsafe { libc::send(self.0.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
        if n < 0 {
            return Err(std::io::Error::last_os_error());
        }
        if n as usize != frame.len() {
            return Err(std::io::Error::other(format!(
                "sent {n} of {} bytes",
                frame.len()
            )));
        }
        Ok(())
    }
}

fn now_ns() -> Result<u64, LabError> {
    monotonic_ns().map_err(|e| io_err("reading CLOCK_MONOTONIC", std::io::Error::other(e)))
}

/// The sending loop, on a thread already inside the namespace.
fn send_loop(
    ifname: &str,
    pacing: Pacing,
    frames: impl Iterator<Item = Vec<u8>>,
) -> Result<AttackReport, LabError> {
    let sock = PacketSocket::bind(ifname)?;
    let pacer = Pacer::new(pacing);
    let mut r = AttackReport::default();
    'frames: for (i, frame) in frames.enumerate() {
        if !pacer.wait(i as u64) {
            r.timed_out = true;
            break;
        }
        loop {
            let t = now_ns()?;
            match sock.send(&frame) {
                Ok(()) => {
                    r.first_frame_ns.get_or_insert(t);
                    r.last_frame_ns = Some(t);
                    r.frames += 1;
                    r.bytes += frame.len() as u64;
                    break;
                }
                // The peer's queue is full: the frame was not delivered, so send it again.
                Err(e)
                    if e.raw_os_error() == Some(libc::ENOBUFS)
                        || e.kind() == std::io::ErrorKind::WouldBlock =>
                {
                    r.retries += 1;
                    if pacer.expired() {
                        r.timed_out = true;
                        break 'frames;
                    }
                    std::thread::sleep(Duration::from_micros(50));
                }
                Err(e) => return Err(io_err(format!("sending a frame on {ifname}"), e)),
            }
        }
    }
    r.elapsed = pacer.start.elapsed();
    Ok(r)
}

/// Legitimate UDP from an ordinary socket inside a namespace, paced, on its own thread: the
/// background traffic an attack must not disturb.
pub struct Background {
    handle: JoinHandle<Result<u32, LabError>>,
}

impl Background {
    /// Sends `count` datagrams of `len` bytes from `from` to `to` inside `ns` at `rate_pps` (0:
    /// unpaced), stopping at [`HARD_TIME_LIMIT`] at the latest.
    pub fn start(
        ns: &Netns,
        from: SocketAddr,
        to: SocketAddr,
        count: u32,
        rate_pps: u32,
        len: usize,
    ) -> Result<Background, LabError> {
        let name = ns.name.clone();
        let handle = std::thread::Builder::new()
            .name("lab-background".into())
            .spawn(move || -> Result<u32, LabError> {
                enter_thread(&name)?;
                let sock = UdpSocket::bind(from)
                    .map_err(|e| io_err(format!("binding the background sender to {from}"), e))?;
                let pacer = Pacer::new(Pacing {
                    rate_pps,
                    time_limit: HARD_TIME_LIMIT,
                });
                let buf = vec![0x5au8; len];
                let mut sent = 0;
                for i in 0..u64::from(count) {
                    if !pacer.wait(i) {
                        break;
                    }
                    if sock.send_to(&buf, to).is_ok() {
                        sent += 1;
                    }
                }
                Ok(sent)
            })
            .map_err(|e| io_err("starting the background sender", e))?;
        Ok(Background { handle })
    }

    /// Waits for the sender; returns how many datagrams the kernel accepted.
    pub fn finish(self) -> Result<u32, LabError> {
        self.handle
            .join()
            .unwrap_or_else(|_| Err(panicked("background sender")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const L2_TEST: L2 = L2 {
        src: [2, 0, 0, 0, 0, 1],
        dst: [2, 0, 0, 0, 0, 2],
    };

    fn plan(kind: AttackKind) -> AttackPlan {
        AttackPlan::new(
            kind,
            "198.18.0.0/15".parse().unwrap(),
            Ipv4Addr::new(10, 0, 0, 1),
        )
    }

    #[test]
    fn names_round_trip() {
        for k in AttackKind::ALL {
            assert_eq!(k.name().parse::<AttackKind>(), Ok(k));
        }
        assert!("syn".parse::<AttackKind>().is_err());
    }

    #[test]
    fn every_kind_yields_exactly_its_count_deterministically() {
        for k in AttackKind::ALL {
            let mut p = plan(k);
            p.packets = 50;
            let a: Vec<Vec<u8>> = p.frames(L2_TEST).unwrap().collect();
            let b: Vec<Vec<u8>> = p.frames(L2_TEST).unwrap().collect();
            assert_eq!(a.len(), 50, "{k}");
            assert_eq!(a, b, "{k}: same seed, same frames");
            assert!(a.iter().all(|f| f.len() <= 14 + 1500), "{k}: fits the MTU");
            p.seed = 2;
            let c: Vec<Vec<u8>> = p.frames(L2_TEST).unwrap().collect();
            assert_ne!(a, c, "{k}: another seed, other frames");
        }
    }

    #[test]
    fn plans_that_do_not_fit_are_refused() {
        let mut p = plan(AttackKind::UdpReflection);
        p.payload_len = 1473;
        assert!(p.check().is_err());
        p.payload_len = 1472;
        assert!(p.check().is_ok());
        let mut p = plan(AttackKind::FragmentFlood);
        p.payload_len = 4;
        assert!(p.check().is_err());
        let mut p = plan(AttackKind::DnsQueryFlood);
        p.qname = "bad name".into();
        assert!(p.frames(L2_TEST).is_err());
    }

    #[test]
    fn the_pacer_spaces_frames_and_stops_at_its_deadline() {
        let p = Pacer::new(Pacing {
            rate_pps: 2_000,
            time_limit: Duration::from_secs(5),
        });
        for i in 0..200 {
            assert!(p.wait(i));
        }
        let took = p.start.elapsed();
        assert!(took >= Duration::from_millis(95), "{took:?}");
        let p = Pacer::new(Pacing {
            rate_pps: 10,
            time_limit: Duration::from_millis(50),
        });
        let t = Instant::now();
        let sent = (0..1000).take_while(|i| p.wait(*i)).count();
        assert!(sent <= 1, "{sent}");
        assert!(t.elapsed() < Duration::from_secs(1));
    }
}
