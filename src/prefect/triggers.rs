//! Deployment triggers from prefect.yaml as the automations Prefect's client creates for them
//! (`events/schemas/deployment_triggers.py`), and whether the server's automations already match.

use super::compare::same;
use serde_json::{Map, Value, json};

/// Deployment triggers as automations owned by the deployment (`DeploymentEventTrigger.as_automation`).
pub fn automations(triggers: &[Value], deployment: &str, id: &str) -> Vec<Value> {
    triggers
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let mut trigger: Map<String, Value> = t.as_object().cloned().unwrap_or_default();
            let mut take = |k: &str| trigger.remove(k).filter(|v| !v.is_null());
            let name = take("name").unwrap_or_else(|| json!(format!("{deployment}__automation_{}", i + 1)));
            let description = take("description").unwrap_or(json!(""));
            let enabled = take("enabled").unwrap_or(json!(true));
            let parameters = take("parameters").unwrap_or(Value::Null);
            let job_variables = take("job_variables").unwrap_or(Value::Null);
            let schedule_after = take("schedule_after").unwrap_or(json!(0.0));
            // The defaults Prefect's client model fills in (`events/schemas/automations.py::EventTrigger`); the
            // server requires them.
            let kind = trigger.entry("type").or_insert(json!("event")).clone();
            if kind == "event" {
                for (k, v) in [("match", json!({})), ("match_related", json!({})), ("after", json!([])), ("expect", json!([])), ("for_each", json!([]))] {
                    trigger.entry(k).or_insert(v);
                }
                let posture = trigger.entry("posture").or_insert(json!("Reactive")).clone();
                trigger.entry("threshold").or_insert(json!(1));
                let within = trigger.get("within").and_then(Value::as_f64).unwrap_or(0.0);
                let within = if posture == "Proactive" && within == 0.0 { 10.0 } else { within };
                trigger.insert("within".into(), json!(within));
            }
            json!({
                "name": name, "description": description, "enabled": enabled, "trigger": trigger,
                "actions": [{"type": "run-deployment", "source": "selected", "deployment_id": id,
                             "parameters": parameters, "job_variables": job_variables, "schedule_after": schedule_after}],
                "owner_resource": format!("prefect.deployment.{id}"),
            })
        })
        .collect()
}

/// Is the server's automation `h` the one the file wants (`w`)? Every field the file can set counts: name,
/// description, enabled, the trigger, and the action's parameters, job variables and delay.
pub fn same_automation(h: &Value, w: &Value) -> bool {
    let (ha, wa) = (&h["actions"][0], &w["actions"][0]);
    let delay = |v: &Value| v.as_f64().unwrap_or(0.0);
    h["name"] == w["name"]
        && h["description"].as_str().unwrap_or("") == w["description"].as_str().unwrap_or("")
        && h["enabled"] == w["enabled"]
        && super::compare::subset(&w["trigger"], &h["trigger"])
        && same(&ha["parameters"], &wa["parameters"])
        && same(&ha["job_variables"], &wa["job_variables"])
        && delay(&ha["schedule_after"]) == delay(&wa["schedule_after"])
}

/// Pair each wanted automation with one of the server's that matches it, one to one: `(wanted without a
/// match, the server's left over)`. A duplicate (a create retried after a lost answer) is left over, so it
/// is deleted rather than kept for ever.
pub fn pair<'a>(have: &'a [Value], want: &'a [Value]) -> (Vec<&'a Value>, Vec<&'a Value>) {
    let mut free: Vec<&Value> = have.iter().collect();
    let mut missing = Vec::new();
    for w in want {
        match free.iter().position(|h| same_automation(h, w)) {
            Some(i) => {
                free.remove(i);
            }
            None => missing.push(w),
        }
    }
    (missing, free)
}

pub fn same_automations(have: &[Value], want: &[Value]) -> bool {
    let (missing, stale) = pair(have, want);
    missing.is_empty() && stale.is_empty()
}
