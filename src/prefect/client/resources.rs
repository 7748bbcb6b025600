//! The API's resources flowship reads and writes: flows, deployments, variables, blocks, work pools,
//! automations. Writes go through the parent's CSRF- and congestion-aware `write`.

use super::{Prefect, PrefectError, urlencode};
use reqwest::{Method, StatusCode};

impl Prefect {
    /// `POST /flows/` is idempotent: the same name gives the same id.
    pub async fn create_flow(&self, name: &str) -> Result<String, PrefectError> {
        let resp = self
            .write(Method::POST, "/flows/", &serde_json::json!({"name": name}))
            .await?;
        let v = self.json_of("POST /flows/", resp).await?;
        v["id"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| PrefectError::Api {
                what: "POST /flows/".into(),
                status: 200,
                detail: "no id".into(),
            })
    }

    /// A flow's id, if the server knows the flow (read-only: for dry runs).
    pub async fn flow_id(&self, name: &str) -> Result<Option<String>, PrefectError> {
        let path = format!("/flows/name/{}", urlencode(name));
        Ok(self
            .get_optional("GET /flows/name/{name}", &path)
            .await?
            .and_then(|f| f["id"].as_str().map(str::to_string)))
    }

    /// Every deployment of these flows, in pages of 200 (one request for most projects, instead of a lookup
    /// per deployment).
    pub async fn deployments_of_flows(
        &self,
        flows: &[String],
    ) -> Result<Vec<serde_json::Value>, PrefectError> {
        self.deployments_where(serde_json::json!({"flows": {"name": {"any_": flows}}}))
            .await
    }

    /// Every deployment carrying label `key` = `value` (the server cannot filter by label: all pages are
    /// read, and kept here).
    pub async fn deployments_labelled(
        &self,
        key: &str,
        value: &str,
    ) -> Result<Vec<serde_json::Value>, PrefectError> {
        let all = self.deployments_where(serde_json::json!({})).await?;
        Ok(all
            .into_iter()
            .filter(|d| d["labels"][key] == value)
            .collect())
    }

    /// A flow run of deployment `id` (`POST /deployments/{id}/create_flow_run`); its id.
    pub async fn create_flow_run(
        &self,
        deployment: &str,
        body: &serde_json::Value,
    ) -> Result<String, PrefectError> {
        let what = "POST /deployments/{id}/create_flow_run";
        let resp = self
            .write_once(
                Method::POST,
                &format!("/deployments/{deployment}/create_flow_run"),
                body,
            )
            .await?;
        let v = self.json_of(what, resp).await?;
        v["id"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| PrefectError::Api {
                what: what.into(),
                status: 200,
                detail: "no id".into(),
            })
    }

    /// A flow run as the server has it now.
    pub async fn flow_run(&self, id: &str) -> Result<Option<serde_json::Value>, PrefectError> {
        self.get_optional("GET /flow_runs/{id}", &format!("/flow_runs/{id}"))
            .await
    }

    /// A flow's name from its id (`None` when it no longer exists).
    pub async fn flow_name_of(&self, id: &str) -> Result<Option<String>, PrefectError> {
        Ok(self
            .get_optional("GET /flows/{id}", &format!("/flows/{id}"))
            .await?
            .and_then(|f| f["name"].as_str().map(str::to_string)))
    }

    pub async fn delete_deployment(&self, id: &str) -> Result<(), PrefectError> {
        let resp = self
            .write(
                Method::DELETE,
                &format!("/deployments/{id}"),
                &serde_json::json!(null),
            )
            .await?;
        if resp.status().as_u16() == 404 {
            return Ok(());
        }
        self.json_of("DELETE /deployments/{id}", resp)
            .await
            .map(|_| ())
    }

