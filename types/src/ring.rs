//! The consistent-hash ring from the course: 512 slots, 9 virtual servers per physical server
//! (log2 512). A key maps to slot `H(key)`; virtual server `j` of server `i` sits at slot
//! `Φ(i, j)`, moving to the next free slot on a collision; a key belongs to the first virtual
//! server clockwise from its slot.
//!
//! Tessera's choices, replacing the course's quadratic H and Φ (which cluster badly):
//! - `H(key) = splitmix64(key) mod 512`
//! - `Φ(i, j) = splitmix64(i · 2^20 + j + 0x9E37_79B9) mod 512`
//!
//! splitmix64 is a bijective 64-bit mixer with full avalanche, so consecutive ids scatter over
//! the whole ring. The spread is checked by `ring_spread_is_reasonable` in the tests and
//! measured on a running cluster by `tessera bench balance` (figures in docs/benchmarks.md).

/// Slots on the ring.
pub const SLOTS: usize = 512;
/// Virtual servers per physical server.
pub const VIRTUAL_PER_SERVER: u64 = 9;

/// splitmix64's finalizer.
pub fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// `H`: the slot of a key.
pub fn key_slot(key: u64) -> usize {
    (splitmix64(key) % SLOTS as u64) as usize
}

/// `Φ`: the preferred slot of virtual server `j` of server `i`.
pub fn virtual_slot(server: u64, j: u64) -> usize {
    (splitmix64((server << 20).wrapping_add(j).wrapping_add(0x9E37_79B9)) % SLOTS as u64) as usize
}

/// A ring of servers (nodes, or a shard's replicas).
#[derive(Debug, Clone)]
pub struct Ring {
    slots: Vec<Option<u64>>,
    servers: Vec<u64>,
}

impl Ring {
    /// Builds the ring; servers are placed in ascending id order so the ring depends only on
    /// the set of servers.
    pub fn new(servers: impl IntoIterator<Item = u64>) -> Ring {
        let mut ids: Vec<u64> = servers.into_iter().collect();
        ids.sort_unstable();
        ids.dedup();
        let mut slots = vec![None; SLOTS];
        for &s in &ids {
            for j in 0..VIRTUAL_PER_SERVER {
                let mut slot = virtual_slot(s, j);
                let mut probes = 0;
                while slots[slot].is_some() && probes < SLOTS {
                    slot = (slot + 1) % SLOTS;
                    probes += 1;
                }
                if probes < SLOTS {
                    slots[slot] = Some(s);
                }
            }
        }
        Ring { slots, servers: ids }
    }

    pub fn is_empty(&self) -> bool {
        self.servers.is_empty()
    }

    /// The server a key belongs to.
    pub fn server_for(&self, key: u64) -> Option<u64> {
        self.successors(key, 1).into_iter().next()
    }

    /// Up to `n` distinct servers clockwise from the key's slot: the first is the key's
    /// server, the rest are where further replicas go.
    pub fn successors(&self, key: u64, n: usize) -> Vec<u64> {
        let mut out = Vec::with_capacity(n);
        let start = key_slot(key);
        for step in 0..SLOTS {
            if out.len() >= n.min(self.servers.len()) {
                break;
            }
            if let Some(s) = self.slots[(start + step) % SLOTS] {
                if !out.contains(&s) {
                    out.push(s);
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fraction of keys per server for `n` servers over 100,000 keys.
    fn spread(n: u64) -> Vec<f64> {
        let ring = Ring::new(1..=n);
        let mut counts = vec![0u64; n as usize];
        for k in 0..100_000u64 {
            let s = ring.server_for(k).unwrap();
            counts[(s - 1) as usize] += 1;
        }
        counts.iter().map(|c| *c as f64 / 100_000.0).collect()
    }

    #[test]
    fn ring_spread_is_reasonable() {
        for n in 3..=6u64 {
            let shares = spread(n);
            let ideal = 1.0 / n as f64;
            for s in &shares {
                // With 9 virtual servers each, no server should get under a third or over
                // triple its fair share.
                assert!(*s > ideal / 3.0 && *s < ideal * 3.0, "n={n} shares={shares:?}");
            }
        }
    }

    #[test]
    fn successors_are_distinct() {
        let ring = Ring::new([4, 8, 15, 16, 23]);
        for k in 0..1000 {
            let s = ring.successors(k, 3);
            assert_eq!(s.len(), 3);
            assert!(s[0] != s[1] && s[1] != s[2] && s[0] != s[2]);
        }
        assert_eq!(Ring::new([1, 2]).successors(7, 3).len(), 2);
    }

    #[test]
    fn adding_a_server_moves_only_its_share() {
        let before = Ring::new(1..=5);
        let after = Ring::new(1..=6);
        let moved = (0..10_000u64)
            .filter(|k| before.server_for(*k) != after.server_for(*k))
            .count();
        // Ideal is 1/6 of the keys; allow generous slack for 9 virtual servers.
        assert!(moved < 10_000 / 6 * 2, "moved {moved}");
        for k in 0..10_000u64 {
            let (b, a) = (before.server_for(k).unwrap(), after.server_for(k).unwrap());
            assert!(a == b || a == 6, "key {k} moved between old servers");
        }
    }
}
