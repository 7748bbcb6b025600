//! Block documents flowship writes: the registry credentials a docker work pool pulls flow images with
//! (prefect-docker's `DockerRegistryCredentials`). The block type and its schema are registered the way
//! `prefect block register -m prefect_docker` would, from the schema the server's worker metadata carries,
//! so that no Python has to run; an existing type and schema are reused.

use super::{Prefect, PrefectError, urlencode};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// prefect-docker's block for `docker login` before a pull.
pub const REGISTRY_BLOCK_TYPE: &str = "docker-registry-credentials";

impl Prefect {
    async fn block_type_id(&self, slug: &str, schema: &Value) -> Result<String, PrefectError> {
        let path = format!("/block_types/slug/{}", urlencode(slug));
        if let Some(t) = self
            .get_optional("GET /block_types/slug/{slug}", &path)
            .await?
        {
            return id_of(&t, "block type");
        }
        let body = json!({
            "name": "Docker Registry Credentials",
            "slug": slug,
            "description": schema["description"],
        });
        let resp = self.write(Method::POST, "/block_types/", &body).await?;
        if resp.status() == StatusCode::CONFLICT {
            // Registered meanwhile by someone else.
            let t = self
                .get_optional("GET /block_types/slug/{slug}", &path)
                .await?
                .ok_or_else(|| missing("block type", slug))?;
            return id_of(&t, "block type");
        }
        id_of(
            &self.json_of("POST /block_types/", resp).await?,
            "block type",
        )
    }

    async fn block_schema_id(&self, type_id: &str, fields: &Value) -> Result<String, PrefectError> {
        let filter = json!({"block_schemas": {"block_type_id": {"any_": [type_id]}}, "limit": 1});
        let resp = self
            .write(Method::POST, "/block_schemas/filter", &filter)
            .await?;
        let found = self.json_of("POST /block_schemas/filter", resp).await?;
        if let Some(s) = found.as_array().and_then(|a| a.first()) {
            return id_of(s, "block schema");
        }
        let body = json!({"fields": fields, "block_type_id": type_id, "capabilities": []});
        let resp = self.write(Method::POST, "/block_schemas/", &body).await?;
        id_of(
            &self.json_of("POST /block_schemas/", resp).await?,
            "block schema",
        )
    }

    /// The registry credentials block `name` holding `data` (`username`, `password`, `registry_url`,
    /// `reauth`): created, or updated when it holds anything else. `schema` is the block's JSON schema (the
    /// `DockerRegistryCredentials` definition of the docker worker's template). Returns its id.
    pub async fn upsert_registry_block(
        &self,
        name: &str,
        data: &Value,
        schema: &Value,
    ) -> Result<String, PrefectError> {
        if let Some(id) = self.refresh_registry_block(name, data).await? {
            return Ok(id);
        }
        let type_id = self.block_type_id(REGISTRY_BLOCK_TYPE, schema).await?;
        let schema_id = self.block_schema_id(&type_id, schema).await?;
        let body = json!({
            "name": name,
            "data": data,
            "block_type_id": type_id,
            "block_schema_id": schema_id,
            "is_anonymous": false,
        });
        let resp = self.write(Method::POST, "/block_documents/", &body).await?;
        id_of(
            &self.json_of("POST /block_documents/", resp).await?,
            "block document",
        )
    }

    /// The registry credentials block `name` made to hold `data`, when it exists (`None`: it does not).
    pub async fn refresh_registry_block(
        &self,
        name: &str,
        data: &Value,
    ) -> Result<Option<String>, PrefectError> {
        let path = format!(
            "/block_types/slug/{}/block_documents/name/{}?include_secrets=true",
            urlencode(REGISTRY_BLOCK_TYPE),
            urlencode(name)
        );
        let Some(doc) = self.get_optional("GET block document", &path).await? else {
            return Ok(None);
        };
        let id = id_of(&doc, "block document")?;
        if &doc["data"] != data {
            let body = json!({"data": data, "merge_existing_data": false});
            let resp = self
                .write(Method::PATCH, &format!("/block_documents/{id}"), &body)
                .await?;
            if !resp.status().is_success() {
                return Err(self.api_error("PATCH /block_documents/{id}", resp).await);
            }
        }
        Ok(Some(id))
    }

    async fn api_error(&self, what: &str, resp: reqwest::Response) -> PrefectError {
        match self.json_of(what, resp).await {
            Err(e) => e,
            Ok(_) => PrefectError::Api {
                what: what.into(),
                status: 0,
                detail: "unexpected answer".into(),
            },
        }
    }
}

fn id_of(v: &Value, what: &str) -> Result<String, PrefectError> {
    v["id"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| PrefectError::Api {
            what: what.into(),
            status: 200,
            detail: "the answer has no id".into(),
        })
}

fn missing(what: &str, name: &str) -> PrefectError {
    PrefectError::Api {
        what: format!("{what} {name}"),
        status: 404,
        detail: "not found after a conflict".into(),
    }
}