    /// The deployments matching a `/deployments/filter` body, every page.
    async fn deployments_where(
        &self,
        filter: serde_json::Value,
    ) -> Result<Vec<serde_json::Value>, PrefectError> {
        // Bounded: a server that ignores `offset` (or keeps answering full pages) cannot keep flowship paging
        // for ever. 50 pages of 200 is far more deployments than any project file names.
        const PAGE: usize = 200;
        const MAX_PAGES: usize = 50;
        let mut out: Vec<serde_json::Value> = Vec::new();
        for _ in 0..MAX_PAGES {
            let mut body = filter.clone();
            body["limit"] = serde_json::json!(PAGE);
            body["offset"] = serde_json::json!(out.len());
            let resp = self
                .write(Method::POST, "/deployments/filter", &body)
                .await?;
            let page = self.json_of("POST /deployments/filter", resp).await?;
            let Some(page) = page.as_array().cloned() else {
                return Err(PrefectError::Api {
                    what: "POST /deployments/filter".into(),
                    status: 200,
                    detail: "the answer is not a list of deployments".into(),
                });
            };
            let n = page.len();
            // The same page twice: the server ignores the offset.
            if n > 0 && out.iter().any(|d| d["id"] == page[0]["id"]) {
                return Err(PrefectError::Api {
                    what: "POST /deployments/filter".into(),
                    status: 200,
                    detail: "the server answers the same page again (it ignores `offset`)".into(),
                });
            }
            out.extend(page);
            if n < PAGE {
                return Ok(out);
            }
        }
        Err(PrefectError::Api {
            what: "POST /deployments/filter".into(),
            status: 200,
            detail: format!("more than {} deployments for these flows", PAGE * MAX_PAGES),
        })
    }

    pub async fn create_deployment(
        &self,
        body: &serde_json::Value,
    ) -> Result<String, PrefectError> {
        let resp = self.write(Method::POST, "/deployments/", body).await?;
        let v = self.json_of("POST /deployments/", resp).await?;
        v["id"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| PrefectError::Api {
                what: "POST /deployments/".into(),
                status: 200,
                detail: "no id".into(),
            })
    }

    pub async fn update_deployment(
        &self,
        id: &str,
        body: &serde_json::Value,
    ) -> Result<(), PrefectError> {
        let resp = self
            .write(Method::PATCH, &format!("/deployments/{id}"), body)
            .await?;
        self.json_of("PATCH /deployments/{id}", resp)
            .await
            .map(|_| ())
    }

    /// A variable's value; `None` when it does not exist.
    pub async fn variable(&self, name: &str) -> Result<Option<serde_json::Value>, PrefectError> {
        let path = format!("/variables/name/{}", urlencode(name));
        Ok(self
            .get_optional("GET /variables/name/{name}", &path)
            .await?
            .map(|v| v["value"].clone()))
    }

    /// A block document's data (secrets included) and which of its values are secret (from its schema);
    /// `None` when it does not exist.
    pub async fn block_data(
        &self,
        block_type: &str,
        name: &str,
    ) -> Result<Option<(serde_json::Value, Vec<String>)>, PrefectError> {
        let path = format!(
            "/block_types/slug/{}/block_documents/name/{}?include_secrets=true",
            urlencode(block_type),
            urlencode(name)
        );
        Ok(self
            .get_optional("GET block document", &path)
            .await?
            .map(|v| {
                let secrets = crate::prefect::redact::block_secrets(
                    block_type,
                    &v["data"],
                    &v["block_schema"]["fields"],
                );
                (v["data"].clone(), secrets)
            }))
    }

    /// Create a work pool with the server's default base job template for `kind` (what the CLI does; a REST
    /// pool without one gets `{}`, which workers cannot use), pulling on every run (`image_pull_policy:
    /// Always`: a tag moved by a rollback or a hotfix is what runs). With `pull` (a block name and its data),
    /// a docker pool's template references a registry credentials block, created or refreshed here, so that
    /// the worker can pull from a private registry.
    pub async fn create_work_pool(
        &self,
        name: &str,
        kind: &str,
        pull: Option<(&str, &serde_json::Value)>,
        pull_secret: Option<&str>,
    ) -> Result<(), PrefectError> {
        let resp = self
            .http
            .send(|| self.request(Method::GET, "/collections/views/aggregate-worker-metadata"))
            .await
            .map_err(|e| self.transport(e))?;
        let meta = self
            .json_of("GET /collections/views/aggregate-worker-metadata", resp)
            .await?;
        let mut template = meta
            .as_object()
            .into_iter()
            .flat_map(|collections| collections.values())
            .filter_map(|workers| workers.as_object())
            .flat_map(|workers| workers.values())
            .find(|w| w["type"] == kind)
            .map(|w| w["default_base_job_configuration"].clone())
            .ok_or_else(|| PrefectError::Api {
                what: "create work pool".into(),
                status: 0,
                detail: format!(
                    "the server knows no worker type `{kind}` (kubernetes, docker, process, ...)"
                ),
            })?;
        let props = &mut template["variables"]["properties"];
        if props["image_pull_policy"].is_object() {
            props["image_pull_policy"]["default"] = serde_json::json!("Always");
        }
        if let Some((block, data)) = pull
            && template["variables"]["properties"]["registry_credentials"].is_object()
        {
            let schema = template["variables"]["definitions"]["DockerRegistryCredentials"].clone();
            let id = self.upsert_registry_block(block, data, &schema).await?;
            template["variables"]["properties"]["registry_credentials"]["default"] =
                serde_json::json!({"$ref": {"block_document_id": id}});
        }
        if let Some(secret) = pull_secret.filter(|_| kind == "kubernetes") {
            template = super::with_pull_secret(template, secret);
        }
        let body = serde_json::json!({"name": name, "type": kind, "base_job_template": template});
        let resp = self.write(Method::POST, "/work_pools/", &body).await?;
        if resp.status() == StatusCode::CONFLICT {
            return Ok(()); // created meanwhile by someone else: what we wanted
        }
        self.json_of("POST /work_pools/", resp).await.map(|_| ())
    }

