//! A `wasi:http/service@0.3.0` component (WASI 0.3: an async `handle` export, bodies as
//! streams): answers every request with a short text naming the method and path. `/echo`
//! returns the request body; `/status/N` answers with status N; `/fetch/HOST[:PORT]/PATH`
//! fetches `http://HOST[:PORT]/PATH` through `wasi:http/client` and answers with its body.
//! The same behaviour as the p2 `http-hello`, so tests compare the two.

wit_bindgen::generate!({
    path: "../wit/p3",
    world: "wharf:examples/p3-http",
    generate_all,
});

use wasi::http::client;
use wasi::http::types::{ErrorCode, Fields, Method, Request, Response, Scheme, Trailers};
use wit_bindgen::StreamResult;

struct Service;

export!(Service);

impl exports::wasi::http::handler::Guest for Service {
    async fn handle(request: Request) -> Result<Response, ErrorCode> {
        let path = request.get_path_with_query().unwrap_or_else(|| "/".into());
        let method = match request.get_method() {
            Method::Get => "GET".to_string(),
            Method::Post => "POST".to_string(),
            Method::Put => "PUT".to_string(),
            Method::Delete => "DELETE".to_string(),
            Method::Head => "HEAD".to_string(),
            other => format!("{other:?}"),
        };
        let (status, body) = if path == "/echo" {
            (200, read_request_body(request).await)
        } else if let Some(target) = path.strip_prefix("/fetch/") {
            fetch(target).await
        } else if let Some(code) = path.strip_prefix("/status/") {
            (code.parse().unwrap_or(400), format!("status {code}\n").into_bytes())
        } else {
            (200, format!("hello from wasi:http 0.3: {method} {path}\n").into_bytes())
        };
        Ok(respond(status, body))
    }
}

/// A response whose body a spawned task writes while the host reads it.
fn respond(status: u16, body: Vec<u8>) -> Response {
    let headers = Fields::new();
    let _ = headers.set("content-type", &[b"text/plain".to_vec()]);
    let (mut body_tx, body_rx) = wit_stream::new::<u8>();
    let (trailers_tx, trailers_rx) = wit_future::new::<Result<Option<Trailers>, ErrorCode>>(|| Ok(None));
    let (response, _sent) = Response::new(headers, Some(body_rx), trailers_rx);
    let _ = response.set_status_code(status);
    wit_bindgen::spawn(async move {
        body_tx.write_all(body).await;
        drop(body_tx);
        let _ = trailers_tx.write(Ok(None)).await;
    });
    response
}

async fn read_request_body(request: Request) -> Vec<u8> {
    let (_done_tx, done_rx) = wit_future::new::<Result<(), ErrorCode>>(|| Ok(()));
    let (body, _trailers) = Request::consume_body(request, done_rx);
    read_all(body).await
}

async fn read_all(mut body: wit_bindgen::StreamReader<u8>) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let (result, chunk) = body.read(Vec::with_capacity(64 * 1024)).await;
        out.extend_from_slice(&chunk);
        if !matches!(result, StreamResult::Complete(_)) {
            break;
        }
    }
    out
}

/// GET `http://TARGET` (HOST[:PORT]/PATH) with `wasi:http/client`.
async fn fetch(target: &str) -> (u16, Vec<u8>) {
    let (authority, path) = match target.split_once('/') {
        Some((a, p)) => (a.to_string(), format!("/{p}")),
        None => (target.to_string(), "/".to_string()),
    };
    let (_trailers_tx, trailers_rx) =
        wit_future::new::<Result<Option<Trailers>, ErrorCode>>(|| Ok(None));
    let (request, _sent) = Request::new(Fields::new(), None, trailers_rx, None);
    let _ = request.set_scheme(Some(&Scheme::Http));
    let _ = request.set_authority(Some(&authority));
    let _ = request.set_path_with_query(Some(&path));
    match client::send(request).await {
        Ok(response) => {
            let status = response.get_status_code();
            let (_done_tx, done_rx) = wit_future::new::<Result<(), ErrorCode>>(|| Ok(()));
            let (body, _trailers) = Response::consume_body(response, done_rx);
            let bytes = read_all(body).await;
            (if status == 200 { 200 } else { 502 }, bytes)
        }
        Err(e) => (502, format!("fetch {authority}{path} failed: {e:?}\n").into_bytes()),
    }
}
