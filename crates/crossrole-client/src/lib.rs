//! The crossrole client SDK: a typed, ergonomic async client for the crossroled gRPC API.
