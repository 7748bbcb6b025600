//! Step 7 of a deployment's plan: its schedules, from `schedules:` or the singular `schedule:`.

use super::super::project::{Inputs, Project, ProjectError, Warning};
use super::super::schedules::{Schedules, schedule, unknown_keys};
use super::super::template;
use super::truthy;
use serde_json::Value;

impl Project {
    /// Step 7: schedules, templated with step outputs, from `schedules:` or the singular `schedule:` Prefect
    /// still reads (`_handle_deprecated_schedule_fields`). Absent or null: not sent (the server keeps its
    /// own), as `prefect deploy` does.
    pub(super) fn schedules_of(
        &self,
        index: usize,
        name: &str,
        cfg: &Value,
        outputs: &Value,
        inputs: &Inputs<'_>,
        warnings: &mut Vec<Warning>,
    ) -> Result<Schedules, ProjectError> {
        let hint = "cron: \"0 3 * * *\", interval: 3600 (seconds), or rrule: \"FREQ=DAILY\"";
        // `schedule: []` (datopian/preflow), `""`, `0`: Prefect 3.9's model wants a mapping or null there and
        // refuses the whole file; flowship registers no schedule for it, and says so.
        if let Some(v) = cfg.get("schedule")
            && !(v.is_null() || v.is_object() || truthy(v))
        {
            warnings.push(self.warning(
                index,
                name,
                format!("`schedule: {v}` is not a mapping; no schedule is registered for it (`prefect deploy` 3.9 refuses the whole file for it)"),
                "remove it, or write `schedules: []`",
            ));
        }
        let legacy = cfg.get("schedule").filter(|v| truthy(v));
        let raw = match (legacy, cfg.get("schedules")) {
            (Some(_), Some(_)) => {
                return Err(self.err(
                    name,
                    "has both `schedule` and `schedules` (Prefect refuses the deployment)",
                    Some("keep only `schedules:`, a list"),
                ));
            }
            (Some(Value::Object(one)), None) => Value::Array(vec![Value::Object(one.clone())]),
            (Some(other), None) => {
                return Err(self.err(
                    name,
                    format!("`schedule` is {other}, not a mapping"),
                    Some(hint),
                ));
            }
            (None, None) | (None, Some(Value::Null)) => return Ok(None),
            (None, Some(s)) => s.clone(),
        };
        let s = template::apply_values(&raw, outputs, inputs.env, true, &[]).unwrap_or_default();
        let list = match s {
            Value::Array(list) => list,
            other => {
                return Err(self.err(
                    name,
                    format!("`schedules` is {other}, not a list"),
                    Some("write schedules: [{cron: \"0 3 * * *\"}]"),
                ));
            }
        };
        let mut out = Vec::new();
        for c in &list {
            let keys = unknown_keys(c);
            if !keys.is_empty() {
                warnings.push(self.warning(
                    index,
                    name,
                    format!(
                        "schedule keys {} are not Prefect 3's; they are not registered (`prefect deploy` 3.9 refuses the whole file for them)",
                        keys.join(", ")
                    ),
                    "remove them (Prefect 2's `max_active_runs`/`catchup` have no Prefect 3 equivalent on a schedule)",
                ));
            }
            out.push(
                schedule(c).map_err(|m| self.err(name, format!("schedules: {m}"), Some(hint)))?,
            );
        }
        Ok(Some(out))
    }
}
