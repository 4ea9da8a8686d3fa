//! `max.connections.per.ip`: how many connections each client address holds, and the
//! guard that gives a connection's slot back when it ends.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Open connections per client address.
pub(crate) struct PerIpLimits {
    default: usize,
    overrides: HashMap<IpAddr, usize>,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// A connection's slot; dropping it frees the slot.
pub(crate) struct IpSlot {
    limits: Arc<PerIpLimits>,
    ip: IpAddr,
}

impl PerIpLimits {
    /// Limits from `max.connections.per.ip` and its overrides.
    pub(crate) fn new(
        default: usize,
        overrides: impl IntoIterator<Item = (IpAddr, usize)>,
    ) -> Self {
        PerIpLimits {
            default,
            overrides: overrides.into_iter().collect(),
            open: Mutex::new(HashMap::new()),
        }
    }

    /// A slot for a new connection from `ip`, or `None` when the address is at its limit.
    pub(crate) fn acquire(self: &Arc<Self>, ip: IpAddr) -> Option<IpSlot> {
        let limit = self.overrides.get(&ip).copied().unwrap_or(self.default);
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(ip).or_insert(0);
        if *n >= limit {
            return None;
        }
        *n += 1;
        Some(IpSlot {
            limits: self.clone(),
            ip,
        })
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut open = self.limits.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_counted_per_address_and_given_back() {
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let limits = Arc::new(PerIpLimits::new(2, [(b, 0)]));
        let s1 = limits.acquire(a).unwrap();
        let _s2 = limits.acquire(a).unwrap();
        assert!(limits.acquire(a).is_none());
        assert!(limits.acquire(b).is_none());
        drop(s1);
        assert!(limits.acquire(a).is_some());
    }
}
