//! Flood control for the failure log: per reason, an event is logged when fewer than
//! `burst` (10) were logged in the last `window` (10 s, sliding), or when `interval` (1 s)
//! has passed since the last one; what is held back is counted and reported in one
//! "suppressed N" summary event.
//!
//! Memory is one small bucket per [`Reason`]: whatever clients send (a million distinct
//! tokens, say) the limiter holds the same few hundred bytes.
//!
//! Held-back counts are reported by the next logged event of their reason, or by a task on
//! the application's Tokio runtime that wakes while anything is held back: the layer
//! starts no thread of its own. (On a current-thread runtime the task runs while the
//! runtime does, as every task there.)

use crate::reason::{Reason, Severity};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// How events are rate-limited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogRate {
    /// Events always logged per reason in each window.
    pub burst: u32,
    /// The window.
    pub window: Duration,
    /// After the burst, at most one event per reason per `interval`.
    pub interval: Duration,
}

impl Default for LogRate {
    /// 10 per 10 s, then one per second.
    fn default() -> Self {
        Self {
            burst: 10,
            window: Duration::from_secs(10),
            interval: Duration::from_secs(1),
        }
    }
}

/// How long held-back events may wait for their summary when no further event comes.
const FLUSH_AFTER: Duration = Duration::from_secs(2);
const TICK: Duration = Duration::from_millis(500);

/// One reason's state: when its recent events were logged (a ring of `burst` instants,
/// allocated once), and what is held back.
#[derive(Default)]
struct Bucket {
    logged: Vec<Instant>,
    next: usize,
    last_logged: Option<Instant>,
    suppressed: u64,
    first_suppressed: Option<Instant>,
}

impl Bucket {
    /// Fewer than `burst` events logged within the last `window`.
    fn under_burst(&self, rate: &LogRate, now: Instant) -> bool {
        if rate.burst == 0 {
            return false;
        }
        if self.logged.len() < rate.burst as usize {
            return true;
        }
        // The slot about to be overwritten holds the oldest of the last `burst` events.
        now.duration_since(self.logged[self.next]) >= rate.window
    }

    fn record(&mut self, rate: &LogRate, now: Instant) {
        self.last_logged = Some(now);
        if rate.burst == 0 {
            return;
        }
        if self.logged.len() < rate.burst as usize {
            self.logged.push(now);
        } else {
            self.logged[self.next] = now;
        }
        self.next = (self.next + 1) % rate.burst as usize;
    }
}

/// What the limiter says about one event.
pub(crate) enum Admit {
    /// Log it; first report `suppressed` held-back events of the same reason, if any.
    Log { suppressed: u64 },
    /// Hold it back (counted).
    Suppress,
}

pub(crate) struct FloodControl {
    rate: Option<LogRate>,
    buckets: Box<[Mutex<Bucket>]>,
    flusher: AtomicBool,
}

impl std::fmt::Debug for FloodControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FloodControl")
            .field("rate", &self.rate)
            .finish_non_exhaustive()
    }
}

fn index(reason: Reason) -> usize {
    Reason::ALL
        .iter()
        .position(|r| *r == reason)
        .expect("every reason is in ALL")
}

impl FloodControl {
    /// `None` logs every event.
    pub(crate) fn new(rate: Option<LogRate>) -> Self {
        Self {
            rate,
            buckets: Reason::ALL.iter().map(|_| Mutex::default()).collect(),
            flusher: AtomicBool::new(false),
        }
    }

    /// How many keys the limiter tracks: one per reason, never more.
    #[cfg(test)]
    pub(crate) fn tracked(&self) -> usize {
        self.buckets.len()
    }

    pub(crate) fn admit(self: &Arc<Self>, reason: Reason, now: Instant) -> Admit {
        let Some(rate) = self.rate else {
            return Admit::Log { suppressed: 0 };
        };
        let mut b = self.buckets[index(reason)]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let paced = b
            .last_logged
            .is_none_or(|l| now.duration_since(l) >= rate.interval);
        if b.under_burst(&rate, now) || paced {
            b.record(&rate, now);
            b.first_suppressed = None;
            return Admit::Log {
                suppressed: std::mem::take(&mut b.suppressed),
            };
        }
        b.suppressed += 1;
        b.first_suppressed.get_or_insert(now);
        drop(b);
        self.ensure_flusher();
        Admit::Suppress
    }

    /// Takes the held-back counts that have waited long enough (all of them with `force`).
    fn due(&self, now: Instant, force: bool) -> Vec<(Reason, u64)> {
        let mut out = Vec::new();
        for (i, bucket) in self.buckets.iter().enumerate() {
            let mut b = bucket.lock().unwrap_or_else(|e| e.into_inner());
            let waited = b
                .first_suppressed
                .is_some_and(|t| now.duration_since(t) >= FLUSH_AFTER);
            if b.suppressed > 0 && (force || waited) {
                out.push((Reason::ALL[i], std::mem::take(&mut b.suppressed)));
                b.first_suppressed = None;
            }
        }
        out
    }

    fn pending(&self) -> bool {
        self.buckets
            .iter()
            .any(|b| b.lock().unwrap_or_else(|e| e.into_inner()).suppressed > 0)
    }

    /// Reports every held-back count now.
    pub(crate) fn flush(&self) {
        for (reason, n) in self.due(Instant::now(), true) {
            summary(reason, n);
        }
    }

