//! Address and port ranges: sorted, merged, searched without allocation.

use std::net::IpAddr;

use ipnet::IpNet;

/// An address as a number in its family's space.
#[inline]
pub(crate) fn ip_key(ip: IpAddr) -> (bool, u128) {
    match ip {
        IpAddr::V4(v4) => (true, u32::from(v4) as u128),
        IpAddr::V6(v6) => (false, u128::from(v6)),
    }
}

fn net_bounds(n: &IpNet) -> (bool, u128, u128) {
    match n {
        IpNet::V4(v4) => (true, u32::from(v4.network()) as u128, u32::from(v4.broadcast()) as u128),
        IpNet::V6(v6) => (false, u128::from(v6.network()), u128::from(v6.broadcast())),
    }
}

/// A union of CIDRs as disjoint, sorted, inclusive ranges per family.
#[derive(Debug, Clone, Default)]
pub(crate) struct NetRanges {
    v4: Box<[(u128, u128)]>,
    v6: Box<[(u128, u128)]>,
}

fn merge(mut r: Vec<(u128, u128)>) -> Box<[(u128, u128)]> {
    r.sort_unstable();
    let mut out: Vec<(u128, u128)> = Vec::with_capacity(r.len());
    for (lo, hi) in r {
        match out.last_mut() {
            Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
            _ => out.push((lo, hi)),
        }
    }
    out.into_boxed_slice()
}

impl NetRanges {
    pub fn new(nets: &[IpNet]) -> NetRanges {
        let (mut v4, mut v6) = (Vec::new(), Vec::new());
        for n in nets {
            let (is4, lo, hi) = net_bounds(n);
            if is4 { v4.push((lo, hi)) } else { v6.push((lo, hi)) }
        }
        NetRanges { v4: merge(v4), v6: merge(v6) }
    }

    #[inline]
    pub fn contains(&self, key: (bool, u128)) -> bool {
        let r = if key.0 { &self.v4 } else { &self.v6 };
        let i = r.partition_point(|&(lo, _)| lo <= key.1);
        i > 0 && r.get(i - 1).is_some_and(|&(_, hi)| key.1 <= hi)
    }
}

/// Maps every address to the (interned) list of network-set identities whose CIDRs
/// contain it: the IP space is cut into segments at every CIDR boundary, and each segment
/// carries the exact set of covering identities. Lookup is one binary search.
#[derive(Debug, Clone, Default)]
pub(crate) struct IntervalMap {
    v4: Segments,
    v6: Segments,
}

#[derive(Debug, Clone, Default)]
struct Segments {
    starts: Box<[u128]>,
    /// Index into the interned lists for the segment starting at `starts[i]`.
    lists: Box<[u32]>,
}

impl Segments {
    fn build(items: Vec<(u128, u128, u32)>, interned: &mut Vec<Box<[u32]>>) -> Segments {
        if items.is_empty() {
            return Segments::default();
        }
        // Sweep: an identity enters at a range's start and leaves one past its end.
        let mut events: Vec<(u128, bool, u32)> = Vec::with_capacity(items.len() * 2);
        for &(lo, hi, id) in &items {
            events.push((lo, true, id));
            if let Some(next) = hi.checked_add(1) {
                events.push((next, false, id));
            }
        }
        events.sort_unstable();
        let mut active: std::collections::BTreeMap<u32, u32> = std::collections::BTreeMap::new();
        let mut starts = Vec::new();
        let mut lists = Vec::new();
        let mut index: rustc_hash::FxHashMap<Box<[u32]>, u32> = rustc_hash::FxHashMap::default();
        let mut i = 0;
        while let Some(&(at, _, _)) = events.get(i) {
            while let Some(&(pos, enter, id)) = events.get(i) {
                if pos != at {
                    break;
                }
                if enter {
                    *active.entry(id).or_insert(0) += 1;
                } else if let Some(c) = active.get_mut(&id) {
                    *c -= 1;
                    if *c == 0 {
                        active.remove(&id);
                    }
                }
                i += 1;
            }
            let ids: Box<[u32]> = active.keys().copied().collect();
            let id = match index.get(&ids) {
                Some(&i) => i,
                None => {
                    let i = interned.len() as u32;
                    interned.push(ids.clone());
                    index.insert(ids, i);
                    i
                }
            };
            starts.push(at);
            lists.push(id);
        }
        Segments { starts: starts.into_boxed_slice(), lists: lists.into_boxed_slice() }
    }

    #[inline]
    fn find(&self, x: u128) -> Option<u32> {
        let i = self.starts.partition_point(|&s| s <= x);
        if i == 0 { None } else { self.lists.get(i - 1).copied() }
    }
}

