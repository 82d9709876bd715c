//! A linearizability checker for a single register, after Wing & Gong and Lowe ("WGL"), as
//! Porcupine and Knossos implement it.
//!
//! A [`History`] holds operations on one register (read, write, compare-and-set), each with the
//! moment it was invoked and the moment its answer arrived. An operation whose outcome is
//! unknown (it failed, timed out, or its connection broke) has no answer: it is concurrent with
//! everything after its invocation, and it may have taken effect once or not at all.
//!
//! [`check`] searches for a total order of the operations that respects real time (an operation
//! that answered before another was invoked comes first) and the register's semantics. The
//! search walks the history's call and return events in time order, tentatively linearizing an
//! operation at its call and backtracking when a return is reached before its operation was
//! linearized; it memoizes (register value, set of linearized operations) so that each
//! configuration is explored once. Operations with an unknown outcome have no return event, so
//! the search never has to linearize them: leaving one out is the "never applied" case.
//!
//! Keep histories to a few hundred operations: the search is exponential in the worst case.

use std::collections::HashSet;
use std::fmt;
use std::time::Instant;

/// The register's value. `None` is "no value" (what a read reports when the row is missing).
pub type Value = Option<i64>;

/// What an operation asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    Read,
    Write(i64),
    /// Set the value to `new` if it is `expected`.
    CompareAndSet {
        expected: i64,
        new: i64,
    },
}

/// What an operation's answer said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// A read saw this value.
    Saw(Value),
    /// A write was acknowledged.
    Written,
    /// A compare-and-set reported whether it swapped.
    Swapped(bool),
    /// No answer, or an error: the operation may or may not have taken effect.
    Unknown,
}

/// One operation of a history.
#[derive(Debug, Clone)]
pub struct Operation {
    /// Which client issued it (for messages).
    pub client: usize,
    pub call: Call,
    pub invoked: Instant,
    /// When its answer arrived; `None` when the outcome is unknown (+infinity).
    pub completed: Option<Instant>,
    pub answer: Answer,
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let call = match self.call {
            Call::Read => "read".to_string(),
            Call::Write(v) => format!("write({v})"),
            Call::CompareAndSet { expected, new } => format!("cas({expected} -> {new})"),
        };
        let answer = match self.answer {
            Answer::Saw(v) => format!("{v:?}"),
            Answer::Written => "ok".into(),
            Answer::Swapped(s) => s.to_string(),
            Answer::Unknown => "unknown".into(),
        };
        write!(f, "client {}: {call} = {answer}", self.client)
    }
}

/// The operations of a run, in any order, with the register's initial value.
#[derive(Debug, Clone)]
pub struct History {
    pub initial: Value,
    pub operations: Vec<Operation>,
}

/// Why a history is not linearizable.
#[derive(Debug, Clone)]
pub struct Violation {
    /// The most operations any candidate order managed to linearize.
    pub longest_prefix: usize,
    /// The operation that had answered but could not be linearized at that point, shown with
    /// the operations concurrent with it and the register's value there.
    pub explanation: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "not linearizable: the longest linearizable prefix has {} operations; {}",
            self.longest_prefix, self.explanation
        )
    }
}

impl History {
    pub fn new(initial: Value) -> Self {
        History {
            initial,
            operations: Vec::new(),
        }
    }

    pub fn push(&mut self, op: Operation) {
        self.operations.push(op);
    }
}

/// The register's transition for operation `op` from `state`: the new value if `op` may take
/// effect there with the answer it reported, `None` if not.
fn step(state: Value, call: Call, answer: Answer) -> Option<Value> {
    match (call, answer) {
        (Call::Read, Answer::Saw(seen)) => (seen == state).then_some(state),
        // An unanswered read has no effect and constrains nothing.
        (Call::Read, _) => Some(state),
        (Call::Write(v), Answer::Written | Answer::Unknown) => Some(Some(v)),
        (Call::CompareAndSet { expected, new }, Answer::Swapped(true) | Answer::Unknown) => {
            // An unknown compare-and-set that did not swap changed nothing, which is the same as
            // leaving it out: only the swap needs to be tried.
            (state == Some(expected)).then_some(Some(new))
        }
        (Call::CompareAndSet { expected, .. }, Answer::Swapped(false)) => (state != Some(expected)).then_some(state),
        (Call::Write(_), _) | (Call::CompareAndSet { .. }, _) => None,
    }
}

