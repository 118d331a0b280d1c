//! The CF v3 calls tests make, the same against `dropship serve` in a process (`api::Api`) and
//! against its router in the test process (`InProcess`): each answers `post_json`, `get` and
//! `upload`; the rest is made of those, and reads the resources as `dropship::cfapi` types
//! (the raw JSON stays for tests of the wire shape).

use dropship::cfapi::{self as cf, PackageState};
use serde::de::DeserializeOwned;
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

    /// `GET path`, answered 200 with a `T`.
    async fn get_as<T: DeserializeOwned>(&self, path: &str) -> T {
        let (s, v) = self.get(path).await;
        assert_eq!(s, 200, "GET {path}: {v}");
        read(v)
    }

    /// `POST path` of `body`, answered `status` with a `T`.
    async fn post_as<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &impl serde::Serialize,
        status: u16,
    ) -> T {
        let (s, v) = self
            .post_json(path, &serde_json::to_value(body).unwrap())
            .await;
        assert_eq!(s, status, "POST {path}: {v}");
        read(v)
    }

    /// A new app named `name`; its guid.
    async fn app(&self, name: &str) -> String {
        let body = cf::CreateApp {
            name: name.into(),
            ..Default::default()
        };
        let app: cf::App = self.post_as("/v3/apps", &body, 201).await;
        assert_eq!(app.name, name);
        app.guid
    }

    /// A new bits package of `app`, awaiting its upload; its guid.
    async fn package(&self, app: &str) -> String {
        let p: cf::Package = self
            .post_as("/v3/packages", &cf::CreatePackage::bits(app), 201)
            .await;
        assert_eq!(p.state, PackageState::AwaitingUpload);
        assert_eq!(p.relationships.app.data.guid, app);
        p.guid
    }

    async fn show(&self, pkg: &str) -> cf::Package {
        self.get_as(&format!("/v3/packages/{pkg}")).await
    }

    async fn droplet(&self, guid: &str) -> cf::Droplet {
        self.get_as(&format!("/v3/droplets/{guid}")).await
    }

    async fn matches(&self, list: &[Value]) -> (u16, Value) {
        self.post_json("/v3/resource_matches", &json!({ "resources": list }))
            .await
    }
}

/// `v` read as a `T`, or a failure that shows it.
pub fn read<T: DeserializeOwned>(v: Value) -> T {
    let text = v.to_string();
    serde_json::from_value(v)
        .unwrap_or_else(|e| panic!("not a {}: {e}: {text:.500}", std::any::type_name::<T>()))
}
