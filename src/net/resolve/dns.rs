//! The DNS wire format (RFC 1035), as much of it as an address lookup needs: one question of type
//! A or AAAA, recursion desired; answers read with name compression, CNAME chains followed within
//! the answer section.
//!
//! Everything here is parsing of bytes a network peer controls: every length is checked, and a
//! message that does not parse is "not an answer" (the caller keeps waiting), never a panic.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Record type A (an IPv4 address).
pub(super) const TYPE_A: u16 = 1;
/// Record type AAAA (an IPv6 address).
pub(super) const TYPE_AAAA: u16 = 28;
const TYPE_CNAME: u16 = 5;
const CLASS_IN: u16 = 1;

/// Longest name on the wire (RFC 1035 §2.3.4), label lengths included.
const MAX_NAME_WIRE: usize = 255;
/// Aliases followed from the asked name to its addresses; a longer chain is treated as broken.
const MAX_CNAME_HOPS: usize = 8;
/// Compression pointers followed while reading one name; more means a loop.
const MAX_POINTERS: usize = 32;

const FLAG_QR: u16 = 0x8000;
const FLAG_TC: u16 = 0x0200;
const FLAG_RD: u16 = 0x0100;
const OPCODE_MASK: u16 = 0x7800;
const RCODE_MASK: u16 = 0x000F;
const RCODE_NXDOMAIN: u16 = 3;

/// What a server said about one question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Reply {
    /// The name has these addresses of the asked type; cache them for `ttl` seconds at most.
    Addresses { addrs: Vec<IpAddr>, ttl: u32 },
    /// The name does not exist (NXDOMAIN): no type will have addresses.
    NoSuchName,
    /// The name exists but has no address of this type (or the answer ended before one).
    NoData,
    /// The server could not answer (SERVFAIL, REFUSED, ...: the rcode): another server may.
    ServerFailure(u16),
    /// The answer was truncated before any address: it would need a retry over TCP, which this
    /// client does not do (see the module doc of `resolve`); another server may answer whole.
    Truncated,
}

/// The query for `name` (dot-separated labels, no trailing dot) and `qtype`, or `None` when the
/// name cannot be a DNS name (an empty or over-long label, or too long as a whole).
pub(super) fn encode_query(id: u16, name: &str, qtype: u16) -> Option<Vec<u8>> {
    let mut msg = Vec::with_capacity(18 + name.len());
    msg.extend_from_slice(&id.to_be_bytes());
    msg.extend_from_slice(&FLAG_RD.to_be_bytes());
    // One question; no answer, authority or additional records.
    msg.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
    let start = msg.len();
    for label in name.split('.') {
        let len = u8::try_from(label.len())
            .ok()
            .filter(|l| (1..=63).contains(l))?;
        msg.push(len);
        msg.extend_from_slice(label.as_bytes());
    }
    msg.push(0);
    if msg.len() - start > MAX_NAME_WIRE {
        return None;
    }
    msg.extend_from_slice(&qtype.to_be_bytes());
    msg.extend_from_slice(&CLASS_IN.to_be_bytes());
    Some(msg)
}

/// Reads `msg` as the answer to the query `id` for `name` and `qtype`. `None` when it is not that
/// answer (another id or question, not a response, malformed): the caller ignores it, since
/// anyone can send a datagram to our port.
pub(super) fn parse_reply(msg: &[u8], id: u16, name: &str, qtype: u16) -> Option<Reply> {
    let mut r = Reader { msg, pos: 0 };
    let got_id = r.u16()?;
    let flags = r.u16()?;
    let (qdcount, ancount) = (r.u16()?, r.u16()?);
    r.skip(4)?; // authority and additional counts: not needed
    if got_id != id || flags & FLAG_QR == 0 || flags & OPCODE_MASK != 0 || qdcount != 1 {
        return None;
    }
    let qname = r.name()?;
    let (qt, qclass) = (r.u16()?, r.u16()?);
    if !qname.eq_ignore_ascii_case(name) || qt != qtype || qclass != CLASS_IN {
        return None;
    }
    let truncated = flags & FLAG_TC != 0;
    match flags & RCODE_MASK {
        0 => {}
        RCODE_NXDOMAIN => return Some(Reply::NoSuchName),
        rcode => return Some(Reply::ServerFailure(rcode)),
    }
    // A truncated answer may end in the middle of a record: keep the records that are whole.
    let mut records = Vec::new();
    for _ in 0..ancount {
        match r.record() {
            Some(rec) => records.push(rec),
            None if truncated => break,
            None => return None,
        }
    }
    let reply = addresses_of(name, qtype, &records);
    Some(match reply {
        Reply::NoData if truncated => Reply::Truncated,
        other => other,
    })
}

