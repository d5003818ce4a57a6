//! Asking the nameservers, over UDP, on the calling thread: A and AAAA queries sent together, one
//! connected socket per server (so an ICMP "port unreachable" ends that server's turn at once),
//! every socket polled in slices so that cancellation is seen within [`POLL`] and a late answer of
//! an earlier server is still taken.

use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use ring::rand::{SecureRandom, SystemRandom};

use super::config::ResolverConfig;
use super::dns::{self, Reply, TYPE_A, TYPE_AAAA};
use crate::cancel::{Cancel, POLL};

/// Largest datagram read; answers to queries without EDNS are at most 512 bytes.
const MAX_DATAGRAM: usize = 2048;
/// Shortest per-server turn, however many servers and attempts share the budget.
const MIN_TRY: Duration = Duration::from_millis(200);

/// Addresses found for a name: IPv4 first (see the module doc of `resolve`), and how long they
/// may be reused.
#[derive(Debug)]
pub(super) struct Found {
    pub addrs: Vec<IpAddr>,
    pub ttl: Duration,
}

/// Why a lookup found nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Failure {
    /// Every name tried is unknown or has no address.
    NotFound,
    /// No server gave an answer: `failure` is the last failure one reported (an error code, a
    /// refusal), or `None` when they stayed silent until the deadline.
    NoAnswer { failure: Option<String> },
    /// The pull was cancelled.
    Cancelled,
}

/// Looks `name` up with the search rules of `cfg`, giving up at `deadline`.
pub(super) fn lookup(
    cfg: &ResolverConfig,
    name: &str,
    deadline: Instant,
    cancel: &Cancel,
) -> Result<Found, Failure> {
    for candidate in cfg.candidates(name) {
        match Exchange::new(cfg, &candidate, cancel)?.run(deadline) {
            Err(Failure::NotFound) => continue,
            other => return other,
        }
    }
    Err(Failure::NotFound)
}

/// One nameserver of an exchange.
struct Server {
    addr: SocketAddr,
    /// Opened on its first turn.
    socket: Option<UdpSocket>,
    /// Refused (ICMP), unreachable, or failed to send: not asked again in this exchange.
    dead: bool,
    /// Answered this turn with a failure: the turn ends early.
    failed: bool,
}

/// A query in flight: which server it went to, its id and type.
struct Pending {
    server: usize,
    id: u16,
    qtype: u16,
}

/// The A and AAAA questions for one name, asked of the servers in turn.
struct Exchange<'a> {
    cfg: &'a ResolverConfig,
    name: &'a str,
    cancel: &'a Cancel,
    servers: Vec<Server>,
    pending: Vec<Pending>,
    a: Option<Reply>,
    aaaa: Option<Reply>,
    /// The last failure a server answered with, for the message.
    last_failure: Option<String>,
    rng: SystemRandom,
}

impl<'a> Exchange<'a> {
    fn new(cfg: &'a ResolverConfig, name: &'a str, cancel: &'a Cancel) -> Result<Self, Failure> {
        // A name that cannot be put on the wire cannot exist.
        if dns::encode_query(0, name, TYPE_A).is_none() {
            return Err(Failure::NotFound);
        }
        let servers = cfg
            .nameservers
            .iter()
            .map(|&addr| Server {
                addr,
                socket: None,
                dead: false,
                failed: false,
            })
            .collect();
        Ok(Exchange {
            cfg,
            name,
            cancel,
            servers,
            pending: Vec::new(),
            a: None,
            aaaa: None,
            last_failure: None,
            rng: SystemRandom::new(),
        })
    }

