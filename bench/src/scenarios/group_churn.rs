//! Consumer group churn: a group of N members on one topic; members leave one at a time
//! (closing, which sends LeaveGroup or the KIP-848 leave heartbeat) and each time the
//! rebalance is timed from the close until every partition is owned by exactly one of the
//! remaining members, each of which holds at least one.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer as _, ConsumerContext, Rebalance};

use super::{case, Ctx};
use crate::client;
use crate::report::Row;
use crate::stats::Percentiles;

/// The scenario's name.
pub(crate) const NAME: &str = "group-churn";

/// How long the group may take to form, and each rebalance to finish.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(90);

/// librdkafka 2.10.0, the first release where `group.protocol=consumer` (KIP-848) is GA.
const KIP_848_LIBRDKAFKA: i32 = 0x020a_0000;

/// A rebalance protocol and the consumer settings that select it.
struct Protocol {
    name: &'static str,
    settings: &'static [(&'static str, &'static str)],
}

const PROTOCOLS: &[Protocol] = &[
    Protocol {
        name: "classic eager (range)",
        settings: &[
            ("group.protocol", "classic"),
            ("partition.assignment.strategy", "range,roundrobin"),
        ],
    },
    Protocol {
        name: "classic cooperative-sticky",
        settings: &[
            ("group.protocol", "classic"),
            ("partition.assignment.strategy", "cooperative-sticky"),
        ],
    },
    Protocol {
        name: "consumer (KIP-848)",
        settings: &[("group.protocol", "consumer")],
    },
];

/// One case per rebalance protocol, each on a fresh broker.
pub(crate) fn run(ctx: &Ctx<'_>) -> Vec<Row> {
    let (version, version_text) = rdkafka::util::get_rdkafka_version();
    PROTOCOLS
        .iter()
        .map(|protocol| {
            let name = format!("{} members, {}", ctx.args.group_members, protocol.name);
            let kip_848 = protocol.settings.contains(&("group.protocol", "consumer"));
            if kip_848 && version < KIP_848_LIBRDKAFKA {
                return Row::new(NAME, name).skip(format!(
                    "skipped: librdkafka {version_text} predates group.protocol=consumer (2.10)"
                ));
            }
            eprintln!("  group-churn {}", protocol.name);
            case(NAME, &name, |row| run_case(ctx, protocol, row))
        })
        .collect()
}

/// Every member's current assignment, as its rebalance callbacks report it.
#[derive(Default)]
struct Group {
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Default)]
struct State {
    assignments: BTreeMap<usize, BTreeSet<i32>>,
    errors: Vec<String>,
}

impl Group {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn update(&self, member: usize, assigned: BTreeSet<i32>) {
        self.lock().assignments.insert(member, assigned);
        self.changed.notify_all();
    }

    fn error(&self, member: usize, error: String) {
        let mut state = self.lock();
        // A few are enough to explain a timeout; a broken broker would repeat them forever.
        if state.errors.len() < 10 {
            state.errors.push(format!("member {member}: {error}"));
        }
    }

    /// Waits until `members` own the `partitions` between them, each partition once and
    /// each member at least one; returns when that happened.
    fn wait_settled(&self, members: &BTreeSet<usize>, partitions: i32) -> anyhow::Result<Instant> {
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        let mut state = self.lock();
        loop {
            if settled(&state.assignments, members, partitions) {
                return Ok(Instant::now());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                bail!(
                    "not settled after {SETTLE_TIMEOUT:?}: assignments {:?}, errors {:?}",
                    state.assignments,
                    state.errors
                );
            }
            state = self
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .0;
        }
    }
}

/// True when `members` own `0..partitions` exactly once between them, each at least one.
fn settled(
    assignments: &BTreeMap<usize, BTreeSet<i32>>,
    members: &BTreeSet<usize>,
    partitions: i32,
) -> bool {
    let mut owners = vec![0u32; partitions.max(0) as usize];
    for m in members {
        let Some(owned) = assignments.get(m).filter(|a| !a.is_empty()) else {
            return false;
        };
        for &p in owned {
            match owners.get_mut(p as usize) {
                Some(o) => *o += 1,
                None => return false,
            }
        }
    }
    owners.iter().all(|&o| o == 1)
}

/// Reports the member's assignment after every rebalance callback.
struct MemberContext {
    id: usize,
    group: Arc<Group>,
    /// What the rebalance callbacks handed over and not taken back yet.
    owned: Mutex<BTreeSet<i32>>,
}

impl ClientContext for MemberContext {}

impl ConsumerContext for MemberContext {
    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        // Kept from the callbacks' own partitions: eager protocols revoke everything before
        // they assign everything, the others hand out and take back increments. Asking the
        // consumer for its assignment here deadlocks when the callback runs inside close.
        let mut owned = self.owned.lock().unwrap_or_else(|p| p.into_inner());
        match rebalance {
            Rebalance::Assign(tpl) => owned.extend(tpl.elements().iter().map(|e| e.partition())),
            Rebalance::Revoke(tpl) => {
                for e in tpl.elements() {
                    owned.remove(&e.partition());
                }
            }
            Rebalance::Error(_) => return,
        }
        self.group.update(self.id, owned.clone());
    }
}