/// One event of the history: an operation's call or return, linked in time order.
#[derive(Debug, Clone, Copy)]
struct Event {
    op: usize,
    is_call: bool,
    prev: Option<usize>,
    next: Option<usize>,
    /// For a call, the index of its return event (if the operation answered).
    matching_return: Option<usize>,
}

/// A doubly linked list of events over a vector, with a sentinel head at index 0, so that an
/// operation's call and return can be lifted out and put back in O(1).
struct Events {
    events: Vec<Event>,
}

impl Events {
    fn head(&self) -> Option<usize> {
        self.events[0].next
    }

    fn unlink(&mut self, i: usize) {
        let Event { prev, next, .. } = self.events[i];
        if let Some(p) = prev {
            self.events[p].next = next;
        }
        if let Some(n) = next {
            self.events[n].prev = prev;
        }
    }

    fn relink(&mut self, i: usize) {
        let Event { prev, next, .. } = self.events[i];
        if let Some(p) = prev {
            self.events[p].next = Some(i);
        }
        if let Some(n) = next {
            self.events[n].prev = Some(i);
        }
    }

    /// Removes an operation's call (and its return) from the list.
    fn lift(&mut self, call: usize) {
        self.unlink(call);
        if let Some(ret) = self.events[call].matching_return {
            self.unlink(ret);
        }
    }

    /// Undoes [`lift`](Self::lift) (in the reverse order).
    fn unlift(&mut self, call: usize) {
        if let Some(ret) = self.events[call].matching_return {
            self.relink(ret);
        }
        self.relink(call);
    }
}

/// A set of operation indexes as a bitset (hashable for the memo).
#[derive(Clone, PartialEq, Eq, Hash)]
struct OpSet(Vec<u64>);

impl OpSet {
    fn new(n: usize) -> Self {
        OpSet(vec![0; n.div_ceil(64)])
    }
    fn insert(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }
    fn remove(&mut self, i: usize) {
        self.0[i / 64] &= !(1 << (i % 64));
    }
}

/// Checks that `history` is linearizable; the error explains where every order fails.
pub fn check(history: &History) -> Result<(), Violation> {
    let ops = &history.operations;
    // Events in time order; at the same instant calls come first, which treats the operations
    // as concurrent (the permissive reading).
    let mut order: Vec<(Instant, bool, usize)> = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        order.push((op.invoked, true, i));
        if let Some(done) = op.completed {
            assert!(
                done >= op.invoked,
                "operation {i} ({op}) completed before it was invoked"
            );
            order.push((done, false, i));
        }
    }
    order.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));

    let sentinel = Event {
        op: usize::MAX,
        is_call: false,
        prev: None,
        next: None,
        matching_return: None,
    };
    let mut events = vec![sentinel];
    let mut call_event = vec![0usize; ops.len()];
    for (n, &(_, is_call, op)) in order.iter().enumerate() {
        let index = n + 1;
        events.push(Event {
            op,
            is_call,
            prev: Some(index - 1),
            next: (n + 1 < order.len()).then_some(index + 1),
            matching_return: None,
        });
        if is_call {
            call_event[op] = index;
        } else {
            events[call_event[op]].matching_return = Some(index);
        }
    }
    events[0].next = (!order.is_empty()).then_some(1);
    let mut list = Events { events };

    let mut answered_left = ops.iter().filter(|op| op.completed.is_some()).count();
    let mut state = history.initial;
    let mut linearized = OpSet::new(ops.len());
    let mut seen: HashSet<(OpSet, Value)> = HashSet::new();
    // The calls linearized so far, with the state before each.
    let mut stack: Vec<(usize, Value)> = Vec::new();
    let mut deepest: (usize, Option<(usize, Value)>) = (0, None);

    let mut cursor = list.head();
    while answered_left > 0 {
        let Some(e) = cursor else {
            // Past the last return: every answered operation is linearized.
            break;
        };
        let event = list.events[e];
        if event.is_call {
            let op = &ops[event.op];
            let next_state = step(state, op.call, op.answer);
            let fresh = next_state.is_some_and(|next| {
                let mut with = linearized.clone();
                with.insert(event.op);
                seen.insert((with, next))
            });
            match next_state {
                Some(next) if fresh => {
                    stack.push((e, state));
                    linearized.insert(event.op);
                    state = next;
                    list.lift(e);
                    if op.completed.is_some() {
                        answered_left -= 1;
                    }
                    cursor = list.head();
                }
                _ => cursor = event.next,
            }
        } else {
            // An operation answered before it could be linearized: undo the last choice.
            if stack.len() >= deepest.0 {
                deepest = (stack.len(), Some((event.op, state)));
            }
            let Some((call, before)) = stack.pop() else {
                return Err(violation(history, deepest));
            };
            let op = list.events[call].op;
            linearized.remove(op);
            state = before;
            list.unlift(call);
            if ops[op].completed.is_some() {
                answered_left += 1;
            }
            cursor = list.events[call].next;
        }
    }
    Ok(())
}

