//! Addresses and prefixes: IPv4-mapped IPv6 is folded to IPv4 everywhere, prefixes with
//! host bits set are masked (as upstream does).

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
pub fn parse_cidr(text: &str) -> Result<IpNet, String> {
    let net = match text.parse::<IpNet>() {
        Ok(n) => n,
        Err(_) => match text.parse::<IpAddr>() {
            Ok(ip) => IpNet::from(ip),
            Err(_) => return Err(format!("{text:?} is not a CIDR or an IP address")),
        },
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
