//! The blob store's S3 backend against a real S3-protocol server (moto): a blob larger than
//! one part goes up as a multipart upload and comes back whole and by ranges; keys land under
//! the configured prefix; a failed upload leaves nothing behind.

use crate::support::*;
use dropship::blob::{BlobStore, Key, Location, S3Settings};
use futures_util::TryStreamExt;

fn noise(n: usize) -> Vec<u8> {
    crate::support::api::noise(n, 7)
}

fn store(s3: &S3Server) -> BlobStore {
    let loc = Location::parse(&format!("s3://{}/tenant-a", s3.bucket)).unwrap();
    let settings = S3Settings {
        endpoint: Some(s3.endpoint()),
        region: Some("us-east-1".into()),
        access_key_id: Some("dropship-test".into()),
        secret_access_key: Some("dropship-test-secret".into()),
        allow_http: Some(true),
    };
    BlobStore::open(&loc, &settings).unwrap()
}

#[tokio::test]
async fn s3_keeps_large_blobs_streamed_and_by_ranges() {
    let s3 = S3Server::start();
    let store = store(&s3);
    store.check().await.unwrap();
    let dir = tempdir();
    let data = noise(20 << 20);
    let src = dir.path().join("droplet.tgz");
    std::fs::write(&src, &data).unwrap();
    let key = Key::droplet("0000abcd-0000-4000-8000-00000000beef").unwrap();
    assert_eq!(store.size(&key).await.unwrap(), None);
    assert_eq!(store.put_file(&key, &src).await.unwrap(), data.len() as u64);
    assert_eq!(
        s3.objects(),
        vec![(format!("tenant-a/{key}"), data.len() as u64)],
        "{}",
        s3.log()
    );
    assert!(
        s3.log().contains("uploadId"),
        "a multipart upload:\n{}",
        s3.log()
    );

    let out = dir.path().join("back");
    assert_eq!(
        store.fetch_to(&key, &out).await.unwrap(),
        Some(data.len() as u64)
    );
    assert!(std::fs::read(&out).unwrap() == data);
    let part = store
        .read(&key, Some(12345..2_000_000))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(part.size, data.len() as u64);
    let got: Vec<u8> = part
        .chunks
        .try_fold(Vec::new(), |mut a, c| async move {
            a.extend_from_slice(&c);
            Ok(a)
        })
        .await
        .unwrap();
    assert!(got == data[12345..2_000_000]);

    store.delete(&key).await.unwrap();
    assert_eq!(store.size(&key).await.unwrap(), None);
    assert!(s3.objects().is_empty());
}

#[test]
fn a_throw_away_postgres_answers_and_restarts() {
    let mut pg = Postgres::start();
    let url = pg.database("dropship");
    assert!(url.ends_with("/dropship"), "{url}");
    assert_eq!(pg.psql("SELECT 1 + 1"), "2");
    pg.restart();
    assert_eq!(
        pg.psql("SELECT count(*) FROM pg_database WHERE datname = 'dropship'"),
        "1"
    );
}
