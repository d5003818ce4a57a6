//! What the resolver is configured with: `resolv.conf(5)` (nameservers, search domains, the
//! `ndots`, `timeout` and `attempts` options) and a `hosts(5)` table, parsed as glibc reads them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

/// Nameservers glibc uses at most; later `nameserver` lines are ignored, as there.
const MAX_NAMESERVERS: usize = 3;
/// Search domains kept (glibc's historical limit).
const MAX_SEARCH: usize = 6;
/// glibc's caps on the options.
const MAX_NDOTS: usize = 15;
const MAX_TIMEOUT_SECS: u64 = 30;
const MAX_ATTEMPTS: u32 = 5;

/// How host names are resolved: nameservers, search domains and options in the syntax of
/// `/etc/resolv.conf`, and a table in the syntax of `/etc/hosts`.
///
/// A pull normally reads the system's files when it starts (on Unix; see
/// [`PullOptions::resolver`](crate::PullOptions::resolver)); a configuration built with
/// [`ResolverConfig::parse`] replaces them, e.g. to point a pull at given nameservers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolverConfig {
    pub(super) nameservers: Vec<SocketAddr>,
    pub(super) search: Vec<String>,
    pub(super) ndots: usize,
    /// How long one query to one server is waited for (before the overall DNS timeout).
    pub(super) try_timeout: Duration,
    pub(super) attempts: u32,
    hosts: Vec<(String, IpAddr)>,
}

impl ResolverConfig {
    /// A configuration from the text of a `resolv.conf` and of a `hosts` file.
    ///
    /// From `resolv_conf`: `nameserver ADDR` (at most 3; as an extension `ADDR` may carry a
    /// port: `127.0.0.1:5353`, `[::1]:5353`), `search DOMAIN...`, `domain DOMAIN` (the last of the
    /// two wins) and `options ndots:N timeout:SECONDS attempts:N` (other options are ignored).
    /// Without a nameserver, the local one (`127.0.0.1:53`) is asked, as glibc does. Lines that do
    /// not parse are skipped. From `hosts`: `ADDRESS NAME [ALIAS...]` lines; `#` starts a comment.
    pub fn parse(resolv_conf: &str, hosts: &str) -> ResolverConfig {
        let mut cfg = ResolverConfig {
            nameservers: Vec::new(),
            search: Vec::new(),
            ndots: 1,
            try_timeout: Duration::from_secs(5),
            attempts: 2,
            hosts: parse_hosts(hosts),
        };
        for line in resolv_conf.lines() {
            let line = line.split(['#', ';']).next().unwrap_or("");
            let mut words = line.split_whitespace();
            match (words.next(), words.next()) {
                (Some("nameserver"), Some(addr)) => {
                    if let Some(addr) = nameserver(addr)
                        && cfg.nameservers.len() < MAX_NAMESERVERS
                    {
                        cfg.nameservers.push(addr);
                    }
                }
                (Some("domain"), Some(domain)) => cfg.search = domains([domain].into_iter()),
                (Some("search"), Some(first)) => {
                    cfg.search = domains(std::iter::once(first).chain(words));
                }
                (Some("options"), Some(first)) => {
                    for option in std::iter::once(first).chain(words) {
                        cfg.apply_option(option);
                    }
                }
                _ => {}
            }
        }
        if cfg.nameservers.is_empty() {
            cfg.nameservers
                .push(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 53));
        }
        cfg
    }

    /// This system's configuration: `/etc/resolv.conf` and `/etc/hosts`, either missing = empty.
    #[cfg(unix)]
    pub(crate) fn system() -> ResolverConfig {
        let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
        ResolverConfig::parse(&read("/etc/resolv.conf"), &read("/etc/hosts"))
    }

    fn apply_option(&mut self, option: &str) {
        let Some((key, value)) = option.split_once(':') else {
            return;
        };
        let Ok(n) = value.parse::<u64>() else {
            return;
        };
        match key {
            "ndots" => self.ndots = n.min(MAX_NDOTS as u64) as usize,
            "timeout" => self.try_timeout = Duration::from_secs(n.clamp(1, MAX_TIMEOUT_SECS)),
            "attempts" => self.attempts = n.clamp(1, u64::from(MAX_ATTEMPTS)) as u32,
            _ => {}
        }
    }

    /// The addresses the hosts table gives `name` (in file order), and loopback for `localhost`
    /// and names under it when the table has none (RFC 6761; systemd's resolvers do the same).
    pub(super) fn hosts_entry(&self, name: &str) -> Vec<IpAddr> {
        let name = name.trim_end_matches('.');
        let found: Vec<IpAddr> = self
            .hosts
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, ip)| *ip)
            .collect();
        let lower = name.to_ascii_lowercase();
        if found.is_empty() && (lower == "localhost" || lower.ends_with(".localhost")) {
            return vec![
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(Ipv6Addr::LOCALHOST),
            ];
        }
        found
    }

    /// The names to ask the nameservers for `name`, in order, as glibc's `res_search` does: a
    /// name ending in `.` as it is; a name with at least `ndots` dots first as it is, then with
    /// each search domain; a shorter one with the search domains first.
    pub(super) fn candidates(&self, name: &str) -> Vec<String> {
        if let Some(absolute) = name.strip_suffix('.') {
            return vec![absolute.to_string()];
        }
        let searched = self.search.iter().map(|d| format!("{name}.{d}"));
        if name.matches('.').count() >= self.ndots {
            std::iter::once(name.to_string()).chain(searched).collect()
        } else {
            searched.chain(std::iter::once(name.to_string())).collect()
        }
    }
}

