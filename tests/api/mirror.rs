//! The local FDA mirror: imports of every shared file with counts checked against the files,
//! idempotent re-imports, rejected bad files that leave the data intact, full-text search.

use std::io::Write;
use std::path::PathBuf;

use regassist::db::mirror::{self, MirrorQuery};
use regassist::mirror::{ensure_classification, import_file, ImportSummary};

use crate::both_backends;
use crate::common::*;

pub fn data(rel: &str) -> PathBuf {
    let dir = std::env::var("FDA_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data-fda"));
    dir.join(rel)
}

async fn import(app: &TestApp, rel: &str) -> ImportSummary {
    import_file(&app.state.db, &data(rel), false)
        .await
        .unwrap_or_else(|e| panic!("importing {rel}: {e:#}"))
}

/// Imports `rel`, checks its counts, then imports it again and checks that nothing changed.
async fn import_twice(
    app: &TestApp,
    rel: &str,
    read: u64,
    inserted: u64,
    rejected: u64,
) -> ImportSummary {
    let first = import(app, rel).await;
    assert_eq!(
        (first.rows_read, first.inserted, first.rejected),
        (read, inserted, rejected),
        "{rel}: {first}"
    );
    let again = import(app, rel).await;
    assert_eq!(
        (
            again.rows_read,
            again.inserted,
            again.updated,
            again.rejected
        ),
        (read, 0, 0, rejected),
        "re-importing {rel} changes nothing: {again}"
    );
    assert_eq!(again.sha256, first.sha256);
    first
}

