//! `--forwarded-allow-ips` (gunicorn's name and default): the peers whose forwarding fields
//! (`X-Forwarded-For`, `-Proto`, `-Host`, `Forwarded`) ferry believes. A request from any
//! other peer has them dropped and replaced by what ferry itself saw.

use ipnet::IpNet;
use std::net::IpAddr;

/// The default: a proxy on the same host (nginx, HAProxy, a TLS terminator).
pub const DEFAULT: &str = "127.0.0.1,::1";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrustedProxies {
    /// `*`: every peer (only behind a network that lets nothing else reach ferry).
    All,
    Networks(Vec<IpNet>),
}

impl TrustedProxies {
    pub fn trusts(&self, peer: IpAddr) -> bool {
        // A dual-stack socket reports an IPv4 peer as ::ffff:a.b.c.d.
        let peer = peer.to_canonical();
        match self {
            TrustedProxies::All => true,
            TrustedProxies::Networks(networks) => networks.iter().any(|n| n.contains(&peer)),
        }
    }
}

/// Parses a comma-separated list of addresses (`10.0.0.5`, `::1`), CIDR networks
/// (`10.0.0.0/8`, `fd00::/8`) or `*`. An empty list trusts no peer.
pub fn parse(text: &str) -> Result<TrustedProxies, String> {
    let mut networks = Vec::new();
    for item in text
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
    {
        if item == "*" {
            return Ok(TrustedProxies::All);
        }
        let network = if item.contains('/') {
            item.parse::<IpNet>().ok().map(|n| n.trunc())
        } else {
            item.parse::<IpAddr>().ok().map(IpNet::from)
        };
        match network {
            Some(network) => networks.push(network),
            None => {
                return Err(format!(
                    "'{item}' is not an IP address or a CIDR network; give a comma-separated \
                     list such as 127.0.0.1,::1,10.0.0.0/8, or * to trust every peer"
                ))
            }
        }
    }
    Ok(TrustedProxies::Networks(networks))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn the_default_trusts_loopback_only() {
        let trusted = parse(DEFAULT).unwrap();
        assert!(trusted.trusts(ip("127.0.0.1")));
        assert!(trusted.trusts(ip("::1")));
        assert!(
            trusted.trusts(ip("::ffff:127.0.0.1")),
            "IPv4 seen on a dual-stack socket"
        );
        assert!(!trusted.trusts(ip("127.0.0.2")));
        assert!(!trusted.trusts(ip("10.0.0.1")));
    }

    #[test]
    fn networks_addresses_and_everyone() {
        let trusted = parse(" 10.0.0.0/8, fd00::/8,192.0.2.7 ").unwrap();
        assert!(trusted.trusts(ip("10.200.3.4")));
        assert!(trusted.trusts(ip("fd12::1")));
        assert!(trusted.trusts(ip("192.0.2.7")));
        assert!(!trusted.trusts(ip("192.0.2.8")));
        assert!(!trusted.trusts(ip("127.0.0.1")));
        // Host bits in a network are ignored, as the network is meant.
        assert!(parse("10.1.2.3/8").unwrap().trusts(ip("10.9.9.9")));
        assert!(parse("*").unwrap().trusts(ip("203.0.113.1")));
        assert!(
            !parse("").unwrap().trusts(ip("127.0.0.1")),
            "empty trusts nobody"
        );
    }

    #[test]
    fn bad_entries_are_named() {
        for bad in ["localhost", "10.0.0.0/33", "1.2.3", "10.0.0.1,nope"] {
            let error = parse(bad).unwrap_err();
            assert!(
                error.contains("is not an IP address or a CIDR network"),
                "{bad}: {error}"
            );
        }
        assert!(parse("10.0.0.1,nope").unwrap_err().starts_with("'nope'"));
    }
}
