//! A `wasi:http/proxy` component: answers every request with a short text naming the method
//! and path. `/echo` returns the request body; `/status/N` answers with status N;
//! `/fetch/HOST[:PORT]/PATH` fetches `http://HOST[:PORT]/PATH` with an outgoing wasi:http
//! request (on a wharf network HOST is another container's name) and answers with its body.

use wasi::http::types::{
    Fields, IncomingBody, IncomingRequest, Method, OutgoingBody, OutgoingRequest,
    OutgoingResponse, ResponseOutparam, Scheme,
};

wasi::http::proxy::export!(Hello);

struct Hello;

impl wasi::exports::http::incoming_handler::Guest for Hello {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let path = request.path_with_query().unwrap_or_else(|| "/".into());
        let method = match request.method() {
            Method::Get => "GET".to_string(),
            Method::Post => "POST".to_string(),
            Method::Put => "PUT".to_string(),
            Method::Delete => "DELETE".to_string(),
            Method::Head => "HEAD".to_string(),
            other => format!("{other:?}"),
        };
        let (status, body) = if path == "/echo" {
            (200, read_body(request))
        } else if let Some(target) = path.strip_prefix("/fetch/") {
            fetch(target)
        } else if let Some(code) = path.strip_prefix("/status/") {
            (code.parse().unwrap_or(400), format!("status {code}\n").into_bytes())
        } else {
            (200, format!("hello from wasi:http: {method} {path}\n").into_bytes())
        };
        let headers = Fields::new();
        let _ = headers.set(&"content-type".to_string(), &[b"text/plain".to_vec()]);
        let response = OutgoingResponse::new(headers);
        let _ = response.set_status_code(status);
        let out_body = response.body().expect("response body");
        ResponseOutparam::set(response_out, Ok(response));
        let stream = out_body.write().expect("body stream");
        for chunk in body.chunks(4096) {
            stream.blocking_write_and_flush(chunk).expect("writing body");
        }
        drop(stream);
        OutgoingBody::finish(out_body, None).expect("finishing body");
    }
}

fn read_body(request: IncomingRequest) -> Vec<u8> {
    let body = request.consume().expect("request body");
    let stream = body.stream().expect("body stream");
    let mut out = Vec::new();
    while let Ok(chunk) = stream.blocking_read(64 * 1024) {
        out.extend_from_slice(&chunk);
    }
    drop(stream);
    IncomingBody::finish(body);
    out
}

/// GET `http://TARGET` (`HOST[:PORT]/PATH`): the upstream status and body, or 502 and why.
fn fetch(target: &str) -> (u16, Vec<u8>) {
    let (authority, path) = match target.find('/') {
        Some(i) => (&target[..i], &target[i..]),
        None => (target, "/"),
    };
    let request = OutgoingRequest::new(Fields::new());
    let _ = request.set_scheme(Some(&Scheme::Http));
    let _ = request.set_authority(Some(authority));
    let _ = request.set_path_with_query(Some(path));
    let future = match wasi::http::outgoing_handler::handle(request, None) {
        Ok(f) => f,
        Err(e) => return (502, format!("fetch {authority}{path}: {e:?}\n").into_bytes()),
    };
    future.subscribe().block();
    let response = match future.get() {
        Some(Ok(Ok(r))) => r,
        Some(Ok(Err(e))) => return (502, format!("fetch {authority}{path}: {e:?}\n").into_bytes()),
        other => return (502, format!("fetch {authority}{path}: {other:?}\n").into_bytes()),
    };
    let status = response.status();
    let body = response.consume().expect("response body");
    let stream = body.stream().expect("body stream");
    let mut out = Vec::new();
    loop {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) => out.extend_from_slice(&chunk),
            Err(_) => break,
        }
    }
    drop(stream);
    (status, out)
}
