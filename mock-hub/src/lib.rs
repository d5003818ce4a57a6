//! An in-process mock of the Hugging Face Hub download protocol, for tests and benchmarks; it
//! speaks ModelScope's download API too, over the same repos and commits (a ModelScope client's
//! default revision is `master`: commit to that branch, or point it with [`MockHub::set_ref`]).
//!
//! It follows `hf-protocol.md` (§1-3, 5, 10, 11): a client that works against this mock must also
//! work against the real Hub, so nothing here is easier than the real thing. The Hub answers on
//! `http://127.0.0.1:PORT`; its signed-URL "CDN" is the same listener reached as
//! `http://localhost:PORT`. Requests are routed by `Host`, so a client that does not follow the
//! cross-host redirect, or that leaks its token across it, is caught.
//!
//! A test starts one with [`MockHub::start`], commits files to it ([`MockFile`]), queues faults
//! ([`Target`], [`Fault`]) and reads what was served; the `mock-hub` binary serves a folder the
//! same way for manual runs, the README's demo and the benchmark, steered over `/admin/...`.
//!
//! Modules, from the top (each uses only modules listed after it: no cycles):
//! * `hub`: [`MockHub`], the handle a test holds; `server`: connections, reading requests,
//!   dispatching them, writing answers (rate limits, byte counters);
//! * `admin`: `/admin/...`, steering the binary from a shell;
//! * `modelscope` (ModelScope's `/api/v1/models/{repo}/repo/files` listing in four body shapes
//!   ([`ListingShape`]) and `/repo?FilePath=` file route, direct or redirected to the CDN);
//! * `download` (`/resolve`, resolve-cache, the CDN, ranges), `api` (repo info, `/tree`), `faults`
//!   (a queued fault replaces or alters the answer), `routes` (host and URL to an endpoint);
//! * `state`: repos, commits, knobs and counters behind one lock;
//! * `git` (digests, object ids), `http` (request parsing, the response value, error bodies),
//!   `encode` (JSON, hex, percent-encoding, dates), `model` (the public data: files, targets,
//!   faults, log entries), `scratch` ([`TempDir`] and [`tree`], the folders tests serve from and
//!   pull into).
//!
//! Choices where the real Hub's behaviour is unknown (tagged [I] in the reference):
//! * zero-length files: every `Range` is unsatisfiable (`416`, `Content-Range: bytes */0`), as
//!   RFC 9110 prescribes;
//! * an empty file committed as LFS is stored as a regular git blob (the Hub does that);
//! * the `ETag` of an LFS redirect is the git blob id of the pointer file; `X-Linked-Etag` is the
//!   sha256, so a client that takes the wrong header fails verification;
//! * the CDN serves requests that carry `Authorization` (the real one evidently does) but logs
//!   the header, so tests can assert it is absent;
//! * tree cursors are plain offsets; clients must treat them as opaque anyway;
//! * ModelScope: unknown tokens are ignored (not rejected); a private repo answers `401` on both
//!   routes without its token (bearer or `m_session_id` cookie), a gated one only on the file
//!   route; a renamed repo's old id is not found; unknown repo, revision or file is a `404` with
//!   a `{"Code":404,"Success":false,…}` envelope.
//!
//! Not implemented: gzip responses, Xet, `paths-info`, `/refs`, `/raw`, datasets and spaces;
//! on ModelScope, everything but the listing and the file route (model info, search, `Root=`
//! sub-folder listings, datasets).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod admin;
mod api;
mod download;
mod encode;
mod faults;
mod git;
mod http;
mod hub;
mod model;
mod modelscope;
mod routes;
mod scratch;
mod server;
mod state;

pub use encode::civil_from_days;
pub use git::sha256_hex;
pub use hub::MockHub;
pub use model::{
    AdminCommitHook, Content, Fault, ListingShape, MockFile, PseudoRandom, RequestLog, Target,
    content, pseudo_random_bytes, total_size,
};
pub use scratch::{TempDir, tree};
