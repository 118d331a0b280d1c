//! Where the service keeps its blobs: `--blob-store URL` (`DROPSHIP_BLOB_STORE`), else
//! `blob_store` in the TOML file, else the data dir itself. The file takes either form:
//!
//! ```toml
//! blob_store = "s3://bucket/prefix"          # or a directory
//! ```
//! ```toml
//! [blob_store]
//! url = "s3://bucket/prefix"
//! endpoint = "http://127.0.0.1:9000"         # each unset one: its AWS_* variable
//! region = "us-east-1"
//! access_key_id = "..."
//! secret_access_key = "..."
//! allow_http = true
//! ```

use super::config::ConfigError;
use crate::blob::{Location, S3Settings};
use serde::Deserialize;

/// `blob_store` in the file: a URL, or a table with the URL and S3's settings.
#[derive(Deserialize, Clone)]
#[serde(untagged)]
pub enum BlobStoreSection {
    Url(String),
    Table(BlobStoreTable),
}

#[derive(Deserialize, Clone, Default)]
#[serde(deny_unknown_fields)]
pub struct BlobStoreTable {
    pub url: Option<String>,
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub allow_http: Option<bool>,
}

/// The resolved setting: `location` None is the data dir (keys are its relative paths).
#[derive(Clone, Default, Debug)]
pub struct BlobConfig {
    pub location: Option<Location>,
    pub s3: S3Settings,
}

impl BlobConfig {
    /// The flag (or its variable) wins over the file's URL; the file's S3 settings stay.
    pub fn resolve(
        flag: Option<String>,
        file: Option<BlobStoreSection>,
    ) -> Result<BlobConfig, ConfigError> {
        let table = match file {
            None => BlobStoreTable::default(),
            Some(BlobStoreSection::Url(url)) => BlobStoreTable {
                url: Some(url),
                ..Default::default()
            },
            Some(BlobStoreSection::Table(t)) => t,
        };
        let url = flag.or(table.url).filter(|u| !u.trim().is_empty());
        let location = url
            .map(|u| Location::parse(u.trim()))
            .transpose()
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        Ok(BlobConfig {
            location,
            s3: S3Settings {
                endpoint: table.endpoint,
                region: table.region,
                access_key_id: table.access_key_id,
                secret_access_key: table.secret_access_key,
                allow_http: table.allow_http,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> Option<BlobStoreSection> {
        #[derive(Deserialize)]
        struct F {
            blob_store: Option<BlobStoreSection>,
        }
        toml::from_str::<F>(text).unwrap().blob_store
    }

    #[test]
    fn flag_beats_file_and_both_forms_parse() {
        let none = BlobConfig::resolve(None, None).unwrap();
        assert!(none.location.is_none(), "the data dir");
        let url = BlobConfig::resolve(None, file("blob_store = \"s3://bkt/p\"")).unwrap();
        let s3 = |b: &str, p: &str| Location::S3 {
            bucket: b.into(),
            prefix: p.into(),
        };
        assert_eq!(url.location, Some(s3("bkt", "p")));
        let table = "[blob_store]\nurl = \"s3://bkt/q\"\nregion = \"eu-west-1\"\nallow_http = true";
        let t = BlobConfig::resolve(None, file(table)).unwrap();
        assert_eq!(t.location, Some(s3("bkt", "q")));
        assert_eq!(t.s3.region.as_deref(), Some("eu-west-1"));
        assert_eq!(t.s3.allow_http, Some(true));
        let f = BlobConfig::resolve(Some("/srv/blobs".into()), file(table)).unwrap();
        assert_eq!(f.location, Some(Location::Local("/srv/blobs".into())));
        assert_eq!(f.s3.region.as_deref(), Some("eu-west-1"), "the table stays");
    }

    #[test]
    fn refuses_what_is_not_a_store() {
        assert!(BlobConfig::resolve(Some("http://x/y".into()), None).is_err());
        assert!(BlobConfig::resolve(Some("s3://A/p".into()), None).is_err());
        let bad = "[blob_store]\nurl = \"s3://bkt\"\nbucket = \"x\"";
        assert!(
            toml::from_str::<super::super::config::FileConfig>(bad).is_err(),
            "unknown keys"
        );
    }
}