/// A `nameserver` address: an IP (port 53) or, as an extension, an IP with a port.
fn nameserver(raw: &str) -> Option<SocketAddr> {
    match raw.parse::<IpAddr>() {
        Ok(ip) => Some(SocketAddr::new(ip, 53)),
        // Scoped IPv6 addresses (`fe80::1%eth0`) do not parse and are skipped.
        Err(_) => raw.parse().ok(),
    }
}

/// Search domains without a trailing dot; the root (`.`) and empty ones dropped.
fn domains<'a>(words: impl Iterator<Item = &'a str>) -> Vec<String> {
    words
        .map(|d| d.trim_end_matches('.').to_ascii_lowercase())
        .filter(|d| !d.is_empty())
        .take(MAX_SEARCH)
        .collect()
}

fn parse_hosts(text: &str) -> Vec<(String, IpAddr)> {
    let mut table = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("");
        let mut words = line.split_whitespace();
        let Some(Ok(ip)) = words.next().map(str::parse::<IpAddr>) else {
            continue;
        };
        for name in words {
            table.push((name.trim_end_matches('.').to_ascii_lowercase(), ip));
        }
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn resolv_conf_is_read_as_glibc_reads_it() {
        let cfg = ResolverConfig::parse(
            "# comment\n\
             nameserver 10.0.0.1\n\
             nameserver 2001:db8::53 ; trailing comment\n\
             nameserver fe80::1%eth0\n\
             nameserver 127.0.0.1:5353\n\
             nameserver 10.0.0.9\n\
             domain ignored.example\n\
             search corp.example. lab.example\n\
             options ndots:2 timeout:3 attempts:4 rotate edns0 timeout:x\n\
             garbage line here\n",
            "",
        );
        assert_eq!(
            cfg.nameservers,
            vec![
                "10.0.0.1:53".parse().expect("addr"),
                "[2001:db8::53]:53".parse().expect("addr"),
                "127.0.0.1:5353".parse().expect("addr"),
            ],
            "a scoped address is skipped; at most 3"
        );
        assert_eq!(cfg.search, vec!["corp.example", "lab.example"]);
        assert_eq!(
            (cfg.ndots, cfg.try_timeout, cfg.attempts),
            (2, Duration::from_secs(3), 4)
        );
    }

    #[test]
    fn defaults_and_limits() {
        let cfg = ResolverConfig::parse("", "");
        assert_eq!(cfg.nameservers, vec!["127.0.0.1:53".parse().expect("addr")]);
        assert_eq!(
            (cfg.ndots, cfg.try_timeout, cfg.attempts),
            (1, Duration::from_secs(5), 2)
        );
        assert!(cfg.search.is_empty());
        let cfg = ResolverConfig::parse(
            "options ndots:99 timeout:0 attempts:100\nsearch a b c d e f g\ndomain x.example",
            "",
        );
        assert_eq!(
            (cfg.ndots, cfg.try_timeout, cfg.attempts),
            (15, Duration::from_secs(1), 5)
        );
        assert_eq!(
            cfg.search,
            vec!["x.example"],
            "the last of domain/search wins"
        );
    }

    #[test]
    fn search_order_follows_ndots() {
        let cfg = ResolverConfig::parse("search corp.example lab.example", "");
        assert_eq!(
            cfg.candidates("huggingface.co"),
            vec![
                "huggingface.co",
                "huggingface.co.corp.example",
                "huggingface.co.lab.example"
            ]
        );
        assert_eq!(
            cfg.candidates("hub"),
            vec!["hub.corp.example", "hub.lab.example", "hub"]
        );
        assert_eq!(cfg.candidates("hf.co."), vec!["hf.co"], "absolute");
        let cfg = ResolverConfig::parse("search corp.example\noptions ndots:3", "");
        assert_eq!(cfg.candidates("a.b.c"), vec!["a.b.c.corp.example", "a.b.c"]);
    }

    #[test]
    fn hosts_table_and_localhost() {
        let cfg = ResolverConfig::parse(
            "",
            "127.0.0.1 localhost\n\
             10.1.1.1  Hub.Corp  hub  # the mirror\n\
             fd00::1   hub\n\
             not-an-ip broken\n\
             # 10.9.9.9 commented\n",
        );
        assert_eq!(cfg.hosts_entry("HUB"), vec![ip("10.1.1.1"), ip("fd00::1")]);
        assert_eq!(cfg.hosts_entry("hub.corp."), vec![ip("10.1.1.1")]);
        assert_eq!(cfg.hosts_entry("localhost"), vec![ip("127.0.0.1")]);
        assert!(cfg.hosts_entry("broken").is_empty());
        assert!(cfg.hosts_entry("commented").is_empty());
        // Without an entry, localhost (and names under it) are still loopback.
        let bare = ResolverConfig::parse("", "");
        assert_eq!(
            bare.hosts_entry("localhost"),
            vec![ip("127.0.0.1"), ip("::1")]
        );
        assert_eq!(
            bare.hosts_entry("a.LOCALHOST"),
            vec![ip("127.0.0.1"), ip("::1")]
        );
        assert!(bare.hosts_entry("localhost.example").is_empty());
    }
}
