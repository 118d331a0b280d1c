use super::*;
use futures_util::TryStreamExt;

fn guid(n: u8) -> String {
    format!("{:08x}-0000-4000-8000-{:012x}", n, n)
}

fn local() -> (tempfile::TempDir, BlobStore) {
    let dir = tempfile::tempdir().unwrap();
    let loc = Location::parse(dir.path().join("blobs").to_str().unwrap()).unwrap();
    let store = BlobStore::open(&loc, &S3Settings::default()).unwrap();
    (dir, store)
}

fn noise(n: usize) -> Vec<u8> {
    crate::layer::gzip::tests::noise(n, 1)
}

async fn bytes_of(r: Read) -> Vec<u8> {
    r.chunks
        .try_fold(Vec::new(), |mut acc, c| async move {
            acc.extend_from_slice(&c);
            Ok(acc)
        })
        .await
        .unwrap()
}

#[test]
fn keys_are_checked() {
    assert!(Key::package(&guid(1)).is_ok());
    for bad in [
        "",
        "../x",
        "0000",
        &format!("{}/", guid(1)),
        &guid(0xab).to_uppercase(),
    ] {
        assert!(Key::package(bad).is_err(), "{bad:?}");
    }
    assert!(Key::resource(&"a".repeat(40)).is_ok());
    assert!(Key::resource(&"g".repeat(40)).is_err());
    assert!(Key::registry_blob(&format!("sha256:{}", "0".repeat(64))).is_ok());
    assert!(Key::registry_blob(&format!("sha512:{}", "0".repeat(64))).is_err());
    assert_eq!(
        Key::registry_index("apps/my-app").unwrap().as_str(),
        "registry/apps/my-app/index.json"
    );
    for bad in ["", "apps/../x", "Apps/x", "apps//x", "/apps", "apps/x/"] {
        assert!(Key::registry_index(bad).is_err(), "{bad:?}");
    }
    assert_eq!(
        Key::resource(&"ab".repeat(20)).unwrap().as_str(),
        format!("resources/ab/{}", "ab".repeat(20))
    );
}

#[test]
fn locations_parse() {
    assert_eq!(
        Location::parse("s3://bucket-1/a/b/").unwrap(),
        Location::S3 {
            bucket: "bucket-1".into(),
            prefix: "a/b".into()
        }
    );
    assert_eq!(
        Location::parse("file:///var/x").unwrap(),
        Location::Local("/var/x".into())
    );
    for bad in [
        "s3://",
        "s3://Upper",
        "s3://b",
        "s3://bucket/../x",
        "gs://b/x",
        "",
    ] {
        assert!(Location::parse(bad).is_err(), "{bad:?}");
    }
}

#[tokio::test]
async fn a_local_store_keeps_reads_ranges_and_deletes() {
    let (dir, store) = local();
    let data = noise(3 * PART + 123);
    let src = dir.path().join("src");
    std::fs::write(&src, &data).unwrap();
    let key = Key::droplet(&guid(2)).unwrap();
    assert_eq!(store.size(&key).await.unwrap(), None);
    assert!(store.read(&key, None).await.unwrap().is_none());
    assert_eq!(store.put_file(&key, &src).await.unwrap(), data.len() as u64);
    assert_eq!(store.size(&key).await.unwrap(), Some(data.len() as u64));

    let whole = store.read(&key, None).await.unwrap().unwrap();
    assert_eq!(whole.size, data.len() as u64);
    assert_eq!(bytes_of(whole).await, data);
    let part = store.read(&key, Some(100..5000)).await.unwrap().unwrap();
    assert_eq!(
        (part.size, part.range.clone()),
        (data.len() as u64, 100..5000)
    );
    assert_eq!(bytes_of(part).await, &data[100..5000]);
    let beyond = data.len() as u64 + 10;
    assert!(matches!(
        store.read(&key, Some(beyond..beyond + 5)).await,
        Err(BlobError::Range { .. })
    ));

    let out = dir.path().join("out");
    assert_eq!(
        store.fetch_to(&key, &out).await.unwrap(),
        Some(data.len() as u64)
    );
    assert_eq!(std::fs::read(&out).unwrap(), data);
    let listed: Vec<_> = store
        .list(&Key::family("droplets"))
        .try_collect()
        .await
        .unwrap();
    assert_eq!(listed, vec![(key.to_string(), data.len() as u64)]);

    store.delete(&key).await.unwrap();
    store.delete(&key).await.unwrap();
    assert_eq!(store.size(&key).await.unwrap(), None);
    assert_eq!(store.fetch_to(&key, &out).await.unwrap(), None);
    store.check().await.unwrap();
}

#[tokio::test]
async fn a_failed_write_leaves_nothing_under_the_key() {
    struct Failing(usize);
    impl AsyncRead for Failing {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            if self.0 == 0 {
                return std::task::Poll::Ready(Err(std::io::Error::other("client went away")));
            }
            let n = self.0.min(buf.remaining()).min(1 << 20);
            buf.put_slice(&vec![7u8; n]);
            self.0 -= n;
            std::task::Poll::Ready(Ok(()))
        }
    }
    let (_dir, store) = local();
    let key = Key::package(&guid(3)).unwrap();
    let err = store.put_reader(&key, &mut Failing(2 * PART + 5)).await;
    assert!(err.is_err());
    assert_eq!(store.size(&key).await.unwrap(), None);
}
