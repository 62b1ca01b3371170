//! HTTP/1.1 parsing and framing for the proxy.
