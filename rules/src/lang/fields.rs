//! The field registry: every field name, its type, and whether the XDP program can see it.

use super::types::Ty;

/// Where a field's value comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layer {
    /// From the packet headers: usable in XDP rules (and by the L7 engine where noted).
    L34,
    /// From the HTTP request: L7 rules only.
    L7,
    /// From the origin's response: only in a rate limit's counting expression.
    Response,
}

macro_rules! fields {
    ($( $id:ident = $name:literal : $ty:expr, $layer:ident; )*) => {
        /// A field of the language.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Field { $( $id ),* }

        impl Field {
            pub const ALL: &'static [Field] = &[$( Field::$id ),*];

            pub fn name(self) -> &'static str {
                match self { $( Field::$id => $name ),* }
            }

            pub fn ty(self) -> Ty {
                match self { $( Field::$id => $ty ),* }
            }

            pub fn layer(self) -> Layer {
                match self { $( Field::$id => Layer::$layer ),* }
            }

            pub fn lookup(name: &str) -> Option<Field> {
                match name { $( $name => Some(Field::$id), )* _ => None }
            }
        }
    };
}

fields! {
    IpSrc = "ip.src": Ty::Ip, L34;
    IpDst = "ip.dst": Ty::Ip, L34;
    IpProto = "ip.proto": Ty::Int, L34;
    IpLen = "ip.len": Ty::Int, L34;
    IpTtl = "ip.ttl": Ty::Int, L34;
    IpId = "ip.id": Ty::Int, L34;
    IpFlagsDf = "ip.flags.df": Ty::Bool, L34;
    IpFlagsMf = "ip.flags.mf": Ty::Bool, L34;
    IpFragOffset = "ip.frag_offset": Ty::Int, L34;
    IpVersion = "ip.version": Ty::Int, L34;
    TcpSrcPort = "tcp.srcport": Ty::Int, L34;
    TcpDstPort = "tcp.dstport": Ty::Int, L34;
    TcpFlags = "tcp.flags": Ty::Int, L34;
    TcpFlagsFin = "tcp.flags.fin": Ty::Bool, L34;
    TcpFlagsSyn = "tcp.flags.syn": Ty::Bool, L34;
    TcpFlagsRst = "tcp.flags.rst": Ty::Bool, L34;
    TcpFlagsPsh = "tcp.flags.psh": Ty::Bool, L34;
    TcpFlagsAck = "tcp.flags.ack": Ty::Bool, L34;
    TcpFlagsUrg = "tcp.flags.urg": Ty::Bool, L34;
    TcpFlagsEce = "tcp.flags.ece": Ty::Bool, L34;
    TcpFlagsCwr = "tcp.flags.cwr": Ty::Bool, L34;
    TcpWindow = "tcp.window": Ty::Int, L34;
    UdpSrcPort = "udp.srcport": Ty::Int, L34;
    UdpDstPort = "udp.dstport": Ty::Int, L34;
    IcmpType = "icmp.type": Ty::Int, L34;
    IcmpCode = "icmp.code": Ty::Int, L34;
    VlanId = "vlan.id": Ty::Int, L34;
    Payload = "payload": Ty::Bytes, L34;
    HttpHost = "http.host": Ty::Bytes, L7;
    HttpMethod = "http.request.method": Ty::Bytes, L7;
    HttpUri = "http.request.uri": Ty::Bytes, L7;
    HttpPath = "http.request.uri.path": Ty::Bytes, L7;
    HttpPathRaw = "http.request.uri.path.raw": Ty::Bytes, L7;
    HttpQuery = "http.request.uri.query": Ty::Bytes, L7;
    HttpArgs = "http.request.uri.args": Ty::map_of_bytes(), L7;
    HttpArgNames = "http.request.uri.args.names": Ty::array_of_bytes(), L7;
    HttpArgValues = "http.request.uri.args.values": Ty::array_of_bytes(), L7;
    HttpHeaders = "http.request.headers": Ty::map_of_bytes(), L7;
    HttpHeaderNames = "http.request.headers.names": Ty::array_of_bytes(), L7;
    HttpHeaderValues = "http.request.headers.values": Ty::array_of_bytes(), L7;
    HttpCookies = "http.request.cookies": Ty::map_of_bytes(), L7;
    HttpUserAgent = "http.user_agent": Ty::Bytes, L7;
    HttpVersion = "http.request.version": Ty::Bytes, L7;
    HttpTruncated = "http.request.truncated": Ty::array_of_bytes(), L7;
    HttpBodyRaw = "http.request.body.raw": Ty::Bytes, L7;
    HttpBodyForm = "http.request.body.form": Ty::map_of_bytes(), L7;
    HttpBodyTruncated = "http.request.body.truncated": Ty::array_of_bytes(), L7;
    HttpBodyError = "http.request.body.error": Ty::Bytes, L7;
    WafScore = "waf.score": Ty::Int, L7;
    WafScoreSqli = "waf.score.sqli": Ty::Int, L7;
    WafScoreXss = "waf.score.xss": Ty::Int, L7;
    WafScoreRce = "waf.score.rce": Ty::Int, L7;
    WafScoreLfi = "waf.score.lfi": Ty::Int, L7;
    WafScoreProtocol = "waf.score.protocol": Ty::Int, L7;
    HttpResponseCode = "http.response.code": Ty::Int, Response;
    HttpResponseHeaders = "http.response.headers": Ty::map_of_bytes(), Response;
}

/// Protocol names accepted where `ip.proto` is compared with a string.
pub fn proto_number(name: &[u8]) -> Option<i64> {
    Some(match name {
        b"icmp" => 1,
        b"igmp" => 2,
        b"tcp" => 6,
        b"udp" => 17,
        b"gre" => 47,
        b"esp" => 50,
        b"ah" => 51,
        b"icmpv6" => 58,
        b"sctp" => 132,
        _ => return None,
    })
}

/// Closest known field names, for "did you mean" hints.
pub fn suggest(name: &str) -> Vec<&'static str> {
    let mut scored: Vec<(usize, &'static str)> = Field::ALL
        .iter()
        .map(|f| (distance(name, f.name()), f.name()))
        .filter(|(d, _)| *d <= 3)
        .collect();
    scored.sort();
    scored.into_iter().take(3).map(|(_, n)| n).collect()
}

fn distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            cur.push(
                (prev[j] + (ca != cb) as usize)
                    .min(prev[j + 1] + 1)
                    .min(cur[j] + 1),
            );
        }
        prev = cur;
    }
    prev[b.len()]
}