/// One resource record of the answer section, its data decoded where we need it.
struct Record {
    owner: String,
    ttl: u32,
    data: RecordData,
}

enum RecordData {
    Address(IpAddr),
    Alias(String),
    Other,
}

/// Follows the CNAME chain from `name` within `records` and collects the addresses of its end.
fn addresses_of(name: &str, qtype: u16, records: &[Record]) -> Reply {
    let mut current = name.to_string();
    let mut ttl = u32::MAX;
    for _ in 0..=MAX_CNAME_HOPS {
        let mut addrs = Vec::new();
        let mut alias = None;
        for rec in records
            .iter()
            .filter(|r| r.owner.eq_ignore_ascii_case(&current))
        {
            match &rec.data {
                RecordData::Address(ip) if is_type(ip, qtype) => {
                    addrs.push(*ip);
                    ttl = ttl.min(rec.ttl);
                }
                RecordData::Alias(target) if alias.is_none() => {
                    alias = Some(target.clone());
                    ttl = ttl.min(rec.ttl);
                }
                _ => {}
            }
        }
        if !addrs.is_empty() {
            return Reply::Addresses { addrs, ttl };
        }
        match alias {
            Some(next) => current = next,
            None => return Reply::NoData,
        }
    }
    Reply::NoData
}

fn is_type(ip: &IpAddr, qtype: u16) -> bool {
    match ip {
        IpAddr::V4(_) => qtype == TYPE_A,
        IpAddr::V6(_) => qtype == TYPE_AAAA,
    }
}

