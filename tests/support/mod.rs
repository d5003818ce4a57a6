//! Shared test support. Each integration test uses a different subset of it.
#![allow(dead_code)]

pub mod mock_hub;