    /// `attempts` rounds over the servers, each server's turn bounded so that every server gets
    /// a turn within the budget, all of it bounded by `deadline`.
    fn run(mut self, deadline: Instant) -> Result<Found, Failure> {
        let turns = self.servers.len() as u32 * self.cfg.attempts.max(1);
        let budget = deadline.saturating_duration_since(Instant::now());
        let per_turn = self.cfg.try_timeout.min(budget / turns.max(1)).max(MIN_TRY);
        'rounds: for _ in 0..self.cfg.attempts.max(1) {
            for i in 0..self.servers.len() {
                if self.done() || Instant::now() >= deadline {
                    break 'rounds;
                }
                if self.servers[i].dead {
                    continue;
                }
                self.send(i);
                self.wait(i, (Instant::now() + per_turn).min(deadline))?;
            }
        }
        self.outcome()
    }

    /// Both questions have a final answer, or the name does not exist.
    fn done(&self) -> bool {
        let final_reply = |r: &Option<Reply>| {
            matches!(
                r,
                Some(Reply::Addresses { .. } | Reply::NoData | Reply::NoSuchName)
            )
        };
        let nxdomain = |r: &Option<Reply>| matches!(r, Some(Reply::NoSuchName));
        (final_reply(&self.a) && final_reply(&self.aaaa))
            || nxdomain(&self.a)
            || nxdomain(&self.aaaa)
    }

    /// Sends the unanswered questions to server `i`, with fresh random ids.
    fn send(&mut self, i: usize) {
        let server = &mut self.servers[i];
        server.failed = false;
        if server.socket.is_none() {
            match open(server.addr) {
                Ok(s) => server.socket = Some(s),
                Err(e) => return self.kill(i, &e.to_string()),
            }
        }
        for qtype in [TYPE_A, TYPE_AAAA] {
            let answered = if qtype == TYPE_A { &self.a } else { &self.aaaa };
            if answered.is_some() {
                continue;
            }
            let mut id = [0u8; 2];
            if self.rng.fill(&mut id).is_err() {
                return self.kill(i, "no random source for query ids");
            }
            let id = u16::from_be_bytes(id);
            let Some(query) = dns::encode_query(id, self.name, qtype) else {
                return;
            };
            let sent = self.servers[i].socket.as_ref().map(|s| s.send(&query));
            match sent {
                Some(Ok(_)) => self.pending.push(Pending {
                    server: i,
                    id,
                    qtype,
                }),
                Some(Err(e)) => return self.kill(i, &e.to_string()),
                None => return,
            }
        }
    }

    fn kill(&mut self, i: usize, why: &str) {
        let server = &mut self.servers[i];
        server.dead = true;
        self.last_failure = Some(format!("nameserver {}: {why}", server.addr));
    }

    /// Reads answers from every open socket until server `i`'s turn ends: at `until`, when both
    /// questions are answered, or when it answers with a failure or is refused.
    fn wait(&mut self, i: usize, until: Instant) -> Result<(), Failure> {
        let mut buf = [0u8; MAX_DATAGRAM];
        loop {
            if self.cancel.is_cancelled() {
                return Err(Failure::Cancelled);
            }
            let now = Instant::now();
            if self.done() || now >= until || self.servers[i].dead || self.servers[i].failed {
                return Ok(());
            }
            let open: Vec<usize> = (0..self.servers.len())
                .filter(|&s| !self.servers[s].dead && self.servers[s].socket.is_some())
                .collect();
            if open.is_empty() {
                return Ok(());
            }
            // Each pass over the sockets takes at most POLL, so cancellation is seen in time.
            let slice = (POLL / open.len() as u32)
                .min(until - now)
                .max(Duration::from_millis(1));
            for s in open {
                self.receive(s, slice, &mut buf);
            }
        }
    }

    /// Waits up to `slice` for one datagram on server `s`'s socket and takes it if it answers a
    /// pending question.
    fn receive(&mut self, s: usize, slice: Duration, buf: &mut [u8]) {
        let Some(socket) = &self.servers[s].socket else {
            return;
        };
        let got = socket
            .set_read_timeout(Some(slice))
            .and_then(|()| socket.recv_from(buf));
        let (len, from) = match got {
            Ok(got) => got,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => return,
            Err(e) => return self.kill(s, &e.to_string()),
        };
        // The socket is connected, so the kernel already drops other senders; checked anyway.
        if from != self.servers[s].addr {
            return;
        }
        let msg = &buf[..len];
        let hit = self.pending.iter().enumerate().find_map(|(at, p)| {
            (p.server == s)
                .then(|| dns::parse_reply(msg, p.id, self.name, p.qtype))
                .flatten()
                .map(|reply| (at, reply))
        });
        let Some((at, reply)) = hit else {
            return;
        };
        let p = self.pending.swap_remove(at);
        let slot = if p.qtype == TYPE_A {
            &mut self.a
        } else {
            &mut self.aaaa
        };
        match reply {
            Reply::ServerFailure(rcode) => {
                self.servers[s].failed = true;
                self.last_failure = Some(format!(
                    "nameserver {} answered with error code {rcode}",
                    self.servers[s].addr
                ));
            }
            Reply::Truncated => {
                self.servers[s].failed = true;
                self.last_failure = Some(format!(
                    "nameserver {} sent a truncated answer",
                    self.servers[s].addr
                ));
            }
            reply => {
                slot.get_or_insert(reply);
            }
        }
    }

    /// The result once the rounds are over or the deadline passed.
    fn outcome(self) -> Result<Found, Failure> {
        let mut addrs = Vec::new();
        let mut ttl = u32::MAX;
        for reply in [&self.a, &self.aaaa].into_iter().flatten() {
            if let Reply::Addresses {
                addrs: found,
                ttl: t,
            } = reply
            {
                addrs.extend_from_slice(found);
                ttl = ttl.min(*t);
            }
        }
        if !addrs.is_empty() {
            return Ok(Found {
                addrs,
                ttl: Duration::from_secs(u64::from(ttl)),
            });
        }
        if self.done() {
            return Err(Failure::NotFound);
        }
        Err(Failure::NoAnswer {
            failure: self.last_failure,
        })
    }
}

/// A UDP socket connected to `server`, on an ephemeral port the system picks at random.
fn open(server: SocketAddr) -> std::io::Result<UdpSocket> {
    let any = match server {
        SocketAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        SocketAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    };
    let socket = UdpSocket::bind(SocketAddr::new(any, 0))?;
    socket.connect(server)?;
    Ok(socket)
}