fn violation(history: &History, deepest: (usize, Option<(usize, Value)>)) -> Violation {
    let (longest_prefix, stuck) = deepest;
    let explanation = match stuck {
        None => "no operation could be linearized".to_string(),
        Some((op, state)) => {
            let stuck_op = &history.operations[op];
            let concurrent: Vec<String> = history
                .operations
                .iter()
                .enumerate()
                .filter(|(i, other)| *i != op && overlaps(other, stuck_op))
                .map(|(i, other)| format!("    #{i} {other}"))
                .take(20)
                .collect();
            format!(
                "operation #{op} ({stuck_op}) answered but could not be linearized after that prefix, \
                 where the register held {state:?}; operations concurrent with it (first 20):\n{}",
                concurrent.join("\n")
            )
        }
    };
    Violation {
        longest_prefix,
        explanation,
    }
}

/// Whether two operations overlap in real time.
fn overlaps(a: &Operation, b: &Operation) -> bool {
    let a_before_b = a.completed.is_some_and(|done| done < b.invoked);
    let b_before_a = b.completed.is_some_and(|done| done < a.invoked);
    !a_before_b && !b_before_a
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// Builds operations from (client, call, answer, invoked ms, completed ms) with times
    /// relative to one base instant.
    fn history(initial: Value, ops: &[(usize, Call, Answer, u64, Option<u64>)]) -> History {
        let base = Instant::now();
        let at = |ms: u64| base + Duration::from_millis(ms);
        History {
            initial,
            operations: ops
                .iter()
                .map(|&(client, call, answer, invoked, completed)| Operation {
                    client,
                    call,
                    invoked: at(invoked),
                    completed: completed.map(at),
                    answer,
                })
                .collect(),
        }
    }

    use Answer::*;
    use Call::*;

    fn cas(expected: i64, new: i64) -> Call {
        CompareAndSet { expected, new }
    }

    #[test]
    fn an_empty_history_is_linearizable() {
        assert!(check(&History::new(Some(0))).is_ok());
    }

    #[test]
    fn concurrent_operations_may_take_effect_in_either_order() {
        // Client 1's write overlaps client 0's write and both reads: the reads see 1 then 2,
        // which the order write(1), read, write(2), read explains.
        let h = history(
            Some(0),
            &[
                (0, Write(1), Written, 0, Some(10)),
                (1, Write(2), Written, 5, Some(40)),
                (2, Read, Saw(Some(1)), 12, Some(20)),
                (2, Read, Saw(Some(2)), 45, Some(50)),
                (0, cas(2, 3), Swapped(true), 55, Some(60)),
                (1, cas(2, 4), Swapped(false), 58, Some(70)),
                (2, Read, Saw(Some(3)), 71, Some(75)),
            ],
        );
        check(&h).unwrap_or_else(|v| panic!("{v}"));
    }

    #[test]
    fn a_read_of_a_value_never_written_is_rejected() {
        let h = history(
            Some(0),
            &[
                (0, Write(1), Written, 0, Some(10)),
                (1, Read, Saw(Some(7)), 5, Some(15)),
            ],
        );
        let v = check(&h).expect_err("7 was never written");
        assert!(v.to_string().contains("read = Some(7)"), "{v}");
    }

    #[test]
    fn a_stale_read_after_a_completed_write_is_rejected() {
        // The write of 2 answered before the read began, so the read cannot see 1.
        let h = history(
            Some(0),
            &[
                (0, Write(1), Written, 0, Some(10)),
                (0, Write(2), Written, 20, Some(30)),
                (1, Read, Saw(Some(1)), 40, Some(50)),
            ],
        );
        assert!(check(&h).is_err());
    }

    #[test]
    fn reads_may_not_go_back_in_time() {
        // Two reads during one long write: once a read saw the new value, a later read
        // (invoked after the first answered) cannot see the old one.
        let h = history(
            Some(0),
            &[
                (0, Write(1), Written, 0, Some(100)),
                (1, Read, Saw(Some(1)), 10, Some(20)),
                (2, Read, Saw(Some(0)), 30, Some(40)),
            ],
        );
        assert!(check(&h).is_err());
        // The same reads in the other order are fine.
        let h = history(
            Some(0),
            &[
                (0, Write(1), Written, 0, Some(100)),
                (1, Read, Saw(Some(0)), 10, Some(20)),
                (2, Read, Saw(Some(1)), 30, Some(40)),
            ],
        );
        check(&h).unwrap_or_else(|v| panic!("{v}"));
    }

    #[test]
    fn a_compare_and_set_must_agree_with_the_value() {
        // Nothing but the initial 0 was ever there: a swap from 5 cannot succeed...
        let h = history(Some(0), &[(0, cas(5, 6), Swapped(true), 0, Some(10))]);
        assert!(check(&h).is_err());
        // ...and a swap from 0 cannot fail.
        let h = history(Some(0), &[(0, cas(0, 6), Swapped(false), 0, Some(10))]);
        assert!(check(&h).is_err());
        let h = history(
            Some(0),
            &[
                (0, cas(0, 6), Swapped(true), 0, Some(10)),
                (1, Read, Saw(Some(6)), 20, Some(30)),
            ],
        );
        check(&h).unwrap_or_else(|v| panic!("{v}"));
    }

    #[test]
    fn an_unknown_write_may_apply_late_or_never() {
        // The write of 9 never answered: a read long after may see it...
        let late = history(
            Some(0),
            &[
                (0, Write(9), Unknown, 0, None),
                (1, Read, Saw(Some(0)), 100, Some(110)),
                (1, Read, Saw(Some(9)), 200, Some(210)),
            ],
        );
        check(&late).unwrap_or_else(|v| panic!("{v}"));
        // ...or never see it.
        let never = history(
            Some(0),
            &[(0, Write(9), Unknown, 0, None), (1, Read, Saw(Some(0)), 200, Some(210))],
        );
        check(&never).unwrap_or_else(|v| panic!("{v}"));
        // But once seen it cannot disappear again.
        let flicker = history(
            Some(0),
            &[
                (0, Write(9), Unknown, 0, None),
                (1, Read, Saw(Some(9)), 100, Some(110)),
                (1, Read, Saw(Some(0)), 200, Some(210)),
            ],
        );
        assert!(check(&flicker).is_err());
    }

    #[test]
    fn an_unknown_write_takes_effect_at_most_once() {
        // write(1) with an unknown outcome, then an acknowledged write(2): seeing 1 after 2
        // would need write(1) to apply after write(2), which it may; but seeing 2 again after
        // that would need it to apply twice.
        let h = history(
            Some(0),
            &[
                (0, Write(1), Unknown, 0, None),
                (1, Write(2), Written, 10, Some(20)),
                (2, Read, Saw(Some(1)), 30, Some(40)),
                (2, Read, Saw(Some(2)), 50, Some(60)),
            ],
        );
        assert!(check(&h).is_err());
    }

    #[test]
    fn a_lost_acknowledged_write_is_rejected() {
        // The write of 5 answered, then every later read still sees the old value.
        let h = history(
            Some(0),
            &[
                (0, Write(3), Written, 0, Some(10)),
                (0, Write(5), Written, 20, Some(30)),
                (1, Read, Saw(Some(3)), 40, Some(50)),
                (2, cas(3, 8), Swapped(true), 60, Some(70)),
            ],
        );
        let v = check(&h).expect_err("write(5) was acknowledged before the read");
        assert!(v.longest_prefix >= 2, "{v}");
    }

    #[test]
    fn a_larger_concurrent_history_is_checked_quickly() {
        // Four clients take turns writing a new value while the other three read concurrently
        // with each other: 400 operations, linearizable by construction, ten of them writes
        // with an unknown outcome.
        let mut ops = Vec::new();
        let mut value = 0i64;
        for round in 0..100u64 {
            let t = round * 10;
            let writer = (round % 4) as usize;
            value += 1;
            if round % 10 == 3 {
                // Some writes lose their answer (and then apply): the search may place them
                // anywhere after their call.
                ops.push((writer, Write(value), Unknown, t, None));
            } else {
                ops.push((writer, Write(value), Written, t, Some(t + 6)));
            }
            for reader in 0..4usize {
                if reader != writer {
                    ops.push((reader, Read, Saw(Some(value)), t + 7, Some(t + 9)));
                }
            }
        }
        let h = history(Some(0), &ops);
        let started = Instant::now();
        check(&h).unwrap_or_else(|v| panic!("{v}"));
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "checking {} operations took {:?}",
            h.operations.len(),
            started.elapsed()
        );
    }
}
