//! Addresses and prefixes: IPv4-mapped IPv6 is folded to IPv4 everywhere, prefixes with
//! host bits set are masked (as upstream does).

#![cfg_attr(not(test), deny(clippy::indexing_slicing))] // on the decision path: nothing here may panic

use std::net::IpAddr;

use ipnet::IpNet;

/// Folds an IPv4-mapped IPv6 address (`::ffff:10.1.0.5`) to the IPv4 address.
///
/// ```
/// use std::net::IpAddr;
/// let ip: IpAddr = "::ffff:10.1.0.5".parse().unwrap();
/// assert_eq!(palisade::net::canonical_ip(ip), "10.1.0.5".parse::<IpAddr>().unwrap());
/// ```
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => ip,
        },
        v4 => v4,
    }
}

/// Parses an address, folding IPv4-mapped IPv6 to IPv4.
pub fn parse_ip(text: &str) -> Option<IpAddr> {
    text.parse::<IpAddr>().ok().map(canonical_ip)
}

/// Parses a CIDR (or a bare address, taken as a host prefix), masks host bits and folds an
/// IPv4-mapped IPv6 prefix of length 96 or more to IPv4.
///
/// ```
/// let n = palisade::net::parse_cidr("10.1.2.3/16").unwrap();
/// assert_eq!(n.to_string(), "10.1.0.0/16");
/// assert_eq!(palisade::net::parse_cidr("::ffff:10.0.0.0/104").unwrap().to_string(), "10.0.0.0/8");
/// ```
///
/// Leading zeros are refused in the address and in the prefix length, as Calico refuses
/// them (`010.1.0.0/16` could mean octal to one reader and decimal to another):
///
/// ```
/// assert!(palisade::net::parse_cidr("010.1.0.0/16").is_err());
/// assert!(palisade::net::parse_cidr("10.1.0.0/016").is_err());
/// ```
pub fn parse_cidr(text: &str) -> Result<IpNet, String> {
    let bad = || format!("{text:?} is not a CIDR or an IP address (no leading zeros)");
    let (addr, len) = match text.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (text, None),
    };
    // The standard library's parser refuses IPv4 leading zeros.
    let ip: IpAddr = addr.parse().map_err(|_| bad())?;
    let net = match len {
        None => IpNet::from(ip),
        Some(l) => {
            let ok = !l.is_empty()
                && l.len() <= 3
                && l.bytes().all(|b| b.is_ascii_digit())
                && !(l.len() > 1 && l.starts_with('0'));
            let n: u8 = l.parse().ok().filter(|_| ok).ok_or_else(bad)?;
            IpNet::new(ip, n).map_err(|_| format!("{text:?}: prefix length {n} is too long"))?
        }
    };
    let net = net.trunc();
    if let IpNet::V6(v6) = net
        && v6.prefix_len() >= 96
        && let Some(v4) = v6.addr().to_ipv4_mapped()
    {
        return ipnet::Ipv4Net::new(v4, v6.prefix_len() - 96).map(IpNet::V4).map_err(|e| format!("{text:?}: {e}"));
    }
    Ok(net)
}

/// The IP version of an address: 4 or 6.
pub fn ip_version(ip: &IpAddr) -> u8 {
    if ip.is_ipv4() { 4 } else { 6 }
}

/// The IP version of a prefix: 4 or 6.
pub fn net_version(net: &IpNet) -> u8 {
    match net {
        IpNet::V4(_) => 4,
        IpNet::V6(_) => 6,
    }
}
