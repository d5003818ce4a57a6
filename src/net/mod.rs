//! Talking to the network: the HTTP client ([`http`]), its name resolution ([`resolve`]) and TLS
//! set-up ([`tls`]), the trust check built on both ([`trust`]), the Hub's metadata API ([`hub`]),
//! when and how long to retry ([`retry`]) and the bandwidth cap ([`throttle`]).

pub(crate) mod http;
pub(crate) mod hub;
pub(crate) mod modelscope;
pub(crate) mod resolve;
pub(crate) mod retry;
pub(crate) mod throttle;
pub(crate) mod tls;
pub(crate) mod trust;