/// A cursor over a message; every read is bounds-checked.
struct Reader<'a> {
    msg: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let end = self.pos.checked_add(n)?;
        let bytes = self.msg.get(self.pos..end)?;
        self.pos = end;
        Some(bytes)
    }

    fn skip(&mut self, n: usize) -> Option<()> {
        self.take(n).map(|_| ())
    }

    fn u16(&mut self) -> Option<u16> {
        let b = self.take(2)?;
        Some(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Option<u32> {
        let b = self.take(4)?;
        Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A name at the cursor, with compression pointers followed; the cursor moves past the name's
    /// bytes at this place only.
    fn name(&mut self) -> Option<String> {
        let (name, end) = read_name(self.msg, self.pos)?;
        self.pos = end;
        Some(name)
    }

    fn record(&mut self) -> Option<Record> {
        let owner = self.name()?;
        let (rtype, class, ttl) = (self.u16()?, self.u16()?, self.u32()?);
        let len = usize::from(self.u16()?);
        let data_at = self.pos;
        let data = self.take(len)?;
        let data = match (rtype, class) {
            (TYPE_A, CLASS_IN) => {
                let b: [u8; 4] = data.try_into().ok()?;
                RecordData::Address(IpAddr::V4(Ipv4Addr::from(b)))
            }
            (TYPE_AAAA, CLASS_IN) => {
                let b: [u8; 16] = data.try_into().ok()?;
                RecordData::Address(IpAddr::V6(Ipv6Addr::from(b)))
            }
            (TYPE_CNAME, CLASS_IN) => {
                // The target may point back into the message, so it is read from the whole
                // message, and must end exactly where the record data does.
                let (target, end) = read_name(self.msg, data_at)?;
                if end != data_at + len {
                    return None;
                }
                RecordData::Alias(target)
            }
            _ => RecordData::Other,
        };
        Some(Record { owner, ttl, data })
    }
}

/// Reads the name starting at `start`: the name (lower-case ASCII labels joined by dots, "" for
/// the root) and the offset just past it at `start` (past the first pointer when compressed).
/// Pointers must point backwards, so a loop cannot form; labels must be printable ASCII.
fn read_name(msg: &[u8], start: usize) -> Option<(String, usize)> {
    let mut name = String::new();
    let mut pos = start;
    let mut end = None;
    let mut pointers = 0;
    let mut wire_len = 0usize;
    loop {
        let len = *msg.get(pos)?;
        match len & 0xC0 {
            0x00 if len == 0 => {
                return Some((name, end.unwrap_or(pos + 1)));
            }
            0x00 => {
                let label = msg.get(pos + 1..pos + 1 + usize::from(len))?;
                wire_len += 1 + label.len();
                if wire_len >= MAX_NAME_WIRE || !label.iter().all(|b| b.is_ascii_graphic()) {
                    return None;
                }
                if !name.is_empty() {
                    name.push('.');
                }
                name.extend(label.iter().map(|b| char::from(b.to_ascii_lowercase())));
                pos += 1 + label.len();
            }
            0xC0 => {
                let low = *msg.get(pos + 1)?;
                let target = usize::from(u16::from_be_bytes([len & 0x3F, low]));
                pointers += 1;
                if target >= pos || pointers > MAX_POINTERS {
                    return None;
                }
                end.get_or_insert(pos + 2);
                pos = target;
            }
            // 0x40 and 0x80: extended label types, not used in answers to address queries.
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An answer to `query` (which it echoes) with `rcode`, `flags` added, and `answers` as raw
    /// resource records.
    fn answer(query: &[u8], extra_flags: u16, rcode: u16, answers: &[Vec<u8>]) -> Vec<u8> {
        let mut msg = query.to_vec();
        let flags =
            u16::from_be_bytes([query[2], query[3]]) | FLAG_QR | 0x0080 | extra_flags | rcode;
        msg[2..4].copy_from_slice(&flags.to_be_bytes());
        msg[6..8].copy_from_slice(&(answers.len() as u16).to_be_bytes());
        for a in answers {
            msg.extend_from_slice(a);
        }
        msg
    }

    /// A record owned by the name at `owner` (an offset, as a compression pointer).
    fn rr(owner: u16, rtype: u16, ttl: u32, data: &[u8]) -> Vec<u8> {
        let mut r = (0xC000 | owner).to_be_bytes().to_vec();
        r.extend_from_slice(&rtype.to_be_bytes());
        r.extend_from_slice(&CLASS_IN.to_be_bytes());
        r.extend_from_slice(&ttl.to_be_bytes());
        r.extend_from_slice(&(data.len() as u16).to_be_bytes());
        r.extend_from_slice(data);
        r
    }

    #[test]
    fn queries_are_encoded_as_rfc_1035_says() {
        let q = encode_query(0xBEEF, "hf.co", TYPE_AAAA).expect("valid name");
        assert_eq!(
            q,
            [
                0xBE, 0xEF, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, // header
                2, b'h', b'f', 2, b'c', b'o', 0, // name
                0, 28, 0, 1, // AAAA, IN
            ]
        );
        assert!(encode_query(1, "a..b", TYPE_A).is_none(), "empty label");
        assert!(
            encode_query(1, &"x".repeat(64), TYPE_A).is_none(),
            "label over 63"
        );
        let long = vec!["abcdefghi"; 26].join(".");
        assert!(encode_query(1, &long, TYPE_A).is_none(), "name over 255");
    }

    #[test]
    fn addresses_are_read_through_a_cname_chain() {
        let q = encode_query(7, "hub.example", TYPE_A).expect("query");
        // hub.example CNAME cdn.example (the target's labels, then a pointer to "example" at 16).
        let target = [3, b'c', b'd', b'n', 0xC0, 16];
        let alias = rr(12, TYPE_CNAME, 300, &target);
        // cdn.example's records: the owner is the CNAME's data, at its offset in the message.
        let cdn_at = (q.len() + alias.len() - target.len()) as u16;
        let a1 = rr(cdn_at, TYPE_A, 60, &[10, 0, 0, 1]);
        let a2 = rr(cdn_at, TYPE_A, 30, &[10, 0, 0, 2]);
        let other = rr(12, 16, 5, b"\x03txt"); // a TXT record of the asked name: ignored
        let msg = answer(&q, 0, 0, &[alias, a1, a2, other]);
        assert_eq!(
            parse_reply(&msg, 7, "hub.example", TYPE_A),
            Some(Reply::Addresses {
                addrs: vec![
                    "10.0.0.1".parse().expect("ip"),
                    "10.0.0.2".parse().expect("ip")
                ],
                ttl: 30,
            })
        );
        // A CNAME that leads nowhere within the answer: no data.
        let dangling = rr(12, TYPE_CNAME, 300, &[3, b'c', b'd', b'n', 0]);
        let msg = answer(&q, 0, 0, &[dangling]);
        assert_eq!(
            parse_reply(&msg, 7, "hub.example", TYPE_A),
            Some(Reply::NoData)
        );
    }

    #[test]
    fn aaaa_records_and_case_insensitive_names() {
        let q = encode_query(9, "Hub.Example", TYPE_AAAA).expect("query");
        let ip: Ipv6Addr = "2001:db8::5".parse().expect("ip");
        let msg = answer(&q, 0, 0, &[rr(12, TYPE_AAAA, 10, &ip.octets())]);
        assert_eq!(
            parse_reply(&msg, 9, "hub.example", TYPE_AAAA),
            Some(Reply::Addresses {
                addrs: vec![IpAddr::V6(ip)],
                ttl: 10
            })
        );
        // An A record in an answer to AAAA does not count.
        let msg = answer(&q, 0, 0, &[rr(12, TYPE_A, 10, &[1, 2, 3, 4])]);
        assert_eq!(
            parse_reply(&msg, 9, "hub.example", TYPE_AAAA),
            Some(Reply::NoData)
        );
    }

    #[test]
    fn rcodes_and_truncation() {
        let q = encode_query(3, "gone.example", TYPE_A).expect("query");
        let parse = |m: &[u8]| parse_reply(m, 3, "gone.example", TYPE_A);
        assert_eq!(parse(&answer(&q, 0, 3, &[])), Some(Reply::NoSuchName));
        assert_eq!(parse(&answer(&q, 0, 2, &[])), Some(Reply::ServerFailure(2)));
        assert_eq!(parse(&answer(&q, 0, 5, &[])), Some(Reply::ServerFailure(5)));
        // Truncated with nothing usable: another server may answer whole.
        assert_eq!(parse(&answer(&q, FLAG_TC, 0, &[])), Some(Reply::Truncated));
        // Truncated in the middle of the second record: the first, whole one is used.
        let mut cut = answer(
            &q,
            FLAG_TC,
            0,
            &[
                rr(12, TYPE_A, 60, &[10, 0, 0, 1]),
                rr(12, TYPE_A, 60, &[10, 0, 0, 2]),
            ],
        );
        cut.truncate(cut.len() - 3);
        assert_eq!(
            parse(&cut),
            Some(Reply::Addresses {
                addrs: vec!["10.0.0.1".parse().expect("ip")],
                ttl: 60
            })
        );
        // The same cut without the TC bit is malformed: ignored.
        let mut flags = u16::from_be_bytes([cut[2], cut[3]]);
        flags &= !FLAG_TC;
        cut[2..4].copy_from_slice(&flags.to_be_bytes());
        assert_eq!(parse(&cut), None);
    }

    #[test]
    fn answers_to_other_questions_are_ignored() {
        let q = encode_query(5, "hub.example", TYPE_A).expect("query");
        let ok = answer(&q, 0, 0, &[rr(12, TYPE_A, 60, &[10, 0, 0, 1])]);
        assert!(parse_reply(&ok, 5, "hub.example", TYPE_A).is_some());
        assert_eq!(parse_reply(&ok, 6, "hub.example", TYPE_A), None, "other id");
        assert_eq!(
            parse_reply(&ok, 5, "hub.example2", TYPE_A),
            None,
            "other name"
        );
        assert_eq!(
            parse_reply(&ok, 5, "hub.example", TYPE_AAAA),
            None,
            "other type"
        );
        assert_eq!(
            parse_reply(&q, 5, "hub.example", TYPE_A),
            None,
            "a query, not a response"
        );
        for len in 0..ok.len() {
            // Cut anywhere (without TC): never a panic; an answer only when whole.
            let r = parse_reply(&ok[..len], 5, "hub.example", TYPE_A);
            assert!(r.is_none(), "cut at {len}: {r:?}");
        }
    }

    #[test]
    fn compression_loops_and_forward_pointers_are_refused() {
        let mut msg = encode_query(1, "a.b", TYPE_A).expect("query");
        // A pointer to itself at offset 12 (the question name).
        msg[12] = 0xC0;
        msg[13] = 12;
        assert_eq!(read_name(&msg, 12), None);
        // A forward pointer.
        msg[13] = 14;
        assert_eq!(read_name(&msg, 12), None);
        // Non-printable label bytes.
        let bad = [1u8, 0x00, 0];
        assert_eq!(read_name(&bad, 0), None);
        assert_eq!(read_name(&[0], 0), Some((String::new(), 1)));
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Whatever a peer sends, parsing returns, and an accepted reply only names addresses of
        /// the asked type.
        #[test]
        fn any_datagram_parses_without_panic(
            mut bytes in proptest::collection::vec(any::<u8>(), 0..300),
            keep_header in any::<bool>(),
        ) {
            if keep_header && bytes.len() > 12 {
                // Make the id, flags and question plausible so parsing goes deeper.
                let q = encode_query(0x1234, "a.b", TYPE_A).expect("query");
                let n = q.len().min(bytes.len());
                bytes[..n].copy_from_slice(&q[..n]);
                bytes[2] |= 0x80;
            }
            if let Some(Reply::Addresses { addrs, .. }) = parse_reply(&bytes, 0x1234, "a.b", TYPE_A) {
                prop_assert!(addrs.iter().all(|a| a.is_ipv4()));
            }
        }
    }
}
