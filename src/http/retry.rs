//! When and how long to wait before trying a request again: exponential backoff with full jitter, honouring
//! `Retry-After`, bounded both in attempts and in total time.

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use std::time::{Duration, SystemTime};

#[derive(Debug, Clone)]
pub struct Policy {
    /// Attempts after the first.
    pub retries: u32,
    pub base: Duration,
    pub max_delay: Duration,
    /// No retry starts after this much time has passed since the first attempt.
    pub budget: Duration,
}

impl Policy {
    pub fn new(retries: u32) -> Self {
        Self {
            retries,
            base: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
            budget: Duration::from_secs(120),
        }
    }

    /// Full jitter (AWS architecture blog): uniform in [0, min(max, base * 2^attempt)], so that many pipelines
    /// retrying against one server do not retry in lockstep.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = self.base.saturating_mul(1u32 << attempt.min(16));
        let cap = exp.min(self.max_delay);
        cap.mul_f64(fastrand::f64()).max(Duration::from_millis(10))
    }
}

/// Statuses that mean "try again later": request timeout, rate limit, and the gateway/availability family
/// (Prefect answers 503 when SQLite is busy; Harbor's nginx answers 502/504 under load).
pub fn is_transient(status: StatusCode) -> bool {
    matches!(status.as_u16(), 408 | 429 | 502 | 503 | 504)
}

/// `Retry-After: <seconds>` or `Retry-After: <HTTP-date>`.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(v).ok()?;
    Some(
        when.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn backoff_grows_and_stays_bounded() {
        let p = Policy::new(5);
        for attempt in 0..40 {
            let d = p.backoff(attempt);
            assert!(d <= p.max_delay, "{d:?}");
            assert!(d <= p.base * 2u32.pow(attempt.min(16)) + Duration::from_millis(10));
        }
    }

    #[test]
    fn retry_after_reads_both_forms() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        h.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&h), Some(Duration::ZERO));
        h.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn transient_statuses() {
        for s in [408, 429, 502, 503, 504] {
            assert!(is_transient(StatusCode::from_u16(s).unwrap()));
        }
        for s in [400, 401, 403, 404, 409, 412, 422, 500] {
            assert!(!is_transient(StatusCode::from_u16(s).unwrap()));
        }
    }
}