both_backends!(imports_every_shared_file, &[], |app: TestApp| async move {
    let db = &app.state.db;
    // Classification: the older file, then the newer one over it.
    let old = import_twice(&app, "classification/foiclass_2020-10.txt", 6617, 6617, 0).await;
    assert_eq!(old.kind, "classification");
    let new = import(&app, "classification/foiclass_2026-01.txt").await;
    assert_eq!(
        (new.rows_read, new.inserted, new.rejected),
        (7039, 457, 0),
        "{new}"
    );
    assert!(new.updated > 0 && new.updated <= 7039 - 457);
    assert_eq!(mirror::count_product_codes(db).await.unwrap(), 7074);
    let hde = mirror::find_product_code(db, "OAZ").await.unwrap().unwrap();
    assert_eq!(hde.device_class, "F", "FDA's lowercase f is stored as F");
    let frn = mirror::find_product_code(db, "FRN").await.unwrap().unwrap();
    assert_eq!(frn.device_name, "Pump, Infusion");
    assert_eq!(frn.regulation_number.as_deref(), Some("880.5725"));
    assert_eq!(
        ensure_classification(db).await.unwrap().map(|s| s.inserted),
        None
    );

    // 510(k)s: the CSV sample, FDA's text files, the openFDA JSON.
    let csv = import_twice(&app, "510k/510k_2015-2026_sample.csv", 3834, 3834, 0).await;
    assert_eq!(csv.kind, "510k");
    let pmn = import_twice(&app, "510k/pmn7680_2026-08.txt", 10467, 10465, 2).await;
    assert!(
        pmn.errors
            .iter()
            .any(|e| e.starts_with("pmn7680_2026-08.txt:2: ") && e.contains("0020")),
        "{:?}",
        pmn.errors
    );
    import_twice(&app, "510k/pmn8185_2026-08.txt", 19139, 19139, 0).await;
    import_twice(&app, "510k/pmn8690_2026-08.txt", 22557, 22557, 0).await;
    let last_2020 = import_twice(&app, "last_month/pmnlstmn_2020-10.txt", 372, 321, 0).await;
    assert_eq!(
        last_2020.updated, 51,
        "the CSV's copies of these records gain FDA's fields"
    );
    import_twice(&app, "last_month/pmnlstmn_2026-08.txt", 335, 335, 0).await;
    let json = import_twice(
        &app,
        "api_json/device_510k_limit100_2026-01-12.json",
        100,
        71,
        0,
    )
    .await;
    assert_eq!(json.data_date, chrono::NaiveDate::from_ymd_opt(2026, 1, 12));
    assert_eq!(mirror::count_510k(db).await.unwrap(), 56722);
    mirror::check_search_index(db).await.unwrap();

    // The docs' examples are not in API shape: refused with a reason, nothing stored.
    for rel in [
        "api_json/openfda_docs_example_device_510k.json",
        "api_json/openfda_docs_example_device_classification.json",
    ] {
        let err = import_file(db, &data(rel), false).await.unwrap_err();
        assert!(format!("{err:#}").contains("results"), "{rel}: {err:#}");
    }
    assert_eq!(mirror::count_510k(db).await.unwrap(), 56722);

    // Records read back with openFDA's field names and the documented transforms.
    let k = mirror::find_510k(db, "K802527").await.unwrap().unwrap();
    assert_eq!(k.applicant.as_deref(), Some("Bartels & Stout, Inc."));
    assert_eq!(
        k.city.as_deref(),
        Some("Bellevue"),
        "NUL padding is dropped"
    );
    assert_eq!(k.decision_code.as_deref(), Some("SESE"));
    assert_eq!(
        k.decision_description.as_deref(),
        Some("Substantially Equivalent")
    );
    assert_eq!(k.decision_date, chrono::NaiveDate::from_ymd_opt(1981, 1, 5));
    let modern = mirror::find_510k(db, "K201470").await.unwrap().unwrap();
    assert_eq!(
        modern.decision_code.as_deref(),
        Some("SESE"),
        "derived for the CSV"
    );
    let value = serde_json::to_value(&modern).unwrap();
    for field in [
        "k_number",
        "applicant",
        "device_name",
        "product_code",
        "decision_date",
        "decision_code",
        "decision_description",
        "clearance_type",
    ] {
        assert!(value.get(field).is_some(), "{field}");
    }
    assert_eq!(value["decision_date"], "2020-09-08");
    let last = mirror::last_import(db).await.unwrap().unwrap();
    assert_eq!(last.file_name, "device_510k_limit100_2026-01-12.json");
    assert_eq!((last.inserted, last.updated), (0, 0));

    // Search over the ~57k records: ranked text, filters, and a total.
    let (rows, total) = mirror::search_510k(
        db,
        &MirrorQuery {
            text: Some("infusion pump".into()),
            limit: 10,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(rows.len(), 10);
    assert!(total > 100, "{total}");
    assert!(
        rows[0].device_name.to_lowercase().contains("infusion")
            || rows[0].device_name.to_lowercase().contains("pump")
    );
    let (rows, total) = mirror::search_510k(
        db,
        &MirrorQuery {
            text: Some("infusion pump".into()),
            product_code: Some("FRN".into()),
            decision_date_from: chrono::NaiveDate::from_ymd_opt(1985, 1, 1),
            decision_date_to: chrono::NaiveDate::from_ymd_opt(1985, 12, 31),
            limit: 100,
        },
    )
    .await
    .unwrap();
    assert!(!rows.is_empty() && total as usize == rows.len());
    for r in &rows {
        assert_eq!(r.product_code.as_deref(), Some("FRN"));
        assert!(r.decision_date.unwrap().to_string().starts_with("1985"));
    }
});

both_backends!(
    bad_files_are_rejected_and_leave_data_intact,
    &[],
    |app: TestApp| async move {
        let db = &app.state.db;
        import(&app, "last_month/pmnlstmn_2026-08.txt").await;
        let before = mirror::count_510k(db).await.unwrap();
        let record = mirror::find_510k(db, "K261609").await.unwrap();
        let imports = mirror::last_import(db).await.unwrap().unwrap().id;
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, bytes: &[u8]| {
            let path = dir.path().join(name);
            std::fs::File::create(&path)
                .unwrap()
                .write_all(bytes)
                .unwrap();
            path
        };
        let original = std::fs::read(data("last_month/pmnlstmn_2026-08.txt")).unwrap();
        // Renamed devices, cut mid-record: the renames must not survive the failed import.
        let renamed: Vec<u8> = String::from_utf8_lossy(&original)
            .replace("System", "Renamed")
            .into_bytes();
        let cut = &renamed[..renamed.len() - 40];
        let pmn8185 = std::fs::read(data("510k/pmn8185_2026-08.txt")).unwrap();
        let json = std::fs::read(data("api_json/device_510k_limit100_2026-01-12.json")).unwrap();
        let mut noise = Vec::with_capacity(65536);
        let mut x: u32 = 0x1234_5678;
        for _ in 0..65536 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            noise.push((x >> 24) as u8);
        }
        let mut garbage =
            original[..original.iter().position(|&b| b == b'\n').unwrap() + 1].to_vec();
        for i in 0..300 {
            garbage.extend_from_slice(format!("this is not a record {i}\r\n").as_bytes());
        }
        let cases: Vec<(&str, PathBuf, &str)> = vec![
            ("truncated text", write("pmnlstmn.txt", cut), "truncated"),
            (
                "truncated big text",
                write("pmn8185.txt", &pmn8185[..1_000_000]),
                "truncated",
            ),
            (
                "truncated JSON",
                write("510k.json", &json[..json.len() / 2]),
                "truncated",
            ),
            ("binary", write("data.txt", &noise), "binary"),
            (
                "PNG",
                write("image.png", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01"),
                "binary",
            ),
            (
                "mostly garbage",
                write("garbage.txt", &garbage),
                "malformed",
            ),
            (
                "wrong header",
                write("other.txt", b"A|B|C\r\n1|2|3\r\n"),
                "unrecognised",
            ),
            ("empty", write("empty.txt", b""), "empty"),
        ];
        for (what, path, expected) in cases {
            let err = import_file(db, &path, false).await.expect_err(what);
            let text = format!("{err:#}");
            assert!(text.contains(expected), "{what}: {text}");
        }
        assert_eq!(mirror::count_510k(db).await.unwrap(), before);
        assert_eq!(
            mirror::find_510k(db, "K261609").await.unwrap(),
            record,
            "no partial update survives"
        );
        assert_eq!(
            mirror::last_import(db).await.unwrap().unwrap().id,
            imports,
            "failed imports are not recorded"
        );

        // A zip holding one file is read like the file itself.
        let zip_path = dir.path().join("pmnlstmn.zip");
        let mut zip = zip::ZipWriter::new(std::fs::File::create(&zip_path).unwrap());
        zip.start_file("pmnlstmn.txt", zip::write::SimpleFileOptions::default())
            .unwrap();
        zip.write_all(&original).unwrap();
        zip.finish().unwrap();
        let summary = import_file(db, &zip_path, false).await.unwrap();
        assert_eq!(
            (summary.rows_read, summary.inserted, summary.updated),
            (335, 0, 0),
            "{summary}"
        );
        assert_eq!(summary.format, "zip");
    }
);

both_backends!(
    search_text_never_breaks_the_query,
    &[],
    |app: TestApp| async move {
        let db = &app.state.db;
        import(&app, "510k/510k_2015-2026_sample.csv").await;
        for text in [
            "\"unterminated",
            "(catheter",
            "catheter)",
            "OR",
            "AND NOT",
            "NEAR(a b)",
            "*",
            "cath*",
            "-needle",
            "a:b",
            "^start",
            "'; DROP TABLE fda_510k; --",
            "Prothèse ünïcode ®™",
            "🩺 stethoscope",
            "",
            "   ",
            "x",
            "1234",
            "k_number:K201470",
            "device_name : mask",
            "\\",
            "{}[]",
            "face OR mask AND \"surgical\"",
        ] {
            let q = MirrorQuery {
                text: Some(text.into()),
                limit: 5,
                ..Default::default()
            };
            let result = mirror::search_510k(db, &q).await;
            assert!(result.is_ok(), "{text:?}: {:?}", result.err());
        }
        let (rows, total) = mirror::search_510k(
            db,
            &MirrorQuery {
                text: Some("\"Surgical\" (face) MASK*".into()),
                limit: 5,
                ..Default::default()
            },
        )
        .await
        .unwrap();
        assert!(
            total > 0
                && rows
                    .iter()
                    .any(|r| r.device_name.to_lowercase().contains("mask"))
        );
        let (rows, total) = mirror::search_510k(
            db,
            &MirrorQuery {
                product_code: Some("FXX".into()),
                limit: 3,
                ..Default::default()
            },
        )
        .await
        .unwrap();
        assert!(total >= 3 && rows.len() == 3);
        assert!(
            rows.windows(2)
                .all(|w| w[0].decision_date >= w[1].decision_date),
            "newest first without text"
        );
    }
);

#[test]
fn the_import_command_reports_each_file_and_fails_on_a_bad_one() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.txt");
    std::fs::write(&bad, [0u8, 1, 2, 3, 4, 5, 6, 7, 8, 9].repeat(100)).unwrap();
    let good = data("last_month/pmnlstmn_2026-08.txt");
    let db_url = format!("sqlite://{}/cli.db", dir.path().display());
    let run = |args: &[&std::ffi::OsStr]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_regassist"))
            .current_dir(dir.path())
            .arg("import")
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATABASE_URL", &db_url)
            .env("JWT_SECRET", JWT_SECRET)
            .output()
            .unwrap()
    };
    let out = run(&[good.as_os_str(), bad.as_os_str()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a bad file fails the command");
    assert!(
        stdout.contains(
            "pmnlstmn_2026-08.txt: 510k 335 rows read, 335 inserted, 0 updated, 0 rejected"
        ),
        "{stdout}"
    );
    assert!(
        stderr.contains("bad.txt") && stderr.contains("binary"),
        "{stderr}"
    );
    let out = run(&[good.as_os_str()]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("0 inserted, 0 updated"));
}
