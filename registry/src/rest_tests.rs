//! Tests of `rest.rs`.

use super::*;

const V1: &str = r#"{"type":"record","name":"User","fields":[{"name":"id","type":"long"}]}"#;
const BAD: &str = r#"{"type":"record","name":"User","fields":[{"name":"id","type":"long"},{"name":"age","type":"int"}]}"#;

/// Runs a request, writing (applying) what it asks to write.
fn call(r: &mut Registry, method: &str, path: &str, body: Value) -> Reply {
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    let body = if body.is_null() {
        Vec::new()
    } else {
        body.to_string().into_bytes()
    };
    let req = Request {
        method,
        path,
        query,
        body: &body,
    };
    match handle(&req, r) {
        Outcome::Reply(reply) => reply,
        Outcome::Write { records, reply } => {
            for rec in &records {
                r.apply(rec);
            }
            reply
        }
    }
}

#[test]
fn register_fetch_evolve_and_delete_as_confluents_clients_do() {
    let mut r = Registry::default();
    let reply = call(
        &mut r,
        "POST",
        "/subjects/orders-value/versions",
        json!({"schema": V1}),
    );
    assert_eq!(reply, Reply::ok(json!({"id": 1})));
    assert_eq!(
        call(&mut r, "GET", "/schemas/ids/1", Value::Null).body,
        json!({"schema": V1})
    );
    assert_eq!(
        call(
            &mut r,
            "GET",
            "/subjects/orders-value/versions/latest",
            Value::Null
        )
        .body,
        json!({"subject": "orders-value", "version": 1, "id": 1, "schema": V1})
    );
    assert_eq!(
        call(
            &mut r,
            "POST",
            "/subjects/orders-value",
            json!({"schema": V1})
        )
        .body["version"],
        json!(1)
    );
    let refused = call(
        &mut r,
        "POST",
        "/subjects/orders-value/versions",
        json!({"schema": BAD}),
    );
    assert_eq!(refused.status, 409);
    assert_eq!(refused.body["error_code"], json!(409));
    let check = call(
        &mut r,
        "POST",
        "/compatibility/subjects/orders-value/versions/latest?verbose=true",
        json!({"schema": BAD}),
    );
    assert_eq!(check.body["is_compatible"], json!(false));
    assert_eq!(check.body["messages"].as_array().map(Vec::len), Some(1));

    assert_eq!(
        call(
            &mut r,
            "PUT",
            "/config/orders-value",
            json!({"compatibility": "none"})
        )
        .body,
        json!({"compatibility": "NONE"})
    );
    assert_eq!(
        call(
            &mut r,
            "POST",
            "/subjects/orders-value/versions",
            json!({"schema": BAD})
        )
        .body,
        json!({"id": 2})
    );
    assert_eq!(
        call(&mut r, "GET", "/subjects", Value::Null).body,
        json!(["orders-value"])
    );
    assert_eq!(
        call(&mut r, "DELETE", "/subjects/orders-value", Value::Null).body,
        json!([1, 2])
    );
    assert_eq!(
        call(&mut r, "GET", "/subjects", Value::Null).body,
        json!([])
    );
    assert_eq!(
        call(
            &mut r,
            "DELETE",
            "/subjects/orders-value?permanent=true",
            Value::Null
        )
        .body,
        json!([1, 2])
    );
    assert_eq!(
        call(&mut r, "GET", "/schemas/ids/1", Value::Null).body["error_code"],
        json!(40403)
    );
}

#[test]
fn bad_requests_get_confluents_error_codes() {
    let mut r = Registry::default();
    let code = |reply: Reply| (reply.status, reply.body["error_code"].clone());
    assert_eq!(
        code(call(
            &mut r,
            "POST",
            "/subjects/s/versions",
            json!({"schema": "{not avro"})
        )),
        (422, json!(42201))
    );
    assert_eq!(
        code(call(&mut r, "GET", "/subjects/nope/versions", Value::Null)),
        (404, json!(40401))
    );
    assert_eq!(
        code(call(
            &mut r,
            "GET",
            "/subjects/s/versions/zero",
            Value::Null
        )),
        (422, json!(42202))
    );
    assert_eq!(
        code(call(
            &mut r,
            "PUT",
            "/config",
            json!({"compatibility": "SIDEWAYS"})
        )),
        (422, json!(42203))
    );
    assert_eq!(
        code(call(&mut r, "GET", "/config/s", Value::Null)),
        (404, json!(40408))
    );
    assert_eq!(
        code(call(&mut r, "GET", "/nowhere", Value::Null)),
        (404, json!(404))
    );
    assert_eq!(
        code(call(&mut r, "PATCH", "/subjects", Value::Null)),
        (404, json!(404))
    );
    assert_eq!(
        code(call(&mut r, "PUT", "/subjects", Value::Null)),
        (405, json!(405))
    );
    let malformed = Request {
        method: "POST",
        path: "/subjects/s/versions",
        query: "",
        body: b"{\"schema\": ",
    };
    match handle(&malformed, &r) {
        Outcome::Reply(reply) => assert_eq!(reply.status, 400),
        other => panic!("{other:?}"),
    }
    let wrong_shape = Request {
        body: br#"{"schema": 5}"#,
        ..malformed
    };
    match handle(&wrong_shape, &r) {
        Outcome::Reply(reply) => assert_eq!(reply.status, 400),
        other => panic!("{other:?}"),
    }
    let empty = Request {
        body: br#"{}"#,
        ..malformed
    };
    match handle(&empty, &r) {
        Outcome::Reply(reply) => assert_eq!(reply.body["error_code"], json!(42201)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn subjects_in_paths_are_percent_decoded() {
    let mut r = Registry::default();
    call(
        &mut r,
        "POST",
        "/subjects/a%2Fb%20c/versions",
        json!({"schema": V1}),
    );
    assert_eq!(
        call(&mut r, "GET", "/subjects", Value::Null).body,
        json!(["a/b c"])
    );
    assert_eq!(percent_decode("%zz%41"), "%zzA");
}
