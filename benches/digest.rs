//! Digest throughput: ring's sha256/sha1 against the RustCrypto `sha2`/`sha1` crates, over the same
//! 256 MiB buffer fed in 1 MiB updates (the block size of the hashing thread), best of 3 rounds.
//! The library uses ring unless the crate measured faster here (see `src/verify.rs`).
//!
//! ```sh
//! cargo bench --bench digest
//! ```

use std::hint::black_box;
use std::time::{Duration, Instant};

const TOTAL: usize = 256 << 20;
const CHUNK: usize = 1 << 20;
const ROUNDS: usize = 3;

/// Deterministic, incompressible-looking bytes (xorshift64*), so no implementation gets a shortcut.
fn buffer() -> Vec<u8> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut out = Vec::with_capacity(TOTAL);
    while out.len() < TOTAL {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out
}

/// Best of [`ROUNDS`] runs of `hash` over `data`; returns the fastest time and the digest.
fn best(data: &[u8], hash: impl Fn(&[u8]) -> Vec<u8>) -> (Duration, Vec<u8>) {
    let mut fastest = Duration::MAX;
    let mut digest = Vec::new();
    for _ in 0..ROUNDS {
        let t = Instant::now();
        digest = black_box(hash(black_box(data)));
        fastest = fastest.min(t.elapsed());
    }
    (fastest, digest)
}

fn report(name: &str, data: &[u8], hash: impl Fn(&[u8]) -> Vec<u8>) -> Vec<u8> {
    let (t, digest) = best(data, hash);
    let mib = data.len() as f64 / (1 << 20) as f64;
    println!(
        "{name:<16} {:>8.1} MiB/s  ({:.3} s best of {ROUNDS})",
        mib / t.as_secs_f64(),
        t.as_secs_f64()
    );
    digest
}

fn ring_digest(algorithm: &'static ring::digest::Algorithm) -> impl Fn(&[u8]) -> Vec<u8> {
    move |data| {
        let mut ctx = ring::digest::Context::new(algorithm);
        for chunk in data.chunks(CHUNK) {
            ctx.update(chunk);
        }
        ctx.finish().as_ref().to_vec()
    }
}

fn rustcrypto<D: sha2::Digest>(data: &[u8]) -> Vec<u8> {
    let mut h = D::new();
    for chunk in data.chunks(CHUNK) {
        h.update(chunk);
    }
    h.finalize().to_vec()
}

fn main() {
    let data = buffer();
    println!("{} MiB in {} KiB updates", TOTAL >> 20, CHUNK >> 10);
    let a = report("sha256 ring", &data, ring_digest(&ring::digest::SHA256));
    let b = report("sha256 sha2", &data, rustcrypto::<sha2::Sha256>);
    assert_eq!(a, b, "sha256 implementations disagree");
    let a = report(
        "sha1 ring",
        &data,
        ring_digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY),
    );
    let b = report("sha1 sha1", &data, rustcrypto::<sha1::Sha1>);
    assert_eq!(a, b, "sha1 implementations disagree");
}