/// A member polling on its own thread until told to leave.
struct Member {
    leave: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

fn spawn_member(
    id: usize,
    group: Arc<Group>,
    config: rdkafka::ClientConfig,
    topic: String,
) -> anyhow::Result<Member> {
    let consumer: BaseConsumer<MemberContext> = config
        .create_with_context(MemberContext {
            id,
            group: group.clone(),
            owned: Mutex::new(BTreeSet::new()),
        })
        .context("creating a group member")?;
    consumer.subscribe(&[&topic])?;
    let leave = Arc::new(AtomicBool::new(false));
    let thread = {
        let leave = leave.clone();
        std::thread::spawn(move || {
            while !leave.load(Ordering::Acquire) {
                if let Some(Err(e)) = consumer.poll(Duration::from_millis(20)) {
                    group.error(id, e.to_string());
                }
            }
            // Dropping closes the consumer: it leaves the group and waits until it has.
            drop(consumer);
        })
    };
    Ok(Member { leave, thread })
}

fn run_case(ctx: &Ctx<'_>, protocol: &Protocol, row: &mut Row) -> anyhow::Result<()> {
    let members = ctx.args.group_members;
    let partitions = ctx.args.group_partitions;
    if members < 2 || partitions < members as i32 {
        bail!("needs at least 2 members and as many partitions as members");
    }
    for (k, v) in protocol.settings {
        row.setting(k, v);
    }
    let classic = protocol.settings.contains(&("group.protocol", "classic"));
    // Smoke mode proves the path; Kafka's 3 s heartbeats and join delay only make it slow.
    let (broker_props, heartbeat): (&[(&str, &str)], &str) = if ctx.args.smoke {
        (&[("group.initial.rebalance.delay.ms", "0")], "300")
    } else {
        (&[], "3000")
    };
    row.setting("partitions", partitions);
    if classic {
        row.setting("heartbeat.interval.ms", heartbeat)
            .setting("session.timeout.ms", "45000")
            .note(format!(
                "the others learn of the rebalance at their next heartbeat (every {heartbeat} ms)"
            ));
    } else {
        row.note("members learn of a new assignment at their next heartbeat (every 5 s, set by the broker)");
    }
    for (k, v) in broker_props {
        row.setting(&format!("broker {k}"), v);
    }
    let broker = ctx.target.broker(broker_props)?;
    let bootstrap = broker.bootstrap();
    let slug: String = protocol
        .name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    // Names of their own per case, for an external broker that outlives the case.
    let topic = format!("bench-churn-{}-{slug}", std::process::id());
    let group_id = topic.clone();
    client::create_topics(&bootstrap, &[(topic.clone(), partitions)], &[], 1)?;

    let group = Arc::new(Group::default());
    let mut config = client::config(&bootstrap, protocol.settings);
    config
        .set("group.id", &group_id)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest");
    if classic {
        config.set("heartbeat.interval.ms", heartbeat);
    }
    let started = Instant::now();
    let mut live: BTreeMap<usize, Member> = BTreeMap::new();
    let result = (|| -> anyhow::Result<()> {
        for id in 0..members {
            live.insert(
                id,
                spawn_member(id, group.clone(), config.clone(), topic.clone())?,
            );
        }
        let ids: BTreeSet<usize> = live.keys().copied().collect();
        let joined = group.wait_settled(&ids, partitions)?;
        row.figure("join", (joined - started).as_secs_f64(), "s");

        let mut times = Vec::new();
        for _ in 0..ctx.args.churn_rounds.min(members - 1) {
            let Some((_, leaving)) = live.pop_first() else {
                break;
            };
            let remaining: BTreeSet<usize> = live.keys().copied().collect();
            let left_at = Instant::now();
            leaving.leave.store(true, Ordering::Release);
            let settled_at = group.wait_settled(&remaining, partitions)?;
            times.push(settled_at - left_at);
            leaving
                .thread
                .join()
                .map_err(|_| anyhow::anyhow!("a member thread panicked"))?;
        }
        let p = Percentiles::new(times);
        row.figure("rebalances", p.len() as f64, "count")
            .figure("rebalance median", p.median_ms(), "ms")
            .figure("rebalance max", p.max_ms(), "ms");
        Ok(())
    })();
    for member in live.values() {
        member.leave.store(true, Ordering::Release);
    }
    for (_, member) in live {
        let _ = member.thread.join();
    }
    if !ctx.target.is_managed() {
        client::delete_topics(&bootstrap, &[&topic])?;
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settled_means_each_partition_once_and_no_idle_member() {
        let set = |v: &[i32]| v.iter().copied().collect::<BTreeSet<i32>>();
        let members: BTreeSet<usize> = [1, 2].into();
        let mut a = BTreeMap::new();
        a.insert(0, set(&[0, 1]));
        a.insert(1, set(&[0, 1]));
        a.insert(2, set(&[2, 3]));
        assert!(settled(&a, &members, 4));
        a.insert(2, set(&[1, 2, 3]));
        assert!(!settled(&a, &members, 4), "partition 1 owned twice");
        a.insert(2, set(&[2]));
        assert!(!settled(&a, &members, 4), "partition 3 unowned");
        a.insert(2, set(&[]));
        a.insert(1, set(&[0, 1, 2, 3]));
        assert!(!settled(&a, &members, 4), "member 2 idle");
    }
}
