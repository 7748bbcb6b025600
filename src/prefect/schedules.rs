//! `schedules:` entries of prefect.yaml → the API's `DeploymentScheduleCreate` (`cli/deploy/_schedules.py`):
//! cron, interval (seconds, ISO 8601 durations, `HH:MM:SS`), rrule (string or JSON), with timezone, anchor date,
//! active, parameters, slug.

use serde_json::{Map, Value, json};

/// The schedules a deployment sends: `None` when the file says nothing (the server keeps its own).
pub type Schedules = Option<Vec<Value>>;

/// Keys of a schedule entry that Prefect 3 reads (`RawScheduleConfig`), and `max_scheduled_runs`, which
/// the API takes.
const KNOWN: [&str; 11] = [
    "cron",
    "interval",
    "rrule",
    "timezone",
    "anchor_date",
    "active",
    "parameters",
    "slug",
    "replaces",
    "day_or",
    "max_scheduled_runs",
];

/// Keys of a schedule entry that are not registered (Prefect 2's `max_active_runs`, `catchup`, typos).
pub fn unknown_keys(c: &Value) -> Vec<String> {
    c.as_object()
        .map(|m| {
            m.keys()
                .filter(|k| !KNOWN.contains(&k.as_str()))
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

/// What croniter (Prefect's cron parser) accepts, in shape: 5 or 6 fields of numbers, `*`, `?`, ranges,
/// steps, lists, `L`/`W`/`#`, and month or day names; or a nickname like `@daily`.
fn valid_cron(s: &str) -> bool {
    const NAMES: [&str; 19] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec", "sun",
        "mon", "tue", "wed", "thu", "fri", "sat",
    ];
    let s = s.trim();
    if let Some(nick) = s.strip_prefix('@') {
        return [
            "yearly", "annually", "monthly", "weekly", "daily", "midnight", "hourly",
        ]
        .contains(&nick);
    }
    let fields: Vec<&str> = s.split_whitespace().collect();
    (5..=6).contains(&fields.len())
        && fields.iter().all(|f| {
            f.split([',', '-', '/', '#']).all(|tok| {
                tok.is_empty()
                    || tok == "*"
                    || tok == "?"
                    || tok
                        .trim_end_matches(['L', 'W'])
                        .bytes()
                        .all(|b| b.is_ascii_digit())
                    || NAMES.contains(&tok.to_ascii_lowercase().as_str())
            }) && !f.is_empty()
        })
}

/// A `schedules:` entry → `DeploymentScheduleCreate` (`cli/deploy/_schedules.py`).
pub fn schedule(c: &Value) -> Result<Value, String> {
    let Some(m) = c.as_object() else {
        return Err("a schedule must be a mapping".into());
    };
    let tz = m.get("timezone").filter(|v| !v.is_null());
    let mut sched = Map::new();
    if let Some(cron) = m.get("cron").filter(|v| !v.is_null()) {
        let text = cron.as_str().unwrap_or_default();
        if !valid_cron(text) {
            return Err(format!(
                "cron `{}` is not a cron expression",
                cron.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| cron.to_string())
            ));
        }
        sched.insert("cron".into(), cron.clone());
        if let Some(t) = tz {
            sched.insert("timezone".into(), t.clone());
        }
        if let Some(d) = m.get("day_or").filter(|v| !v.is_null()) {
            sched.insert("day_or".into(), d.clone());
        }
    } else if let Some(interval) = m.get("interval").filter(|v| !v.is_null()) {
        let secs = interval_seconds(interval)
            .ok_or_else(|| format!("interval `{interval}` is not seconds, PT…, or HH:MM:SS"))?;
        if secs <= 0.0 {
            return Err(format!("interval `{interval}` is not positive"));
        }
        sched.insert("interval".into(), json!(secs));
        if let Some(a) = m.get("anchor_date").filter(|v| !v.is_null()) {
            sched.insert("anchor_date".into(), a.clone());
        }
        if let Some(t) = tz {
            sched.insert("timezone".into(), t.clone());
        }
    } else if let Some(rrule) = m.get("rrule").filter(|v| !v.is_null()) {
        match rrule
            .as_str()
            .and_then(|s| serde_json::from_str::<Map<String, Value>>(s).ok())
        {
            Some(obj) => sched.extend(obj),
            None => {
                sched.insert("rrule".into(), rrule.clone());
            }
        }
        if let Some(t) = tz {
            sched.insert("timezone".into(), t.clone());
        }
    } else {
        return Err(format!(
            "unknown schedule type in {c}: give cron, interval or rrule"
        ));
    }
    let mut out = json!({"schedule": sched, "active": m.get("active").filter(|v| !v.is_null()).cloned().unwrap_or(json!(true))});
    out["parameters"] = m
        .get("parameters")
        .filter(|v| !v.is_null())
        .cloned()
        .unwrap_or(json!({}));
    for k in ["slug", "replaces", "max_scheduled_runs"] {
        if let Some(v) = m.get(k).filter(|v| !v.is_null()) {
            out[k] = v.clone();
        }
    }
    Ok(out)
}

/// Seconds from `3600`, `1.5`, `PT1H30M`, `P1DT2H`, or `[D day[s], ]HH:MM:SS`.
fn interval_seconds(v: &Value) -> Option<f64> {
    if let Some(n) = v.as_f64() {
        return Some(n);
    }
    let s = v.as_str()?.trim();
    if let Some(iso) = s.strip_prefix('P') {
        let (date, time) = iso.split_once('T').unwrap_or((iso, ""));
        let mut total = 0.0;
        for (part, units) in [
            (date, &[('W', 604800.0), ('D', 86400.0)][..]),
            (time, &[('H', 3600.0), ('M', 60.0), ('S', 1.0)][..]),
        ] {
            let mut num = String::new();
            for ch in part.chars() {
                if ch.is_ascii_digit() || ch == '.' {
                    num.push(ch);
                } else {
                    let mult = units.iter().find(|(u, _)| *u == ch)?.1;
                    total += num.parse::<f64>().ok()? * mult;
                    num.clear();
                }
            }
            if !num.is_empty() {
                return None;
            }
        }
        return Some(total);
    }
    let (days, hms) = match s.split_once(',') {
        Some((d, rest)) => (
            d.split_whitespace().next()?.parse::<f64>().ok()?,
            rest.trim(),
        ),
        None => (0.0, s),
    };
    let parts: Vec<f64> = hms
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let secs = match parts.as_slice() {
        [h, m, s] => h * 3600.0 + m * 60.0 + s,
        [m, s] => m * 60.0 + s,
        _ => return None,
    };
    Some(days * 86400.0 + secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_and_intervals() {
        assert_eq!(
            schedule(&json!({"cron": "0 3 * * *", "timezone": "Europe/Berlin"})).unwrap(),
            json!({"schedule": {"cron": "0 3 * * *", "timezone": "Europe/Berlin"}, "active": true, "parameters": {}})
        );
        assert_eq!(
            schedule(&json!({"interval": "PT1H30M", "active": false, "slug": "s"})).unwrap(),
            json!({"schedule": {"interval": 5400.0}, "active": false, "parameters": {}, "slug": "s"})
        );
        assert_eq!(interval_seconds(&json!("01:00:00")), Some(3600.0));
        assert_eq!(interval_seconds(&json!("1 day, 0:00:10")), Some(86410.0));
        assert!(schedule(&json!({"every": 1})).is_err());
    }
}
