//! # ferry-http
//!
//! ferry's HTTP/1.1 layer: parsing and framing for the reverse proxy, as a crate of its own so
//! that the proxy (the `ferry` driver), its fuzz targets (`fuzz/`) and the corpus tests use the
//! same code through one public API. Everything here is pure: byte slices in, parsed heads /
//! framing decisions / bytes to send out. The driver's event loop owns the sockets and buffers
//! and calls into this crate.
//!
//! The parsers are strict on purpose. ferry sits in front of application servers with their
//! own (often lenient) HTTP parsers, so any message ferry and the app could frame differently
//! is refused here rather than forwarded: that is what stops request smuggling. The rules
//! follow RFC 9110/9112; where a choice was needed, the reason sits next to the code.
//!
//! Layout:
//! - [`request`]: the client's request head ([`RequestParser`], [`parse_request_head`]).
//! - [`response`]: the app's response head ([`ResponseParser`], [`parse_response_head`]).
//! - [`chunked`]: the incremental chunked-body decoder, also usable in pass-through mode.
//! - [`body`]: [`BodyReader`], which says where a message body ends (length, chunked, close).
//! - [`forward`]: builders for the head ferry sends to the app and the one sent to the client.
//! - [`wsgi_frame`]: what ferry sends its own WSGI loader instead of the request head: the
//!   `environ` variables, worked out from the same fields.
//! - [`error_page`]: ferry's own small HTML error responses.
//! - `target`: the request target's form (origin, absolute, asterisk).
//! - `head_parse`, `framing_fields`: what both head parsers share: resuming where the last
//!   call stopped, and the framing fields' checks with the rules that differ passed in
//!   (strict for requests, tolerant of repeated equal Content-Lengths for responses).
//! - `fields`, `chars`, `message`: the field-line grammar (shared by request and response
//!   heads), byte classes and shared types.
//!
//! Test support, never in the binary: `corpus` (feature `corpus`: gunicorn's request corpus,
//! run when `FERRY_GUNICORN_CORPUS` names it) and `oracle` (feature `oracle`: httparse as a
//! differential oracle, which is also where the reason ferry does not tokenize with httparse
//! is written down, with its measurement).

pub mod body;
mod chars;
pub mod chunked;
pub mod error;
pub mod error_page;
mod fields;
pub mod forward;
mod framing_fields;
mod head_parse;
pub mod limits;
pub mod message;
pub mod request;
pub mod response;
mod target;
pub mod wsgi_frame;

pub use self::{
    body::{BodyProgress, BodyReader},
    chunked::{ChunkProgress, ChunkedDecoder},
    error::HttpError,
    error_page::{canonical_reason, error_response},
    fields::{Field, FieldKind},
    forward::{write_request_head, write_response_head, BodyRelay, ClientSide, Peer, ResponsePlan},
    limits::Limits,
    message::{Span, Version},
    request::{parse_request_head, BodyFraming, Method, RequestHead, RequestParser, TargetForm},
    response::{parse_response_head, ResponseFraming, ResponseHead, ResponseParser},
    wsgi_frame::write_wsgi_frame,
};

#[cfg(test)]
mod split_feeding;

#[cfg(test)]
mod request_tests;

#[cfg(test)]
mod request_field_tests;

#[cfg(test)]
mod request_target_tests;

#[cfg(test)]
mod chunked_tests;

#[cfg(test)]
mod response_tests;

#[cfg(test)]
mod forward_tests;

#[cfg(test)]
mod wsgi_frame_tests;

#[cfg(test)]
mod httparse_oracle_tests;

#[cfg(any(test, feature = "oracle"))]
pub mod oracle;

#[cfg(any(test, feature = "corpus"))]
pub mod corpus;

#[cfg(test)]
mod corpus_tests;

#[cfg(test)]
mod random_input_tests;
