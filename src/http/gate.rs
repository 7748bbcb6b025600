//! Adaptive concurrency for a server that answers "busy" when pushed too hard.

/// Adaptive concurrency (additive increase, multiplicative decrease): starts with one deployment at a time (a
/// burst into a busy server costs more in backoff than it saves), grows towards `max`, is halved
/// whenever the server answered "busy" during one (Prefect on SQLite has one writer and answers 503), grown
/// by one after a whole window of clean completions (TCP's congestion avoidance), but never again to a width
/// at which the server was busy. A Postgres-backed server reaches the full width; SQLite pays one busy answer
/// and settles at one writer, where it is fastest (measured: ci/bench/register.sh).
pub struct Gate {
    max: usize,
    state: std::sync::Mutex<GateState>,
    wake: tokio::sync::Notify,
}

struct GateState {
    limit: usize,
    /// Below the width at which the server last said "busy": never tried again in this run.
    ceiling: usize,
    in_flight: usize,
    clean_streak: usize,
}

impl Gate {
    pub fn new(max: usize) -> Self {
        Self {
            max,
            state: std::sync::Mutex::new(GateState {
                limit: 1,
                ceiling: max,
                in_flight: 0,
                clean_streak: 0,
            }),
            wake: tokio::sync::Notify::new(),
        }
    }

    pub async fn enter(&self) {
        loop {
            let waiting = self.wake.notified();
            {
                let mut s = self.state.lock().expect("not poisoned");
                if s.in_flight < s.limit {
                    s.in_flight += 1;
                    return;
                }
            }
            waiting.await;
        }
    }

    pub fn leave(&self, congested: bool) {
        let mut s = self.state.lock().expect("not poisoned");
        s.in_flight -= 1;
        if congested {
            s.ceiling = (s.limit - 1).max(1);
            s.limit = (s.limit / 2).max(1);
            s.clean_streak = 0;
        } else {
            s.clean_streak += 1;
            if s.clean_streak >= s.limit {
                s.limit = (s.limit + 1).min(s.ceiling).min(self.max);
                s.clean_streak = 0;
            }
        }
        drop(s);
        self.wake.notify_waiters();
    }
}