    /// Add `secret` to an existing Kubernetes pool's image pull secrets (its template otherwise kept).
    pub async fn add_pull_secret(
        &self,
        pool: &super::WorkPool,
        secret: &str,
    ) -> Result<(), PrefectError> {
        let template = super::with_pull_secret(pool.base_job_template.clone(), secret);
        let path = format!("/work_pools/{}", super::urlencode(&pool.name));
        let resp = self
            .write(
                Method::PATCH,
                &path,
                &serde_json::json!({"base_job_template": template}),
            )
            .await?;
        self.json_of("PATCH /work_pools/{name}", resp)
            .await
            .map(|_| ())
    }

    /// Make the automations a deployment owns (`have`) the ones the file wants: the missing ones are created
    /// first, and only then the stale ones deleted, one by one. A failure in between leaves the deployment
    /// with its old automations and some new ones, never with none; a re-run finishes the job.
    pub async fn replace_automations(
        &self,
        have: &[serde_json::Value],
        want: &[serde_json::Value],
    ) -> Result<(), PrefectError> {
        let (missing, stale) = crate::prefect::triggers::pair(have, want);
        for w in missing {
            self.create_automation(w).await?;
        }
        for h in stale {
            let Some(id) = h["id"].as_str() else { continue };
            let path = format!("/automations/{id}");
            let resp = self
                .write(Method::DELETE, &path, &serde_json::Value::Null)
                .await?;
            // Deleted meanwhile by someone else: what we wanted.
            if resp.status() != StatusCode::NOT_FOUND {
                self.json_of("DELETE /automations/{id}", resp).await?;
            }
        }
        Ok(())
    }

    /// `POST /automations/` is not idempotent: retried after a lost answer it makes a second automation (and
    /// every event then starts two runs). So it is sent once per attempt, and after a transport failure the
    /// server is asked whether it has the automation before it is sent again.
    async fn create_automation(&self, w: &serde_json::Value) -> Result<(), PrefectError> {
        let owner = w["owner_resource"].as_str().unwrap_or_default();
        let deployment = owner
            .strip_prefix("prefect.deployment.")
            .unwrap_or_default()
            .to_string();
        let mut attempt = 0;
        loop {
            match self.write_once(Method::POST, "/automations/", w).await {
                Ok(resp) => return self.json_of("POST /automations/", resp).await.map(|_| ()),
                Err(e @ PrefectError::Transport { .. }) => {
                    let have = self.owned_automations(&deployment).await?;
                    if have
                        .iter()
                        .any(|h| crate::prefect::triggers::same_automation(h, w))
                    {
                        return Ok(()); // it landed; only the answer was lost
                    }
                    if attempt >= self.http.policy().retries {
                        return Err(e);
                    }
                    tokio::time::sleep(self.http.policy().backoff(attempt)).await;
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The automations a deployment owns, for comparing against the file.
    pub async fn owned_automations(
        &self,
        deployment_id: &str,
    ) -> Result<Vec<serde_json::Value>, PrefectError> {
        let owner = format!("prefect.deployment.{deployment_id}");
        let path = format!("/automations/related-to/{owner}");
        // Related is wider than owned: automations a user made that merely mention the deployment are not
        // the file's to change.
        Ok(self
            .get_optional("GET /automations/related-to/...", &path)
            .await?
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default()
            .into_iter()
            .filter(|a| a["owner_resource"].is_null() || a["owner_resource"] == owner.as_str())
            .collect())
    }
}