    /// Starts the task that reports held-back counts when no further event comes, on the
    /// runtime the request runs on. It reports to the subscriber that was current when the
    /// first event was held back, and ends when nothing is pending or the layer is gone.
    /// Outside a runtime, the next logged event of the reason reports them.
    fn ensure_flusher(self: &Arc<Self>) {
        if self.flusher.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.flusher.store(false, Ordering::Release);
            return;
        };
        let weak: Weak<Self> = Arc::downgrade(self);
        let dispatch = tracing::dispatcher::get_default(Clone::clone);
        // Made outside the task and moved in whole, so it is dropped with the task even if
        // the task never ran.
        let guard = Rearm {
            flood: weak.clone(),
            armed: true,
        };
        runtime.spawn(async move {
            let mut guard = guard;
            loop {
                tokio::time::sleep(TICK).await;
                let Some(this) = weak.upgrade() else { return };
                let due = this.due(Instant::now(), false);
                tracing::dispatcher::with_default(&dispatch, || {
                    for (reason, n) in due {
                        summary(reason, n);
                    }
                });
                if !this.pending() {
                    this.flusher.store(false, Ordering::Release);
                    // An event held back between `pending` and `store` restarts us.
                    if !this.pending() || this.flusher.swap(true, Ordering::AcqRel) {
                        guard.armed = false;
                        return;
                    }
                }
            }
        });
    }
}

/// Clears the flusher flag when its task ends other than by its own choice (its runtime
/// shut down, or it panicked): the next held-back event then starts another one.
struct Rearm {
    flood: Weak<FloodControl>,
    armed: bool,
}

impl Drop for Rearm {
    fn drop(&mut self) {
        if let (true, Some(flood)) = (self.armed, self.flood.upgrade()) {
            flood.flusher.store(false, Ordering::Release);
        }
    }
}

/// The "suppressed N" event.
pub(crate) fn summary(reason: Reason, suppressed: u64) {
    macro_rules! ev {
        ($level:expr) => {
            tracing::event!(
                target: "auth_diagnostics",
                $level,
                reason = reason.code(),
                suppressed,
                "suppressed {suppressed} {} events",
                reason.code()
            )
        };
    }
    match reason.severity() {
        Severity::Info => ev!(tracing::Level::INFO),
        Severity::Warn => ev!(tracing::Level::WARN),
        Severity::Error => ev!(tracing::Level::ERROR),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The limiter's table holds one bucket per reason, however many failures of every
    /// reason arrive: what clients send never adds an entry.
    #[test]
    fn one_bucket_per_reason_whatever_arrives() {
        let fc = Arc::new(FloodControl::new(Some(LogRate::default())));
        let t0 = Instant::now();
        for i in 0..100_000u64 {
            let reason = Reason::ALL[i as usize % Reason::ALL.len()];
            fc.admit(reason, t0 + Duration::from_micros(i));
        }
        assert_eq!(fc.tracked(), Reason::ALL.len());
    }

    #[test]
    fn burst_then_one_per_interval() {
        let fc = Arc::new(FloodControl::new(Some(LogRate::default())));
        let t0 = Instant::now();
        let mut logged = 0;
        let mut reported = 0;
        let mut suppressed = 0;
        // 1000 events over 5 s.
        for i in 0..1000u64 {
            let now = t0 + Duration::from_millis(i * 5);
            match fc.admit(Reason::TokenExpired, now) {
                Admit::Log { suppressed: n } => {
                    logged += 1;
                    reported += n;
                }
                Admit::Suppress => suppressed += 1,
            }
        }
        // 10 at once, then one per second over the remaining ~5 s.
        assert!((10..=16).contains(&logged), "{logged}");
        let left: u64 = fc
            .due(t0 + Duration::from_secs(60), true)
            .iter()
            .map(|d| d.1)
            .sum();
        assert_eq!(reported + left, suppressed);
        assert_eq!(logged + suppressed, 1000);
        // Other reasons have their own budget.
        assert!(matches!(
            fc.admit(Reason::TokenMalformed, t0),
            Admit::Log { .. }
        ));
    }

    #[test]
    fn the_window_slides() {
        let fc = Arc::new(FloodControl::new(Some(LogRate::default())));
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let logged = |fc: &Arc<FloodControl>, ms: u64| {
            matches!(fc.admit(Reason::TokenExpired, at(ms)), Admit::Log { .. })
        };
        // Ten at 9.9 s are logged; ten more at 10.0 s fall in the same sliding window.
        assert!((0..10).all(|_| logged(&fc, 9_900)));
        assert!((0..10).all(|_| !logged(&fc, 10_000)));
        // A second after the last logged one, one more is let through.
        assert!(logged(&fc, 10_900));
        assert!(!logged(&fc, 10_950));
        // Once the burst has left the window, a new burst is logged.
        assert!((0..9).all(|_| logged(&fc, 20_000)));
    }

    #[test]
    fn zero_burst_is_one_per_interval() {
        let rate = LogRate {
            burst: 0,
            ..LogRate::default()
        };
        let fc = Arc::new(FloodControl::new(Some(rate)));
        let t0 = Instant::now();
        assert!(matches!(
            fc.admit(Reason::TokenExpired, t0),
            Admit::Log { .. }
        ));
        assert!(matches!(
            fc.admit(Reason::TokenExpired, t0),
            Admit::Suppress
        ));
        let later = t0 + Duration::from_secs(1);
        assert!(matches!(
            fc.admit(Reason::TokenExpired, later),
            Admit::Log { suppressed: 1 }
        ));
    }
}
