//! The CF v3 calls tests make, the same against `dropship serve` in a process (`api::Api`) and
//! against its router in the test process (`InProcess`): each answers `post_json`, `get` and
//! `upload`; the rest is made of those.

use serde_json::{json, Value};
use std::path::PathBuf;

pub trait Client {
    async fn post_json(&self, path: &str, body: &Value) -> (u16, Value);
    async fn get(&self, path: &str) -> (u16, Value);
    /// POST .../upload with the given fields (resources sent as the JSON text cf push sends).
    async fn upload(
        &self,
        pkg: &str,
        bits: Option<Vec<u8>>,
        resources: Option<&Value>,
    ) -> (u16, Value);
    /// The service's data dir.
    fn data_dir(&self) -> PathBuf;
    /// What the service logged so far (nothing in process: it has no log of its own).
    fn log(&self) -> String;

    /// Where the service keeps a package's zip.
    fn package_file(&self, pkg: &str) -> PathBuf {
        self.data_dir().join("packages").join(format!("{pkg}.zip"))
    }

    async fn app(&self, name: &str) -> String {
        let (s, v) = self.post_json("/v3/apps", &json!({"name": name})).await;
        assert_eq!(s, 201, "{v}");
        v["guid"].as_str().unwrap().to_string()
    }

    async fn package(&self, app: &str) -> String {
        let body = json!({"type": "bits", "relationships": {"app": {"data": {"guid": app}}}});
        let (s, v) = self.post_json("/v3/packages", &body).await;
        assert_eq!(s, 201, "{v}");
        assert_eq!(v["state"], "AWAITING_UPLOAD");
        v["guid"].as_str().unwrap().to_string()
    }

    async fn show(&self, pkg: &str) -> Value {
        let (s, v) = self.get(&format!("/v3/packages/{pkg}")).await;
        assert_eq!(s, 200, "{v}");
        v
    }

    async fn matches(&self, list: &[Value]) -> (u16, Value) {
        self.post_json("/v3/resource_matches", &json!({ "resources": list }))
            .await
    }
}