impl IntervalMap {
    /// `sets`: for each network-set identity, its CIDRs. Interned lists are appended to
    /// `interned` (whose entry 0 must be the empty list).
    pub fn build(sets: &[(u32, &[IpNet])], interned: &mut Vec<Box<[u32]>>) -> IntervalMap {
        let (mut v4, mut v6) = (Vec::new(), Vec::new());
        for &(id, nets) in sets {
            for n in nets {
                let (is4, lo, hi) = net_bounds(n);
                if is4 { v4.push((lo, hi, id)) } else { v6.push((lo, hi, id)) }
            }
        }
        IntervalMap { v4: Segments::build(v4, interned), v6: Segments::build(v6, interned) }
    }

    /// The interned list index for an address (0, the empty list, when none covers it).
    #[inline]
    pub fn lookup(&self, key: (bool, u128)) -> u32 {
        let s = if key.0 { &self.v4 } else { &self.v6 };
        s.find(key.1).unwrap_or(0)
    }

    pub fn heap_bytes(&self) -> usize {
        (self.v4.starts.len() + self.v6.starts.len()) * 20
    }
}

/// Port criteria: merged numeric ranges and named-port ids.
#[derive(Debug, Clone, Default)]
pub(crate) struct PortSet {
    pub ranges: Box<[(u16, u16)]>,
    pub named: Box<[u32]>,
}

impl PortSet {
    pub fn new(ranges: Vec<(u16, u16)>, named: Vec<u32>) -> PortSet {
        let mut r = ranges;
        r.sort_unstable();
        let mut out: Vec<(u16, u16)> = Vec::new();
        for (lo, hi) in r {
            match out.last_mut() {
                Some(last) if lo as u32 <= last.1 as u32 + 1 => last.1 = last.1.max(hi),
                _ => out.push((lo, hi)),
            }
        }
        PortSet { ranges: out.into_boxed_slice(), named: named.into_boxed_slice() }
    }

    #[inline]
    pub fn numeric_contains(&self, p: u16) -> bool {
        if self.ranges.len() <= 4 {
            return self.ranges.iter().any(|&(lo, hi)| lo <= p && p <= hi);
        }
        let i = self.ranges.partition_point(|&(lo, _)| lo <= p);
        i > 0 && self.ranges.get(i - 1).is_some_and(|&(_, hi)| p <= hi)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(s: &[&str]) -> Vec<IpNet> {
        s.iter().map(|x| x.parse().unwrap()).collect()
    }

    fn key(s: &str) -> (bool, u128) {
        ip_key(s.parse().unwrap())
    }

    #[test]
    fn net_ranges_merge_and_search() {
        let r = NetRanges::new(&nets(&["10.0.0.0/24", "10.0.1.0/24", "192.168.0.0/16", "fd00::/8"]));
        assert!(r.contains(key("10.0.1.255")));
        assert!(!r.contains(key("10.0.2.0")));
        assert!(r.contains(key("192.168.255.1")));
        assert!(r.contains(key("fd12::1")));
        assert!(!r.contains(key("fe00::1")));
        assert!(!r.contains(key("9.255.255.255")));
    }

    #[test]
    fn interval_map_returns_every_covering_set() {
        let a = nets(&["10.0.0.0/8"]);
        let b = nets(&["10.1.0.0/16", "0.0.0.0/0"]);
        let c = nets(&["10.1.2.0/24"]);
        let mut interned = vec![Box::<[u32]>::default()];
        let m = IntervalMap::build(&[(5, &a), (6, &b), (7, &c)], &mut interned);
        let got = |ip: &str| interned[m.lookup(key(ip)) as usize].to_vec();
        assert_eq!(got("10.1.2.3"), [5, 6, 7]);
        assert_eq!(got("10.1.3.3"), [5, 6]);
        assert_eq!(got("10.2.0.0"), [5, 6]);
        assert_eq!(got("11.0.0.0"), [6]);
        assert_eq!(got("255.255.255.255"), [6]);
        assert_eq!(got("::1"), Vec::<u32>::new());
    }

    #[test]
    fn ports() {
        let p = PortSet::new(vec![(80, 80), (81, 90), (8000, 8100), (1, 1), (5, 5), (7, 7)], vec![]);
        assert_eq!(p.ranges.len(), 5);
        for (port, want) in [(80, true), (90, true), (91, false), (8050, true), (0, false), (65535, false)] {
            assert_eq!(p.numeric_contains(port), want, "{port}");
        }
    }
}
